"""`GroupReporter`: outcomes that end together go to the store in one call, each caller
returns once its own outcome was sent, and one refused outcome does not sink the rest."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from orchestrion.errors import StoreError
from orchestrion.store.records import Outcome
from orchestrion.worker.reporting import MAX_BATCH, GroupReporter

#: Guards against a hang; never a timing assertion.
_PATIENCE = 30.0


def _outcome(i: int) -> Outcome:
    return Outcome(task_run_id=i, epoch=1, status="succeeded", result=i)


def _held_first_send(
    then: Callable[[Sequence[Outcome]], None], others: Sequence[int]
) -> list[list[int]]:
    """Report outcome 0 and hold its send until `others` are all queued; then let
    everything go. Every later batch goes to `then` (which may raise). Returns the ids
    of each batch handed over, in order."""
    batches: list[list[int]] = []
    inside, release = threading.Event(), threading.Event()

    def send(batch: Sequence[Outcome]) -> None:
        batches.append([o.task_run_id for o in batch])
        if len(batches) == 1:
            inside.set()
            assert release.wait(_PATIENCE)
        else:
            then(batch)

    reporter = GroupReporter(send)
    threads = [threading.Thread(target=reporter.report, args=(_outcome(0),))]
    threads[0].start()
    assert inside.wait(_PATIENCE)
    threads += [threading.Thread(target=reporter.report, args=(_outcome(i),)) for i in others]
    for t in threads[1:]:
        t.start()
    while reporter.pending < len(others):
        threading.Event().wait(0.001)
    release.set()
    for t in threads:
        t.join(_PATIENCE)
        assert not t.is_alive()
    return batches


def test_a_lone_outcome_is_sent_at_once() -> None:
    sent: list[list[int]] = []
    reporter = GroupReporter(lambda batch: sent.append([o.task_run_id for o in batch]))
    reporter.report(_outcome(1))
    assert sent == [[1]]


def test_outcomes_that_wait_meanwhile_go_in_one_call() -> None:
    batches = _held_first_send(lambda batch: None, [1, 2, 3])
    assert [sorted(b) for b in batches] == [[0], [1, 2, 3]]


def test_batches_are_capped() -> None:
    batches = _held_first_send(lambda batch: None, range(1, MAX_BATCH + 6))
    assert [len(b) for b in batches] == [1, MAX_BATCH, 5]


def test_a_refused_batch_is_sent_again_one_by_one() -> None:
    def then(batch: Sequence[Outcome]) -> None:
        if len(batch) > 1 or batch[0].task_run_id == 2:
            raise StoreError("refused")

    batches = _held_first_send(then, [1, 2, 3])
    assert sorted(batches[1]) == [1, 2, 3]  # refused as a whole, then one by one:
    assert sorted(map(tuple, batches[2:])) == [(1,), (2,), (3,)]


def test_a_lone_refused_outcome_raises_to_its_caller() -> None:
    def send(batch: Sequence[Outcome]) -> None:
        raise StoreError("down")

    with pytest.raises(StoreError):
        GroupReporter(send).report(_outcome(1))

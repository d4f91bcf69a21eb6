"""`GroupReporter`: outcomes that end together go to the store in one call, the threads
that queue them do not wait, each outcome's callback runs once it is recorded, and one
refused outcome does not sink the rest."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from orchestrion.errors import StoreError
from orchestrion.store.records import Outcome
from orchestrion.worker.reporting import MAX_BATCH, GroupReporter

#: Guards against a hang; never a timing assertion.
_PATIENCE = 30.0


def _outcome(i: int) -> Outcome:
    return Outcome(task_run_id=i, epoch=1, status="succeeded", result=i)


class _Held:
    """A reporter whose first send waits until released; records batches and callbacks."""

    def __init__(self, then: Callable[[Sequence[Outcome]], None] = lambda batch: None) -> None:
        self.batches: list[list[int]] = []
        self.done: list[int] = []
        self.inside, self.release = threading.Event(), threading.Event()
        self._then = then
        self.reporter = GroupReporter(self._send)

    def _send(self, batch: Sequence[Outcome]) -> None:
        self.batches.append([o.task_run_id for o in batch])
        if len(self.batches) == 1:
            self.inside.set()
            assert self.release.wait(_PATIENCE)
        else:
            self._then(batch)

    def report(self, i: int) -> None:
        self.reporter.report(_outcome(i), then=lambda: self.done.append(i))


def _held_first_send(
    then: Callable[[Sequence[Outcome]], None], others: Sequence[int]
) -> tuple[list[list[int]], list[int]]:
    """Report outcome 0 and hold its send until `others` are all queued (their threads
    return without waiting); then let everything go. Returns the ids of each batch handed
    to the store, in order, and the ids whose callback ran."""
    held = _Held(then)
    sender = threading.Thread(target=held.report, args=(0,))
    sender.start()
    assert held.inside.wait(_PATIENCE)
    for i in others:  # queued, and back at once: the sender is busy
        held.report(i)
    assert held.reporter.pending == len(others)
    assert held.done == []  # nothing recorded yet
    held.release.set()
    sender.join(_PATIENCE)
    assert not sender.is_alive()
    return held.batches, held.done


def test_a_lone_outcome_is_sent_at_once() -> None:
    sent: list[list[int]] = []
    done: list[int] = []
    reporter = GroupReporter(lambda batch: sent.append([o.task_run_id for o in batch]))
    reporter.report(_outcome(1), then=lambda: done.append(1))
    assert sent == [[1]] and done == [1]


def test_outcomes_queued_meanwhile_go_in_one_call_and_their_callbacks_run_after() -> None:
    batches, done = _held_first_send(lambda batch: None, [1, 2, 3])
    assert [sorted(b) for b in batches] == [[0], [1, 2, 3]]
    assert sorted(done) == [0, 1, 2, 3]


def test_batches_are_capped() -> None:
    batches, _ = _held_first_send(lambda batch: None, range(1, MAX_BATCH + 6))
    assert [len(b) for b in batches] == [1, MAX_BATCH, 5]


def test_a_refused_batch_is_sent_again_one_by_one() -> None:
    def then(batch: Sequence[Outcome]) -> None:
        if len(batch) > 1 or batch[0].task_run_id == 2:
            raise StoreError("refused")

    batches, done = _held_first_send(then, [1, 2, 3])
    assert sorted(batches[1]) == [1, 2, 3]  # refused as a whole, then one by one:
    assert sorted(map(tuple, batches[2:])) == [(1,), (2,), (3,)]
    assert sorted(done) == [0, 1, 2, 3]  # the refused one's attempt ends too (logged)


def test_a_lone_refused_outcome_is_logged_and_its_callback_runs() -> None:
    def send(batch: Sequence[Outcome]) -> None:
        raise StoreError("down")

    done: list[int] = []
    GroupReporter(send).report(_outcome(1), then=lambda: done.append(1))
    assert done == [1]


def test_a_sender_with_work_of_its_own_hands_the_rest_over() -> None:
    held = _Held()
    handed: list[Callable[[], None]] = []
    held.reporter = GroupReporter(
        held._send, hand_over=handed.append, should_hand_over=lambda: True
    )
    sender = threading.Thread(target=held.report, args=(0,))
    sender.start()
    assert held.inside.wait(_PATIENCE)
    held.report(1)
    held.release.set()
    sender.join(_PATIENCE)
    assert held.batches == [[0]] and held.done == [0]  # it sent its own batch only
    assert len(handed) == 1 and held.reporter.pending == 1
    held.report(2)  # still being sent (by the hand-over): queued, not sent here
    assert held.batches == [[0]]
    handed[0]()  # the other thread sends the rest, and hands nothing more over
    assert held.batches == [[0], [1, 2]] and sorted(held.done) == [0, 1, 2]

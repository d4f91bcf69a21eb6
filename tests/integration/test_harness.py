"""`orchestrion.testing.Harness`: runs driven in process under its clock, stubs, schedules
and timeouts on the harness's time, and readable failures. On a SQLite file, or a fresh
PostgreSQL schema with ``ORCHESTRION_TEST_DATABASE=postgres``."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.states import RunState, TaskState
from orchestrion.testing import Harness
from tests.helpers import database_url_for

PIPELINE = """\
name: pipeline
params:
  n: {type: integer, default: 2}
tasks:
  fetch:
    shell: [echo, "fetched {{ params.n }}"]
    retry: {retries: 3, backoff: 1h, max_delay: 1h}
  store:
    shell: [echo, "stored {{ tasks.fetch }}"]
"""

NIGHTLY = """\
name: nightly
timeout: 90m
schedules:
  - cron: "0 2 * * *"
tasks:
  work:
    shell: [echo, working]
    retry: {retries: 5, backoff: 1h, max_delay: 1h}
"""


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "nightly.yaml").write_text(NIGHTLY)
    # 2030-01-01 00:00 UTC: the nightly schedule is due two hours in.
    with Harness(database_url=database_url_for(tmp_path / "h.db"), start=1893456000.0) as made:
        made.load(tmp_path / "pipeline.yaml", tmp_path / "nightly.yaml")
        yield made


def test_a_run_with_real_tasks_succeeds(h: Harness) -> None:
    result = h.run("pipeline", params={"n": 5}).assert_succeeded()
    assert result.task("fetch").result == "fetched 5"
    assert result.task("store").logs == ("stored fetched 5",)
    assert [a.outcome for a in result.task("fetch").attempts] == ["succeeded"]


def test_a_stub_that_fails_once_is_retried_after_its_backoff_at_once(h: Harness) -> None:
    start = h.clock.now()
    stub = h.stub("fetch", raises=RuntimeError("source down"), times=1, result="cached")
    result = h.run("pipeline").assert_succeeded()
    fetch = result.task("fetch")
    assert [a.outcome for a in fetch.attempts] == ["failed", "succeeded"]
    assert "source down" in str(fetch.attempts[0].error)
    assert result.task("store").result == "stored cached"
    assert len(stub.calls) == 2
    assert h.clock.now() - start >= 1800  # the clock passed the backoff (an hour, jittered)


def test_a_failed_run_names_its_failed_tasks_and_errors(h: Harness) -> None:
    h.stub("fetch", raises=ValueError("bad row 7"))
    result = h.run("pipeline")
    assert result.state is RunState.FAILED
    assert result.task("store").state is TaskState.UPSTREAM_FAILED
    assert len(result.task("fetch").attempts) == 4
    with pytest.raises(AssertionError) as caught:
        result.assert_succeeded()
    message = str(caught.value)
    assert "is failed" in message and "fetch: ValueError: bad row 7" in message
    result.assert_failed("fetch")
    with pytest.raises(KeyError, match="its tasks: fetch, store"):
        result.task("nope")


def test_a_stub_function_sees_the_inputs(h: Harness, tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text(
        textwrap.dedent("""
        from orchestrion.spec.python import task, workflow

        @task
        def numbers(n: int) -> list[int]:
            return list(range(n))

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        @workflow
        def summed(n: int = 3):
            total(numbers(n))
    """)
    )
    assert h.load(tmp_path / "flow.py") == ["summed"]
    assert h.run("summed", {"n": 4}).assert_succeeded().task("total").result == 6
    h.stub("total", fn=lambda values: max(values))
    assert h.run("summed", {"n": 4}).task("total").result == 3
    assert h.calls("total") == [{"values": [0, 1, 2, 3]}]


def test_advancing_fires_schedules_and_times_runs_out(h: Harness) -> None:
    assert h.advance(hours=1) == []
    fired = h.advance(hours=1, minutes=1)
    assert [(r.workflow, r.trigger, r.state) for r in fired] == [
        ("nightly", fired[0].trigger, RunState.SUCCEEDED)
    ]
    assert "schedule" in fired[0].trigger
    # Tomorrow's run fails and waits an hour per retry: a minute in, it still waits...
    h.stub("work", raises=RuntimeError("flaky"))
    fired = h.advance(days=1)
    assert [r.state for r in fired] == [RunState.RUNNING]
    assert fired[0].task("work").state is TaskState.RETRY_WAIT
    assert h.now.isoformat().startswith("2030-01-02T02:01")
    # ...and two hours on, its 90 minutes have run out on the way.
    assert h.advance(hours=2) == []
    timed_out = h.result(fired[0].id)
    assert timed_out.state is RunState.FAILED
    assert len(timed_out.task("work").attempts) >= 2


def test_a_cached_task_runs_once_across_runs_in_the_harness(tmp_path: Path) -> None:
    """The harness's worker has the App's task cache, as `orchestrion run`'s has."""
    count = tmp_path / "count"
    (tmp_path / "cached.yaml").write_text(
        textwrap.dedent(f"""\
            name: cached
            tasks:
              slow:
                cache: {{ttl: 1h}}
                shell:
                  script: 'echo ran >> "{count}"; echo 42'
            """)
    )
    with Harness(database_url=database_url_for(tmp_path / "c.db")) as h:
        h.load(tmp_path / "cached.yaml")
        first = h.run("cached").assert_succeeded()
        second = h.run("cached").assert_succeeded()
    assert first.task("slow").result == second.task("slow").result == "42"
    assert count.read_text().splitlines() == ["ran"]

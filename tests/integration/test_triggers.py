"""Event triggers through the App and run triggers through the scheduler, on real SQLite."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.clock import FakeClock
from orchestrion.errors import ParameterError
from orchestrion.spec.model import ParamSpec, ParamType, TriggerSpec, WorkflowSpec
from orchestrion.store.records import AuditFilter, RunFilter
from orchestrion.triggers.scheduler import Scheduler
from tests.helpers import Driver, make_app, py


def flow(name: str, *triggers: dict[str, Any], **params: ParamSpec) -> WorkflowSpec:
    return WorkflowSpec(
        name=name,
        tasks=(py("a"),),
        params=params,
        triggers=tuple(TriggerSpec.model_validate(t) for t in triggers),
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[App]:
    application = make_app(tmp_path, clock=clock)
    yield application
    application.close()


@pytest.fixture
def drv(tmp_path: Path, app: App, clock: FakeClock) -> Iterator[Driver]:
    driver = Driver(tmp_path / "app.db", clock)
    yield driver
    driver.close()


def register(app: App, *specs: WorkflowSpec) -> None:
    for spec in specs:
        app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())


def count_runs(app: App, workflow: str | None = None) -> int:
    return len(app.runs.list_runs(RunFilter(workflow=workflow, limit=1000)))


ORDERS = flow(
    "ship",
    {
        "event": "orders.created",
        "filter": "event.payload.total >= 100",
        "params": {"order": "{{ event.payload.id }}", "label": "order-{{ event.payload.id }}"},
    },
    order=ParamSpec(type=ParamType.INTEGER, required=True),
    label=ParamSpec(),
)


# --------------------------------------------------------------------------- events


def test_an_event_starts_matching_workflows_with_mapped_params(app: App) -> None:
    register(app, ORDERS, flow("audit", {"event": "orders.*"}), flow("other", {"event": "x"}))
    run_ids = app.triggers.send_event("orders.created", {"id": 42, "total": 250}, event_id="e-1")
    runs = {app.runs.get_run(r).workflow: app.runs.get_run(r) for r in run_ids}
    assert set(runs) == {"ship", "audit"}
    assert runs["ship"].params == {"order": 42, "label": "order-42"}
    assert runs["ship"].trigger == "event:api:e-1"
    assert app.triggers.send_event("orders.created", {"id": 43, "total": 5}, event_id="e-2") != []
    assert count_runs(app, "ship") == 1  # the filter kept the small order out
    assert app.triggers.send_event("users.deleted", {}) == []


def test_the_same_event_id_never_starts_a_run_twice(app: App) -> None:
    register(app, ORDERS)
    first = app.triggers.receive_event("orders.created", {"id": 1, "total": 100}, "dup")
    again = app.triggers.receive_event("orders.created", {"id": 1, "total": 100}, "dup")
    assert not first.duplicate and again.duplicate
    assert again.run_ids == first.run_ids and len(first.run_ids) == 1
    other_source = app.triggers.receive_event(
        "orders.created", {"id": 1, "total": 100}, "dup", source="hook"
    )
    assert not other_source.duplicate  # ids are unique per source
    assert count_runs(app, "ship") == 2
    generated = {
        app.triggers.send_event("orders.created", {"id": 5, "total": 500})[0] for _ in range(3)
    }
    assert len(generated) == 3  # no id given: every send is a new event


def test_concurrent_deliveries_of_one_event_start_one_run(tmp_path: Path, app: App) -> None:
    register(app, ORDERS)
    others = [make_app(tmp_path, clock=app.clock) for _ in range(3)]
    try:
        with ThreadPoolExecutor(4) as pool:
            receipts = list(
                pool.map(
                    lambda a: a.triggers.receive_event(
                        "orders.created", {"id": 9, "total": 900}, "race"
                    ),
                    [app, *others] * 5,
                )
            )
    finally:
        for other in others:
            other.close()
    assert sum(not r.duplicate for r in receipts) == 1
    assert {r.run_ids for r in receipts} == {receipts[0].run_ids}
    assert count_runs(app, "ship") == 1


def test_trigger_errors_are_kept_and_paused_workflows_skipped(app: App) -> None:
    register(app, ORDERS, flow("audit", {"event": "orders.*"}))
    receipt = app.triggers.receive_event(
        "orders.created", {"id": "not-a-number", "total": 100}, "e"
    )
    assert [app.runs.get_run(r).workflow for r in receipt.run_ids] == ["audit"]
    assert receipt.errors[0].startswith("ship: parameter 'order' must be integer")
    app.workflows.set_paused("audit", True)
    assert app.triggers.send_event("orders.created", {"id": 3, "total": 100}) != []
    assert count_runs(app, "audit") == 1


@pytest.mark.parametrize(
    ("event_type", "event_id", "payload", "message"),
    [
        ("bad type", None, {}, "bad event type"),
        ("", None, {}, "bad event type"),
        ("ok", "", {}, "bad event id"),
        ("ok", None, {"x": object()}, "not JSON"),
        ("ok", None, {"x": float("nan")}, "not JSON"),
        ("ok", None, "x" * 1_100_000, "over the 1,048,576-byte limit"),
    ],
)
def test_bad_events_are_refused(
    app: App, event_type: str, event_id: str | None, payload: Any, message: str
) -> None:
    with pytest.raises(ParameterError, match=message):
        app.triggers.send_event(event_type, payload, event_id=event_id)


# --------------------------------------------------------------------------- run triggers


def test_run_triggers_start_b_after_a_succeeds_and_c_after_it_fails(
    app: App, drv: Driver, clock: FakeClock
) -> None:
    a = flow("A", day=ParamSpec())
    b = flow(
        "B",
        {
            "after": {"workflow": "A", "outcome": "succeeded"},
            "params": {"day": "{{ run.params.day }}"},
        },
        day=ParamSpec(),
    )
    c = flow("C", {"after": {"workflow": "A", "outcome": "failed"}})
    register(app, a, b, c)
    sched = Scheduler(app.store.triggers, app.store.workflows, app.store.runs, app.clock, "s")
    sched.tick()  # the first pass only marks where the history stands
    good = app.runs.trigger("A", {"day": "2026-11-26"})
    drv.succeed(drv.claim_one("a"))
    started = sched.tick().triggered_runs
    assert [app.runs.get_run(r).workflow for r in started] == ["B"]
    assert app.runs.get_run(started[0]).params == {"day": "2026-11-26"}
    assert app.runs.get_run(started[0]).trigger.startswith(f"run:{good.id}@")
    assert sched.tick().triggered_runs == []
    bad = app.runs.trigger("A", {"day": "2026-11-27"})
    for claim in drv.claim():  # B's run is queued too: it succeeds, A's fails
        if claim.run_id == bad.id:
            drv.fail(claim)
        else:
            drv.succeed(claim)
    assert app.runs.get_run(bad.id).state.value == "failed"
    restarted = Scheduler(
        app.store.triggers, app.store.workflows, app.store.runs, app.clock, "s2"
    )  # a restart keeps the position
    clock.advance(60)
    assert [app.runs.get_run(r).workflow for r in restarted.tick().triggered_runs] == ["C"]
    assert count_runs(app, "B") == 1 and count_runs(app, "C") == 1
    audited = app.accounts.list_audit(AuditFilter(actor="scheduler"))
    assert sorted(r.params["workflow"] for r in audited) == ["B", "C"]
    assert {r.action for r in audited} == {"run.trigger"}


def test_a_run_trigger_fires_once_even_if_the_history_is_read_twice(app: App, drv: Driver) -> None:
    register(app, flow("A"), flow("B", {"after": {"workflow": "A", "outcome": "any"}}))
    sched = Scheduler(app.store.triggers, app.store.workflows, app.store.runs, app.clock, "s")
    sched.tick()
    app.runs.trigger("A", {})
    drv.succeed(drv.claim_one("a"))
    position = app.store.triggers.get_cursor("run_triggers")
    assert position is not None
    assert len(sched.tick().triggered_runs) == 1
    app.store.triggers.set_cursor("run_triggers", 0, now=app.clock.now())  # never moves back...
    assert app.store.triggers.get_cursor("run_triggers") != 0
    finished, _ = app.store.triggers.finished_runs(position)  # ...and a replay is deduplicated
    receipts = [
        app.store.triggers.record_event(
            "run", f"{f.run.id}@{f.event_id}", "run.succeeded", {}, now=app.clock.now()
        )
        for f in finished
    ]
    assert all(r.duplicate for r in receipts)
    assert count_runs(app, "B") == 1

"""Pure matching of events and finished runs to workflow triggers."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrion.spec.model import ParamSpec, ParamType, TriggerSpec, WorkflowSpec
from orchestrion.spec.structs import Invalid as ValidationError
from orchestrion.states import RunState
from orchestrion.store.records import RunRecord
from orchestrion.triggers.events import match_event, match_run, type_matches
from tests.helpers import py


def flow(name: str, *triggers: dict[str, Any], **params: ParamSpec) -> WorkflowSpec:
    return WorkflowSpec(
        name=name,
        tasks=(py("a"),),
        params=params,
        triggers=tuple(TriggerSpec.model_validate(t) for t in triggers),
    )


def finished(workflow: str, state: RunState, result: Any = None) -> RunRecord:
    return RunRecord(
        id="r1",
        workflow=workflow,
        version="v",
        state=state,
        params={"day": "2026-01-01"},
        priority=0,
        trigger="manual",
        idempotency_key=None,
        parent_task_run_id=None,
        created_at=1.0,
        started_at=1.0,
        finished_at=2.0,
        deadline=None,
        result=result,
        error=None,
    )


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("orders.created", "orders.created", True),
        ("orders.created", "orders.created.v2", False),
        ("orders.*", "orders.created", True),
        ("orders.*", "orders", False),
        ("*", "anything.at:all", True),
        ("orders.c*d", "orders.canceled", True),
        ("a.b", "aXb", False),  # '.' is literal
    ],
)
def test_type_patterns(pattern: str, event_type: str, expected: bool) -> None:
    assert type_matches(pattern, event_type) is expected


def test_filter_and_param_mapping() -> None:
    big = flow(
        "big",
        {
            "event": "orders.created",
            "filter": "event.payload.total > 100",
            "params": {"order": "{{ event.payload.id }}", "note": "order {{ event.payload.id }}"},
        },
        order=ParamSpec(type=ParamType.INTEGER, required=True),
        note=ParamSpec(),
    )
    every = flow("every", {"event": "orders.*"})
    other = flow("other", {"event": "users.created"})
    matches = match_event(
        [big, every, other], "orders.created", "e1", {"id": 7, "total": 250}, source="api"
    )
    assert [(r.spec.name, r.params) for r in matches.runs] == [
        ("big", {"order": 7, "note": "order 7"}),
        ("every", {}),
    ]
    assert matches.runs[0].idempotency_key == "event:api:e1:big"
    small = match_event([big, every], "orders.created", "e2", {"id": 8, "total": 5}, source="api")
    assert [r.spec.name for r in small.runs] == ["every"]


def test_bad_params_or_failing_filter_start_nothing_and_say_why() -> None:
    typed = flow(
        "typed",
        {"event": "x", "params": {"n": "{{ event.payload.n }}"}},
        n=ParamSpec(type=ParamType.INTEGER),
    )
    failing = flow("failing", {"event": "x", "filter": "event.payload.missing.deep == 1"})
    fine = flow("fine", {"event": "x"})
    matches = match_event([typed, failing, fine], "x", "e", {"n": "three"}, source="api")
    assert [r.spec.name for r in matches.runs] == ["fine"]
    assert len(matches.errors) == 2
    assert matches.errors[0].startswith("typed: parameter 'n' must be integer")
    assert matches.errors[1].startswith("failing: ")


def test_one_run_per_workflow_and_paused_workflows_are_passed_over() -> None:
    twice = flow("twice", {"event": "x", "filter": "false"}, {"event": "x"}, {"event": "*"})
    assert [r.spec.name for r in match_event([twice], "x", "e", {}, source="s").runs] == ["twice"]
    assert match_event([twice], "x", "e", {}, source="s", paused={"twice"}).runs == ()


@pytest.mark.parametrize(
    ("outcome", "state", "fires"),
    [
        ("succeeded", RunState.SUCCEEDED, True),
        ("succeeded", RunState.FAILED, False),
        ("failed", RunState.FAILED, True),
        ("failed", RunState.CANCELED, False),
        ("any", RunState.CANCELED, True),
        ("any", RunState.RUNNING, False),  # not finished
    ],
)
def test_run_triggers_match_outcomes(outcome: str, state: RunState, fires: bool) -> None:
    b = flow("B", {"after": {"workflow": "A", "outcome": outcome}})
    matches = match_run([b], finished("A", state), 42)
    assert bool(matches.runs) is fires
    if fires:
        assert matches.runs[0].idempotency_key == "run:r1@42:B"


def test_run_trigger_scope_sees_the_run() -> None:
    b = flow(
        "B",
        {
            "after": {"workflow": "A"},
            "filter": "run.result.load.rows > 0",
            "params": {"day": "{{ run.params.day }}", "source": "{{ event.type }}"},
        },
        day=ParamSpec(type=ParamType.DATE),
        source=ParamSpec(),
    )
    ok = match_run([b], finished("A", RunState.SUCCEEDED, {"load": {"rows": 3}}), 1)
    assert ok.runs[0].params == {"day": "2026-01-01", "source": "run.succeeded"}
    empty = match_run([b], finished("A", RunState.SUCCEEDED, {"load": {"rows": 0}}), 2)
    assert empty.runs == ()
    assert match_run([b], finished("C", RunState.SUCCEEDED, {}), 3).runs == ()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of 'event', 'after', 'broker' or 'assets'"),
        ({"event": "x", "after": {"workflow": "A"}}, "exactly one of 'event', 'after', 'broker'"),
        ({"event": "bad type!"}, "does not match the pattern"),
        ({"event": "x", "filter": "run.id == 1"}, "unknown name 'run' \\(use event\\)"),
        ({"event": "x", "filter": "event.payload["}, "bad expression"),
        ({"after": {"workflow": "A", "outcome": "done"}}, "'succeeded', 'failed', 'any'"),
        ({"event": "x", "params": {"p": "{{ tasks.a }}"}}, "unknown name"),
    ],
)
def test_bad_triggers_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TriggerSpec.model_validate(fields)


def test_workflow_level_trigger_rules() -> None:
    with pytest.raises(ValidationError, match="unknown parameter 'nope'"):
        flow("w", {"event": "x", "params": {"nope": 1}})
    with pytest.raises(ValidationError, match="required parameter 'day' is not set"):
        flow("w", {"event": "x"}, day=ParamSpec(required=True))
    with pytest.raises(ValidationError, match="cannot be triggered by its own runs"):
        flow("w", {"after": {"workflow": "w"}})


def test_python_workflows_declare_triggers_and_interval_schedules() -> None:
    from orchestrion.errors import SpecError
    from orchestrion.spec.python import task, workflow

    @task
    def step() -> None: ...

    @workflow(
        schedules=[{"every": "15m", "overlap": "skip"}],
        triggers=[{"event": "orders.*", "params": {"order": "{{ event.payload.id }}"}}],
    )
    def shipping(order: int = 0) -> None:
        step()

    assert shipping.spec.schedules[0].every == 900.0
    assert shipping.spec.triggers[0].event == "orders.*"

    with pytest.raises(SpecError, match=r"bad trigger .* unknown name 'tasks'"):

        @workflow(triggers=[{"event": "x", "filter": "tasks.a"}])
        def broken() -> None:
            step()

"""YAML authoring of schedules (intervals, policies) and triggers (events, finished runs)."""

from __future__ import annotations

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.yaml.loader import load_yaml_text

HEAD = """\
name: etl
params:
  day: date
  order: {type: integer}
"""
TASKS = """\
tasks:
  a:
    python: m:f
"""


def test_schedules_with_every_policies_and_templated_params() -> None:
    spec = load_yaml_text(
        HEAD
        + """\
schedules:
  - cron: "0 3 * * *"
    name: nightly
    timezone: Europe/Paris
    params: {day: "{{ fire.date }}"}
    catchup: all
    max_catchup: 7
    overlap: skip
    jitter: 5m
    start: 2026-01-01
    end: "2027-01-01T00:00"
  - every: 15m
    params: {day: "2026-01-01"}
"""
        + TASKS
    )
    nightly, frequent = spec.schedules
    assert (nightly.catchup, nightly.max_catchup, nightly.overlap, nightly.jitter) == (
        "all",
        7,
        "skip",
        300.0,
    )
    assert nightly.key("etl") == "etl/nightly"
    assert nightly.start == "2026-01-01" and nightly.end == "2027-01-01T00:00"
    assert frequent.every == 900.0 and frequent.cron is None


def test_triggers_on_events_and_finished_runs() -> None:
    spec = load_yaml_text(
        HEAD
        + """\
triggers:
  - event: orders.created
    filter: event.payload.total > 100
    params: {day: "2026-01-01", order: "{{ event.payload.id }}"}
  - after: load
    params: {day: "{{ run.params.day }}"}
  - after: {workflow: extract, outcome: failed}
    params: {day: "2026-01-01"}
"""
        + TASKS
    )
    event, run, failed = spec.triggers
    assert event.event == "orders.created" and event.params["order"] == "{{ event.payload.id }}"
    assert run.after is not None and (run.after.workflow, run.after.outcome) == (
        "load",
        "succeeded",
    )
    assert failed.after is not None and failed.after.outcome == "failed"


@pytest.mark.parametrize(
    ("block", "message", "line"),
    [
        (
            "schedules:\n  - cron: '0 * * * *'\n    every: 5m\n",
            "exactly one of 'cron' or 'every'",
            6,
        ),
        ("schedules:\n  - every: 5m\n    catchup: sometimes\n", "expected one of 'none'", 7),
        ("schedules:\n  - every: 5m\n    overlp: skip\n", "did you mean 'overlap'", 7),
        ("schedules:\n  - every: 5m\n    start: soon\n", "bad datetime 'soon'", 6),
        ("triggers: {event: x}\n", "'triggers' must be a list", 5),
        ("triggers:\n  - event: x\n    filtre: 'true'\n", "did you mean 'filter'", 7),
        (
            "triggers:\n  - event: x\n    params: {day: '2026-01-01', nope: 1}\n",
            "unknown parameter 'nope'",
            7,
        ),
        (
            "triggers:\n  - event: x\n    filter: params.day\n    params: {day: '2026-01-01'}\n",
            "unknown name 'params' (use event)",
            6,
        ),
        (
            "triggers:\n  - after: {workflow: a, when: done}\n    params: {day: '2026-01-01'}\n",
            "unknown field 'when' in 'after'",
            6,
        ),
        (
            "triggers:\n  - after: etl\n    params: {day: '2026-01-01'}\n",
            "cannot be triggered by its own runs",
            1,
        ),
        (
            "schedules:\n  - every: 1h\n    params: {day: '{{ fire.nope.x }}'}\n"
            "  - every: 1h\n    params: {day: '{{ fire.nope.x }}'}\n",
            "schedules[1] repeats schedules[0]",
            1,
        ),
    ],
)
def test_bad_schedules_and_triggers_name_the_line(block: str, message: str, line: int) -> None:
    with pytest.raises(SpecError) as info:
        load_yaml_text(HEAD + block + TASKS, source="t.yaml")
    assert message in str(info.value)
    assert info.value.line == line, str(info.value)


def test_a_trigger_must_set_every_required_parameter() -> None:
    text = "name: w\nparams:\n  day: {type: date, required: true}\ntriggers:\n  - event: x\n"
    with pytest.raises(
        SpecError, match="the trigger does not set required parameter 'day'"
    ) as info:
        load_yaml_text(text + TASKS)
    assert info.value.line == 5

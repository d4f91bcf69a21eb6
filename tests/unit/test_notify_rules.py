"""The pure parts of notifications: rule matching, SLA lateness, message text, back-off,
and the SLA in both authoring forms."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from orchestrion import task, workflow
from orchestrion.errors import SpecError
from orchestrion.spec.loading import load_workflows
from orchestrion.spec.model import WorkflowSpec
from orchestrion.states import RunState
from orchestrion.store.notification_records import NotableEvent, RuleRecord
from orchestrion.store.records import RunRecord
from orchestrion.triggers.notifications import retry_delay
from orchestrion.triggers.notify_rules import (
    Fact,
    drafts,
    fact_of_event,
    late_fact,
    late_fact_of_end,
    matches,
    message,
    nominal_start,
)


def _spec(**extra: Any) -> WorkflowSpec:
    return WorkflowSpec.model_validate(
        {"name": "etl-orders", "namespace": "shop", "tags": ["nightly", "pii"],
         "tasks": [{"name": "t", "action": {"kind": "shell", "argv": ["true"]}}], **extra}
    )  # fmt: skip


def _run(**extra: Any) -> RunRecord:
    fields: dict[str, Any] = {
        "id": "r1", "workflow": "etl-orders", "version": "v", "state": RunState.RUNNING,
        "params": {}, "priority": 0, "trigger": "manual", "idempotency_key": None,
        "parent_task_run_id": None, "created_at": 1000.0, "started_at": 1010.0,
        "finished_at": None, "deadline": None, "result": None, "error": None,
    }  # fmt: skip
    fields.update(extra)
    return RunRecord(**fields)


def _rule(**extra: Any) -> RuleRecord:
    return RuleRecord(
        **{"namespace": "shop", "name": "r", "channel": "c", "events": ("run.failed",), **extra}
    )


def _fact(**extra: Any) -> Fact:
    fields: dict[str, Any] = {
        "event": "run.failed", "subject": "e1", "workflow": "etl-orders", "namespace": "shop",
        "tags": ("nightly", "pii"), "run_id": "r1", "at": 0.0, "error": "boom",
    }  # fmt: skip
    fields.update(extra)
    return Fact(**fields)


def test_rules_match_by_event_namespace_glob_and_every_tag() -> None:
    assert matches(_rule(), _fact())
    assert matches(_rule(workflows="etl-*", tags=("nightly",)), _fact())
    assert not matches(_rule(workflows="ml-*"), _fact())
    assert not matches(_rule(tags=("nightly", "gpu")), _fact())
    assert not matches(_rule(namespace="other"), _fact())
    assert not matches(_rule(events=("run.succeeded",)), _fact())
    down = _fact(event="worker.down", workflow="", namespace="", tags=())
    assert matches(_rule(namespace="other", events=("worker.down",), workflows="x"), down)


def test_nominal_start_is_the_fire_time_or_the_creation() -> None:
    assert nominal_start("schedule:etl-orders/daily@2026-01-02T03:00:00Z", 1.0) == 1767322800.0
    assert nominal_start("schedule:weird@not-a-time", 1000.0) == 1000.0
    assert nominal_start("manual", 1000.0) == 1000.0


def test_late_by_deadline_or_expected_duration_once_past() -> None:
    spec = _spec(sla={"deadline": "60s", "expected_duration": "5m"})
    assert late_fact(_run(), spec, now=1059.0) is None
    late = late_fact(_run(), spec, now=1061.0)
    assert late is not None and late.subject == "r1" and late.event == "run.late"
    assert late.detail == "not finished 1m after its nominal start"
    both = late_fact(_run(), spec, now=1400.0)
    assert both is not None and "running longer than the expected 5m" in (both.detail or "")
    # A run that finished in time is not late, however late it is looked at.
    assert late_fact(_run(finished_at=1050.0), spec, now=9999.0) is None
    assert late_fact(_run(), _spec(), now=9999.0) is None


def test_a_run_that_ended_late_is_late_from_its_end_event() -> None:
    spec = _spec(sla={"deadline": "60s"})
    end = NotableEvent(id=9, kind="run.succeeded", at=1070.0, workflow="etl-orders",
                       run_id="r1", trigger="manual", created_at=1000.0,
                       started_at=1001.0)  # fmt: skip
    late = late_fact_of_end(end, spec)
    assert late is not None and (late.subject, late.at) == ("r1", 1070.0)
    on_time = NotableEvent(id=9, kind="run.failed", at=1050.0, workflow="etl-orders",
                           run_id="r1", trigger="manual", created_at=1000.0)  # fmt: skip
    assert late_fact_of_end(on_time, spec) is None


def test_message_templates_are_sandboxed_and_a_failing_one_still_sends() -> None:
    assert message(_rule(), _fact()) == "[orchestrion] run.failed: etl-orders run r1: boom"
    text = message(_rule(template="{{ workflow }} ({{ tags[0] }}) {{ event }}"), _fact())
    assert text == "etl-orders (nightly) run.failed"
    broken = message(_rule(template="{{ tags[9] }}"), _fact())
    assert broken.startswith("[orchestrion] run.failed: etl-orders") and "failed" in broken


def test_drafts_carry_a_dedupe_key_per_rule_event_and_subject() -> None:
    event = NotableEvent(id=7, kind="run.failed", at=5.0, workflow="etl-orders", run_id="r1")
    fact = fact_of_event(event, _spec())
    [draft] = drafts([_rule(), _rule(name="other", events=("run.late",))], fact)
    assert draft[0] == "shop/r|run.failed|e7" and draft[6] == "r1"


def test_back_off_doubles_up_to_a_ceiling() -> None:
    assert [retry_delay(n, 10.0, 60.0) for n in (1, 2, 3, 4, 5)] == [10, 20, 40, 60, 60]


def test_sla_in_yaml_and_python(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        textwrap.dedent("""\
        name: y
        sla: {deadline: 30m, expected_duration: 10m}
        tasks:
          a: {shell: [echo]}
        """)
    )
    [loaded] = load_workflows(path)
    assert loaded.spec.sla is not None
    assert (loaded.spec.sla.deadline, loaded.spec.sla.expected_duration) == (1800.0, 600.0)
    path.write_text("name: y\nsla: {}\ntasks:\n  a: {shell: [echo]}\n")
    with pytest.raises(SpecError, match="needs a deadline"):
        load_workflows(path)

    @task
    def a() -> int:
        return 1

    @workflow(sla={"deadline": "1h"})
    def timed() -> None:
        a()

    @workflow
    def untimed() -> None:
        a()

    assert timed.spec.sla is not None and timed.spec.sla.deadline == 3600.0
    # A workflow without an SLA keeps the version it had before SLAs existed.
    assert '"sla"' not in untimed.spec.to_json()

"""Admission policies' pure core: parsing (bad documents name the field), evaluation of
the documented examples, time in the policy's zone, and the approval gate's spec."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from orchestrion.errors import PolicyDenied, PolicyError
from orchestrion.spec.loading import spec_from_data
from orchestrion.spec.model import WorkflowSpec
from orchestrion.spec.policies import (
    Decision,
    PolicyRequest,
    evaluate,
    load_policies,
    parse_policy,
    parse_policy_text,
)
from orchestrion.spec.policies.gate import GATE_TASK, gated_spec

pytestmark = pytest.mark.sqlite_only(reason="pure functions: no database")

RETRIES = """\
policy: prod-needs-retries
description: every task in prod retries and has a timeout
applies_to: {namespaces: [prod], on: [deploy, trigger]}
rules:
  - name: retries
    for_each: tasks
    require: "task.retries >= 1"
    message: "must be >= 1"
    field: "tasks.{task.name}.retries"
  - name: timeout
    for_each: tasks
    require: "task.timeout != null"
    message: "needs a timeout"
    field: "tasks.{task.name}.timeout"
"""

NO_SHELL = """\
policy: finance-no-shell
applies_to: {namespaces: [finance]}
rules:
  - name: no-shell
    for_each: tasks
    require: "task.kind != 'shell'"
    message: "shell tasks are not allowed in finance"
    field: "tasks.{task.name}"
"""

MAP_WIDTH = """\
policy: map-width
applies_to: {on: [deploy, trigger, task]}
rules:
  - name: width
    for_each: tasks
    when: "task.map_width != null"
    require: "task.map_width <= 10000"
    message: "maps over at most 10,000 items"
    field: "tasks.{task.name}.map"
"""

WINDOW = """\
policy: prod-change-window
timezone: Europe/Berlin
applies_to: {namespaces: ["prod*"], on: [trigger]}
rules:
  - name: office-hours
    require: "now.weekday <= 5 and now.time >= '08:00' and now.time < '18:00'"
    effect: require_approval
    approvers: admin
    message: "runs outside 08:00-18:00 Europe/Berlin need an admin's approval"
"""

IMAGES = """\
policy: trusted-images
rules:
  - name: registry
    for_each: tasks
    when: "task.kind == 'container'"
    require: "startswith(task.image, 'registry.example.com/')"
    effect: warn
    message: "images come from registry.example.com"
    field: "tasks.{task.name}.image"
"""

#: A Thursday, 12:00 UTC (13:00 in Berlin), and the same day at 20:00 UTC (21:00).
NOON = datetime(2026, 12, 3, 12, 0, tzinfo=UTC).timestamp()
EVENING = datetime(2026, 12, 3, 20, 0, tzinfo=UTC).timestamp()


def _spec(namespace: str, **task: Any) -> WorkflowSpec:
    body = {"name": "load", "action": {"kind": "shell", "argv": ["true"]}, **task}
    data = {"name": "etl", "namespace": namespace, "tasks": [body]}
    return spec_from_data(data, source="test")


def _check(
    text: str, spec: WorkflowSpec, *, on: str = "deploy", now: float = NOON, **request: Any
) -> Decision:
    policies = parse_policy_text(text)
    req = PolicyRequest(on=on, namespace=spec.namespace, **request)  # type: ignore[arg-type]
    return evaluate(policies, spec, req, principal=None, now=now)


def test_prod_tasks_need_retries_and_a_timeout() -> None:
    decision = _check(RETRIES, _spec("prod"))
    assert decision.denied
    assert [str(f) for f in decision.findings] == [
        "policy prod-needs-retries denied: tasks.load.retries must be >= 1 [rule retries]",
        "policy prod-needs-retries denied: tasks.load.timeout needs a timeout [rule timeout]",
    ]
    good = _spec("prod", retry={"retries": 2}, timeout=60)
    assert _check(RETRIES, good).findings == []
    assert _check(RETRIES, _spec("dev")).findings == []  # applies to prod only


def test_no_shell_tasks_in_finance() -> None:
    (finding,) = _check(NO_SHELL, _spec("finance")).findings
    assert (finding.policy, finding.rule, finding.effect, finding.field) == (
        "finance-no-shell", "no-shell", "deny", "tasks.load",
    )  # fmt: skip
    http = {"action": {"kind": "http", "url": "https://example.com/"}}
    assert _check(NO_SHELL, _spec("finance", **http)).findings == []


def test_map_width_known_at_deploy_or_from_the_trigger_params() -> None:
    # A literal list is judged at deploy (a small limit: expressions are size-capped).
    small = MAP_WIDTH.replace("<= 10000", "<= 3")
    assert _check(small, _spec("dev", map_over="[1, 2, 3, 4]")).denied
    assert not _check(small, _spec("dev", map_over="[1, 2, 3]")).denied
    data = {
        "name": "fan",
        "params": {"items": {"type": "array"}},
        "tasks": [
            {
                "name": "each",
                "action": {"kind": "shell", "argv": ["true"]},
                "map_over": "params.items",
            }
        ],
    }
    spec = spec_from_data(data, source="test")
    assert _check(MAP_WIDTH, spec).findings == []
    params = {"items": list(range(10_001))}
    assert _check(MAP_WIDTH, spec, on="trigger", params=params).denied
    assert not _check(MAP_WIDTH, spec, on="trigger", params={"items": [1, 2]}).denied
    # At the task's admission the real width is known, whatever the map reads.
    upstream = _spec("dev", map_over="[1]")
    (finding,) = _check(MAP_WIDTH, upstream, on="task", task="load", map_width=10_001).findings
    assert finding.field == "tasks.load.map" and finding.effect == "deny"
    assert not _check(MAP_WIDTH, upstream, on="task", task="load", map_width=3).findings


def test_change_window_in_the_policys_time_zone() -> None:
    spec = _spec("prod-eu")
    assert _check(WINDOW, spec, on="trigger", now=NOON).findings == []
    (finding,) = _check(WINDOW, spec, on="trigger", now=EVENING).findings
    assert (finding.effect, finding.approvers) == ("require_approval", "admin")
    assert _check(WINDOW, spec, on="deploy", now=EVENING).findings == []  # triggers only
    saturday = datetime(2026, 12, 5, 10, 0, tzinfo=UTC).timestamp()
    assert _check(WINDOW, spec, on="trigger", now=saturday).approvals


def test_container_images_from_one_registry_warn() -> None:
    other = {"action": {"kind": "container", "image": "docker.io/library/alpine:3"}}
    decision = _check(IMAGES, _spec("dev", **other))
    assert not decision.denied
    assert [f.field for f in decision.warnings] == ["tasks.load.image"]
    ours = {"action": {"kind": "container", "image": "registry.example.com/etl:1"}}
    assert _check(IMAGES, _spec("dev", **ours)).findings == []
    assert _check(IMAGES, _spec("dev")).findings == []  # not a container


def test_a_rule_that_cannot_be_checked_does_not_pass() -> None:
    text = RETRIES.replace("task.retries >= 1", "task.nope >= 1")
    finding = _check(text, _spec("prod", timeout=5)).findings[0]
    assert finding.effect == "deny" and "could not be checked" in finding.message


def test_principal_and_request_are_in_scope() -> None:
    policy = parse_policy(
        {
            "policy": "who",
            "rules": [
                {
                    "name": "only-api",
                    "require": "request.trigger == 'api' and principal.name == 'ana'",
                    "message": "{request.trigger} by {principal.name}",
                }
            ],
        }
    )
    spec = _spec("dev")
    req = PolicyRequest(on="trigger", namespace="dev", trigger="ui")
    who = {"name": "bob", "kind": "user", "roles": {"dev": "operator"}}
    (finding,) = evaluate([policy], spec, req, principal=who, now=NOON).findings
    assert finding.message == "ui by bob"


@pytest.mark.parametrize(
    ("document", "field", "says"),
    [
        ({"rules": []}, "policy", "needs a name"),
        ({"policy": "p", "rules": []}, "rules", "at least one rule"),
        ({"policy": "p", "rules": [{"name": "r", "require": "1", "effect": "ban"}]},
         "rules[0].effect", "unknown effect 'ban'"),
        ({"policy": "p", "rules": [{"name": "r", "require": "task.("}]},
         "rules[0].require", "does not compile"),
        ({"policy": "p", "rules": [{"name": "r", "require": "__import__('os')"}]},
         "rules[0].require", "does not compile"),
        ({"policy": "p", "rules": [{"name": "r"}]}, "rules[0].require", "needs `require`"),
        ({"policy": "p", "colour": 1, "rules": [{"name": "r", "require": "1"}]},
         "colour", "unknown field"),
        ({"policy": "p", "timezone": "Mars/Olympus", "rules": [{"name": "r", "require": "1"}]},
         "timezone", "unknown time zone"),
        ({"policy": "p", "rules": [{"name": "r", "require": "1", "effect": "require_approval"}]},
         "rules[0].effect", "on [trigger] only"),
        ({"policy": "p", "applies_to": {"on": ["x"]}, "rules": [{"name": "r", "require": "1"}]},
         "applies_to.on", "unknown moment"),
    ],
)  # fmt: skip
def test_bad_documents_name_the_field(document: dict[str, Any], field: str, says: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document)
    assert caught.value.path == field
    assert says in str(caught.value)


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"^policy:3:1: YAML syntax error"):
        parse_policy_text("policy: p\nrules: {")
    (tmp_path / "a.yaml").write_text(RETRIES)
    (tmp_path / "b.yml").write_text(NO_SHELL + "---\n")
    with pytest.raises(Exception, match=r"b\.yml"):
        load_policies(tmp_path)
    (tmp_path / "b.yml").write_text(NO_SHELL)
    assert [p.name for p in load_policies(tmp_path)] == ["prod-needs-retries", "finance-no-shell"]


def test_the_gate_holds_every_root_and_keeps_the_rest() -> None:
    data: dict[str, Any] = {
        "name": "etl",
        "namespace": "prod",
        "tasks": [
            {"name": "a", "action": {"kind": "shell", "argv": ["true"]}},
            {"name": "b", "action": {"kind": "shell", "argv": ["true"]}, "depends_on": ["a"]},
        ],
    }
    spec = spec_from_data(data, source="test")
    (finding,) = _check(WINDOW, spec, on="trigger", now=EVENING).findings
    gated = gated_spec(spec, [finding])
    assert [t.name for t in gated.tasks] == [GATE_TASK, "a", "b"]
    assert gated.task("a").depends_on == (GATE_TASK,)
    assert gated.task("b").depends_on == ("a",)
    assert gated.task(GATE_TASK).action.role == "admin"  # type: ignore[union-attr]
    assert gated.version != spec.version
    data["tasks"][0]["name"] = GATE_TASK
    data["tasks"][1]["depends_on"] = [GATE_TASK]
    with pytest.raises(PolicyDenied, match="rename the task"):
        gated_spec(spec_from_data(data, source="test"), [finding])

"""Approval and wait steps as authored: YAML and Python give the same spec, and what
cannot work is refused at load time, naming the problem."""

from __future__ import annotations

import pytest

from orchestrion.errors import SpecError
from orchestrion.spec.python import approval, shell, wait_for, workflow
from orchestrion.spec.waits import ApprovalAction, WaitAction
from orchestrion.spec.yaml.loader import load_yaml_text

YAML = """\
name: release
tasks:
  build:
    shell: [make]
  sign_off:
    depends_on: [build]
    approval: {approvers: {role: editor}, message: Ship?, timeout: 24h, on_timeout: approve}
  deployed:
    depends_on: [sign_off]
    wait_for: {signal: deployed, timeout: 2h}
  landed:
    wait_for: {event: ship.landed, filter: "event.data.ok"}
  up:
    wait_for: {http: "https://status.example.com/", every: 10s}
  stocked:
    wait_for:
      sql: {connection: shop, query: "SELECT n > 0 FROM stock WHERE sku = :sku",
            params: {sku: "{{ params.sku }}"}, timeout: 5s}
      every: 1m
"""


def test_yaml_and_python_give_the_same_steps() -> None:
    from_yaml = load_yaml_text(YAML, source="release.yaml")

    @workflow
    def release() -> None:
        build = shell("build", ["make"])
        ok = approval(
            "sign_off", role="editor", message="Ship?", timeout="24h", on_timeout="approve",
            after=[build],
        )  # fmt: skip
        wait_for("deployed", signal="deployed", timeout="2h", after=[ok])
        wait_for("landed", event="ship.landed", filter="event.data.ok")
        wait_for("up", http="https://status.example.com/", every="10s")
        wait_for(
            "stocked",
            sql={"connection": "shop", "query": "SELECT n > 0 FROM stock WHERE sku = :sku",
                 "params": {"sku": "{{ params.sku }}"}, "timeout": "5s"},
            every="1m",
        )  # fmt: skip

    for name in ("sign_off", "deployed", "landed", "up", "stocked"):
        assert release.spec.task(name).action == from_yaml.task(name).action, name
        assert release.spec.task(name).depends_on == from_yaml.task(name).depends_on, name
    sign_off = from_yaml.task("sign_off").action
    assert isinstance(sign_off, ApprovalAction)
    assert (sign_off.role, sign_off.timeout, sign_off.on_timeout) == ("editor", 86400.0, "approve")
    up = from_yaml.task("up").action
    assert isinstance(up, WaitAction) and up.polled and up.every == 10.0
    assert from_yaml.task("deployed").action.waits_for == "signal"  # type: ignore[union-attr]
    stocked = from_yaml.task("stocked").action
    assert isinstance(stocked, WaitAction) and stocked.polled and stocked.sql is not None
    assert (stocked.sql.timeout, stocked.every) == (5.0, 60.0)


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("wait_for: {signal: a, file: /x}", "exactly one of signal, event, file, http, sql"),
        ("wait_for: {sql: {connection: db}}", "the sql sensor needs 'query'"),
        ("wait_for: {sql: {connection: db, query: [SELECT 1]}}", "'query' must be a non-empty"),
        ("wait_for: {sql: {query: SELECT 1}}", "the sql sensor needs 'connection'"),
        ("wait_for: {sql: {connection: db, query: SELECT 1, rows: 2}}", "rows"),
        (
            "wait_for: {sql: {connection: db, query: 'SELECT :x', params: {x: '{{ tasks.a }}'}}}",
            "read only 'params', not tasks.a",
        ),
        ("wait_for: {every: 1s}", "exactly one of"),
        ("wait_for: {signal: a, filter: 'event.data'}", "'filter' applies to an 'event'"),
        ("wait_for: {event: e, filter: 'params.x'}", "a filter reads only 'event'"),
        ("approval: {approvers: {role: boss}}", "role"),
        ("approval: {}\n    map: '[1, 2]'", "cannot be mapped"),
        ("approval: {}\n    concurrency: 2", "no concurrency limit"),
        ("shell: [x]\n    undo: {approval: {}}", "an undo step cannot be an approval"),
        ("approval: {timeout: 0}", "timeout"),
    ],
)
def test_what_cannot_wait_is_refused_by_name(body: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem):
        load_yaml_text(f"name: g\ntasks:\n  a:\n    {body}\n", source="g.yaml")

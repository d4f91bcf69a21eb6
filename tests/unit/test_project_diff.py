"""The pure part of declarative projects: reading a declaration and diffing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrion.app.projects.diff import Change, diff
from orchestrion.errors import SpecError
from orchestrion.spec.project import parse_project, project_from_data

pytestmark = pytest.mark.sqlite_only(reason="pure logic: no database")


def test_diff_creates_updates_and_leaves_unmanaged_alone() -> None:
    desired = {"a": {"limit": 2}, "b": {"limit": 3}}
    current = {"b": {"limit": 1}, "c": {"limit": 9}}
    changes, unmanaged = diff("queue", desired, current, prune=False)
    assert [(c.action, c.key) for c in changes] == [("create", "a"), ("update", "b")]
    assert changes[1].fields() == ["limit"]
    assert changes[1].line() == "~ queue b (limit: 1 -> 3)"
    assert changes[0].line() == "+ queue a (limit: 2)"
    assert unmanaged == [("queue", "c")]


def test_diff_prunes_and_is_empty_when_equal() -> None:
    changes, unmanaged = diff(
        "role", {"ann": "editor"}, {"ann": "editor", "bob": "viewer"}, prune=True
    )
    assert changes == [Change("role", "bob", "delete", "viewer", None)]
    assert unmanaged == []
    assert diff("role", {"ann": "editor"}, {"ann": "editor"}, prune=False) == ([], [])


def test_declaration_round_trips_through_the_wire_form() -> None:
    spec = parse_project(
        b"""
project: analytics
namespace: prod
workflows: [flows/]
schedules: {etl: paused}
queues: {default: {limit: 4}}
connections: {warehouse: {type: postgres, url: "postgresql://db/wh", secret: wh_password}}
channels: {ops: {kind: webhook, url: "https://hooks.example/x"}}
notifications: [{name: failures, on: [run.failed], channel: ops}]
roles: {alice: editor}
"""
    )
    assert spec.queues == {"default": 4}
    assert spec.connections["warehouse"]["kind"] == "postgres"
    assert project_from_data(spec.to_data()) == spec


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"project": "p"}, "'namespace' is required"),
        ({"project": "p", "namespace": "n", "extra": 1}, "unknown key 'extra'"),
        ({"project": "p", "namespace": "n", "workflows": ["../x"]}, "not inside the project"),
        ({"project": "p", "namespace": "n", "schedules": {"a": "off"}}, "'active' or 'paused'"),
        (
            {
                "project": "p",
                "namespace": "n",
                "connections": {"c": {"kind": "redis", "url": "redis://h", "password": "hunter2"}},
            },
            "name a secret",
        ),
        ({"project": "p", "namespace": "n", "roles": {"ann": "god"}}, "a role is one of"),
        (
            {
                "project": "p",
                "namespace": "n",
                "notifications": [{"name": "r", "on": ["run.failed"], "channel": "c", "tags": 5}],
            },
            "tags is a list",
        ),
        (
            {
                "project": "p",
                "namespace": "n",
                "notifications": [
                    {"name": "r", "on": ["run.failed"], "channel": "c", "workflows": ["a"]}
                ],
            },
            "expected text, got list",
        ),
    ],
)
def test_bad_declarations_are_named(data: dict[str, object], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        project_from_data(data)


def test_a_project_declared_in_python(tmp_path: Path) -> None:
    from orchestrion.project import project_from_dict

    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.yaml").write_text("name: a\ntasks:\n  t: {shell: [echo]}\n")
    loaded = project_from_dict(
        {"project": "p", "namespace": "team", "workflows": ["flows"]}, base=tmp_path
    )
    assert [(w.spec.name, w.spec.namespace) for w in loaded.workflows] == [("a", "team")]
    (tmp_path / "flows" / "b.yaml").write_text(
        "name: b\nnamespace: other\ntasks:\n  t: {shell: [echo]}\n"
    )
    with pytest.raises(SpecError, match="not the project's 'team'"):
        project_from_dict(
            {"project": "p", "namespace": "team", "workflows": ["flows"]}, base=tmp_path
        )

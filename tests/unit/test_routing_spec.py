"""Task requirements (``requires``) in YAML, in Python, and worker labels on the CLI."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from orchestrion.cli.main import main
from orchestrion.errors import SpecError
from orchestrion.spec.python import task, workflow
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.store.sql.routing import requirement_key, route_filter


def test_yaml_requires() -> None:
    spec = load_yaml_text(
        "name: g\ntasks:\n  a:\n    shell: [echo]\n    requires: {gpu: a100, zone: eu}\n"
    )
    assert spec.tasks[0].requires == {"gpu": "a100", "zone": "eu"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("requires: {gpu: 3}", "tasks.a.requires.gpu: expected a string"),
        ("requires: [gpu]", "tasks.a.requires"),
        ("requires: {'bad key': x}", "tasks.a.requires"),
    ],
    ids=["number", "list", "bad-key"],
)
def test_yaml_requires_errors(body: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_yaml_text(f"name: g\ntasks:\n  a:\n    shell: [echo]\n    {body}\n")


def test_python_requires() -> None:
    @task(requires={"gpu": "a100"})
    def a() -> int:
        return 1

    @workflow
    def routed() -> None:
        a()

    assert routed.spec.tasks[0].requires == {"gpu": "a100"}


def test_requirement_key_is_canonical() -> None:
    assert requirement_key({}) is None
    assert requirement_key({"zone": "eu", "gpu": "a100"}) == '{"gpu":"a100","zone":"eu"}'


def test_route_filter_lists_every_subset_of_the_labels() -> None:
    assert route_filter(None) == ("", ())
    assert route_filter({}) == (" AND requires IS NULL", ())
    sql, params = route_filter({"b": "2", "a": "1"})
    assert sql == " AND (requires IS NULL OR requires IN (?,?,?))"
    assert params == ('{"a":"1"}', '{"b":"2"}', '{"a":"1","b":"2"}')


def test_worker_refuses_bad_labels() -> None:
    result = CliRunner().invoke(main, ["worker", "--label", "gpu", "--db", "sqlite:///x.db"])
    assert result.exit_code == 2
    assert "expected KEY=VALUE" in result.output

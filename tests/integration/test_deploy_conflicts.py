"""`orchestrion deploy` of several files that define the same workflow: the first file
keeps it, the second is refused by name (both files named), the rest still deploy, and
the exit code says something was refused. Locally and with ``--server``. SQLite, or
PostgreSQL with ``ORCHESTRION_TEST_DATABASE=postgres``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrion.cli.main import main
from tests.helpers import make_app, serve_api

FIRST = "name: dup\ntasks:\n  a:\n    shell: [echo, first]\n"
SECOND = "name: dup\nnamespace: prod\ntasks:\n  b:\n    shell: [echo, second]\n"
OTHER = "name: solo\ntasks:\n  a:\n    shell: [echo, solo]\n"


@pytest.fixture
def flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "a.yaml").write_text(FIRST)
    (folder / "b.yaml").write_text(SECOND)  # read after a.yaml: folders deploy in name order
    (folder / "c.yaml").write_text(OTHER)
    return folder


@pytest.mark.parametrize("where", ["local", "server"])
def test_a_name_defined_twice_is_refused_from_the_second_file(
    tmp_path: Path, flows: Path, where: str
) -> None:
    with make_app(tmp_path) as app, serve_api(app) as url:
        token, _ = app.accounts.create_token("tests", {"*": "admin"}, expires="never")
        target = ["--db", app.store.url] if where == "local" else ["--server", url]
        result = CliRunner().invoke(
            main, ["deploy", str(flows), *target], env={"ORCHESTRION_TOKEN": token}
        )
        assert result.exit_code == 2, result.output
        assert f"conflict dup is defined in both {flows / 'a.yaml'} and" in result.output
        assert str(flows / "b.yaml") in result.output
        dup = app.workflows.workflow_record("dup")
        assert dup.namespace == "default"  # a.yaml's, not replaced by b.yaml's
        assert [t.name for t in dup.spec.tasks] == ["a"]
        assert len(app.workflows.versions("dup")) == 1
        assert app.workflows.workflow_record("solo").name == "solo"  # the rest deployed


def test_the_same_file_named_twice_is_no_conflict(tmp_path: Path, flows: Path) -> None:
    with make_app(tmp_path) as app:
        again = flows / ".." / "flows" / "a.yaml"
        result = CliRunner().invoke(
            main, ["deploy", str(flows / "a.yaml"), str(again), "--db", app.store.url]
        )
        assert result.exit_code == 0, result.output
        assert "conflict" not in result.output

"""The task kind examples (issue 15) through the real command: ``examples/sql_report.yaml``
after ``orchestrion connections create`` of a SQLite database, and
``examples/plugin_greet.yaml``, whose kind comes from the example plugin package that the
test environment installs."""

from __future__ import annotations

import sqlite3

from tests.acceptance.conftest import EXAMPLES, Cli, by_task
from tests.acceptance.test_examples import run_id_of
from tests.helpers import db_arg


def _show(cli: Cli, run_id: str) -> dict[str, dict[str, object]]:
    shown = cli("runs", "show", run_id, "-o", "json")
    assert shown.code == 0, shown
    return by_task(shown.json())


def test_the_sql_example_loads_reports_and_reruns(cli: Cli) -> None:
    made = cli(
        "connections", "create", "default/reports", "--kind", "sqlite",
        "--url", "sqlite:///reports.db", "--db", db_arg(cli.db),
    )  # fmt: skip
    assert made.code == 0, made
    path = EXAMPLES / "sql_report.yaml"
    assert cli("validate", path).code == 0
    for _ in range(2):  # the second run replaces the day rather than doubling it
        res = cli("run", path, "-p", "day=2024-05-02")
        assert res.code == 0, res
        tasks = _show(cli, run_id_of(res))
        assert tasks["load"]["result"] == 2
        assert tasks["total"]["result"] == {
            "customer": "O'Brien'); DROP TABLE sales; --",
            "sales": 2,
            "total": 42.5,
        }
    with sqlite3.connect(cli.cwd / "reports.db") as conn:
        assert conn.execute("select count(*) from sales").fetchone() == (2,)


def test_the_plugin_example_runs_its_kind(cli: Cli) -> None:
    path = EXAMPLES / "plugin_greet.yaml"
    checked = cli("validate", path)
    assert checked.code == 0, checked
    res = cli("run", path, "-p", "name=Ada")
    assert res.code == 0, res
    tasks = _show(cli, run_id_of(res))
    assert tasks["hello"]["result"] == {"message": "Hello, Ada!", "attempt": 1}

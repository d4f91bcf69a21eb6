"""examples/chain_container_sql_plugin.yaml through the real command (issue 15): a container
task on Podman, whose JSON output a SQL task stores in SQLite and reads back, whose row the
`example-greet` plugin task greets. The connection is made first with ``orchestrion
connections create``, as the example's comment says; a second run adds to the same table."""

from __future__ import annotations

import sqlite3

from tests.acceptance.conftest import EXAMPLES, Cli, by_task
from tests.acceptance.test_examples import run_id_of
from tests.containers import HOST, containers_of, require_podman
from tests.helpers import db_arg


def test_the_chain_runs_container_then_sql_then_plugin(cli: Cli) -> None:
    require_podman()
    cli.env["ORCHESTRION_CONTAINER_HOST"] = HOST
    cli.env["ORCHESTRION_CONTAINER_WORK_DIR"] = str(cli.cwd / "container-work")
    made = cli(
        "connections", "create", "default/chain", "--kind", "sqlite",
        "--url", "sqlite:///chain.db", "--db", db_arg(cli.db),
    )  # fmt: skip
    assert made.code == 0, made
    path = EXAMPLES / "chain_container_sql_plugin.yaml"
    checked = cli("validate", path)
    assert checked.code == 0, checked
    for runs in (1, 2):
        res = cli("run", path, "-p", "team=ops")
        assert res.code == 0, res
        run_id = run_id_of(res)
        shown = cli("runs", "show", run_id, "-o", "json")
        assert shown.code == 0, shown
        tasks = by_task(shown.json())
        assert tasks["count"]["result"] == {"team": "ops", "members": 3}
        assert tasks["record"]["result"] == {"team": "ops", "members": 3 * runs, "counts": runs}
        assert tasks["hello"]["result"] == {
            "message": f"Hi, ops ({3 * runs} members)!",
            "attempt": 1,
        }
        assert containers_of(run_id) == []
    with sqlite3.connect(cli.cwd / "chain.db") as conn:
        assert conn.execute("select team, members from headcount").fetchall() == [
            ("ops", 3),
            ("ops", 3),
        ]

"""Every example workflow, run with the public test harness (`orchestrion.testing` and its
``orchestrion_harness`` fixture) as a user would test their own: real task bodies where
they run here, stubs where they need a network, a container engine or a database.

The examples write their work files under the current folder, so each test runs in its
own ``tmp_path``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrion.testing import Harness

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

# The fixture's store is a SQLite file, whatever ORCHESTRION_TEST_DATABASE says: the
# harness's own tests (tests/integration/test_harness.py) run it on PostgreSQL too.
pytestmark = pytest.mark.sqlite_only(reason="the orchestrion_harness fixture is SQLite's")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_etl_retries_its_flaky_source(orchestrion_harness: Harness) -> None:
    orchestrion_harness.load(EXAMPLES / "etl.py")
    result = orchestrion_harness.run("etl", {"day": "2026-01-01", "partitions": 3})
    result.assert_succeeded()
    assert [a.outcome for a in result.task("extract").attempts] == ["failed", "succeeded"]
    assert len(result.task("transform").items) == 3
    assert result.task("load").result["day"] == "2026-01-01"


def test_saga_compensates_what_was_done(orchestrion_harness: Harness) -> None:
    orchestrion_harness.load(EXAMPLES / "saga.py")
    orchestrion_harness.run("saga").assert_succeeded()
    failed = orchestrion_harness.run("saga", {"fail_at": "ship"}).assert_failed("ship")
    states = {name: t.state.value for name, t in failed.tasks.items()}
    assert states["charge_card"] == states["reserve_stock"] == "compensated"
    assert states["undo:charge_card"] == states["undo:reserve_stock"] == "succeeded"


def test_subflow_runs_its_children(orchestrion_harness: Harness) -> None:
    orchestrion_harness.load(EXAMPLES / "subflow.py")
    result = orchestrion_harness.run("nightly_report").assert_succeeded()
    assert len(orchestrion_harness.runs("region_report")) == 2
    assert result.task("combine").result is not None


@pytest.mark.parametrize("params", [{}, {"mode": "full", "rows": 5000}])
def test_branching_picks_its_branches(
    orchestrion_harness: Harness, params: dict[str, object]
) -> None:
    orchestrion_harness.load(EXAMPLES / "branching.yaml")
    result = orchestrion_harness.run("branching", params).assert_succeeded()
    ran = {name for name, t in result.tasks.items() if t.state.value == "succeeded"}
    expected = {"full_rebuild", "large_batch"} if params else {"incremental_update", "small_batch"}
    assert expected <= ran
    with pytest.raises(AssertionError, match="failed tasks"):
        orchestrion_harness.run("branching", {"fail": True}).assert_succeeded()


def test_shell_pipeline(orchestrion_harness: Harness) -> None:
    orchestrion_harness.load(EXAMPLES / "shell_pipeline.yaml")
    orchestrion_harness.run("shell_pipeline", {"lines": 200}).assert_succeeded()


def test_api_chain_with_its_http_calls_stubbed(orchestrion_harness: Harness) -> None:
    h = orchestrion_harness
    h.load(EXAMPLES / "api_chain.py")
    order = {"id": 7, "customer": 1, "sku": "P-100", "qty": 2, "total": 3998}
    h.stub("create_customer", result={"id": 1, "name": "Ada"})
    h.stub("create_order", result=order)
    h.stub("get_order", result=order)
    h.stub("pay_order", result={"order": 7, "status": "paid", "amount": 3998})
    result = h.run("api_chain").assert_succeeded()
    assert result.task("receipt").result == (
        "Ada (customer 1) bought 2 x P-100: order 7 paid, 3998 cents"
    )
    assert result.task("stop_api").result == "stopped"


def test_container_tasks_stubbed(orchestrion_harness: Harness) -> None:
    h = orchestrion_harness
    h.load(EXAMPLES / "container_task.yaml")
    h.stub("transform", result={"rows": 3})
    h.stub("report", result="3 rows")
    result = h.run("container_demo").assert_succeeded()
    assert len(h.calls("report")) == 1 and result.task("report").result == "3 rows"


def test_sql_report_with_its_database_stubbed(orchestrion_harness: Harness) -> None:
    h = orchestrion_harness
    h.load(EXAMPLES / "sql_report.yaml")
    h.stub("schema", result=None)
    h.stub("load", result={"rows": 2})
    h.stub("total", result={"sales": 2, "customer": "ada", "total": 42})
    result = h.run("sql_report").assert_succeeded()
    assert result.task("report").result == "2 sales by ada: 42"


@pytest.mark.parametrize(
    ("file", "workflow", "stubs"),
    [
        ("plugin_greet.yaml", "plugin_greet", ["hello"]),
        (
            "chain_container_sql_plugin.yaml",
            "chain_container_sql_plugin",
            ["count", "record", "hello"],
        ),
    ],
)
def test_plugin_examples_stubbed(
    orchestrion_harness: Harness, file: str, workflow: str, stubs: list[str]
) -> None:
    orchestrion_harness.load(EXAMPLES / file)
    for name in stubs:
        orchestrion_harness.stub(name, result=f"{name} done")
    result = orchestrion_harness.run(workflow).assert_succeeded()
    assert result.task(stubs[-1]).result == f"{stubs[-1]} done"

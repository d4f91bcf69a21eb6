"""Data assets end to end through one real server (API, scheduler, a worker) and Chromium.

The server loads the examples, among them ``warehouse_assets.py`` (raw -> staged -> mart
wired by asset triggers), and a chain of five assets. One run of ``raw_orders`` makes the
scheduler start ``staged_orders`` and then ``orders_mart`` for the same day; the API,
``orchestrion assets ... --server`` and the pages then show the events, the runs that made
them and the lineage. Materializing the mart with ``--upstream`` starts its three
producers; bad requests get a 4xx naming the problem.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.ui import test_ui
from tests.ui.test_ui import OUT, Server, Watched, browser  # noqa: F401  (the fixture)

CHAIN = """
name: chain
tasks:
  a: {shell: [echo, a], produces: [chain.a]}
  b: {shell: [echo, b], depends_on: [a], consumes: [chain.a], produces: [chain.b]}
  c: {shell: [echo, c], depends_on: [b], consumes: [chain.b], produces: [chain.c]}
  d: {shell: [echo, d], depends_on: [c], consumes: [chain.c], produces: [chain.d]}
  e:
    shell: [echo, e]
    depends_on: [d]
    consumes: [chain.d]
    produces: [{asset: chain.e, max_age: 1h}]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with test_ui.signed_in(
        tmp_path_factory.mktemp("ui_assets"),
        {"chain", "raw_orders", "staged_orders", "orders_mart"},
        {"chain.yaml": CHAIN},
    ) as srv:
        yield srv


def _wait(what: str, check: Any, server: Server, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{server.log.read_text()[-4000:]}")


def _history(server: Server, key: str) -> list[dict[str, Any]]:
    res = server.http.get("/api/v1/assets/default/history", params={"key": key})
    assert res.status_code == 200, res.text
    found: list[dict[str, Any]] = res.json()
    return found


def _cli(server: Server, *args: str) -> Any:
    token = str(server.http.headers["Authorization"]).removeprefix("Bearer ")
    env = {**os.environ, "ORCHESTRION_TOKEN": token, "NO_COLOR": "1"}
    env.pop("ORCHESTRION_DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", "assets", *args, "--server", server.url],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_pipeline_cascades_and_every_edge_shows_it(server: Server, browser: Browser) -> None:  # noqa: F811
    raw = server.trigger("raw_orders", {"day": "2026-11-26"})
    assert server.wait_run(raw)["state"] == "succeeded"
    marts = _wait("the mart", lambda: _history(server, "warehouse.orders_mart"), server)
    (mart,) = marts
    assert mart["partition"] == "2026-11-26" and mart["workflow"] == "orders_mart"
    assert mart["metadata"] == {"products": 3}
    run = server.http.get(f"/api/v1/runs/{mart['run_id']}").json()
    assert run["params"] == {"day": "2026-11-26"}
    (staged,) = _history(server, "warehouse.staged_orders")
    assert staged["metadata"] == {"rows": 36}

    chain = server.trigger("chain")
    assert server.wait_run(chain)["state"] == "succeeded"
    lineage = server.http.get("/api/v1/assets/default/lineage", params={"key": "chain.c"}).json()
    assert [n["key"] for n in lineage["nodes"]] == [f"chain.{x}" for x in "abcde"]
    assert len(lineage["edges"]) == 4
    detail = server.http.get("/api/v1/assets/default/detail", params={"key": "chain.e"}).json()
    assert detail["state"] == "fresh" and detail["upstream"] == ["chain.d"]

    _cli_says_the_same(server)
    _bad_requests_are_refused(server)
    _pages(server, browser, mart["run_id"])


def _cli_says_the_same(server: Server) -> None:
    listed = json.loads(_cli(server, "list", "-o", "json"))
    assert {"chain.e", "warehouse.orders_mart"} <= {a["key"] for a in listed}
    shown = json.loads(_cli(server, "show", "warehouse.orders_mart", "-o", "json"))
    assert shown["upstream"] == ["warehouse.staged_orders"] and shown["max_age"] == 26 * 3600
    history = json.loads(_cli(server, "history", "warehouse.raw_orders", "-o", "json"))
    assert [e["partition"] for e in history] == ["2026-11-26"]
    started = _cli(server, "materialize", "warehouse.orders_mart", "--partition", "2026-11-27",
                   "--upstream")  # fmt: skip
    run_ids = [line.split()[-1] for line in started.splitlines()]
    assert len(run_ids) == 3
    workflows = [server.http.get(f"/api/v1/runs/{r}").json()["workflow"] for r in run_ids]
    assert workflows == ["raw_orders", "staged_orders", "orders_mart"]


def _bad_requests_are_refused(server: Server) -> None:
    missing = server.http.post("/api/v1/assets/default/materialize", json={"key": "nope"})
    assert missing.status_code == 404 and "nope" in missing.text
    unpartitioned = server.http.post(
        "/api/v1/assets/default/materialize", json={"key": "chain.a", "partition": "x"}
    )
    assert unpartitioned.status_code == 422 and "partition" in unpartitioned.text
    bad_ns = server.http.get("/api/v1/assets/NOT OK/detail", params={"key": "chain.a"})
    assert 400 <= bad_ns.status_code < 500


def _pages(server: Server, browser: Browser, mart_run: str) -> None:  # noqa: F811
    w = Watched(browser)
    try:
        w.page.goto(f"{server.url}/assets")
        rows = w.page.locator("#assets-table tbody tr[data-asset]")
        assert {"chain.a", "chain.e", "warehouse.orders_mart"} <= set(
            rows.evaluate_all("rs => rs.map(r => r.dataset.asset)")
        )
        w.page.goto(f"{server.url}/asset?key=chain.c")
        nodes = w.page.locator("#lineage .node")
        assert nodes.count() == 5
        assert w.page.locator("#lineage .edges path").count() == 4
        assert nodes.evaluate_all("ns => ns.map(n => n.dataset.asset)") == [
            f"chain.{x}" for x in "abcde"
        ]
        xs = nodes.evaluate_all("ns => ns.map(n => n.getBoundingClientRect().x)")
        assert xs == sorted(xs) and len(set(xs)) == 5  # one column per step, left to right
        e_state = w.page.locator('#lineage .node[data-asset="chain.e"]').get_attribute("data-state")
        assert e_state == "succeeded"  # fresh
        assert w.page.locator("#asset-events tbody tr").count() == 1
        w.page.screenshot(path=str(OUT / "asset-lineage.png"), full_page=True)
        w.page.click('#lineage .node[data-asset="chain.e"]')
        w.page.wait_for_url("**/asset?**key=chain.e")
        w.page.goto(f"{server.url}/asset?key=warehouse.orders_mart")
        links = w.page.locator("#asset-events tbody tr a").all_inner_texts()
        assert mart_run in links  # (materializing may have added the next day's)
        w.assert_safe()
        assert w.errors == [], w.errors
    finally:
        w.close()

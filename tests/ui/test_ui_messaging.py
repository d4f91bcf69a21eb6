"""The Connections and Consumers pages in a real browser (issue 14).

A server (API, scheduler, one worker) loads a workflow with a Redis stream trigger; a
connection for it and one that names a password secret are made through the API. Once the
trigger's consumer runs, one good message and one that does not fit the workflow's params
are added to the stream. The Connections page lists both connections with the secret's
name and never its value; the Consumers page shows the consumer running, what it received,
the dead-lettered message and why, and when the last message came.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser

from orchestrion.brokers.endpoint import Endpoint
from orchestrion.brokers.publish import redis_client
from tests import brokers
from tests.ui import test_ui
from tests.ui.test_ui import OUT, Server, Watched, browser  # noqa: F401  (the fixture)

STREAM = f"ui-orders-{uuid.uuid4().hex[:8]}"
SECRET_VALUE = f"never-shown-{uuid.uuid4().hex}"

FLOW = f"""
name: ui_orders
namespace: shop
params: {{n: {{type: integer}}}}
triggers:
  - broker: {{kind: redis, connection: bus, stream: '{STREAM}'}}
    params: {{n: "{{{{ message.json.n }}}}"}}
tasks:
  t: {{shell: ["true"]}}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    brokers.require("redis")
    try:
        with test_ui.signed_in(
            tmp_path_factory.mktemp("ui_msg"), {"ui_orders"}, {"ui_orders.yaml": FLOW}
        ) as srv:
            yield srv
    finally:
        client = redis_client(_redis(), timeout=10)
        client.delete(STREAM, f"{STREAM}.dead")
        client.close()


def _redis() -> Endpoint:
    return Endpoint(namespace="shop", name="t", kind="redis", url=brokers.URLS["redis"])


def _consumer(server: Server) -> dict[str, Any] | None:
    for c in server.http.get("/api/v1/consumers").json():
        if c["workflow"] == "ui_orders":
            found: dict[str, Any] = c
            return found
    return None


def _wait(what: str, check: Any, server: Server, timeout: float = 45.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n{server.log.read_text()[-4000:]}")


def test_connections_and_consumers_pages(server: Server, browser: Browser) -> None:  # noqa: F811
    put = server.http.put(
        "/api/v1/connections/shop/bus", json={"kind": "redis", "url": brokers.URLS["redis"]}
    )
    assert put.status_code == 201, put.text
    put = server.http.put("/api/v1/secrets/shop/mq-password", json={"value": SECRET_VALUE})
    assert put.status_code == 201, put.text
    put = server.http.put(
        "/api/v1/connections/shop/orders-mq",
        json={
            "kind": "rabbitmq",
            "url": "amqps://mq.example:5671/%2F",
            "username": "orders",
            "password_secret": "mq-password",
        },
    )
    assert put.status_code == 201, put.text
    _wait(
        "the consumer to run",
        lambda: (c := _consumer(server)) is not None and c["state"] == "running",
        server,
    )
    client = redis_client(_redis(), timeout=10)
    client.xadd(STREAM, {"body": json.dumps({"n": 7})})
    client.xadd(STREAM, {"body": json.dumps({"n": "not a number"})})
    client.close()
    # received counts come from the inbox at once; last_message_at with the consumer's next
    # report (at most a second later)
    consumer = _wait(
        "both messages recorded and reported",
        lambda: (
            (c := _consumer(server)) is not None
            and c["received"] >= 2
            and c["last_message_at"] is not None
            and c
        ),
        server,
    )
    assert consumer["dead_lettered"] == 1, consumer
    assert SECRET_VALUE not in server.http.get("/api/v1/connections").text

    w = Watched(browser)
    try:
        response = w.page.goto(f"{server.url}/connections")
        assert response is not None and response.status == 200
        rows = {
            r.locator("td").nth(1).inner_text(): r.inner_text()
            for r in w.page.locator("table.tbl tbody tr").all()
        }
        assert {"bus", "orders-mq"} <= set(rows), rows
        assert "redis" in rows["bus"]
        assert "mq-password" in rows["orders-mq"] and "orders" in rows["orders-mq"]
        assert SECRET_VALUE not in w.page.content()
        w.page.screenshot(path=str(OUT / "connections.png"), full_page=True)
        w.assert_safe()

        response = w.page.goto(f"{server.url}/consumers")
        assert response is not None and response.status == 200
        row = w.page.locator("table.tbl tbody tr", has_text="ui_orders")
        cells = [c.strip() for c in row.locator("td").all_inner_texts()]
        # Workflow, Source, State, Lag, Received, Dead-lettered, Last message, Scheduler, Error
        assert cells[0] == "ui_orders"
        assert STREAM in cells[1] and "redis bus" in cells[1]
        assert cells[2] == "running"
        assert cells[4] == "2" and cells[5] == "1", cells
        assert cells[6] not in ("", "—"), cells
        assert "must be integer" in cells[8], cells  # why the dead letter was
        w.page.screenshot(path=str(OUT / "consumers.png"), full_page=True)
        w.assert_safe()
        assert not w.errors, w.errors
    finally:
        w.close()
    # the good message started a run, which the worker finishes
    runs = server.http.get("/api/v1/runs", params={"workflow": "ui_orders"}).json()
    items = runs["items"] if isinstance(runs, dict) else runs
    assert [r["params"] for r in items] == [{"n": 7}], items

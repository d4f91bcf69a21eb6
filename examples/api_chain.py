"""HTTP call chain: create a customer, open an order for it, read it back, pay it.

    orchestrion run examples/api_chain.py
    orchestrion run examples/api_chain.py -p customer=Grace -p qty=3

There is no internet here, so the first task, ``start_api``, starts a tiny JSON API (the
standard library's ``http.server``) on 127.0.0.1, on a free port, in a background thread of
the process that runs the workflow. Every other step is a real HTTP task (``http(...)``):

1. ``create_customer``  POST /customers                    -> {"id": 1, ...}
2. ``create_order``     POST /customers/<customer id>/orders -> {"id": 1, "total": ...}
3. ``get_order``        GET  /orders/<order id>
4. ``pay_order``        POST /orders/<order id>/pay           (expects 200)
5. ``receipt``          a Python task reading the responses

Each response's ``id`` is formatted into the next URL (``f"...{customer['id']}..."``
becomes a ``{{ tasks.create_customer.id }}`` template, percent-encoded when rendered),
which is also what makes each step depend on the previous one. ``stop_api`` has
``trigger_rule="all_done"``: it shuts the server down whether the chain succeeded or not.
Every HTTP request carries an ``Idempotency-Key`` header; the API answers a repeated key
with the first answer, so a retried POST does not create a second order.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from orchestrion.spec.python import http, task, workflow


class _Api(BaseHTTPRequestHandler):
    """customers and orders, kept in memory; JSON in, JSON out."""

    lock: ClassVar[threading.Lock] = threading.Lock()
    customers: ClassVar[dict[int, dict[str, Any]]] = {}
    orders: ClassVar[dict[int, dict[str, Any]]] = {}
    seen: ClassVar[dict[str, tuple[int, dict[str, Any]]]] = {}
    PRICES: ClassVar[dict[str, int]] = {"P-100": 1999, "P-200": 4550}

    def log_message(self, format: str, *args: Any) -> None:  # keep the console quiet
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        with self.lock:
            if len(parts) == 2 and parts[0] == "orders" and parts[1].isdigit():
                order = self.orders.get(int(parts[1]))
                if order is not None:
                    return self._send(200, order)
        self._send(404, {"error": f"not found: {self.path}"})

    def do_POST(self) -> None:
        key = self.headers.get("Idempotency-Key", "")
        body = self._body()
        with self.lock:
            if key and key in self.seen:  # a retried request: same answer, no new effect
                return self._send(*self.seen[key])
            status, answer = self._post(self.path.strip("/").split("/"), body)
            if key and status < 300:
                self.seen[key] = (status, answer)
        self._send(status, answer)

    def _post(self, parts: list[str], body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if parts == ["customers"]:
            customer = {"id": len(self.customers) + 1, "name": body.get("name", "?")}
            self.customers[customer["id"]] = customer
            return 201, customer
        if len(parts) == 3 and parts[0] == "customers" and parts[2] == "orders":
            if not parts[1].isdigit() or int(parts[1]) not in self.customers:
                return 404, {"error": f"no customer {parts[1]}"}
            sku, qty = body.get("sku"), int(body.get("qty", 1))
            if sku not in self.PRICES:
                return 422, {"error": f"unknown sku {sku!r}"}
            order = {
                "id": len(self.orders) + 1,
                "customer": int(parts[1]),
                "sku": sku,
                "qty": qty,
                "total": self.PRICES[sku] * qty,
                "status": "open",
            }
            self.orders[order["id"]] = order
            return 201, order
        if len(parts) == 3 and parts[0] == "orders" and parts[2] == "pay":
            order = self.orders.get(int(parts[1])) if parts[1].isdigit() else None
            if order is None:
                return 404, {"error": f"no order {parts[1]}"}
            order["status"] = "paid"
            return 200, {"order": order["id"], "status": "paid", "amount": order["total"]}
        return 404, {"error": f"not found: /{'/'.join(parts)}"}


_servers: dict[int, ThreadingHTTPServer] = {}


@task
def start_api() -> dict[str, Any]:
    """Serve the demo API on 127.0.0.1 (a free port) in a background thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    server.daemon_threads = True
    port = server.server_address[1]
    serve = threading.Thread(target=server.serve_forever, args=(0.05,), name=f"api-{port}")
    serve.daemon = True
    serve.start()
    _servers[port] = server
    print(f"demo API listening on http://127.0.0.1:{port}")
    return {"port": port}


@task(trigger_rule="all_done")
def stop_api(api: dict[str, Any]) -> str:
    """Shut the demo API down (runs whatever happened to the chain)."""
    server = _servers.pop(api["port"], None)
    if server is None:
        return "already stopped"
    server.shutdown()
    server.server_close()
    print(f"demo API on port {api['port']} stopped")
    return "stopped"


@task
def receipt(order: dict[str, Any], payment: dict[str, Any], customer: dict[str, Any]) -> str:
    """Put the responses together."""
    text = (
        f"{customer['name']} (customer {customer['id']}) bought {order['qty']} x "
        f"{order['sku']}: order {payment['order']} {payment['status']}, {payment['amount']} cents"
    )
    print(text)
    return text


@workflow(tags=["example", "http"])
def api_chain(customer: str = "Ada", sku: str = "P-100", qty: int = 2):
    """Create a customer and an order through a local JSON API, then pay it."""
    api = start_api()
    base = f"http://127.0.0.1:{api['port']}"
    who = http(
        "create_customer", f"{base}/customers", method="POST", json={"name": customer},
        expect_status=[201], retries=2, backoff="100ms",
    )  # fmt: skip
    order = http(
        "create_order", f"{base}/customers/{who['id']}/orders", method="POST",
        json={"sku": sku, "qty": qty}, expect_status=[201], retries=2, backoff="100ms",
    )  # fmt: skip
    fetched = http("get_order", f"{base}/orders/{order['id']}", expect_status=[200])
    paid = http(
        "pay_order", f"{base}/orders/{fetched['id']}/pay", method="POST", expect_status=[200]
    )
    done = receipt(fetched, paid, who)
    stop_api.options(after=[done, paid])(api)

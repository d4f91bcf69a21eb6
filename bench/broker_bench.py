"""Broker triggers: message -> run started latency (p50, p99) and sustained messages/s into
runs, for each broker, with one consumer (an in-process scheduler) on SQLite, or on
PostgreSQL with ``--db postgresql://...``.

    uv run --frozen python bench/broker_bench.py [--brokers redis,rabbitmq,nats,mqtt]
        [--latency 200] [--burst 1000] [--db URL]

Latency: `--latency` messages sent one at a time (20 ms apart), each timed from the send
until its run is committed and visible to another connection (polled every 0.2 ms).
Throughput: `--burst` messages sent as fast as one client sends, timed from the first send
to the last run created. The brokers must listen on loopback
(`bash ../shared/services.sh`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.brokers.publish import (
    mqtt_client,
    mqtt_connect,
    nats_connect,
    rabbit_parameters,
    redis_client,
)
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.store.records import RunFilter

URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://127.0.0.1:5672/%2F",
    "nats": "nats://127.0.0.1:4222",
    "mqtt": "mqtt://127.0.0.1:1883",
}


def _endpoint(kind: str) -> Endpoint:
    return Endpoint(namespace="bench", name="b", kind=kind, url=URLS[kind])


class Broker:
    """Send bodies to one broker; set up and clean up its destination."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"bench{uuid.uuid4().hex[:8]}"
        self._close: list[Callable[[], Any]] = []

    def source(self) -> str:
        where = {"redis": "stream", "rabbitmq": "queue", "nats": "subject", "mqtt": "topic"}
        target = {"nats": f"{self.name}.>", "mqtt": f"{self.name}/#"}.get(self.kind, self.name)
        key = ", key: message.json.n" if self.kind == "mqtt" else ""
        return (
            f"{{kind: {self.kind}, connection: bus-{self.kind},"
            f" {where[self.kind]}: '{target}'{key}}}"
        )

    def sender(self) -> Callable[[bytes], None]:
        if self.kind == "redis":
            client = redis_client(_endpoint("redis"), timeout=10)
            self._close.append(lambda: (client.delete(self.name), client.close()))
            return lambda body: client.xadd(self.name, {"body": body})
        if self.kind == "rabbitmq":
            import pika

            conn = pika.BlockingConnection(rabbit_parameters(_endpoint("rabbitmq"), timeout=10))
            channel = conn.channel()
            channel.queue_declare(self.name)
            self._close.append(lambda: (channel.queue_delete(self.name), conn.close()))
            return lambda body: channel.basic_publish(
                "", self.name, body, pika.BasicProperties(message_id=json.loads(body)["n"])
            )
        if self.kind == "nats":
            loop = asyncio.new_event_loop()
            nc = loop.run_until_complete(nats_connect(_endpoint("nats"), timeout=10))
            js = nc.jetstream()
            loop.run_until_complete(js.add_stream(name=self.name, subjects=[f"{self.name}.>"]))

            def close() -> None:
                loop.run_until_complete(js.delete_stream(self.name))
                loop.run_until_complete(nc.close())
                loop.close()

            self._close.append(close)
            return lambda body: loop.run_until_complete(js.publish(f"{self.name}.m", body))
        client = mqtt_client(_endpoint("mqtt"))
        mqtt_connect(client, _endpoint("mqtt"), timeout=10)
        self._close.append(lambda: (client.disconnect(), client.loop_stop()))
        return lambda body: client.publish(f"{self.name}/m", body, qos=1).wait_for_publish(10)

    def close(self) -> None:
        for close in reversed(self._close):
            close()


def _runs(app: App, workflow: str) -> list[Any]:
    return app.runs.list_runs(RunFilter(workflow=workflow, limit=1_000_000))


def _wait(app: App, workflow: str, count: int, seconds: float = 120) -> list[Any]:
    deadline = time.monotonic() + seconds
    while True:
        found = _runs(app, workflow)
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def bench(app: App, kind: str, latency_n: int, burst_n: int) -> dict[str, Any]:
    broker = Broker(kind)
    app.connections.put_connection("bench", f"bus-{kind}", kind=kind, url=URLS[kind])
    workflow = f"bench_{kind}_{broker.name}"
    spec = load_yaml_text(
        f"""
name: {workflow}
namespace: bench
params: {{n: {{type: string}}, sent: {{type: string}}}}
triggers:
  - broker: {broker.source()}
    params: {{n: "{{{{ message.json.n }}}}", sent: "{{{{ message.json.sent }}}}"}}
tasks:
  t: {{shell: ["true"]}}
"""
    )
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    key = spec.triggers[0].key(workflow)
    send = broker.sender()
    try:
        with app.runtime.scheduler_in_background() as scheduler:
            assert scheduler.consumers is not None
            deadline = time.monotonic() + 30
            while not (
                key in scheduler.consumers.states()
                and scheduler.consumers.states()[key].ready.is_set()
            ):
                assert time.monotonic() < deadline, "the consumer did not start"
                time.sleep(0.02)
            time.sleep(0.3)
            lat: list[float] = []
            for i in range(latency_n):
                sent = time.perf_counter()
                send(json.dumps({"n": f"l{i}", "sent": "0"}).encode())
                # Committed and visible to another connection: the run counts.
                while app.store.triggers.count_unfinished(workflow, "broker:") <= i:
                    time.sleep(0.0002)
                lat.append((time.perf_counter() - sent) * 1000)
                time.sleep(0.02)
            lat.sort()
            first = time.time()
            for i in range(burst_n):
                send(json.dumps({"n": f"b{i}", "sent": "0"}).encode())
            runs = _wait(app, workflow, latency_n + burst_n)
            burst = [r for r in runs if r.params["n"].startswith("b")]
            took = max(r.created_at for r in burst) - first
    finally:
        app.workflows.set_paused(workflow, True)  # its consumer stops with the next bench
        broker.close()
    return {
        "broker": kind,
        "p50_ms": round(statistics.median(lat), 1),
        "p99_ms": round(lat[max(0, int(len(lat) * 0.99) - 1)], 1),
        "runs": len(burst),
        "msgs_per_s": round(len(burst) / took, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="redis,rabbitmq,nats,mqtt")
    parser.add_argument("--latency", type=int, default=200)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--db", default=None, help="a database URL (default: a SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        with App(Settings(database_url=url)).open() as app:
            for kind in args.brokers.split(","):
                result = bench(app, kind, args.latency, args.burst)
                print(json.dumps(result), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()

"""Broker triggers (issue 14, part c) against the real brokers on loopback: a scheduler's
consumer starts exactly one run per message (duplicates and redeliveries start nothing),
maps params from ``message``, applies the filter, and hands a message whose params do not
fit to the broker's dead-letter place with the reason. SQLite, or PostgreSQL with
``ORCHESTRION_TEST_DATABASE=postgres``."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.brokers.publish import mqtt_client, mqtt_connect, nats_connect, redis_client
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.store.records import RunFilter
from orchestrion.triggers.scheduler import Scheduler
from tests import brokers
from tests.helpers import database_url_for


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(database_url=database_url_for(tmp_path / "t.db"), lease_seconds=5.0)
    with App(settings).open() as app:
        for kind, url in brokers.URLS.items():  # (pika logs in as guest/guest by default)
            app.connections.put_connection("shop", f"{kind}-bus", kind=kind, url=url)
        yield app


def _endpoint(kind: str) -> Endpoint:
    return Endpoint(namespace="shop", name="t", kind=kind, url=brokers.URLS[kind])


def _workflow(name: str, source: str, key: str = "") -> str:
    return f"""
name: {name}
namespace: shop
params:
  order_id: {{type: string}}
triggers:
  - broker: {{{source}{key}}}
    params: {{order_id: "{{{{ message.json.id }}}}"}}
    filter: "message.json.total > 100"
tasks:
  t: {{shell: ["true"]}}
"""


def _runs(app: App, workflow: str) -> list[Any]:
    return app.runs.list_runs(RunFilter(workflow=workflow, limit=10_000))


def _wait(check: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _consume(app: App, text: str, send: Callable[[], None], expect: int) -> tuple[Any, Any]:
    """Register the workflow, run a scheduler until its consumer is ready, send, and wait
    for `expect` runs (and a quiet moment, so that extra runs would show)."""
    spec = load_yaml_text(text)
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    key = spec.triggers[0].key(spec.name)
    with app.runtime.scheduler_in_background() as scheduler:
        _wait(lambda: _ready(scheduler, key))
        send()
        _wait(lambda: len(_runs(app, spec.name)) >= expect)
        time.sleep(1.0)
        assert scheduler.consumers is not None
        state = scheduler.consumers.states()[key]
    return _runs(app, spec.name), state


def _ready(scheduler: Scheduler, key: str) -> bool:
    states = {} if scheduler.consumers is None else scheduler.consumers.states()
    return key in states and states[key].ready.is_set()


def _orders(n: int) -> list[dict[str, Any]]:
    return [{"id": f"o-{i}", "total": 150 + i} for i in range(n)]


def _check(runs: list[Any], n: int) -> None:
    ids = sorted(r.params["order_id"] for r in runs)
    assert ids == sorted(f"o-{i}" for i in range(n)), ids[:10]
    assert all(r.trigger.startswith("broker:") for r in runs)


def test_redis_stream_messages_start_one_run_each(app: App) -> None:
    brokers.require("redis")
    stream = f"orders.{uuid.uuid4().hex[:8]}"
    client = redis_client(_endpoint("redis"), timeout=5)

    def send() -> None:
        for order in _orders(40):
            client.xadd(stream, {"body": json.dumps(order)})
        client.xadd(stream, {"body": json.dumps({"id": "cheap", "total": 5})})  # filtered
        client.xadd(stream, {"body": json.dumps({"total": 500})})  # no id: dead letter
        client.xadd(stream, {"body": b"not json"})  # the filter fails: dead letter

    try:
        runs, state = _consume(
            app, _workflow("on_redis", f"kind: redis, connection: redis-bus, stream: {stream}"),
            send, 40,
        )  # fmt: skip
        _check(runs, 40)
        assert (state.started, state.filtered, state.dead_lettered) == (40, 1, 2)
        dead = client.xrange(f"{stream}.dead")
        assert len(dead) == 2 and all(b"reason" in fields for _, fields in dead)
        assert b"has no key 'id'" in dead[0][1][b"reason"]
        # Nothing is left pending in the group: every message was acknowledged.
        (group,) = client.xinfo_groups(stream)
        assert group["pending"] == 0
        # The consumers list: its counts come from the inbox, its state from the scheduler.
        (consumer,) = [c for c in app.triggers.list_consumers() if c.workflow == "on_redis"]
        assert (consumer.received, consumer.dead_lettered) == (42, 2)
        assert consumer.state == "stopped" and consumer.kind == "redis"
        assert consumer.last_dead_letter is not None and "json" in consumer.last_dead_letter
        assert consumer.last_message_at is not None
        # The run's history names the message that started it.
        first = runs[-1]
        assert first.trigger.startswith(f"broker:on_redis/redis:redis-bus:{stream}#")
    finally:
        client.delete(stream, f"{stream}.dead")
        client.close()


def test_rabbitmq_duplicates_by_message_id_start_nothing(app: App) -> None:
    brokers.require("rabbitmq")
    import pika

    from orchestrion.brokers.publish import rabbit_parameters

    queue = f"orders.{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(rabbit_parameters(_endpoint("rabbitmq"), timeout=10))
    channel = connection.channel()
    channel.queue_declare(queue)

    def send() -> None:
        for order in _orders(30):
            for _ in range(2):  # every message twice: the second is a duplicate
                channel.basic_publish(
                    "", queue, json.dumps(order).encode(),
                    pika.BasicProperties(message_id=f"m-{order['id']}"),
                )  # fmt: skip

    try:
        runs, state = _consume(
            app,
            _workflow("on_rabbit", f"kind: rabbitmq, connection: rabbitmq-bus, queue: {queue}"),
            send,
            30,
        )
        _check(runs, 30)
        assert (state.started, state.duplicates) == (30, 30)
        assert channel.queue_declare(queue, passive=True).method.message_count == 0
    finally:
        channel.queue_delete(queue)
        connection.close()


def test_nats_jetstream_durable_consumer(app: App) -> None:
    brokers.require("nats")
    stream = f"T{uuid.uuid4().hex[:8]}"
    subject = f"orders.{stream}"

    async def nats(action: str) -> None:
        nc = await nats_connect(_endpoint("nats"), timeout=5)
        js = nc.jetstream()
        try:
            if action == "create":
                await js.add_stream(name=stream, subjects=[f"{subject}.>"])
            elif action == "send":
                for order in _orders(25):
                    await js.publish(f"{subject}.new", json.dumps(order).encode())
            else:
                await js.delete_stream(stream)
        finally:
            await nc.close()

    asyncio.run(nats("create"))
    try:
        runs, state = _consume(
            app,
            _workflow("on_nats", f"kind: nats, connection: nats-bus, subject: {subject}.>"),
            lambda: asyncio.run(nats("send")),
            25,
        )
        _check(runs, 25)
        assert state.started == 25 and state.duplicates == 0
    finally:
        asyncio.run(nats("delete"))


def test_mqtt_qos1_persistent_session_with_a_key(app: App) -> None:
    brokers.require("mqtt")
    topic = f"orders/{uuid.uuid4().hex[:8]}"
    client = mqtt_client(_endpoint("mqtt"))
    mqtt_connect(client, _endpoint("mqtt"), timeout=5)

    def send() -> None:
        for order in _orders(20):
            for _ in range(2):  # the same order twice: the key makes it one message
                client.publish(f"{topic}/new", json.dumps(order), qos=1).wait_for_publish(5)

    try:
        runs, state = _consume(
            app,
            _workflow(
                "on_mqtt",
                f"kind: mqtt, connection: mqtt-bus, topic: '{topic}/#'",
                key=", key: message.json.id",
            ),
            send,
            20,
        )
        _check(runs, 20)
        assert (state.started, state.duplicates) == (20, 20)
    finally:
        client.disconnect()
        client.loop_stop()


def test_pausing_the_workflow_stops_its_consumer(app: App) -> None:
    brokers.require("redis")
    stream = f"orders.{uuid.uuid4().hex[:8]}"
    spec = load_yaml_text(
        _workflow("on_pause", f"kind: redis, connection: redis-bus, stream: {stream}")
    )
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    key = spec.triggers[0].key(spec.name)
    client = redis_client(_endpoint("redis"), timeout=5)
    try:
        with app.runtime.scheduler_in_background() as scheduler:
            consumers = scheduler.consumers
            assert consumers is not None
            _wait(lambda: _ready(scheduler, key))
            app.workflows.set_paused("on_pause", True)
            _wait(lambda: key not in consumers.states())
            client.xadd(stream, {"body": json.dumps({"id": "o-0", "total": 500})})
            time.sleep(1.0)
            assert _runs(app, "on_pause") == []  # the broker holds the message
            app.workflows.set_paused("on_pause", False)
            _wait(lambda: len(_runs(app, "on_pause")) == 1)
    finally:
        client.delete(stream)
        client.close()


def test_the_in_flight_limit_holds_messages_at_the_broker(app: App) -> None:
    brokers.require("redis")
    stream = f"orders.{uuid.uuid4().hex[:8]}"
    spec = load_yaml_text(
        _workflow(
            "on_limit",
            f"kind: redis, connection: redis-bus, stream: {stream}",
            key=", max_in_flight: 5",
        )
    )
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    key = spec.triggers[0].key(spec.name)
    client = redis_client(_endpoint("redis"), timeout=5)
    try:
        with app.runtime.scheduler_in_background() as scheduler:
            consumers = scheduler.consumers
            assert consumers is not None
            _wait(lambda: _ready(scheduler, key))
            for order in _orders(12):
                client.xadd(stream, {"body": json.dumps(order)})
            _wait(lambda: len(_runs(app, "on_limit")) == 5)
            time.sleep(1.5)  # no worker runs them: the limit holds
            assert len(_runs(app, "on_limit")) == 5
            assert consumers.states()[key].held
            for run in _runs(app, "on_limit")[:3]:
                app.runs.cancel(run.id)
            _wait(lambda: len(_runs(app, "on_limit")) == 8)
            time.sleep(1.0)
            assert len(_runs(app, "on_limit")) == 8
    finally:
        client.delete(stream)
        client.close()

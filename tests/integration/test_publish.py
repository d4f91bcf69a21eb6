"""Publish tasks (issue 14, part b) against the real brokers on loopback: each delivers
exactly the rendered body and headers, the broker's ack is awaited, and a broker that
refuses is retried under the task's policy and then fails the task with the broker's
words. Runs on SQLite, or PostgreSQL with ``ORCHESTRION_TEST_DATABASE=postgres``."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.brokers.publish import mqtt_client, mqtt_connect, nats_connect, redis_client
from orchestrion.spec.yaml.loader import load_yaml_text
from tests import brokers
from tests.helpers import database_url_for

KEY = MasterKey("k", os.urandom(32))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(
        database_url=database_url_for(tmp_path / "p.db"),
        key_ring=KeyRing([KEY]),
        lease_seconds=5.0,
        heartbeat_every=0.2,
    )
    with App(settings).open() as app:
        app.secrets.set_secret("shop", "mq-pass", "guest")
        for kind, url in brokers.URLS.items():
            extra: dict[str, Any] = {}
            if kind == "rabbitmq":
                extra = {"username": "guest", "password_secret": "mq-pass"}
            app.connections.put_connection("shop", f"{kind}-bus", kind=kind, url=url, **extra)
        yield app


def _endpoint(kind: str) -> Endpoint:
    return Endpoint(namespace="shop", name="t", kind=kind, url=brokers.URLS[kind])


def _workflow(name: str, publish: str, retries: int = 0) -> str:
    return f"""
name: {name}
namespace: shop
params:
  order_id: {{type: string}}
tasks:
  send:
    retry: {{retries: {retries}, backoff: 0.05}}
    publish: {publish}
"""


def _run(app: App, text: str, order_id: str) -> Any:
    spec = load_yaml_text(text)
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    run = app.runs.trigger(spec.name, {"order_id": order_id})
    done = app.runtime.run_until_done(run.id, concurrency=2)
    (task,) = app.runs.task_runs(run.id)
    return done, task


BODY = '{id: "{{ params.order_id }}", total: 120, tags: ["a", "{{ params.order_id }}"]}'


def _expected(order_id: str) -> dict[str, Any]:
    return {"id": order_id, "total": 120, "tags": ["a", order_id]}


def test_redis_stream_gets_the_rendered_body(app: App) -> None:
    brokers.require("redis")
    order = uuid.uuid4().hex[:8]
    done, task = _run(
        app,
        _workflow(
            "pub_redis",
            '{kind: redis, connection: redis-bus, stream: "orders.{{ params.order_id }}",'
            f' body: {BODY}, headers: {{source: "t-{{{{ params.order_id }}}}"}}}}',
        ),
        order,
    )
    assert done.state.value == "succeeded", task.error
    client = redis_client(_endpoint("redis"), timeout=5)
    try:
        entries = client.xrange(f"orders.{order}")
        client.delete(f"orders.{order}")
    finally:
        client.close()
    ((message_id, fields),) = entries
    assert task.result == {
        "broker": "redis",
        "destination": f"orders.{order}",
        "message_id": message_id.decode(),
    }
    assert json.loads(fields[b"body"]) == _expected(order)
    assert json.loads(fields[b"headers"]) == {"source": f"t-{order}"}


def test_rabbitmq_queue_gets_the_rendered_body_with_confirms(app: App) -> None:
    brokers.require("rabbitmq")
    import pika

    from orchestrion.brokers.publish import rabbit_parameters

    queue = f"orders.{uuid.uuid4().hex[:8]}"
    endpoint = Endpoint(
        namespace="shop", name="t", kind="rabbitmq", url=brokers.URLS["rabbitmq"],
        username="guest", password=app.secrets.resolve_secrets("shop", ["mq-pass"])["mq-pass"],
    )  # fmt: skip
    connection = pika.BlockingConnection(rabbit_parameters(endpoint, timeout=10))
    channel = connection.channel()
    channel.queue_declare(queue, auto_delete=False)
    try:
        done, task = _run(
            app,
            _workflow(
                "pub_rabbit",
                f"{{kind: rabbitmq, connection: rabbitmq-bus, queue: {queue}, body: {BODY},"
                " headers: {source: test}}",
            ),
            "o-1",
        )
        assert done.state.value == "succeeded", task.error
        assert task.result == {"broker": "rabbitmq", "destination": queue, "confirmed": True}
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        assert method is not None
        assert json.loads(body) == _expected("o-1")
        assert properties.headers == {"source": "test"}
        assert properties.content_type == "application/json"
        assert properties.delivery_mode == 2
    finally:
        channel.queue_delete(queue)
        connection.close()


def test_rabbitmq_refusal_is_retried_then_fails_with_the_brokers_words(app: App) -> None:
    brokers.require("rabbitmq")
    nowhere = f"nobody.listens.{uuid.uuid4().hex[:8]}"
    done, task = _run(
        app,
        _workflow(
            "pub_refused",
            f"{{kind: rabbitmq, connection: rabbitmq-bus, queue: {nowhere}, body: x}}",
            retries=2,
        ),
        "o-2",
    )
    assert done.state.value == "failed"
    assert task.attempts == 3
    assert task.error is not None and "no queue is bound to" in task.error
    assert nowhere in task.error


def test_a_missing_connection_or_secret_fails_the_task_by_name(app: App) -> None:
    done, task = _run(
        app,
        _workflow("pub_missing", "{kind: redis, connection: nope, stream: s, body: x}"),
        "o-3",
    )
    assert done.state.value == "failed"
    assert task.error is not None and "connection shop/nope does not exist" in task.error
    app.connections.put_connection(
        "shop", "locked", kind="redis", url=brokers.URLS["redis"], password_secret="gone"
    )
    done, task = _run(
        app,
        _workflow("pub_locked", "{kind: redis, connection: locked, stream: s, body: x}"),
        "o-4",
    )
    assert task.error is not None and "secret shop/gone does not exist" in task.error


def test_a_connection_of_another_kind_is_refused(app: App) -> None:
    brokers.require("redis")
    done, task = _run(
        app,
        _workflow("pub_kind", "{kind: nats, connection: redis-bus, subject: s, body: x}"),
        "o-5",
    )
    assert done.state.value == "failed"
    assert task.error is not None and "is a redis connection" in task.error


def test_nats_jetstream_acks_the_rendered_body(app: App) -> None:
    brokers.require("nats")
    stream = f"T{uuid.uuid4().hex[:8]}"
    subject = f"orders.{stream}"

    async def setup_and_read(action: str) -> Any:
        nc = await nats_connect(_endpoint("nats"), timeout=5)
        js = nc.jetstream()
        try:
            if action == "create":
                await js.add_stream(name=stream, subjects=[f"{subject}.>"])
                return None
            if action == "read":
                msg = await js.get_last_msg(stream, f"{subject}.o-6")
                return msg
            await js.delete_stream(stream)
            return None
        finally:
            await nc.close()

    asyncio.run(setup_and_read("create"))
    try:
        done, task = _run(
            app,
            _workflow(
                "pub_nats",
                "{kind: nats, connection: nats-bus,"
                f' subject: "{subject}.{{{{ params.order_id }}}}",'
                f" body: {BODY}, headers: {{source: test}}}}",
            ),
            "o-6",
        )
        assert done.state.value == "succeeded", task.error
        assert task.result == {
            "broker": "nats", "destination": f"{subject}.o-6", "stream": stream, "sequence": 1,
        }  # fmt: skip
        msg = asyncio.run(setup_and_read("read"))
        assert json.loads(msg.data) == _expected("o-6")
        assert msg.headers == {"source": "test"}
    finally:
        asyncio.run(setup_and_read("delete"))


def test_nats_without_a_stream_fails_the_jetstream_publish(app: App) -> None:
    brokers.require("nats")
    done, task = _run(
        app,
        _workflow(
            "pub_nats_none",
            f"{{kind: nats, connection: nats-bus, subject: nostream.{uuid.uuid4().hex}, body: x}}",
        ),
        "o-7",
    )
    assert done.state.value == "failed"
    assert task.error is not None and "nats publish" in task.error


def test_mqtt_qos1_delivers_the_rendered_body(app: App) -> None:
    brokers.require("mqtt")
    topic = f"orders/{uuid.uuid4().hex[:8]}"
    got: list[Any] = []
    arrived = threading.Event()
    client = mqtt_client(_endpoint("mqtt"))

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        got.append(message)
        arrived.set()

    client.on_message = on_message
    mqtt_connect(client, _endpoint("mqtt"), timeout=5)
    client.subscribe(f"{topic}/#", qos=1)
    time.sleep(0.3)  # the SUBACK; a QoS 1 message before it would not be routed to us
    try:
        done, task = _run(
            app,
            _workflow(
                "pub_mqtt",
                "{kind: mqtt, connection: mqtt-bus,"
                f' topic: "{topic}/{{{{ params.order_id }}}}",'
                f" body: {BODY}, headers: {{source: test}}}}",
            ),
            "o-8",
        )
        assert done.state.value == "succeeded", task.error
        assert task.result["destination"] == f"{topic}/o-8"
        assert arrived.wait(10)
        (message,) = got
        assert message.topic == f"{topic}/o-8" and message.qos == 1
        assert json.loads(message.payload) == _expected("o-8")
        assert message.properties.UserProperty == [("source", "test")]
    finally:
        client.disconnect()
        client.loop_stop()

"""One broker's side of a consumer test (issue 14): where messages go, a trigger reading
them, and what the broker still holds for the consumer afterwards.

Used by the SIGKILL test (tests/crash) and the broker-restart test (tests/fault). Every
source survives a broker restart where the broker can: the RabbitMQ queue is durable and
its messages persistent, the NATS stream is a file stream, the MQTT session persistent.
The consumer's group (Redis) or session (MQTT) is created before the first message, so
nothing sent before the scheduler subscribes is missed.
"""

from __future__ import annotations

import asyncio
import json
import queue as queues
import time
import uuid
from collections.abc import Callable
from typing import Any

from orchestrion.brokers.endpoint import Endpoint
from orchestrion.brokers.publish import (
    mqtt_client,
    mqtt_connect,
    nats_connect,
    rabbit_parameters,
    redis_client,
)
from tests import brokers

KINDS = ["redis", "rabbitmq", "nats", "mqtt"]


def endpoint(kind: str) -> Endpoint:
    return Endpoint(namespace="shop", name="t", kind=kind, url=brokers.URLS[kind])


def body(i: int) -> bytes:
    return json.dumps({"id": f"o-{i}"}).encode()


class Source:
    """A fresh stream / queue / subject / topic named after a random token."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = f"k{uuid.uuid4().hex[:8]}"
        self.closers: list[Callable[[], Any]] = []
        #: The consumer's name (`orchestrion.triggers.consumers._consumer_name`).
        self.consumer = ""

    def trigger(self) -> str:
        """The YAML flow mapping of the broker trigger reading this source."""
        where = {"redis": "stream", "rabbitmq": "queue", "nats": "subject", "mqtt": "topic"}
        target = {"nats": f"{self.name}.>", "mqtt": f"{self.name}/#"}.get(self.kind, self.name)
        return f"{{kind: {self.kind}, connection: bus, {where[self.kind]}: '{target}'}}"

    def setup(self, consumer: str) -> None:
        """Create what must exist before the first message, for the consumer `consumer`."""
        self.consumer = consumer
        if self.kind == "redis":  # the group starts at $ when the consumer makes it
            client = redis_client(endpoint("redis"), timeout=10)
            client.xgroup_create(self.name, consumer, id="0", mkstream=True)
            client.close()
        elif self.kind == "rabbitmq":
            import pika

            with pika.BlockingConnection(rabbit_parameters(endpoint("rabbitmq"), timeout=10)) as c:
                c.channel().queue_declare(self.name, durable=True)
        elif self.kind == "nats":
            from nats.js.api import AckPolicy, ConsumerConfig

            async def make(js: Any) -> None:
                await js.add_stream(name=self.name, subjects=[f"{self.name}.>"])
                # The durable the trigger binds to, made here with a short ack wait: what a
                # killed consumer had fetched comes back after 3 s, not JetStream's 30.
                config = ConsumerConfig(
                    durable_name=consumer,
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=3,
                    filter_subject=f"{self.name}.>",
                )
                await js.add_consumer(self.name, config=config)

            self._nats(make)
        else:  # the session the consumer resumes, subscribed already: the broker queues
            client = self._mqtt_session(clean=False)
            done = client.subscribe(f"{self.name}/#", qos=1)
            assert done[0] == 0
            time.sleep(0.2)  # the SUBACK (paho's loop thread)
            client.disconnect()
            client.loop_stop()

    def sender(self) -> Callable[[int], None]:
        """A function sending message `i` (from one thread), confirmed by the broker."""
        if self.kind == "redis":
            client = redis_client(endpoint("redis"), timeout=10)
            self.closers.append(client.close)
            return lambda i: client.xadd(self.name, {"body": body(i)})
        if self.kind == "rabbitmq":
            import pika

            connection = pika.BlockingConnection(
                rabbit_parameters(endpoint("rabbitmq"), timeout=10)
            )
            self.closers.append(connection.close)
            channel = connection.channel()
            channel.confirm_delivery()
            return lambda i: channel.basic_publish(
                "",
                self.name,
                body(i),
                pika.BasicProperties(message_id=f"m{i}", delivery_mode=2),
            )
        if self.kind == "mqtt":
            client = mqtt_client(endpoint("mqtt"))
            mqtt_connect(client, endpoint("mqtt"), timeout=10)
            self.closers.append(client.loop_stop)
            self.closers.append(client.disconnect)

            def send(i: int) -> None:
                info = client.publish(f"{self.name}/o", body(i), qos=1)
                info.wait_for_publish(timeout=10)
                assert info.is_published(), f"mqtt did not acknowledge message {i}"

            return send
        loop = asyncio.new_event_loop()
        nc = loop.run_until_complete(nats_connect(endpoint("nats"), timeout=10))
        self.closers.append(loop.close)
        self.closers.append(lambda: loop.run_until_complete(nc.close()))
        js = nc.jetstream()
        return lambda i: loop.run_until_complete(js.publish(f"{self.name}.o", body(i)))

    def close_senders(self) -> None:
        for close in reversed(self.closers):
            close()
        self.closers.clear()

    def unacked(self) -> int:
        """What the broker still holds for the consumer: call it with the consumer stopped
        (an MQTT client resuming the session would take it over from a running one)."""
        if self.kind == "redis":
            client = redis_client(endpoint("redis"), timeout=10)
            groups = client.xinfo_groups(self.name)
            client.close()
            return int(sum(g["pending"] + (g.get("lag") or 0) for g in groups))
        if self.kind == "rabbitmq":
            import pika

            with pika.BlockingConnection(rabbit_parameters(endpoint("rabbitmq"), timeout=10)) as c:
                declared = c.channel().queue_declare(self.name, passive=True)
                return int(declared.method.message_count)
        if self.kind == "mqtt":  # resume the session: whatever it held arrives at once
            got: queues.Queue[Any] = queues.Queue()
            client = self._mqtt_session(clean=False, on_message=got.put)
            time.sleep(1.5)
            client.disconnect()
            client.loop_stop()
            return got.qsize()

        async def pending() -> int:
            nc = await nats_connect(endpoint("nats"), timeout=5)
            try:
                js = nc.jetstream()
                infos = await js.consumers_info(self.name)
                return sum(i.num_pending + i.num_ack_pending for i in infos)
            finally:
                await nc.close()

        return asyncio.run(pending())

    def describe(self) -> str:
        """What the broker says of the source (for a failing test's message)."""
        try:
            if self.kind == "redis":
                client = redis_client(endpoint("redis"), timeout=10)
                try:
                    stream = client.xinfo_stream(self.name)
                    return f"stream {stream}, groups {client.xinfo_groups(self.name)}"
                finally:
                    client.close()
            return f"{self.unacked()} unacknowledged"
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"

    def cleanup(self) -> None:
        self.close_senders()
        if self.kind == "redis":
            client = redis_client(endpoint("redis"), timeout=10)
            client.delete(self.name)
            client.close()
        elif self.kind == "rabbitmq":
            import pika

            with pika.BlockingConnection(rabbit_parameters(endpoint("rabbitmq"), timeout=10)) as c:
                c.channel().queue_delete(self.name)
        elif self.kind == "mqtt":  # a clean start with no expiry ends the session
            client = self._mqtt_session(clean=True)
            client.disconnect()
            client.loop_stop()
        else:
            self._nats(lambda js: js.delete_stream(self.name))

    def _mqtt_session(self, *, clean: bool, on_message: Callable[[Any], Any] | None = None) -> Any:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        client = mqtt_client(endpoint("mqtt"), client_id=f"orchestrion-{self.consumer}")
        if on_message is not None:
            client.on_message = lambda c, u, msg: on_message(msg)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0 if clean else 7 * 24 * 3600
        mqtt_connect(client, endpoint("mqtt"), timeout=10, clean_start=clean, properties=props)
        return client

    def _nats(self, act: Callable[[Any], Any]) -> None:
        async def go() -> None:
            nc = await nats_connect(endpoint("nats"), timeout=5)
            try:
                await act(nc.jetstream())
            finally:
                await nc.close()

        asyncio.run(go())

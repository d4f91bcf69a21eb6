"""Consumers behind broker triggers: each reads messages, and acknowledges one only when
told to (after its run was recorded), so a consumer that dies between the two has the
broker deliver the message again.

- Redis Streams: a consumer group per trigger (XREADGROUP); after a restart or a
  failover the group's pending entries are read first (the consumer's name is fixed per
  trigger: only one consumer of a trigger is active at a time). Acknowledged by XACK.
- RabbitMQ: basic.consume with a prefetch window and manual acks; dead letters are
  rejected without requeue, so the queue's dead-letter exchange (if configured) gets them.
- NATS JetStream: a durable pull consumer (explicit acks); dead
  letters are terminated (``term``).
- MQTT 5: a persistent session (fixed client id, no clean start, a long session expiry),
  QoS 1 subscription with manual PUBACKs.

Every `Message` carries the broker's identity for it where the broker has one (a stream
entry id, a JetStream sequence, RabbitMQ's optional ``message_id``); MQTT has none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue as queues
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrion.brokers.endpoint import Endpoint
from orchestrion.brokers.publish import (
    mqtt_client,
    mqtt_connect,
    nats_connect,
    rabbit_parameters,
    redis_client,
)

__all__ = ["Consumer", "Message", "open_consumer"]

#: The consumer's name in a Redis group: fixed, so a successor reads its pending entries.
_REDIS_CONSUMER = "orchestrion"


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message as a trigger sees it."""

    broker: str
    #: The broker's identity for the message ("" when it has none).
    id: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The stream, routing key, subject or topic it came from.
    destination: str
    redelivered: bool = False
    handle: Any = field(default=None, repr=False, compare=False)

    def scope(self) -> dict[str, Any]:
        """The ``message`` of filters, params and key expressions."""
        text = self.body.decode("utf-8", errors="replace")
        try:
            parsed: Any = json.loads(text)
        except ValueError:
            parsed = None
        return {
            "broker": self.broker,
            "id": self.id,
            "body": text,
            "json": parsed,
            "headers": dict(self.headers),
            "destination": self.destination,
            "redelivered": self.redelivered,
        }

    def content_key(self) -> str:
        """A digest of destination, headers and body: the identity of a message whose
        broker gives none (two identical MQTT messages count as one; set ``key``)."""
        digest = hashlib.sha256()
        for part in (self.destination, json.dumps(dict(self.headers), sort_keys=True)):
            digest.update(part.encode())
            digest.update(b"\x00")
        digest.update(self.body)
        return "sha256:" + digest.hexdigest()


class Consumer(Protocol):
    """What a trigger's consumer duty asks of a broker."""

    def fetch(self, limit: int, timeout: float) -> list[Message]:
        """Up to `limit` messages, waiting at most `timeout` seconds for the first."""
        ...

    def ack(self, message: Message) -> None:
        """The message is recorded: the broker may forget it."""
        ...

    def dead_letter(self, message: Message, reason: str) -> None:
        """The message cannot start a run: hand it to the broker's dead-letter place."""
        ...

    def lag(self) -> int | None:
        """Messages waiting at the broker for this consumer, where the broker says."""
        ...

    def close(self) -> None:
        """Disconnect (unacknowledged messages are delivered again later)."""
        ...


def open_consumer(
    endpoint: Endpoint, source: Any, name: str, *, prefetch: int = 100, resume: bool = False
) -> Consumer:
    """A connected consumer of `source` (a `BrokerSource`) named `name` (its group, durable,
    or client id: stable per trigger). `prefetch` bounds what a broker that pushes
    (RabbitMQ) sends ahead of acknowledgements. `resume`: this consumer was connected
    before (a reconnect), so a Redis group found missing was lost with the broker's data
    and is made again from the stream's start, not its end (see `RedisConsumer`)."""
    kinds: dict[str, Any] = {
        "redis": RedisConsumer,
        "rabbitmq": RabbitConsumer,
        "nats": NatsConsumer,
        "mqtt": MqttConsumer,
    }
    if endpoint.kind == "rabbitmq":
        return RabbitConsumer(endpoint, source, name, prefetch=prefetch)
    if endpoint.kind == "redis":
        return RedisConsumer(endpoint, source, name, resume=resume)
    consumer: Consumer = kinds[endpoint.kind](endpoint, source, name)
    return consumer


class RedisConsumer:
    """A Redis Streams consumer group.

    A new trigger's group starts at the stream's end (``$``: what was there before is not
    this trigger's business). On a reconnect (`resume`) a missing group means Redis lost
    its data (restarted without persistence): entries added since, possibly before this
    consumer got back, must not be skipped, so the group is made at ``0``; entries this
    trigger already recorded keep their ids only if the stream survived, and then the
    event inbox acknowledges them without a second run."""

    def __init__(self, endpoint: Endpoint, source: Any, name: str, *, resume: bool = False) -> None:
        self.stream = source.stream
        self.group = source.group or name
        self._client = redis_client(endpoint, timeout=30.0)
        self._pending = True  # read our own unacknowledged entries before new ones
        try:
            start = "0" if resume else "$"
            self._client.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except Exception as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def fetch(self, limit: int, timeout: float) -> list[Message]:
        """See `Consumer.fetch`."""
        start = "0" if self._pending else ">"
        block = None if self._pending else max(1, int(timeout * 1000))
        answer = self._client.xreadgroup(
            self.group, _REDIS_CONSUMER, {self.stream: start}, count=limit, block=block
        )
        entries = answer[0][1] if answer else []
        if self._pending and not entries:
            self._pending = False
            return self.fetch(limit, timeout)
        return [self._message(entry_id, fields) for entry_id, fields in entries]

    def _message(self, entry_id: bytes, fields: Mapping[bytes, bytes]) -> Message:
        headers = fields.get(b"headers")
        return Message(
            broker="redis",
            id=entry_id.decode(),
            body=fields.get(b"body", b""),
            headers=json.loads(headers) if headers else {},
            destination=self.stream,
            redelivered=self._pending,
            handle=entry_id,
        )

    def ack(self, message: Message) -> None:
        """See `Consumer.ack`."""
        self._client.xack(self.stream, self.group, message.handle)

    def lag(self) -> int | None:
        """The group's lag (entries not yet delivered to it), as Redis 7 reports it."""
        for group in self._client.xinfo_groups(self.stream):
            name = group.get("name")
            if (name.decode() if isinstance(name, bytes) else name) == self.group:
                lag = group.get("lag")
                return None if lag is None else int(lag)
        return None

    def dead_letter(self, message: Message, reason: str) -> None:
        """Copy it to ``<stream>.dead`` with the reason, then acknowledge it."""
        self._client.xadd(
            f"{self.stream}.dead",
            {"body": message.body, "id": message.id, "reason": reason[:2000]},
        )
        self.ack(message)

    def close(self) -> None:
        """See `Consumer.close`."""
        self._client.close()


class RabbitConsumer:
    """A RabbitMQ queue consumer with manual acks."""

    def __init__(self, endpoint: Endpoint, source: Any, name: str, *, prefetch: int = 100) -> None:
        import pika

        self.queue = source.queue
        self._connection = pika.BlockingConnection(rabbit_parameters(endpoint, timeout=30.0))
        self._channel = self._connection.channel()
        self._channel.basic_qos(prefetch_count=prefetch)
        self._buffer: list[Message] = []
        self._channel.basic_consume(self.queue, self._on_message, auto_ack=False)

    def _on_message(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        headers = {str(k): str(v) for k, v in (properties.headers or {}).items()}
        self._buffer.append(
            Message(
                broker="rabbitmq",
                id=properties.message_id or "",
                body=body,
                headers=headers,
                destination=method.routing_key,
                redelivered=bool(method.redelivered),
                handle=method.delivery_tag,
            )
        )

    def fetch(self, limit: int, timeout: float) -> list[Message]:
        """See `Consumer.fetch`."""
        if not self._buffer:
            self._connection.process_data_events(time_limit=timeout)
        taken, self._buffer = self._buffer[:limit], self._buffer[limit:]
        return taken

    def ack(self, message: Message) -> None:
        """See `Consumer.ack`."""
        self._channel.basic_ack(message.handle)

    def lag(self) -> int | None:
        """The messages ready in the queue."""
        declared = self._channel.queue_declare(self.queue, passive=True)
        return int(declared.method.message_count)

    def dead_letter(self, message: Message, reason: str) -> None:
        """Reject without requeue: the queue's dead-letter exchange gets it, if it has one."""
        self._channel.basic_nack(message.handle, requeue=False)

    def close(self) -> None:
        """See `Consumer.close`."""
        with contextlib.suppress(Exception):
            self._connection.close()


class NatsConsumer:
    """A NATS JetStream durable pull consumer, driven on a private event loop."""

    def __init__(self, endpoint: Endpoint, source: Any, name: str) -> None:
        self.subject = source.subject
        self.durable = source.group or name
        self._loop = asyncio.new_event_loop()
        self._lost = False

        async def lost() -> None:
            self._lost = True

        self._nc = self._loop.run_until_complete(
            nats_connect(endpoint, timeout=10.0, disconnected_cb=lost)
        )
        js = self._nc.jetstream()
        self._sub = self._loop.run_until_complete(
            js.pull_subscribe(self.subject, durable=self.durable)
        )

    def _check(self) -> None:
        """Raise once the connection has dropped. The client would reconnect by itself,
        but a pull subscription and acks that span a server restart were seen to go
        quiet; the trigger's thread opens a fresh consumer instead, and JetStream delivers
        what was not acknowledged again (after the durable's ack wait)."""
        if self._lost:
            raise ConnectionError("the NATS connection dropped; reconnecting")

    def fetch(self, limit: int, timeout: float) -> list[Message]:
        """See `Consumer.fetch`."""
        import nats.errors

        self._check()
        try:
            msgs = self._loop.run_until_complete(self._sub.fetch(limit, timeout=timeout))
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        return [self._message(m) for m in msgs]

    def _message(self, msg: Any) -> Message:
        meta = msg.metadata
        return Message(
            broker="nats",
            id=f"{meta.stream}:{meta.sequence.stream}",
            body=msg.data,
            headers={str(k): str(v) for k, v in (msg.headers or {}).items()},
            destination=msg.subject,
            redelivered=meta.num_delivered > 1,
            handle=msg,
        )

    def ack(self, message: Message) -> None:
        """See `Consumer.ack`. Not waited for: an ack that is lost only makes JetStream
        deliver the message again, and its inbox row then starts nothing."""
        self._check()
        self._loop.run_until_complete(message.handle.ack())

    def lag(self) -> int | None:
        """The durable's pending messages."""
        info = self._loop.run_until_complete(self._sub.consumer_info())
        return int(info.num_pending)

    def dead_letter(self, message: Message, reason: str) -> None:
        """Terminate it: JetStream never delivers it again (and advises on it)."""
        self._loop.run_until_complete(message.handle.term())

    def close(self) -> None:
        """See `Consumer.close`."""
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._nc.close())
        self._loop.close()


class MqttConsumer:
    """An MQTT 5 persistent session with a QoS 1 subscription and manual PUBACKs."""

    def __init__(self, endpoint: Endpoint, source: Any, name: str) -> None:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.topic = source.topic
        self.dead_topic = f"orchestrion/dead/{name}"
        self._queue: queues.Queue[Any] = queues.Queue()
        self._client = mqtt_client(endpoint, client_id=f"orchestrion-{name}")
        self._client.manual_ack_set(True)
        self._client.on_message = lambda client, userdata, msg: self._queue.put(msg)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 7 * 24 * 3600  # the broker keeps QoS 1 messages for us
        mqtt_connect(self._client, endpoint, timeout=10.0, clean_start=False, properties=props)
        self._client.subscribe(self.topic, qos=1)

    def fetch(self, limit: int, timeout: float) -> list[Message]:
        """See `Consumer.fetch`."""
        out: list[Message] = []
        try:
            first = self._queue.get(timeout=timeout)
        except queues.Empty:
            return out
        out.append(self._message(first))
        while len(out) < limit:
            try:
                out.append(self._message(self._queue.get_nowait()))
            except queues.Empty:
                break
        return out

    def _message(self, msg: Any) -> Message:
        props = getattr(msg, "properties", None)
        headers = dict(getattr(props, "UserProperty", None) or [])
        return Message(
            broker="mqtt",
            id="",
            body=msg.payload,
            headers=headers,
            destination=msg.topic,
            redelivered=bool(msg.dup),
            handle=msg,
        )

    def ack(self, message: Message) -> None:
        """See `Consumer.ack`: the PUBACK goes only now."""
        self._client.ack(message.handle.mid, message.handle.qos)

    def lag(self) -> int | None:
        """MQTT says nothing of what waits."""
        return None

    def dead_letter(self, message: Message, reason: str) -> None:
        """Republish it to ``orchestrion/dead/<trigger>`` with the reason, then ack it."""
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = [("reason", reason[:500]), ("topic", message.destination)]
        self._client.publish(self.dead_topic, message.body, qos=1, properties=props)
        self.ack(message)

    def close(self) -> None:
        """See `Consumer.close`."""
        with contextlib.suppress(Exception):
            self._client.disconnect()
        self._client.loop_stop()

"""Publish one message, waiting for the broker's acknowledgement where it gives one:
RabbitMQ publisher confirms (a mandatory message no queue takes is refused), a JetStream
ack, MQTT QoS 1 PUBACK, the id Redis gives a stream entry. Any refusal raises
`PublishError` with the broker's words; the task's retry policy decides what follows.

Each call opens its own connection and closes it: a publish task is one message, and a
connection shared across attempts would outlive a rotated password. The client libraries
are imported on first use.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from typing import Any

from orchestrion.brokers.endpoint import Endpoint
from orchestrion.errors import TaskError
from orchestrion.spec.actions import PublishAction

__all__ = ["PublishError", "encode_body", "publish"]


class PublishError(TaskError):
    """The broker could not be reached or refused the message."""


def encode_body(body: Any) -> tuple[bytes, str]:
    """The bytes sent and their content type: a string as UTF-8 text, anything else JSON."""
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    return json.dumps(body, separators=(",", ":")).encode("utf-8"), "application/json"


def publish(endpoint: Endpoint, action: PublishAction, *, timeout: float) -> dict[str, Any]:
    """Send `action`'s (rendered) message through `endpoint`; what the broker said of it."""
    if endpoint.kind != action.broker:
        raise PublishError(
            f"connection {endpoint.name!r} is a {endpoint.kind} connection,"
            f" the task publishes to {action.broker}"
        )
    payload, content_type = encode_body(action.body)
    send = _SENDERS[action.broker]
    try:
        receipt = send(endpoint, action, payload, content_type, timeout)
    except PublishError:
        raise
    except Exception as exc:  # the clients raise their own types; keep their words
        raise PublishError(
            f"{action.broker} publish to {action.destination!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return {"broker": action.broker, "destination": action.destination, **receipt}


def _redis(
    endpoint: Endpoint, action: PublishAction, payload: bytes, ctype: str, timeout: float
) -> dict[str, Any]:
    client = redis_client(endpoint, timeout=timeout)
    try:
        fields: dict[str, Any] = {"body": payload}
        if action.headers:
            fields["headers"] = json.dumps(dict(action.headers))
        message_id = client.xadd(action.destination, fields)
    finally:
        client.close()
    text = message_id.decode() if isinstance(message_id, bytes) else str(message_id)
    return {"message_id": text}


def redis_client(endpoint: Endpoint, *, timeout: float | None) -> Any:
    """A Redis client for `endpoint` (TLS options applied; the password from its secret)."""
    import redis

    options: dict[str, Any] = {
        "username": endpoint.username,
        "password": endpoint.password_text(),
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout or 10.0,
    }
    if endpoint.uses_tls:
        options["ssl"] = True
        options["ssl_ca_certs"] = endpoint.tls.get("ca_file")
        options["ssl_certfile"] = endpoint.tls.get("cert_file")
        options["ssl_keyfile"] = endpoint.tls.get("key_file")
        options["ssl_cert_reqs"] = "none" if endpoint.tls.get("insecure") else "required"
    return redis.Redis.from_url(endpoint.url, **options)


def rabbit_parameters(endpoint: Endpoint, *, timeout: float) -> Any:
    """pika's connection parameters for `endpoint`."""
    import pika

    params = pika.URLParameters(endpoint.url)
    if endpoint.username is not None:
        params.credentials = pika.PlainCredentials(
            endpoint.username, endpoint.password_text() or ""
        )
    params.socket_timeout = timeout
    params.blocked_connection_timeout = timeout
    params.connection_attempts = 1
    context = endpoint.ssl_context()
    if context is not None:
        params.ssl_options = pika.SSLOptions(context, endpoint.host)
    return params


def _rabbitmq(
    endpoint: Endpoint, action: PublishAction, payload: bytes, ctype: str, timeout: float
) -> dict[str, Any]:
    import pika

    connection = pika.BlockingConnection(rabbit_parameters(endpoint, timeout=timeout))
    try:
        channel = connection.channel()
        channel.confirm_delivery()  # basic_publish now waits for the broker's ack or nack
        properties = pika.BasicProperties(
            content_type=ctype,
            delivery_mode=pika.DeliveryMode.Persistent,
            headers=dict(action.headers) or None,
        )
        try:
            channel.basic_publish(
                exchange=action.exchange or "",
                routing_key=action.destination,
                body=payload,
                properties=properties,
                mandatory=True,  # a message no queue would take is refused, not dropped
            )
        except pika.exceptions.UnroutableError:
            raise PublishError(
                f"rabbitmq refused the message: no queue is bound to {action.destination!r}"
                f" on exchange {action.exchange or '(default)'!r}"
            ) from None
        except pika.exceptions.NackError:
            raise PublishError("rabbitmq refused the message (nack)") from None
    finally:
        if connection.is_open:
            connection.close()
    return {"confirmed": True}


async def nats_connect(endpoint: Endpoint, *, timeout: float, **options: Any) -> Any:
    """A NATS connection for `endpoint`: user and password, or the secret as a token."""
    import nats

    login: dict[str, Any] = {}
    if endpoint.username is not None:
        login = {"user": endpoint.username, "password": endpoint.password_text()}
    elif endpoint.password is not None:
        login = {"token": endpoint.password_text()}

    async def _quiet(exc: Exception) -> None:
        return None  # errors surface as exceptions where they matter; do not print them

    return await nats.connect(
        endpoint.url,
        connect_timeout=max(1, int(timeout)),
        tls=endpoint.ssl_context(),
        error_cb=_quiet,
        **login,
        **options,
    )


def _nats(
    endpoint: Endpoint, action: PublishAction, payload: bytes, ctype: str, timeout: float
) -> dict[str, Any]:
    async def send() -> dict[str, Any]:
        nc = await nats_connect(
            endpoint, timeout=timeout, allow_reconnect=False, max_reconnect_attempts=0
        )
        try:
            headers = dict(action.headers) or None
            if action.jetstream:
                ack = await nc.jetstream().publish(
                    action.destination, payload, timeout=timeout, headers=headers
                )
                return {"stream": ack.stream, "sequence": ack.seq}
            await nc.publish(action.destination, payload, headers=headers)
            await nc.flush(timeout=max(1, int(timeout)))
            return {}
        finally:
            await nc.close()

    return asyncio.run(send())


def mqtt_client(endpoint: Endpoint, *, client_id: str = "", clean_start: bool = True) -> Any:
    """A paho MQTT 5 client for `endpoint` (not connected)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
    )
    if endpoint.username is not None:
        client.username_pw_set(endpoint.username, endpoint.password_text())
    context = endpoint.ssl_context()
    if context is not None:
        client.tls_set_context(context)
    return client


def mqtt_connect(client: Any, endpoint: Endpoint, *, timeout: float, **options: Any) -> Any:
    """Connect `client` and wait for the broker's CONNACK; `PublishError` with its reason
    code on a refusal. The network loop runs in paho's thread afterwards. Returns the
    CONNACK's flags (``session_present``)."""
    connected = threading.Event()
    answer: dict[str, Any] = {}

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        answer["reason"], answer["flags"] = reason, flags
        connected.set()

    client.on_connect = on_connect
    client.connect(endpoint.host, endpoint.port, keepalive=30, **options)
    client.loop_start()
    if not connected.wait(timeout):
        client.loop_stop()
        raise PublishError(f"mqtt broker at {endpoint.host}:{endpoint.port} did not answer")
    if answer["reason"].is_failure:
        client.loop_stop()
        raise PublishError(f"mqtt broker refused the connection: {answer['reason']}")
    return answer["flags"]


def _mqtt(
    endpoint: Endpoint, action: PublishAction, payload: bytes, ctype: str, timeout: float
) -> dict[str, Any]:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt_client(endpoint)
    mqtt_connect(client, endpoint, timeout=timeout)
    try:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ContentType = ctype
        if action.headers:
            props.UserProperty = list(action.headers.items())
        info = client.publish(action.destination, payload, qos=1, retain=action.retain,
                              properties=props)  # fmt: skip
        info.wait_for_publish(timeout)  # the PUBACK of QoS 1
        if not info.is_published():
            raise PublishError(f"mqtt broker did not acknowledge within {timeout:g} s")
        return {"message_id": info.mid}
    finally:
        client.disconnect()
        client.loop_stop()


_SENDERS: Mapping[str, Any] = {
    "redis": _redis,
    "rabbitmq": _rabbitmq,
    "nats": _nats,
    "mqtt": _mqtt,
}

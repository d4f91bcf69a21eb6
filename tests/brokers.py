"""The message brokers the messaging tests talk to, on loopback (issue 14).

`.ci/run` starts them through ``../shared/services.sh``. A test that needs one that is
not listening fails under ``CI=true`` and is skipped elsewhere, saying how to start it.
"""

from __future__ import annotations

import os
import socket

import pytest

#: kind -> (port, how to start it here)
BROKERS = {
    "redis": (6379, "bash ../shared/services.sh redis  (or: redis-server --daemonize yes)"),
    "rabbitmq": (5672, "bash ../shared/services.sh rabbitmq  (or: rabbitmq-server -detached)"),
    "nats": (4222, "bash ../shared/services.sh nats  (nats-server -js on 127.0.0.1:4222)"),
    "mqtt": (1883, "bash ../shared/services.sh mosquitto  (or: mosquitto -d)"),
}

URLS = {
    "redis": "redis://127.0.0.1:6379/0",
    "rabbitmq": "amqp://127.0.0.1:5672/%2F",
    "nats": "nats://127.0.0.1:4222",
    "mqtt": "mqtt://127.0.0.1:1883",
}


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def require(kind: str) -> None:
    """Fail (under CI) or skip unless the `kind` broker listens on its loopback port."""
    port, how = BROKERS[kind]
    if listening(port):
        return
    message = f"{kind} is not listening on 127.0.0.1:{port}; start it with: {how}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)

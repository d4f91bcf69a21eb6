"""A broker restarted while a trigger's consumer reads from it: every message still starts
exactly one run (issue 14).

For each broker (Redis, RabbitMQ, NATS JetStream, MQTT) half of the messages (CI: 200 in
all per broker; ``ORCHESTRION_FAULT_SCALE=full`` or ``ORCHESTRION_BROKER_RESTART_MESSAGES``:
more) wait at the broker when a real ``orchestrion scheduler`` process starts consuming; as
soon as the first run exists the broker is stopped, left down a moment and started again;
then the other half is sent. The consumer must notice, reconnect by itself (with
back-off) and carry on: in the end the runs' ``order_id`` values are exactly the message
ids, each once, the scheduler process never exited, its consumer reports ``running`` again,
and the broker holds nothing unacknowledged.

The brokers are restarted gracefully, as an operator would: Redis with ``SHUTDOWN SAVE``
(the loopback Redis runs without persistence; a Redis that loses its data on restart loses
its streams, which no consumer can undo), RabbitMQ with ``rabbitmqctl shutdown`` (the queue
is durable and the messages persistent), NATS and Mosquitto with SIGTERM to the process
listening on the port (JetStream's file store and Mosquitto's persistence keep the stream
and the session). They are started with the commands of ``../shared/services.sh``, and
started again in a ``finally`` whatever happens.

Marked ``serial``: a broker restart breaks every other test using that broker; the fault
suite runs alone, one test at a time (scripts/test).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.brokers.publish import rabbit_parameters, redis_client
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.store.records import RunFilter
from orchestrion.triggers.consumers import _consumer_name
from tests import brokers
from tests.broker_source import KINDS, Source, endpoint
from tests.fault.conftest import scale
from tests.helpers import database_url_for

MESSAGES = int(os.environ.get("ORCHESTRION_BROKER_RESTART_MESSAGES") or scale(200, 1_000))
LEASE = 2.0
#: How long a broker stays down (the consumer fails and backs off meanwhile).
DOWN = 1.5


def _wait(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    log: Path | None = None,
    every: float = 0.2,
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            tail = f"; log:\n{log.read_text()[-3000:]}" if log is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{tail}")
        time.sleep(every)


def _listener_pid(port: int) -> int | None:
    """The pid of the process listening on 127.0.0.1:`port` (ss), if any."""
    out = subprocess.run(
        ["ss", "-Htlnp", f"sport = :{port}"], capture_output=True, text=True, check=True
    ).stdout
    for part in out.split("pid=")[1:]:
        return int(part.split(",")[0])
    return None


def _terminate(port: int) -> None:
    pid = _listener_pid(port)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    _wait(f"the process on port {port} to exit", lambda: not brokers.listening(port), 60)


def _rabbit_up() -> bool:
    import pika

    try:
        pika.BlockingConnection(rabbit_parameters(endpoint("rabbitmq"), timeout=2)).close()
    except Exception:
        return False
    return True


def _redis_up() -> bool:
    """Redis answers PING (not LOADING: it has read its dump)."""
    client = redis_client(endpoint("redis"), timeout=2)
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


class Broker:
    """Stops and starts one loopback broker the way an operator would."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.port = brokers.BROKERS[kind][0]
        self.redis_dir = ""

    def stop(self, *, save: bool = True) -> None:
        if self.kind == "redis":
            client = redis_client(endpoint("redis"), timeout=10)
            self.redis_dir = str(client.config_get("dir")["dir"])
            with contextlib.suppress(Exception):  # the connection drops as it exits
                client.shutdown(save=save, nosave=not save)
            _wait("redis to exit", lambda: not brokers.listening(self.port), 60)
        elif self.kind == "rabbitmq":
            subprocess.run(
                ["rabbitmqctl", "shutdown"], check=True, capture_output=True, timeout=120
            )
            _wait("rabbitmq to exit", lambda: not brokers.listening(self.port), 60)
        else:
            _terminate(self.port)

    def start(self) -> None:
        if self.up():
            return
        if self.kind == "redis":  # as services.sh, reading the dump SHUTDOWN SAVE wrote
            where = self.redis_dir or "/tmp"
            subprocess.run(
                ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1",
                 "--port", "6379", "--save", "", "--appendonly", "no", "--dir", where,
                 "--logfile", "/tmp/redis-ci.log"],
                check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            _wait("redis to answer", self.up, 60)
            # the dump has been read (PING answers only once it is; the port opens before):
            # a later restart without SHUTDOWN SAVE must not revive it
            with contextlib.suppress(OSError):
                Path(where, "dump.rdb").unlink()
        elif self.kind == "rabbitmq":
            subprocess.run(["rabbitmq-server", "-detached"], check=True, timeout=60)
            _wait("rabbitmq to accept AMQP connections", self.up, 120)
        elif self.kind == "nats":
            subprocess.run(
                ["start-stop-daemon", "--start", "--oknodo", "--background", "--exec",
                 "/usr/sbin/nats-server", "--", "-a", "127.0.0.1", "-p", "4222", "-js",
                 "-sd", "/var/lib/nats-server", "-l", "/var/log/nats-server.log"],
                check=True, timeout=60,
            )  # fmt: skip
            _wait("nats to answer", self.up, 60)
        else:
            subprocess.run(
                ["mosquitto", "-d", "-c", "/etc/mosquitto/mosquitto.conf"], check=True, timeout=60
            )
            _wait("mosquitto to answer", self.up, 60)

    def up(self) -> bool:
        if self.kind == "rabbitmq":
            return brokers.listening(self.port) and _rabbit_up()
        if self.kind == "redis":
            return brokers.listening(self.port) and _redis_up()
        return brokers.listening(self.port)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(database_url=database_url_for(tmp_path / "r.db"))
    with App(settings).open() as app:
        yield app


def _scheduler(db: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "ORCHESTRION_LEASE_SECONDS": str(LEASE), "PYTHONUNBUFFERED": "1"}
    env.pop("ORCHESTRION_DATABASE_URL", None)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "orchestrion.cli.main", "scheduler", "--db", db],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _register(app: App, kind: str, source: Source) -> tuple[str, str]:
    """The trigger's workflow, registered; its name and trigger key."""
    app.connections.put_connection("shop", "bus", kind=kind, url=brokers.URLS[kind])
    spec = load_yaml_text(
        f"""
name: restarted_{kind}
namespace: shop
params: {{order_id: {{type: string}}}}
triggers:
  - broker: {source.trigger()}
    params: {{order_id: "{{{{ message.json.id }}}}"}}
tasks:
  t: {{shell: ["true"]}}
"""
    )
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    key = spec.triggers[0].key(spec.name)
    source.setup(_consumer_name(spec.name, key))
    return spec.name, key


@pytest.mark.serial
@pytest.mark.parametrize("kind", KINDS)
def test_broker_restarted_mid_way_every_message_starts_one_run(
    app: App, tmp_path: Path, kind: str
) -> None:
    brokers.require(kind)
    broker = Broker(kind)
    source = Source(kind)
    workflow, key = _register(app, kind, source)
    log = tmp_path / "scheduler.log"
    half = MESSAGES // 2
    # the first half waits at the broker (the group or session exists), so the broker is
    # stopped while the consumer works through it, not after
    send = source.sender()
    for i in range(half):
        send(i)
    source.close_senders()
    proc = _scheduler(app.store.url, log)

    def runs() -> list[Any]:
        return app.runs.list_runs(RunFilter(workflow=workflow, limit=10 * MESSAGES))

    def consumer_state() -> str | None:
        for record in app.triggers.list_consumers():
            if record.key == key:
                return record.state
        return None

    try:
        _wait("the first run", runs, 60, log, every=0.02)
        before = len(runs())
        began = time.monotonic()
        try:
            broker.stop()
            time.sleep(DOWN)
        finally:
            broker.start()
        outage = time.monotonic() - began
        send = source.sender()
        for i in range(half, MESSAGES):
            send(i)
        source.close_senders()
        try:
            _wait(f"{MESSAGES} runs", lambda: len(runs()) >= MESSAGES, 120, log)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{len(runs())} runs; {source.describe()}") from None
        time.sleep(LEASE + 1)  # a second run for anything would show by now
        ids = [r.params["order_id"] for r in runs()]
        tail = log.read_text()[-3000:]
        assert len(ids) == len(set(ids)), f"a message started two runs; log:\n{tail}"
        assert sorted(ids) == sorted(f"o-{i}" for i in range(MESSAGES)), (
            f"{MESSAGES - len(set(ids))} message(s) lost; log:\n{tail}"
        )
        assert proc.poll() is None, f"the scheduler exited; log:\n{tail}"
        _wait("the consumer to report running", lambda: consumer_state() == "running", 10)
        if kind != "mqtt":  # (asking MQTT would take the session over)
            # JetStream delivers again what it saw no ack for once the ack wait (30 s) ends
            _wait("the broker to hold nothing unacknowledged", lambda: not source.unacked(), 60)
        _stop(proc)
        assert source.unacked() == 0
        print(
            f"{kind}: {before}/{MESSAGES} runs when the broker stopped, back after"
            f" {outage:.1f} s; {MESSAGES} runs, one per message"
        )
    finally:
        _stop(proc)
        broker.start()  # whatever happened, leave the broker running
        source.cleanup()


@pytest.mark.serial
def test_redis_restarted_without_its_data_skips_nothing_sent_afterwards(
    app: App, tmp_path: Path
) -> None:
    """Redis restarted without persistence loses the stream and the group. What it held
    is gone with it, but what is sent once it is back, even before the consumer has
    reconnected, must start runs: the consumer makes the group again from the stream's
    start, not its end."""
    brokers.require("redis")
    broker = Broker("redis")
    source = Source("redis")
    workflow, _ = _register(app, "redis", source)
    log = tmp_path / "scheduler.log"
    proc = _scheduler(app.store.url, log)
    half = MESSAGES // 2

    def runs() -> list[Any]:
        return app.runs.list_runs(RunFilter(workflow=workflow, limit=10 * MESSAGES))

    try:
        send = source.sender()
        for i in range(half):
            send(i)
        source.close_senders()
        _wait(f"{half} runs", lambda: len(runs()) >= half, 60, log)
        try:
            broker.stop(save=False)
        finally:
            broker.start()
        send = source.sender()  # at once: the consumer is still backing off
        for i in range(half, MESSAGES):
            send(i)
        source.close_senders()
        try:
            _wait(f"{MESSAGES} runs", lambda: len(runs()) >= MESSAGES, 60, log)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{len(runs())} runs; {source.describe()}") from None
        time.sleep(LEASE + 1)
        ids = [r.params["order_id"] for r in runs()]
        assert sorted(ids) == sorted(f"o-{i}" for i in range(MESSAGES))
    finally:
        _stop(proc)
        broker.start()
        source.cleanup()

"""SIGKILL the process running a broker trigger's consumer mid-stream, again and again: no
message is lost and none starts two runs (issue 14).

A real ``orchestrion scheduler`` process consumes a Redis stream, a RabbitMQ queue, a
NATS JetStream subject or an MQTT topic (a persistent session, QoS 1) while a thread sends
300 distinct messages (1,000 with ``ORCHESTRION_FAULT_SCALE=full``); the process is killed
with SIGKILL four times at random moments (so fetched-but-unrecorded and
recorded-but-unacknowledged messages are both likely) and started again; the new process
takes the trigger's lease once the dead one's lapses. Afterwards every message has exactly
one run, and the broker holds nothing unacknowledged (checked with the scheduler stopped:
MQTT is asked by resuming the consumer's session, which hands over whatever it kept). MQTT
gives messages no id: each is known by a digest of its topic and body, all distinct here.
SQLite, or PostgreSQL with
``ORCHESTRION_TEST_DATABASE=postgres``. The seed is printed (``ORCHESTRION_CRASH_SEED``).

With two scheduler processes, killing the one holding the trigger's lease moves the
consumer to the other within the lease time, and again no message is lost or doubled.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.store.records import RunFilter
from orchestrion.triggers.consumers import _consumer_name
from tests import brokers
from tests.broker_source import KINDS, Source
from tests.helpers import database_url_for

MESSAGES = 1000 if os.environ.get("ORCHESTRION_FAULT_SCALE") == "full" else 300
KILLS = 4
LEASE = 2.0


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    settings = Settings(database_url=database_url_for(tmp_path / "k.db"))
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


@pytest.mark.parametrize("kind", KINDS)
def test_sigkilled_consumer_loses_nothing_and_starts_nothing_twice(
    app: App, tmp_path: Path, kind: str
) -> None:
    brokers.require(kind)
    seed = int(os.environ.get("ORCHESTRION_CRASH_SEED", random.randrange(1 << 30)))
    print(f"seed {seed}")
    rng = random.Random(seed)
    source = Source(kind)
    app.connections.put_connection("shop", "bus", kind=kind, url=brokers.URLS[kind])
    spec = load_yaml_text(
        f"""
name: killed_{kind}
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
    db, log = app.store.url, tmp_path / "scheduler.log"
    proc = _scheduler(db, log)
    send = source.sender()
    sent = threading.Event()

    def produce() -> None:
        for i in range(MESSAGES):
            send(i)
            time.sleep(rng.uniform(0, 0.02))
        sent.set()

    def runs() -> list[Any]:
        return app.runs.list_runs(RunFilter(workflow=spec.name, limit=10 * MESSAGES))

    try:
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.0))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc = _scheduler(db, log)  # waits for the dead one's lease to lapse
        assert sent.wait(60), "the producer did not finish"
        producer.join()
        deadline = time.monotonic() + 90
        while len(runs()) < MESSAGES and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(LEASE + 1)  # a second run for anything would show by now
        found = runs()
        ids = [r.params["order_id"] for r in found]
        assert len(ids) == len(set(ids)), "a message started two runs"
        assert sorted(ids) == sorted(f"o-{i}" for i in range(MESSAGES)), (
            f"{MESSAGES - len(set(ids))} message(s) lost; log:\n{log.read_text()[-3000:]}"
        )
        _stop(proc)
        assert source.unacked() == 0
    finally:
        _stop(proc)
        source.cleanup()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _holder(app: App, key: str) -> int | None:
    """The pid of the scheduler holding the trigger's lease (while it is valid)."""
    rows = app.store.backend.read(  # type: ignore[attr-defined]
        "SELECT holder, expires_at FROM leases WHERE name = ?", (f"broker.{key}",)
    )
    if not rows or rows[0]["expires_at"] < time.time():
        return None
    return int(str(rows[0]["holder"]).split(":")[1])


def test_two_schedulers_the_consumer_fails_over_when_the_holder_dies(
    app: App, tmp_path: Path
) -> None:
    brokers.require("redis")
    source = Source("redis")
    app.connections.put_connection("shop", "bus", kind="redis", url=brokers.URLS["redis"])
    spec = load_yaml_text(
        f"""
name: failover
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
    db = app.store.url
    procs = [_scheduler(db, tmp_path / "s0.log"), _scheduler(db, tmp_path / "s1.log")]
    send = source.sender()
    try:
        deadline = time.monotonic() + 30
        while _holder(app, key) not in {p.pid for p in procs}:
            assert time.monotonic() < deadline, "no scheduler took the trigger"
            time.sleep(0.1)
        for i in range(100):
            send(i)
        leader = next(p for p in procs if p.pid == _holder(app, key))
        other = next(p for p in procs if p is not leader)
        leader.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        leader.wait(timeout=10)
        for i in range(100, 200):
            send(i)
        while _holder(app, key) != other.pid:
            assert time.monotonic() - killed_at < LEASE + 5, "the consumer did not fail over"
            time.sleep(0.05)
        failover = time.monotonic() - killed_at
        print(f"failover after {failover:.2f} s (lease {LEASE} s)")
        assert failover <= LEASE + 4.0  # a tick (1 s) and a loaded machine
        ids: list[str] = []
        deadline = time.monotonic() + 60
        while len(ids) < 200 and time.monotonic() < deadline:
            ids = [
                r.params["order_id"]
                for r in app.runs.list_runs(RunFilter(workflow="failover", limit=1000))
            ]
            time.sleep(0.2)
        time.sleep(1.0)
        ids = [
            r.params["order_id"]
            for r in app.runs.list_runs(RunFilter(workflow="failover", limit=1000))
        ]
        assert len(ids) == len(set(ids)) == 200
        _stop(other)
        assert source.unacked() == 0
    finally:
        for proc in procs:
            _stop(proc)
        source.cleanup()

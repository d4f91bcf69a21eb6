"""Background threads report store trouble instead of dying (issue 12, finding 9a)."""

from __future__ import annotations

import logging
import threading

import pytest

from orchestrion.errors import StoreError
from orchestrion.triggers.maintenance import backoff
from orchestrion.worker.health import StoreHealth, guarded, next_delay


def test_health_tracks_the_oldest_failing_kind_until_it_succeeds() -> None:
    health = StoreHealth()
    assert health.trouble(100.0) is None
    health.failed("heartbeat", StoreError("disk full"), 10.0)
    health.failed("report", StoreError("disk full again"), 12.0)
    health.failed("heartbeat", StoreError("still full"), 13.0)  # the clock keeps its start
    assert health.trouble(20.0) == (10.0, "heartbeat: still full")
    health.succeeded("heartbeat")
    assert health.trouble(20.0) == (8.0, "heartbeat: still full")
    health.succeeded("report")
    assert health.trouble(20.0) is None


def test_a_guarded_thread_records_its_death(caplog: pytest.LogCaptureFixture) -> None:
    health = StoreHealth()

    def broken() -> None:
        raise RuntimeError("cannot rollback - no transaction is active")

    thread = threading.Thread(target=guarded("claim", broken, health))
    with caplog.at_level(logging.CRITICAL, logger="orchestrion.worker"):
        thread.start()
        thread.join()
    assert health.fatal == (
        "the worker's claim thread stopped: RuntimeError: cannot rollback - no transaction"
        " is active"
    )
    assert [r.getMessage() for r in caplog.records] == ["worker.thread_died"]


def test_back_off_doubles_up_to_its_cap() -> None:
    delays, delay = [], 0.0
    for _ in range(6):
        delay = next_delay(delay, 1.0, 10.0)
        delays.append(delay)
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]
    assert [backoff(2.0, n) for n in (0, 1, 2, 3, 4, 40)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]

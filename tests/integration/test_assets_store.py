"""Asset events in the finish transaction and stale assets, on real databases (SQLite
files, or PostgreSQL schemas with ``ORCHESTRION_TEST_DATABASE=postgres``), with a fake
clock: only a recorded success writes events (a superseded report and a result too large
to keep write none); a stale asset gives one ``asset.stale`` event, which notification
rules can match, until it is produced again and goes stale once more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.clock import FakeClock
from orchestrion.spec.model import AssetRef, ScheduleSpec
from orchestrion.store.records import Outcome, Produced
from orchestrion.store.sql.advance import MAX_RESULT_BYTES
from orchestrion.triggers.assets import AssetDuty
from orchestrion.triggers.scheduler import Scheduler
from tests.helpers import Driver, py, wf

HOUR = 3600.0
SPEC = wf(
    "producer",
    py("load", produces=(AssetRef(key="lake.orders", max_age=HOUR),)),
    py("other", produces=(AssetRef(key="lake.other"),)),
)


@pytest.fixture
def drv(tmp_path: Path) -> Iterator[Driver]:
    d = Driver(tmp_path / "assets.db", FakeClock(1_000_000.0 * HOUR))
    yield d
    d.close()


def _finish(drv: Driver, task_run_id: int, epoch: int, result: object, key: str) -> None:
    made = (Produced(key, "p1", {"rows": 2}),)
    outcome = Outcome(
        task_run_id=task_run_id, epoch=epoch, status="succeeded", result=result, assets=made
    )
    drv.store.runs.finish([outcome], now=drv.now)


def test_only_recorded_successes_write_asset_events(drv: Driver) -> None:
    drv.start(SPEC)
    claims = {c.task_name: c for c in drv.claim()}
    load, other = claims["load"], claims["other"]
    _finish(drv, load.task_run_id, load.epoch + 1, 1, "lake.orders")  # a fenced attempt
    assert drv.store.assets.asset_events("default", "lake.orders") == []
    _finish(drv, load.task_run_id, load.epoch, 1, "lake.orders")
    (event,) = drv.store.assets.asset_events("default", "lake.orders")
    assert (event.partition, event.metadata, event.attempt) == ("p1", {"rows": 2}, 1)
    assert (event.workflow, event.task_name, event.run_id) == ("producer", "load", load.run_id)
    _finish(drv, load.task_run_id, load.epoch, 1, "lake.orders")  # a repeat: superseded
    assert len(drv.store.assets.asset_events("default", "lake.orders")) == 1
    _finish(drv, other.task_run_id, other.epoch, "x" * (MAX_RESULT_BYTES + 1), "lake.other")
    assert drv.store.assets.asset_events("default", "lake.other") == []  # failed, not made
    (summary,) = drv.store.assets.list_assets(["default"])
    assert (summary.asset, summary.events) == ("lake.orders", 1)
    kinds = [e.kind for e in drv.store.reads.list_events(load.run_id)]
    assert kinds.count("asset.updated") == 1


def test_a_stale_asset_is_announced_once_per_staleness(drv: Driver) -> None:
    drv.register(SPEC)
    duty = AssetDuty(drv.store.assets)
    current = [(SPEC, drv.now)]
    _, position = drv.store.notifications.notable_events(-1)  # a rule's start: now
    duty.tick(current, (), drv.now + HOUR / 2)
    duty.tick(current, (), drv.now + 2 * HOUR)  # never produced, current for over an hour
    duty.tick(current, (), drv.now + 3 * HOUR)
    drv.clock.advance(3 * HOUR)
    drv.start(SPEC)
    claims = {c.task_name: c for c in drv.claim()}
    _finish(drv, claims["load"].task_run_id, claims["load"].epoch, 1, "lake.orders")
    duty.tick(current, (), drv.now + HOUR / 2)  # fresh again
    duty.tick(current, (), drv.now + 2 * HOUR)  # stale again: a second notice
    duty.tick(current, (), drv.now + 5 * HOUR)
    events, _ = drv.store.notifications.notable_events(position)
    stale = [e for e in events if e.kind == "asset.stale"]
    assert [e.data["last_event"] for e in stale] == [0, 1]
    assert {e.workflow for e in stale} == {"producer"}


def test_a_schedule_that_requires_fresh_inputs_waits_for_them(drv: Driver) -> None:
    consumer = wf(
        "daily",
        py("report"),
        schedules=(ScheduleSpec(every=HOUR, require_fresh=("lake.orders",)),),
    )
    drv.register(SPEC, consumer)
    sched = Scheduler(
        drv.store.triggers, drv.store.workflows, drv.store.runs, drv.clock, "s",
        use_leases=False, assets=drv.store.assets,
    )  # fmt: skip

    def fires() -> list[float]:
        return [f.nominal for f in drv.store.triggers.list_fires(limit=10)]

    sched.tick()  # the schedule's history starts now
    drv.clock.advance(HOUR + 1)
    assert sched.tick().fires == [] and fires() == []  # due, but no input yet: it waits
    drv.clock.advance(600)
    assert sched.tick().fires == []
    drv.start(SPEC)
    load = next(c for c in drv.claim() if c.task_name == "load")
    _finish(drv, load.task_run_id, load.epoch, 1, "lake.orders")
    (fired,) = sched.tick().fires  # fresh now: the waiting fire goes, with its nominal time
    assert fired.state == "started" and fired.nominal % HOUR == 0
    drv.clock.advance(HOUR)
    assert sched.tick().fires == []  # nothing new since that fire: the next one waits
    drv.start(SPEC)
    load = next(c for c in drv.claim() if c.task_name == "load")
    _finish(drv, load.task_run_id, load.epoch, 1, "lake.orders")
    assert len(sched.tick().fires) == 1

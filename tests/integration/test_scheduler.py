"""The scheduler on real databases (SQLite files, or PostgreSQL schemas with
``ORCHESTRION_TEST_DATABASE=postgres``) with a fake clock: restarts inside DST changes,
overlap and pause, two schedulers over a day of 200 schedules, backfills, leases."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from orchestrion.clock import FakeClock
from orchestrion.errors import NotFound, ParameterError
from orchestrion.spec.model import ParamSpec, ParamType, ScheduleSpec, TriggerSpec, WorkflowSpec
from orchestrion.store import open_store
from orchestrion.store.records import AuditFilter, RunFilter
from orchestrion.store.stores import Stores
from orchestrion.triggers.cron import fires_between, iso
from orchestrion.triggers.leases import DutyLease
from orchestrion.triggers.maintenance import Maintenance
from orchestrion.triggers.scheduler import BACKFILL_PRIORITY, Scheduler
from tests.helpers import Driver, database_url_for, make_app, py, wf

MINUTE, HOUR, DAY = 60.0, 3600.0, 86400.0


class Closer:
    """Closes every store, driver and app a test opened, also when it fails."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def __call__(self, item: Any) -> Any:
        self.items.append(item)
        return item


@pytest.fixture
def closer() -> Iterator[Closer]:
    c = Closer()
    yield c
    for item in reversed(c.items):
        item.close()


def at(zone: str, day: dt.date, hm: str = "00:00", fold: int = 0) -> float:
    hour, minute = map(int, hm.split(":"))
    when = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone))
    return when.replace(fold=fold).timestamp()


def expected(spec: WorkflowSpec, start: float, end: float) -> set[tuple[str, float]]:
    """Every (schedule key, nominal time) in (start, end]."""
    return {
        (s.key(spec.name), t)
        for s in spec.schedules
        for t in fires_between(s, start + 1e-3, end, 100_000)
    }


def fired(store: Stores) -> Counter[tuple[str, float]]:
    return Counter((f.schedule_key, f.nominal) for f in store.triggers.list_fires(limit=1_000_000))


def all_runs(store: Stores, workflow: str | None = None) -> list[Any]:
    return store.reads.list_runs(RunFilter(workflow=workflow, limit=1000))


def run_triggers(store: Stores) -> Counter[str]:
    """How many runs each trigger started, read straight from the table."""
    rows = store.backend.read("SELECT trigger AS t, count(*) AS n FROM runs GROUP BY trigger")  # type: ignore[attr-defined]
    return Counter({r["t"]: int(r["n"]) for r in rows})


# --------------------------------------------------------------------------- DST restarts


@pytest.mark.parametrize(
    ("zone", "day", "crash"),
    [
        ("America/New_York", dt.date(2026, 11, 1), ("01:20", 1)),  # in the repeated hour
        ("America/New_York", dt.date(2026, 3, 8), ("01:50", 0)),  # down across the gap
        ("Australia/Sydney", dt.date(2026, 4, 5), ("02:10", 0)),  # first pass, southern
        ("Europe/Berlin", dt.date(2026, 10, 25), ("02:40", 1)),
    ],
)
def test_a_restart_inside_a_dst_change_fires_each_nominal_time_exactly_once(
    tmp_path: Path, closer: Closer, zone: str, day: dt.date, crash: tuple[str, int]
) -> None:
    schedules = tuple(
        ScheduleSpec(cron=expr, timezone=zone, catchup="all")
        for expr in ("30 1 * * *", "30 2 * * *", "0 * * * *", "*/20 1-3 * * *")
    )
    spec = wf("dst", py("a"), schedules=schedules)
    start = at(zone, day - dt.timedelta(days=1), "12:00")
    end = at(zone, day + dt.timedelta(days=1), "12:00")
    clock = FakeClock(start)
    db = database_url_for(tmp_path / "db.sqlite")
    first_store = open_store(db)
    first_store.workflows.register_workflow(spec, source=None, now=start)
    first = Scheduler(first_store.triggers, first_store.workflows, first_store.runs, clock, "first")
    while clock.now() < at(zone, day, crash[0], crash[1]):
        clock.advance(5 * MINUTE)
        first.tick()
    first_store.close()  # killed: its leases are never released
    clock.advance(47 * MINUTE)
    store = closer(open_store(db))  # a new process on the same database
    second = Scheduler(store.triggers, store.workflows, store.runs, clock, "second")
    second.tick()
    while clock.now() < end:
        clock.advance(5 * MINUTE)
        second.tick()
    counts = fired(store)
    assert set(counts.values()) == {1}
    assert set(counts) == expected(spec, start, clock.now())
    runs = all_runs(store, "dst")
    assert len(runs) == len(counts)
    assert set(Counter(r.trigger for r in runs).values()) == {1}
    for schedule in schedules[:2]:  # the daily ones: once per local day
        days = [
            dt.datetime.fromtimestamp(t, ZoneInfo(zone)).date()
            for key, t in counts
            if key == schedule.key("dst")
        ]
        assert sorted(days) == [day, day + dt.timedelta(days=1)][: len(days)]
        assert day in days


# --------------------------------------------------------------------------- policies


def _overlap_driver(tmp_path: Path, closer: Closer, overlap: str) -> tuple[Driver, Scheduler]:
    start = 1_800_000_000.0 - 1_800_000_000.0 % 600 + 60
    drv = closer(Driver(tmp_path / "db.sqlite", FakeClock(start)))
    drv.register(
        wf(
            "ov",
            py("a"),
            schedules=(ScheduleSpec.model_validate({"cron": "*/10 * * * *", "overlap": overlap}),),
        )
    )
    sched = Scheduler(drv.store.triggers, drv.store.workflows, drv.store.runs, drv.clock, "s")
    for _ in range(3):
        drv.clock.advance(600)
        sched.tick()
    return drv, sched


def _fire_states(drv: Driver) -> list[str]:
    return [f.state for f in sorted(drv.store.triggers.list_fires(), key=lambda f: f.nominal)]


@pytest.mark.parametrize(
    ("overlap", "fires", "runs"),
    [
        ("allow", ["started"] * 3, ["running"] * 3),
        ("skip", ["started", "skipped", "skipped"], ["running"]),
        ("cancel_previous", ["started"] * 3, ["canceled", "canceled", "running"]),
        ("queue", ["started", "queued", "queued"], ["running"]),
    ],
)
def test_overlap_policies(
    tmp_path: Path, closer: Closer, overlap: str, fires: list[str], runs: list[str]
) -> None:
    drv, _ = _overlap_driver(tmp_path, closer, overlap)
    assert _fire_states(drv) == fires
    assert [r.state.value for r in reversed(all_runs(drv.store))] == runs


def test_queued_fires_start_in_order_once_the_previous_run_ends(
    tmp_path: Path, closer: Closer
) -> None:
    drv, sched = _overlap_driver(tmp_path, closer, "queue")
    fires = sorted(drv.store.triggers.list_fires(), key=lambda f: f.nominal)
    for n in (1, 2):
        sched.tick()
        assert _fire_states(drv).count("started") == n  # still behind the running one
        drv.succeed(drv.claim_one("a"))
        report = sched.tick()
        assert len(report.dequeued) == 1
        run = drv.store.reads.get_run(report.dequeued[0])
        assert run.trigger == f"schedule:{fires[n].schedule_key}@{iso(fires[n].nominal)}"
        now_started = {f.nominal: f.run_id for f in drv.store.triggers.list_fires()}
        assert now_started[fires[n].nominal] == run.id
    assert _fire_states(drv) == ["started"] * 3


def test_paused_workflows_do_not_fire_and_catch_up_by_policy_when_unpaused(
    tmp_path: Path, closer: Closer
) -> None:
    start = 1_800_000_000.0 - 1_800_000_000.0 % HOUR
    drv = closer(Driver(tmp_path / "db.sqlite", FakeClock(start)))
    drv.register(wf("p", py("a"), schedules=(ScheduleSpec(cron="0 * * * *"),)))
    sched = Scheduler(drv.store.triggers, drv.store.workflows, drv.store.runs, drv.clock, "s")
    for _ in range(3):
        drv.clock.advance(HOUR)
        sched.tick()
    assert len(drv.store.triggers.list_fires()) == 3
    drv.store.workflows.set_paused("p", True, now=drv.now)
    for _ in range(5):
        drv.clock.advance(HOUR)
        assert sched.tick().fires == []
    drv.store.workflows.set_paused("p", False, now=drv.now)
    report = sched.tick()
    assert [f.nominal for f in report.fires] == [drv.now]  # catch-up "latest": one fire
    assert len(all_runs(drv.store)) == 4


def test_bad_params_record_a_failed_fire_instead_of_a_run(tmp_path: Path, closer: Closer) -> None:
    start = 1_800_000_000.0 - 1_800_000_000.0 % HOUR
    drv = closer(Driver(tmp_path / "db.sqlite", FakeClock(start)))
    needs = {"day": ParamSpec(type=ParamType.DATE, required=True)}
    drv.register(wf("b", py("a"), params=needs, schedules=(ScheduleSpec(cron="0 * * * *"),)))
    sched = Scheduler(drv.store.triggers, drv.store.workflows, drv.store.runs, drv.clock, "s")
    drv.clock.advance(HOUR)
    (fire,) = sched.tick().fires
    assert fire.state == "failed"
    assert fire.error is not None and "parameter 'day' is required" in fire.error
    assert all_runs(drv.store) == []


# --------------------------------------------------------------------------- two schedulers


ZONES = ("UTC", "America/New_York", "Europe/Berlin", "Australia/Sydney", "Australia/Adelaide",
         "Asia/Kolkata", "America/Los_Angeles")  # fmt: skip


def _two_hundred() -> list[WorkflowSpec]:
    specs = []
    for i in range(200):
        zone = ZONES[i % len(ZONES)]
        if i % 40 == 0:
            expr = "*/5 * * * *"
        elif i % 20 <= 8:
            expr = f"{i % 60} * * * *"
        else:
            expr = f"{i % 60} {i % 24} * * *"
        schedule = ScheduleSpec(cron=expr, timezone=zone, catchup="all")
        specs.append(wf(f"w{i:03d}", py("a"), schedules=(schedule,)))
    return specs


@pytest.mark.parametrize("mode", ["alternating_with_leases", "concurrent_without_leases"])
def test_two_schedulers_fire_every_schedule_and_time_exactly_once(
    tmp_path: Path, closer: Closer, mode: str
) -> None:
    start = dt.datetime(2026, 11, 1, tzinfo=dt.UTC).timestamp()  # New York falls back
    end = start + (DAY if mode.startswith("concurrent") else DAY / 3)
    clock = FakeClock(start)
    db = database_url_for(tmp_path / "db.sqlite")
    stores = [closer(open_store(db)), closer(open_store(db))]
    specs = _two_hundred()
    for spec in specs:
        stores[0].workflows.register_workflow(spec, source=None, now=start)
    leases = mode.startswith("alternating")
    scheds = [
        Scheduler(
            store.triggers,
            store.workflows,
            store.runs,
            clock,
            f"s{n}",
            lease_ttl=30.0,
            use_leases=leases,
        )
        for n, store in enumerate(stores)
    ]
    made: list[int] = [0, 0]
    with ThreadPoolExecutor(2) as pool:
        step = 0
        while clock.now() < end:
            clock.advance(2 * MINUTE)
            step += 1
            if leases:
                order = scheds if step % 2 else scheds[::-1]
                for sched in order:
                    made[scheds.index(sched)] += len(sched.tick().fires)
            else:
                reports = list(pool.map(lambda s: s.tick(), scheds))
                for n, report in enumerate(reports):
                    made[n] += len(report.fires)
    want: set[tuple[str, float]] = set()
    for spec in specs:
        want |= expected(spec, start, clock.now())
    counts = fired(stores[1])
    assert set(counts.values()) == {1}
    assert set(counts) == want
    assert sum(made) == len(want)  # no fire was reported by both
    if leases:
        assert min(made) > 0  # the duty really changed hands
    triggers = run_triggers(stores[0])
    assert sum(triggers.values()) == len(want)
    assert set(triggers.values()) == {1}
    # One scheduler audit record per run started, written with it: none twice, none lost.
    audited = stores[0].accounts.list_audit(AuditFilter(actor="scheduler", limit=100_000))
    assert len(audited) == len(want)
    assert len({r.object for r in audited}) == len(want)


def test_a_killed_leader_is_replaced_within_the_lease_time(tmp_path: Path, closer: Closer) -> None:
    clock = FakeClock(1_800_000_000.0 - 1_800_000_000.0 % HOUR)
    db = database_url_for(tmp_path / "db.sqlite")
    one, two = closer(open_store(db)), closer(open_store(db))
    one.workflows.register_workflow(
        wf("k", py("a"), schedules=(ScheduleSpec(cron="* * * * *"),)), source=None, now=clock.now()
    )
    leader, follower = (
        Scheduler(one.triggers, one.workflows, one.runs, clock, "leader"),
        Scheduler(two.triggers, two.workflows, two.runs, clock, "follower"),
    )
    assert "cron" in leader.tick().duties
    clock.advance(10)
    assert follower.tick().duties == []
    clock.advance(21)  # the leader died 31 s ago; its 30 s lease has lapsed
    report = follower.tick()
    assert "cron" in report.duties
    assert leader.tick().duties == []
    follower.release()  # a graceful stop hands over at once
    assert "cron" in leader.tick().duties


class _SlowCommits:
    """A trigger store on a slow disk: each call of `verb` takes `step` seconds of `clock`.
    Before the call numbered `at` it runs `stall` (another scheduler's tick in the middle
    of a pass)."""

    def __init__(self, inner: Any, clock: FakeClock, step: float, verb: str) -> None:
        self.inner = inner
        self.clock = clock
        self.step = step
        self.verb = verb
        self.calls = 0
        self.at = 0
        self.stall: Any = None

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name != self.verb:
            return attr

        def slow(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.calls == self.at:
                self.stall()
            self.clock.advance(self.step)
            return attr(*args, **kwargs)

        return slow


def _catching_up(
    tmp_path: Path, closer: Closer, step: float, max_catchup: int = 100
) -> tuple[FakeClock, Scheduler, Scheduler, Stores, _SlowCommits]:
    """A leader on a slow disk and a follower, and a minutely schedule current for 80
    minutes before anyone ticks: 80 fires are due (the last `max_catchup` of them made)."""
    start = 1_800_000_000.0 - 1_800_000_000.0 % HOUR
    clock = FakeClock(start)
    db = database_url_for(tmp_path / "db.sqlite")
    one, two = closer(open_store(db)), closer(open_store(db))
    schedule = ScheduleSpec(cron="* * * * *", catchup="all", max_catchup=max_catchup)
    one.workflows.register_workflow(wf("k", py("a"), schedules=(schedule,)), source=None, now=start)
    clock.advance(80 * MINUTE + 1)
    slow = _SlowCommits(one.triggers, clock, step, "fire_schedule")
    leader = Scheduler(slow, one.workflows, one.runs, clock, "leader", lease_ttl=30.0)
    follower = Scheduler(two.triggers, two.workflows, two.runs, clock, "follower", lease_ttl=30.0)
    return clock, leader, follower, one, slow


def test_a_pass_longer_than_the_lease_keeps_it(tmp_path: Path, closer: Closer) -> None:
    clock, leader, follower, store, _ = _catching_up(tmp_path, closer, step=1.0)
    start = clock.now()
    assert len(leader.tick().fires) == 80
    assert clock.now() - start >= 80  # a pass of 80 s against a 30 s lease
    # The leader renewed the lease as the pass went on: nobody could take the duty over
    # from a holder still at work. The duties after it in the tick renewed theirs at the
    # pass's end, not trusting a record from its start.
    assert follower.tick().duties == []
    assert set(fired(store).values()) == {1}


def test_a_pass_stops_when_another_scheduler_took_the_lease(tmp_path: Path, closer: Closer) -> None:
    clock, leader, follower, store, slow = _catching_up(tmp_path, closer, step=0.0)
    taken: list[Any] = []

    def stall_past_the_lease() -> None:
        clock.advance(31.0)  # the leader stalls; the follower takes the lapsed lease over
        taken.append(follower.tick())

    slow.stall, slow.at = stall_past_the_lease, 11
    late = leader.tick()
    # The follower made the 70 fires the leader had not (the stalled one among them); the
    # leader's stalled fire found it made, and the leader saw the lease gone and stopped
    # rather than contend for the rest.
    assert "cron" in taken[0].duties and len(taken[0].fires) == 70
    assert len(late.fires) == 10
    assert slow.calls == 11
    assert set(fired(store).values()) == {1} and len(fired(store)) == 80
    assert "cron" not in leader.tick().duties


def test_fires_move_the_cursor_without_a_commit_of_their_own(
    tmp_path: Path, closer: Closer
) -> None:
    clock, _, _, store, _ = _catching_up(tmp_path, closer, 0.0, max_catchup=50)
    counted = _SlowCommits(store.triggers, clock, 0.0, "advance_schedule")
    sched = Scheduler(counted, store.workflows, store.runs, clock, "s")
    assert len(sched.tick().fires) == 50
    assert counted.calls == 0  # the last fire's transaction moved the cursor
    clock.advance(30 * MINUTE)
    assert len(sched.tick().fires) == 30
    assert counted.calls == 0
    [state] = store.triggers.schedule_states().values()
    assert state.cursor == max(nominal for _, nominal in fired(store))
    clock.advance(80 * MINUTE)
    assert len(sched.tick().fires) == 50
    assert counted.calls == 0  # the 30 times skipped were recorded with the first fire
    assert _missed(store) == [30]


def test_a_pass_that_stops_early_still_records_what_it_skipped(
    tmp_path: Path, closer: Closer
) -> None:
    clock, leader, follower, store, slow = _catching_up(tmp_path, closer, 0.0, max_catchup=50)
    leader.tick()  # the schedule's first decision: what came before it is not a miss
    clock.advance(80 * MINUTE)

    def stall_past_the_lease() -> None:
        clock.advance(31.0)
        follower.tick()

    slow.stall, slow.at = stall_past_the_lease, slow.calls + 11
    leader.tick()  # skips the 30 oldest, makes 10 of the 50, stalls; the follower makes 40
    assert len(fired(store)) == 100 and set(fired(store).values()) == {1}
    # The follower planned from the leader's 10th fire, past the skipped times: only the
    # leader could say they were missed, and its first fire did, once.
    assert _missed(store) == [30]


class _Killed(BaseException):
    """The process dying in the middle of a pass (not an error the scheduler catches)."""


def test_a_pass_killed_after_its_first_fire_has_recorded_what_it_skipped(
    tmp_path: Path, closer: Closer
) -> None:
    clock, leader, follower, store, slow = _catching_up(tmp_path, closer, 0.0, max_catchup=50)
    leader.tick()
    clock.advance(80 * MINUTE)

    def die() -> None:
        raise _Killed

    slow.stall, slow.at = die, slow.calls + 2
    with pytest.raises(_Killed):
        leader.tick()  # one fire made, then the process is gone
    clock.advance(31.0)  # its lease lapses
    assert len(follower.tick().fires) == 49
    assert len(fired(store)) == 100 and set(fired(store).values()) == {1}
    assert _missed(store) == [30]


def _missed(store: Stores) -> list[int]:
    """The count of each ``schedule.missed`` event, oldest first."""
    read = store.backend.read  # type: ignore[attr-defined]
    rows = read("SELECT data FROM events WHERE kind = 'schedule.missed' ORDER BY id")
    return [int(json.loads(r["data"])["count"]) for r in rows]


def test_a_run_trigger_pass_stops_when_another_scheduler_took_the_lease(tmp_path: Path) -> None:
    clock = FakeClock()
    app = make_app(tmp_path, clock=clock)
    drv = Driver(tmp_path / "app.db", clock)
    try:
        after = TriggerSpec.model_validate({"after": {"workflow": "A", "outcome": "succeeded"}})
        for spec in (wf("A", py("a")), wf("B", py("b"), triggers=(after,))):
            app.store.workflows.register_workflow(spec, source=None, now=clock.now())
        store = app.store
        slow = _SlowCommits(store.triggers, clock, 0.0, "record_event")
        leader = Scheduler(slow, store.workflows, store.runs, clock, "leader", lease_ttl=30.0)
        follower = Scheduler(store.triggers, store.workflows, store.runs, clock, "follower")
        leader.tick()  # marks where the history stands
        for _ in range(5):
            app.runs.trigger("A", {})
            drv.succeed(drv.claim_one("a"))
        taken: list[Any] = []

        def stall_past_the_lease() -> None:
            clock.advance(31.0)
            taken.append(follower.tick())

        slow.stall, slow.at = stall_past_the_lease, 3
        late = leader.tick()
        # The follower started B for the three finished runs the leader had not reached
        # (the stalled one among them); the leader stopped instead of going on.
        assert len(taken[0].triggered_runs) == 3
        assert len(late.triggered_runs) == 2
        assert slow.calls == 3
        assert len(store.reads.list_runs(RunFilter(workflow="B", limit=100))) == 5
    finally:
        drv.close()
        app.close()


def test_lease_verbs_fence_by_epoch(tmp_path: Path, closer: Closer) -> None:
    store = closer(open_store(database_url_for(tmp_path / "db.sqlite")))
    assert store.triggers.acquire_lease("d", "a", ttl=10, now=100) == 1
    assert store.triggers.acquire_lease("d", "a", ttl=10, now=105) == 1  # extended, same epoch
    assert store.triggers.acquire_lease("d", "b", ttl=10, now=110) is None
    assert store.triggers.renew_lease("d", "a", 1, ttl=10, now=114)
    assert store.triggers.acquire_lease("d", "b", ttl=10, now=125) == 2  # lapsed: b takes it over
    assert not store.triggers.renew_lease("d", "a", 1, ttl=10, now=126)
    store.triggers.release_lease("d", "a", 1)  # a stale release does nothing
    assert store.triggers.acquire_lease("d", "a", ttl=10, now=127) is None
    store.triggers.release_lease("d", "b", 2)
    assert store.triggers.acquire_lease("d", "a", ttl=10, now=128) == 3


# --------------------------------------------------------------------------- backfills


def _backfill_app(tmp_path: Path, closer: Closer) -> Any:
    clock = FakeClock(dt.datetime(2026, 12, 1, tzinfo=dt.UTC).timestamp())
    app = closer(make_app(tmp_path, clock=clock))
    spec = wf(
        "etl",
        py("a"),
        params={"day": ParamSpec(type=ParamType.DATE, required=True)},
        schedules=(
            ScheduleSpec(
                cron="0 3 * * *", timezone="Europe/Paris", params={"day": "{{ fire.date }}"}
            ),
        ),
    )
    app.store.workflows.register_workflow(spec, source=None, now=clock.now())
    return app


def test_backfill_creates_one_run_per_nominal_time_paced_by_max_active(
    tmp_path: Path, closer: Closer
) -> None:
    app = _backfill_app(tmp_path, closer)
    drv = closer(Driver(tmp_path / "app.db", app.clock))
    backfill = app.triggers.create_backfill("etl", "2026-10-24", "2026-10-28", max_active=2)
    assert (backfill.total, backfill.state, backfill.created) == (5, "running", 0)
    sched = app.runtime.scheduler("s")
    days: list[str] = []
    for _ in range(10):
        started = sched.tick().backfill_runs
        assert len(started) <= 2
        runs = [app.runs.get_run(r) for r in started]
        assert all(r.priority == BACKFILL_PRIORITY for r in runs)
        days += [r.params["day"] for r in runs]
        assert app.triggers.get_backfill(backfill.id).active <= 2
        for claim in drv.claim():
            drv.succeed(claim)
    assert days == ["2026-10-24", "2026-10-25", "2026-10-26", "2026-10-27", "2026-10-28"]
    done = app.triggers.get_backfill(backfill.id)
    assert (done.state, done.created, done.counts) == ("completed", 5, {"succeeded": 5})
    assert [b.id for b in app.triggers.list_backfills()] == [backfill.id]


def test_backfill_runs_yield_to_fresh_runs(tmp_path: Path, closer: Closer) -> None:
    app = _backfill_app(tmp_path, closer)
    drv = closer(Driver(tmp_path / "app.db", app.clock))
    app.triggers.create_backfill("etl", "2026-10-01", "2026-10-03", max_active=3)
    app.runtime.scheduler("s").tick()
    fresh = app.runs.trigger("etl", {"day": "2026-12-01"})
    claims = drv.claim(limit=1)
    assert [c.run_id for c in claims] == [fresh.id]


def test_backfill_dry_run_creates_nothing_and_cancel_stops_it(
    tmp_path: Path, closer: Closer
) -> None:
    app = _backfill_app(tmp_path, closer)
    plan = app.triggers.create_backfill(
        "etl", "2026-10-01", "2026-10-31", max_active=2, dry_run=True
    )
    assert (plan.state, plan.total) == ("dry_run", 31)
    assert app.triggers.list_backfills() == [] and all_runs(app.store) == []
    backfill = app.triggers.create_backfill("etl", "2026-10-01", "2026-10-31", max_active=2)
    sched = app.runtime.scheduler("s")
    sched.tick()
    assert app.triggers.cancel_backfill(backfill.id)
    assert not app.triggers.cancel_backfill(backfill.id)
    app.clock.advance(60)
    assert sched.tick().backfill_runs == []
    stopped = app.triggers.get_backfill(backfill.id)
    assert (stopped.state, stopped.created, stopped.counts) == ("canceled", 2, {"canceled": 2})


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (("etl", "2026-10-05", "2026-10-01"), ParameterError, "ends .* before it starts"),
        (("etl", "yesterday", "2026-10-01"), ParameterError, "bad datetime 'yesterday'"),
        (("etl", "2000-01-01", "2030-01-01"), ParameterError, "more than 10,000"),
        (("nope", "2026-10-01", "2026-10-02"), NotFound, "no workflow named 'nope'"),
    ],
)
def test_bad_backfills_are_refused(
    tmp_path: Path, closer: Closer, args: tuple[str, str, str], error: type[Exception], message: str
) -> None:
    app = _backfill_app(tmp_path, closer)
    with pytest.raises(error, match=message):
        app.triggers.create_backfill(*args)
    with pytest.raises(ParameterError, match="max_active"):
        app.triggers.create_backfill("etl", "2026-10-01", "2026-10-02", max_active=0)


def test_list_schedules_shows_next_fire_times(tmp_path: Path, closer: Closer) -> None:
    app = _backfill_app(tmp_path, closer)
    (info,) = app.triggers.list_schedules()
    assert info.workflow == "etl" and info.cursor is None and not info.paused
    assert info.next_fire == dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC).timestamp()
    app.clock.advance(3 * HOUR)
    app.runtime.scheduler("s").tick()
    (info,) = app.triggers.list_schedules()
    assert info.last_fire == dt.datetime(2026, 12, 1, 2, tzinfo=dt.UTC).timestamp()
    assert info.next_fire == dt.datetime(2026, 12, 2, 2, tzinfo=dt.UTC).timestamp()


def test_a_wall_clock_jumping_back_fires_nothing_twice(tmp_path: Path, closer: Closer) -> None:
    start = 1_800_000_000.0 - 1_800_000_000.0 % HOUR
    drv = closer(Driver(tmp_path / "db.sqlite", FakeClock(start)))
    drv.register(wf("j", py("a"), schedules=(ScheduleSpec(cron="*/10 * * * *", catchup="all"),)))
    sched = Scheduler(drv.store.triggers, drv.store.workflows, drv.store.runs, drv.clock, "s")
    for _ in range(6):
        drv.clock.advance(600)
        sched.tick()
    drv.clock.set(start + 1200)  # NTP steps the clock back 40 minutes
    later: list[float] = []
    for _ in range(8):
        later += [
            f.nominal
            for f in Scheduler(
                drv.store.triggers, drv.store.workflows, drv.store.runs, drv.clock, "t"
            )
            .tick()
            .fires
        ]
        drv.clock.advance(600)
    assert later == [start + 4200, start + 4800, start + 5400]  # none of those already fired
    counts = fired(drv.store)
    assert set(counts.values()) == {1}
    assert sorted(t for _, t in counts) == [start + 600 * i for i in range(1, len(counts) + 1)]


def test_run_forever_ticks_until_stopped_and_hands_the_duties_over(
    tmp_path: Path, closer: Closer
) -> None:
    clock = FakeClock(1_800_000_000.0 - 1_800_000_000.0 % HOUR)
    db = database_url_for(tmp_path / "db.sqlite")
    store, other = closer(open_store(db)), closer(open_store(db))
    store.workflows.register_workflow(
        wf("f", py("a"), schedules=(ScheduleSpec(cron="* * * * *"),)), source=None, now=clock.now()
    )
    clock.advance(61)
    sched = Scheduler(store.triggers, store.workflows, store.runs, clock, "loop", max_sleep=0.01)
    stop = threading.Event()
    thread = threading.Thread(target=sched.run_forever, args=(stop,))
    thread.start()
    deadline = time.monotonic() + 10
    while not store.triggers.list_fires() and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(store.triggers.list_fires()) == 1
    assert (
        store.triggers.acquire_lease("scheduler.cron", "next", ttl=30, now=clock.now()) is not None
    )
    assert other.triggers.list_fires()[0].run_id is not None


def test_a_new_version_keeps_its_schedules_history_and_sleep_is_bounded(
    tmp_path: Path, closer: Closer
) -> None:
    start = 1_800_000_000.0 - 1_800_000_000.0 % HOUR
    drv = closer(Driver(tmp_path / "db.sqlite", FakeClock(start)))
    hourly = ScheduleSpec.model_validate({"cron": "0 * * * *", "jitter": "10m"})
    drv.register(wf("v", py("a"), schedules=(hourly,)))
    sched = Scheduler(
        drv.store.triggers, drv.store.workflows, drv.store.runs, drv.clock, "s", max_sleep=5.0
    )
    drv.clock.advance(HOUR + 600)
    assert len(sched.tick().fires) == 1
    due = sched.next_wake(drv.now)
    assert drv.now < due <= drv.now + 5.0
    drv.register(wf("v", py("a"), py("b"), schedules=(hourly,), description="v2"))
    assert sched.tick().fires == []  # same schedule key: the fire is not repeated
    drv.store.workflows.set_paused("v", True, now=drv.now)
    drv.clock.advance(2 * HOUR)
    assert sched.tick().fires == []
    assert sched.next_wake(drv.now) == drv.now + 5.0  # a paused schedule is no reason to spin
    assert len(fired(drv.store)) == 1


def test_workers_share_the_maintenance_duty_with_schedulers(tmp_path: Path, closer: Closer) -> None:
    """Workers sweep under the scheduler's ``maintenance`` lease (issue 12, finding 9b): one
    holder at a time, whichever kind of process it is, and it moves when the holder dies."""
    clock = FakeClock(1_800_000_000.0)
    db = database_url_for(tmp_path / "db.sqlite")
    one, two, three = closer(open_store(db)), closer(open_store(db)), closer(open_store(db))
    scheduler = Scheduler(one.triggers, one.workflows, one.runs, clock, "scheduler")
    sweepers = [
        Maintenance(s.runs, clock, lease=DutyLease(s.triggers, "maintenance", f"worker:{n}", 30))
        for n, s in (("a", two), ("b", three))
    ]
    assert "maintenance" in scheduler.tick().duties
    assert [m.pass_once() for m in sweepers] == [False, False]  # the scheduler holds it
    clock.advance(31)  # the scheduler died: its lease lapsed
    assert [m.pass_once() for m in sweepers] == [True, False]  # one worker took it over
    assert "maintenance" not in scheduler.tick().duties
    clock.advance(20)
    assert [m.pass_once() for m in sweepers] == [True, False]  # renewed past half-life
    sweepers[0].stop()  # a stopped worker hands it over at once
    assert sweepers[1].pass_once()

"""Fire times: daylight-saving changes in several zones, catch-up, jitter, intervals."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from orchestrion.spec.model import ParamSpec, ScheduleSpec, WorkflowSpec
from orchestrion.spec.structs import Invalid as ValidationError
from orchestrion.triggers.cron import (
    MISFIRE_GRACE,
    due_fires,
    fire_params,
    fires_between,
    iso,
    jitter_offset,
    next_due,
    next_fire,
    plan_fires,
)
from tests.helpers import py

HOUR = 3600.0
DAY = 86400.0

# zone, spring-forward day, fall-back day, a local time inside the repeated hour
ZONES = [
    ("America/New_York", dt.date(2026, 3, 8), dt.date(2026, 11, 1), "01:30"),
    ("Europe/Berlin", dt.date(2026, 3, 29), dt.date(2026, 10, 25), "02:30"),
    ("Australia/Sydney", dt.date(2026, 10, 4), dt.date(2026, 4, 5), "02:30"),  # southern
    ("Australia/Adelaide", dt.date(2026, 10, 4), dt.date(2026, 4, 5), "02:30"),  # +9:30/+10:30
]


def at(zone: str, day: dt.date, hm: str = "00:00", fold: int = 0) -> float:
    hour, minute = map(int, hm.split(":"))
    return dt.datetime(
        day.year, day.month, day.day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold
    ).timestamp()


def all_fires(schedule: ScheduleSpec, start: float, end: float) -> list[float]:
    """Every nominal time in (start, end], by one catch-up-all plan."""
    wide = schedule.model_copy(update={"catchup": "all", "max_catchup": 10_000})
    return list(plan_fires(wide, start, end).fires)


def local(zone: str, when: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(when, ZoneInfo(zone))


# --------------------------------------------------------------------------- DST


@pytest.mark.parametrize(("zone", "spring", "fall", "ambiguous"), ZONES)
def test_daily_0230_fires_once_per_local_day_around_spring_forward(
    zone: str, spring: dt.date, fall: dt.date, ambiguous: str
) -> None:
    schedule = ScheduleSpec(cron="30 2 * * *", timezone=zone)
    days = [spring + dt.timedelta(days=d) for d in (-1, 0, 1)]
    fires = all_fires(schedule, at(zone, days[0]) - 1, at(zone, days[-1], "23:59"))
    assert [local(zone, t).date() for t in fires] == days
    times = [local(zone, t).strftime("%H:%M") for t in fires]
    # 02:30 does not exist on the change day: the first valid instant after the gap
    assert times == ["02:30", "03:00", "02:30"]
    assert local(zone, fires[1]).dst()


@pytest.mark.parametrize(("zone", "spring", "fall", "ambiguous"), ZONES)
def test_daily_time_in_repeated_hour_fires_once_at_first_occurrence(
    zone: str, spring: dt.date, fall: dt.date, ambiguous: str
) -> None:
    minute, hour = ambiguous.split(":")[1], ambiguous.split(":")[0]
    schedule = ScheduleSpec(cron=f"{int(minute)} {int(hour)} * * *", timezone=zone)
    days = [fall + dt.timedelta(days=d) for d in (-1, 0, 1)]
    fires = all_fires(schedule, at(zone, days[0]) - 1, at(zone, days[-1], "23:59"))
    assert [local(zone, t).date() for t in fires] == days
    assert all(local(zone, t).strftime("%H:%M") == ambiguous for t in fires)
    # the first occurrence is still on daylight time; the second one never fires
    assert at(zone, fall, ambiguous, fold=0) in fires
    assert at(zone, fall, ambiguous, fold=1) not in fires


@pytest.mark.parametrize(("zone", "spring", "fall", "ambiguous"), ZONES)
def test_daily_0230_fires_once_on_fall_back_day(
    zone: str, spring: dt.date, fall: dt.date, ambiguous: str
) -> None:
    schedule = ScheduleSpec(cron="30 2 * * *", timezone=zone)
    fires = all_fires(schedule, at(zone, fall) - 1, at(zone, fall, "23:59"))
    assert len(fires) == 1
    assert local(zone, fires[0]).strftime("%H:%M") == "02:30"


@pytest.mark.parametrize(("zone", "spring", "fall", "ambiguous"), ZONES)
def test_hourly_follows_elapsed_time_across_both_changes(
    zone: str, spring: dt.date, fall: dt.date, ambiguous: str
) -> None:
    schedule = ScheduleSpec(cron="0 * * * *", timezone=zone)
    for day, expected in ((spring, 23), (fall, 25)):
        start, end = at(zone, day) - 1, at(zone, day + dt.timedelta(days=1)) - 1
        fires = all_fires(schedule, start, end)
        assert len(fires) == expected
        assert len(set(fires)) == len(fires)
        assert all(b - a == HOUR for a, b in itertools.pairwise(fires))


def test_zone_without_dst_and_half_hour_offset() -> None:
    schedule = ScheduleSpec(cron="30 2 * * *", timezone="Asia/Kolkata")
    start = at("Asia/Kolkata", dt.date(2026, 3, 1))
    fires = all_fires(schedule, start, start + 40 * DAY)
    assert len(fires) == 40
    assert all(b - a == DAY for a, b in itertools.pairwise(fires))
    assert iso(fires[0]) == "2026-02-28T21:00:00Z"  # 02:30 IST is 21:00 UTC the day before


@pytest.mark.parametrize(("zone", "spring", "fall", "ambiguous"), ZONES)
@pytest.mark.parametrize("expr", ["30 2 * * *", "0 * * * *", "*/20 1-3 * * *", "15 1,2,3 * * *"])
def test_ticking_in_small_steps_fires_exactly_what_one_catch_up_fires(
    zone: str, spring: dt.date, fall: dt.date, ambiguous: str, expr: str
) -> None:
    """A scheduler that ticks every 7 minutes (cursor carried over, as across restarts)
    fires each nominal time once, the same set as one catch-up over the whole range."""
    schedule = ScheduleSpec(cron=expr, timezone=zone, catchup="all")
    for day in (spring, fall):
        start, end = at(zone, day) - 2 * HOUR, at(zone, day) + 30 * HOUR
        cursor: float | None = start
        seen: list[float] = []
        now = start
        while now < end:
            now += 420.0
            plan = plan_fires(schedule, cursor, now)
            seen.extend(plan.fires)
            cursor = plan.cursor
        assert Counter(seen).most_common(1)[0][1] == 1
        assert seen == all_fires(schedule, start, now)


# --------------------------------------------------------------------------- catch-up


def test_catch_up_none_latest_all_with_cap() -> None:
    base = ScheduleSpec(cron="0 * * * *", max_catchup=3)
    last, now = 1_800_000_000.0 - 1_800_000_000.0 % HOUR, 0.0
    now = last + 10 * HOUR + 120  # ten hourly fires missed, the latest 2 minutes ago
    latest = plan_fires(base, last, now)
    assert latest.fires == (last + 10 * HOUR,)
    assert latest.cursor == last + 10 * HOUR
    every = plan_fires(base.model_copy(update={"catchup": "all"}), last, now)
    assert every.fires == (last + 8 * HOUR, last + 9 * HOUR, last + 10 * HOUR)
    assert every.cursor == last + 10 * HOUR
    none = plan_fires(base.model_copy(update={"catchup": "none"}), last, now)
    assert none.fires == ()  # 120 s late is beyond the grace
    assert none.cursor == last + 10 * HOUR  # ...but the missed times are decided
    on_time = plan_fires(
        base.model_copy(update={"catchup": "none"}), last, last + HOUR + MISFIRE_GRACE / 2
    )
    assert on_time.fires == (last + HOUR,)


def test_long_downtime_is_cheap_and_exact() -> None:
    schedule = ScheduleSpec(cron="* * * * *", catchup="all", max_catchup=5)
    plan = plan_fires(schedule, 1_700_000_000.0, 1_800_000_000.0)
    assert plan.fires == tuple(
        1_800_000_000.0 - 1_800_000_000.0 % 60 - 60 * i for i in range(4, -1, -1)
    )
    daily = ScheduleSpec(cron="30 1 * * *", timezone="America/New_York", catchup="latest")
    # a restart inside the repeated hour, a year later: the latest is today's first 01:30
    now = at("America/New_York", dt.date(2026, 11, 1), "01:10", fold=1)
    assert plan_fires(daily, now - 365 * DAY, now).fires == (
        at("America/New_York", dt.date(2026, 11, 1), "01:30"),
    )


def test_no_history_starts_at_start_or_now() -> None:
    plain = ScheduleSpec(cron="0 * * * *")
    assert plan_fires(plain, None, 1_800_000_000.0).fires == ()
    started = ScheduleSpec(cron="0 * * * *", start="2027-01-15T05:00:00Z", catchup="all")
    now = dt.datetime(2027, 1, 15, 7, 30, tzinfo=dt.UTC).timestamp()
    assert [iso(t) for t in plan_fires(started, None, now).fires] == [
        "2027-01-15T05:00:00Z",
        "2027-01-15T06:00:00Z",
        "2027-01-15T07:00:00Z",
    ]


def test_due_fires_with_datetimes() -> None:
    schedule = ScheduleSpec(cron="0 3 * * *", timezone="Europe/Paris", catchup="all")
    last = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    now = dt.datetime(2026, 6, 3, 12, tzinfo=dt.UTC)
    assert due_fires(schedule, last, now) == [
        dt.datetime(2026, 6, 1, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 2, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 3, 1, tzinfo=dt.UTC),
    ]
    assert next_fire(schedule, now) == dt.datetime(2026, 6, 4, 1, tzinfo=dt.UTC)


def test_start_and_end_bound_the_fires() -> None:
    schedule = ScheduleSpec(
        cron="0 12 * * *", start="2026-06-02", end="2026-06-04T12:00", catchup="all"
    )
    fires = all_fires(schedule, 0.0, dt.datetime(2026, 7, 1, tzinfo=dt.UTC).timestamp())
    assert [iso(t) for t in fires] == [
        "2026-06-02T12:00:00Z",
        "2026-06-03T12:00:00Z",
        "2026-06-04T12:00:00Z",
    ]
    assert next_fire(schedule, dt.datetime(2026, 6, 5, tzinfo=dt.UTC)) is None
    assert next_due(schedule, fires[-1]) is None


# --------------------------------------------------------------------------- jitter


def test_jitter_is_deterministic_bounded_and_spread() -> None:
    schedule = ScheduleSpec.model_validate({"cron": "0 * * * *", "jitter": "10m"})
    nominal = 1_800_000_000.0
    offsets = {jitter_offset(schedule, f"wf/{i}", nominal) for i in range(200)}
    assert all(0 <= o < 600 for o in offsets)
    assert len(offsets) == 200  # spread across schedules
    assert jitter_offset(schedule, "wf/1", nominal) == jitter_offset(schedule, "wf/1", nominal)
    assert jitter_offset(ScheduleSpec(cron="0 * * * *"), "wf/1", nominal) == 0.0


def test_jitter_delays_but_never_reorders_or_skips() -> None:
    schedule = ScheduleSpec.model_validate(
        {"cron": "*/5 * * * *", "jitter": "4m", "catchup": "all"}
    )
    start = 1_800_000_000.0 - 1_800_000_000.0 % 300
    cursor, now = start, start
    seen: list[float] = []
    while now < start + 6 * HOUR:
        now += 17.0
        plan = plan_fires(schedule, cursor, now, key="k")
        for nominal in plan.fires:
            assert now >= nominal + jitter_offset(schedule, "k", nominal)
        seen.extend(plan.fires)
        cursor = plan.cursor
    assert seen == sorted(set(seen))
    assert seen == [start + 300 * i for i in range(1, len(seen) + 1)]
    assert next_due(schedule, cursor, key="k") == seen[-1] + 300 + jitter_offset(
        schedule, "k", seen[-1] + 300
    )


# --------------------------------------------------------------------------- every


def test_every_is_anchored_at_start_or_the_epoch() -> None:
    epoch = ScheduleSpec.model_validate({"every": "1h", "catchup": "all"})
    now = 1_800_000_000.0
    assert plan_fires(epoch, now - 3 * HOUR, now).fires == tuple(
        now - now % HOUR - HOUR * i for i in (2, 1, 0)
    )
    anchored = ScheduleSpec.model_validate(
        {"every": "90m", "start": "2026-01-01T00:10:00Z", "catchup": "all"}
    )
    fires = all_fires(anchored, 0.0, dt.datetime(2026, 1, 1, 5, tzinfo=dt.UTC).timestamp())
    assert [iso(t)[11:16] for t in fires] == ["00:10", "01:40", "03:10", "04:40"]


def test_fires_between_for_backfills() -> None:
    schedule = ScheduleSpec(cron="0 3 * * *", timezone="Europe/Paris")
    lo = dt.datetime(2026, 10, 24, tzinfo=dt.UTC).timestamp()
    hi = dt.datetime(2026, 10, 27, tzinfo=dt.UTC).timestamp()
    assert [iso(t) for t in fires_between(schedule, lo, hi, 100)] == [
        "2026-10-24T01:00:00Z",
        "2026-10-25T02:00:00Z",  # after the change: CET
        "2026-10-26T02:00:00Z",
    ]
    assert len(fires_between(schedule, lo, hi, 2)) == 2


def test_fire_params_templates() -> None:
    schedule = ScheduleSpec(
        cron="0 3 * * *", timezone="Europe/Paris", params={"day": "{{ fire.date }}", "n": 1}
    )
    nominal = dt.datetime(2026, 10, 25, 2, tzinfo=dt.UTC).timestamp()
    assert fire_params(schedule, "wf/x", nominal) == {"day": "2026-10-25", "n": 1}


# --------------------------------------------------------------------------- spec


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of 'cron' or 'every'"),
        ({"cron": "0 * * * *", "every": "5m"}, "exactly one of 'cron' or 'every'"),
        ({"cron": "61 * * * *"}, "bad cron expression"),
        ({"cron": "0 * * * *", "timezone": "Mars/Base"}, "unknown time zone"),
        ({"every": "0s"}, "must be at least 1"),
        ({"cron": "0 * * * *", "start": "yesterday"}, "bad datetime 'yesterday'"),
        ({"cron": "0 * * * *", "start": "2026-02-01", "end": "2026-01-01"}, "is before its start"),
        ({"cron": "0 * * * *", "params": {"d": "{{ params.x }}"}}, "unknown name 'params'"),
        ({"cron": "0 * * * *", "catchup": "some"}, "'none', 'latest', 'all'"),
        ({"cron": "0 * * * *", "overlap": "wait"}, "'skip', 'queue', 'cancel_previous', 'allow'"),
        ({"cron": "0 * * * *", "jitter": "2d"}, "must be at most 86400"),
    ],
)
def test_bad_schedules_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScheduleSpec.model_validate(fields)


def test_schedule_identity_is_stable_and_unique_per_workflow() -> None:
    one = ScheduleSpec(cron="0 3 * * *", params={"region": "eu"})
    assert one.ident == ScheduleSpec(cron="0 3 * * *", params={"region": "eu"}, jitter=5).ident
    assert one.ident != ScheduleSpec(cron="0 3 * * *", params={"region": "us"}).ident
    assert ScheduleSpec(cron="0 3 * * *", name="nightly").key("etl") == "etl/nightly"
    with pytest.raises(ValidationError, match=r"schedules\[1\] repeats schedules\[0\]"):
        WorkflowSpec(
            name="w", tasks=(py("a"),), params={"region": ParamSpec()}, schedules=(one, one)
        )

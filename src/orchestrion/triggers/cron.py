"""When schedules fire: pure functions of a `ScheduleSpec`, a cursor and `now`.

Times are float seconds since the epoch; a *nominal* time is the instant a schedule names
(in UTC), before jitter. The scheduler keeps, per schedule, a *cursor*: every nominal time
at or before it has been decided (fired or skipped by policy). Each fire is recorded under
the unique key (schedule key, nominal time), so restarts and concurrent schedulers cannot
fire a nominal time twice; this module only says which times are due.

**Daylight-saving policy** (Debian cron's, as implemented by cronsim; wall-clock fields
are read in the schedule's time zone):

- A job at a *specific* local time (minute and hour fields without ``*``, such as
  ``30 2 * * *`` or ``0 1-3 * * *``) fires **once per local day**. On the spring-forward
  day a time inside the gap fires at the first valid instant after the gap (02:30 in
  America/New_York fires at 03:00 EDT). On the fall-back day a time inside the repeated
  hour fires once, at its first occurrence (01:30 EDT, not again at 01:30 EST).
- A job whose minute or hour field starts with ``*`` (``0 * * * *``, ``*/5 * * * *``)
  follows elapsed time: it fires at every matching instant, so an hourly job fires 23
  times on the spring-forward day and 25 times on the fall-back day (the repeated hour's
  two ``01:00`` are distinct instants), and never twice at the same instant.
- ``every:`` intervals ignore time zones: ``start + k * every`` (or ``k * every`` from the
  Unix epoch).

**Catch-up** after a gap (scheduler down, workflow paused): ``none`` fires only a time
that is at most `MISFIRE_GRACE` seconds late, ``latest`` fires the latest missed time,
``all`` fires every missed time up to ``max_catchup`` (the most recent ones).

**Jitter** delays a fire by a deterministic fraction of ``jitter`` derived from a hash of
(schedule key, nominal time): reproducible, spread across schedules, no randomness.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from cronsim import CronSim

from orchestrion.spec.expressions import render
from orchestrion.spec.schedule_model import ScheduleSpec

__all__ = [
    "LOOKAROUND",
    "MISFIRE_GRACE",
    "FirePlan",
    "due_fires",
    "fire_params",
    "fire_scope",
    "fires_between",
    "iso",
    "jitter_offset",
    "next_due",
    "next_fire",
    "plan_fires",
]

#: With catch-up ``none``, a fire later than this (seconds) is skipped.
MISFIRE_GRACE = 60.0
#: Wall clocks jump by at most this around a DST change (3 h covers every zone's history).
LOOKAROUND = 3 * 3600.0
_EPSILON = 1e-6
#: Gaps longer than this are not scanned from the cursor but from near `now` (see `_jump`).
_JUMP_AFTER = 86_400.0


@dataclass(frozen=True, slots=True)
class FirePlan:
    """What to do now: fire `fires` (nominal times, in order), then move the cursor."""

    fires: tuple[float, ...]
    #: The new cursor: the latest nominal time decided (fired or skipped by policy).
    cursor: float
    #: Due nominal times the catch-up policy skipped (after a long gap, only those near
    #: the end of it: the scan starts there). Not part of equality: a plan is what it fires.
    skipped: tuple[float, ...] = field(default=(), compare=False)


def plan_fires(
    schedule: ScheduleSpec, last: float | None, now: float, *, key: str = ""
) -> FirePlan:
    """Nominal times due at `now` after cursor `last`, by the catch-up policy.

    A nominal time is due once ``now >= nominal + jitter``; times are taken in order and
    the first one not yet due stops the scan (so jitter never reorders fires or skips one).
    With `last` None the schedule has no history: it starts at its ``start``, or, without
    one, nothing before `now` is due.
    """
    if last is None:
        start = schedule.start_ts
        if start is None:
            return FirePlan((), now)
        last = start - _EPSILON
    wanted = schedule.max_catchup if schedule.catchup == "all" else 1
    begin = _jump(schedule, last, now, wanted) if now - last > _JUMP_AFTER else last
    due: list[float] = []
    for nominal in _iter_after(schedule, begin, bounded=True):
        if nominal > now or nominal + jitter_offset(schedule, key, nominal) > now:
            break
        if nominal > last:
            due.append(nominal)
    if not due:
        return FirePlan((), last)
    fires = due[-wanted:]
    if schedule.catchup == "none":
        late = now - (fires[-1] + jitter_offset(schedule, key, fires[-1]))
        fires = fires if late <= MISFIRE_GRACE else []
    skipped = tuple(t for t in due if t not in fires)
    return FirePlan(tuple(fires), due[-1], skipped)


def due_fires(
    schedule: ScheduleSpec, last_nominal: dt.datetime | None, now: dt.datetime, *, key: str = ""
) -> list[dt.datetime]:
    """`plan_fires` with datetimes: the nominal times (UTC) to fire now."""
    last = None if last_nominal is None else last_nominal.timestamp()
    plan = plan_fires(schedule, last, now.timestamp(), key=key)
    return [_utc(t) for t in plan.fires]


def next_fire(schedule: ScheduleSpec, after: dt.datetime) -> dt.datetime | None:
    """The first nominal time strictly after `after` (UTC), or None when the schedule ended."""
    for nominal in _iter_after(schedule, after.timestamp(), bounded=True):
        return _utc(nominal)
    return None


def next_due(schedule: ScheduleSpec, after: float, *, key: str = "") -> float | None:
    """When the first nominal time after cursor `after` becomes due (jitter included)."""
    for nominal in _iter_after(schedule, after, bounded=True):
        return nominal + jitter_offset(schedule, key, nominal)
    return None


def fires_between(schedule: ScheduleSpec, start: float, end: float, limit: int) -> list[float]:
    """Nominal times in [start, end], at most `limit` (for backfills, which ignore the
    schedule's own start/end window but keep an interval's anchor)."""
    out: list[float] = []
    for nominal in _iter_after(schedule, start - _EPSILON, bounded=False):
        if nominal > end or len(out) >= limit:
            break
        out.append(nominal)
    return out


def jitter_offset(schedule: ScheduleSpec, key: str, nominal: float) -> float:
    """A delay in [0, jitter), fixed by (schedule key, nominal time)."""
    if schedule.jitter <= 0:
        return 0.0
    digest = hashlib.sha256(f"{key}@{nominal!r}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2.0**64
    return fraction * schedule.jitter


def fire_scope(schedule: ScheduleSpec, key: str, nominal: float) -> dict[str, Any]:
    """What a schedule's param templates see as ``fire``."""
    local = dt.datetime.fromtimestamp(nominal, zoneinfo.ZoneInfo(schedule.timezone))
    return {
        "time": iso(nominal),
        "local": local.isoformat(),
        "date": local.date().isoformat(),
        "timestamp": nominal,
        "schedule": key,
    }


def fire_params(schedule: ScheduleSpec, key: str, nominal: float) -> dict[str, Any]:
    """The schedule's params with templates filled for one fire (may raise ExpressionError)."""
    if not schedule.params:
        return {}
    rendered = render(dict(schedule.params), {"fire": fire_scope(schedule, key, nominal)})
    assert isinstance(rendered, dict)
    return rendered


def iso(when: float) -> str:
    """``2026-03-08T07:00:00Z`` (milliseconds shown only when present)."""
    value = _utc(when)
    spec = "milliseconds" if value.microsecond else "seconds"
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


# --------------------------------------------------------------------------- iteration


def _utc(when: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(when, dt.UTC)


def _iter_after(schedule: ScheduleSpec, after: float, *, bounded: bool) -> Iterator[float]:
    """Nominal times strictly after `after`, increasing; within start/end when `bounded`."""
    start, end = (schedule.start_ts, schedule.end_ts) if bounded else (None, None)
    if start is not None and after < start:
        after = start - _EPSILON
    source = _every_after(schedule, after) if schedule.every else _cron_after(schedule, after)
    previous = after
    for nominal in source:
        if end is not None and nominal > end:
            return
        if nominal > previous:  # cronsim may restart inside a repeated hour: drop the echo
            previous = nominal
            yield nominal


def _every_after(schedule: ScheduleSpec, after: float) -> Iterator[float]:
    every = float(schedule.every or 0)
    anchor = schedule.start_ts or 0.0
    k = math.floor((after - anchor) / every)
    while True:
        nominal = anchor + k * every
        if nominal > after:
            yield nominal
        k += 1


def _cron_after(schedule: ScheduleSpec, after: float) -> Iterator[float]:
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    sim = CronSim(schedule.cron or "", dt.datetime.fromtimestamp(after, zone))
    for when in sim:
        yield when.timestamp()


def _jump(schedule: ScheduleSpec, last: float, now: float, wanted: int) -> float:
    """Where to start scanning so that a long gap costs at most `wanted` fires plus a few
    hours of them: just before the `wanted`-th latest time that is surely due."""
    surely_due = now - schedule.jitter
    if schedule.every:
        every = float(schedule.every)
        return max(last, surely_due - (wanted + 1) * every - LOOKAROUND)
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    # Reverse from beyond `surely_due`: cronsim walks local wall time, which may differ
    # from real time by an hour around a DST change; the margin absorbs that.
    origin = dt.datetime.fromtimestamp(surely_due + LOOKAROUND, zone)
    found = 0
    for when in CronSim(schedule.cron or "", origin, reverse=True):
        nominal = when.timestamp()
        if nominal <= last - LOOKAROUND:
            return last
        if last < nominal <= surely_due:
            found += 1
            if found >= wanted:
                return max(last, nominal - LOOKAROUND)
    return last

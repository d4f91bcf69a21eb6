"""A schedule in words ("every weekday at 03:00"). The clock time itself is rendered by the
template as a `<time data-clock>` of the next fire, which the browser shows in its own
time zone (with the schedule's zone and the UTC instant on hover)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrion.spec.model import ScheduleSpec

__all__ = ["Words", "words"]

_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_NAMED = {"1-5": "weekday", "mon-fri": "weekday", "0,6": "Saturday and Sunday"}


@dataclass(frozen=True, slots=True)
class Words:
    """A schedule said in words, with or without a time of day after them (the template renders that
    time in the viewer's zone)."""

    #: Words before the clock time, or all of them when `clock` is False.
    text: str
    #: True when a time of day (hour and minute) follows the words.
    clock: bool
    #: That time of day in the schedule's own zone, like ``03:00 Europe/Paris``.
    local: str = ""


def _every(seconds: float) -> str:
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"every {unit}" if n == 1 else f"every {n} {unit}s"
    return f"every {seconds:g} seconds"


def _days(field: str) -> str | None:
    low = field.lower()
    if low in _NAMED:
        return _NAMED[low]
    parts = low.split(",")
    if all(p.isdigit() and int(p) <= 7 for p in parts):
        return ", ".join(_DAYS[int(p) % 7] for p in parts)
    return None


def words(schedule: ScheduleSpec) -> Words:
    """How the UI says `schedule`; a cron expression it has no words for is shown as
    written."""
    if schedule.cron is None:
        return Words(_every(schedule.every or 0.0), clock=False)
    fields = schedule.cron.split()
    if len(fields) == 5:
        said = _repeating(*fields) or _at_a_time(*fields, zone=schedule.timezone)
        if said is not None:
            return said
    return Words(f"cron {schedule.cron}", clock=False)


def _repeating(minute: str, hour: str, dom: str, month: str, dow: str) -> Words | None:
    """Several fires a day on every day: no single time of day to show."""
    if (dom, month, dow) != ("*", "*", "*"):
        return None
    if (minute, hour) == ("*", "*"):
        return Words("every minute", clock=False)
    if hour == "*" and minute.startswith("*/") and minute[2:].isdigit():
        return Words(f"every {minute[2:]} minutes", clock=False)
    if hour == "*" and minute.isdigit():
        return Words(f"every hour at minute {int(minute)}", clock=False)
    if minute.isdigit() and hour.startswith("*/") and hour[2:].isdigit():
        return Words(f"every {hour[2:]} hours at minute {int(minute)}", clock=False)
    return None


def _at_a_time(
    minute: str, hour: str, dom: str, month: str, dow: str, *, zone: str
) -> Words | None:
    """One fixed time of day, on every day, some weekdays or one day of the month."""
    if not (minute.isdigit() and hour.isdigit()) or month != "*":
        return None
    local = f"{int(hour):02d}:{int(minute):02d} {zone}"
    if dom == "*" and dow == "*":
        return Words("every day at", clock=True, local=local)
    if dom == "*" and (days := _days(dow)) is not None:
        return Words(f"every {days} at", clock=True, local=local)
    if dow == "*" and dom.isdigit():
        return Words(f"monthly on day {int(dom)} at", clock=True, local=local)
    return None

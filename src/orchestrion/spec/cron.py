"""Validation of cron expressions and time zones at load time (fires are computed elsewhere)."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from cronsim import CronSim, CronSimError

__all__ = ["check_cron", "check_timezone"]


def check_cron(expr: str) -> None:
    """Raise ValueError with cronsim's reason when `expr` is not a valid cron expression."""
    try:
        CronSim(expr, dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    except CronSimError as exc:
        raise ValueError(f"bad cron expression {expr!r}: {exc}") from None


def check_timezone(name: str) -> None:
    """Raise ValueError when `name` is not an IANA time zone."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name like 'Europe/Paris')"
        ) from None

"""Durations in specs: numbers of seconds, or strings like ``90s``, ``5m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Any

__all__ = ["parse_duration"]

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_MAX = 366 * 86400.0 * 10


def parse_duration(value: Any) -> float:
    """Seconds from a duration value; raises ValueError naming the bad input."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as '30s' or '5m', got {value!r}")
    if isinstance(value, dt.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, float):
        seconds = value
    elif isinstance(value, int):
        # float() of an integer past 1e308 raises OverflowError, which pydantic would not
        # report as the field's error: anything that large is out of range anyway.
        seconds = float(value) if abs(value) <= _MAX else math.inf
    elif isinstance(value, str):
        seconds = _parse_text(value.strip())
    else:
        raise ValueError(f"expected a duration such as '30s' or '5m', got {value!r}")
    if math.isnan(seconds) or seconds < 0 or seconds > _MAX:
        raise ValueError(f"duration {str(value)[:40]!r} is out of range (0 to 10 years)")
    return seconds


def _parse_text(text: str) -> float:
    if not text:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _PART.match(text, pos)
        if not match:
            raise ValueError(
                f"bad duration {text!r}: use a number of seconds or units ms, s, m, h, d, w"
                " (e.g. '90s', '1h30m')"
            )
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total

"""The checks of polling sensors: is the file there, does the URL answer as expected.

A check returns its result (what the step's task run succeeds with) when the condition is
true, `NOT_YET` when it is not, and raises `SensorError` when it never can be (a refused
URL): the step then fails. A network error is only "not yet": the next check may pass.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Final

import httpx

from orchestrion.auth.http_pinning import Pins, pinned_client
from orchestrion.auth.ssrf import AllowList, check_url
from orchestrion.errors import OrchestrionError, UnsafeURL
from orchestrion.spec.waits import HttpCondition, WaitAction

__all__ = ["NOT_YET", "SensorError", "check_sensor"]

#: A check whose condition is not true yet.
NOT_YET: Final = object()


class SensorError(OrchestrionError):
    """A sensor that can never come true as written (its step fails with this)."""


def check_sensor(action: WaitAction, *, allow: AllowList) -> Any:
    """Check `action`'s condition once: its result when true, else `NOT_YET`."""
    if action.file is not None:
        return _file(action.file)
    if action.http is not None:
        return _http(action.http, allow)
    raise SensorError(f"a wait for {action.waits_for} is not polled")


def _file(path: str) -> Any:
    target = Path(os.path.expanduser(path))
    if not target.exists():
        return NOT_YET
    stat = target.stat()
    return {"path": str(target), "size": stat.st_size, "mtime": stat.st_mtime}


def _http(cond: HttpCondition, allow: AllowList) -> Any:
    try:
        checked = check_url(cond.url, allow=allow)
    except UnsafeURL as exc:
        raise SensorError(f"http sensor: {exc}") from None
    pins = Pins()
    pins.add(checked)
    try:
        with pinned_client(pins) as client:
            response = client.get(cond.url, timeout=cond.timeout, follow_redirects=False)
    except httpx.HTTPError:
        return NOT_YET  # down or slow: the next check may find it up
    wanted = cond.status or tuple(range(200, 300))
    if response.status_code not in wanted:
        return NOT_YET
    return {"status": response.status_code}

"""Session-wide test environment.

Servers and workers refuse to start without a master key; the tests' processes run in the
explicit development mode (an insecure built-in key) unless a test sets up its own key or
removes this to check the refusal.

With ``ORCHESTRION_TEST_DATABASE=postgres`` a test marked ``sqlite_only`` is skipped with
its reason, also when a file is run by hand (CI's PostgreSQL pass deselects them anyway
with ``-m "not sqlite_only"``); every such mark must give a reason.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("ORCHESTRION_DEV_MODE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests.helpers import on_postgres

    for item in items:
        mark = item.get_closest_marker("sqlite_only")
        if mark is None:
            continue
        reason = mark.kwargs.get("reason")
        if not reason:
            raise pytest.UsageError(f"{item.nodeid}: sqlite_only needs reason=...")
        if on_postgres():
            item.add_marker(pytest.mark.skip(reason=f"sqlite_only: {reason}"))

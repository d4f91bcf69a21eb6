"""The UI's summary pages read in batches: their query count does not grow with the number
of workflows or runs listed (no N+1), checked by counting the store's statements."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrion.app import App
from orchestrion.server import create_server
from orchestrion.spec.model import ScheduleSpec
from orchestrion.store.sql.database import Database
from tests.helpers import make_app, py, wf


class Counted:
    """Counts the statements a store runs outside write transactions."""

    def __init__(self, db: Database) -> None:
        self.n = 0
        self._inner = db.read

        def read(sql: str, params: Any = ()) -> list[Any]:
            self.n += 1
            return self._inner(sql, params)

        db.read = read  # type: ignore[method-assign]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = make_app(tmp_path)
    yield app
    app.close()


def _add(app: App, first: int, count: int) -> None:
    for i in range(first, first + count):
        schedules = (ScheduleSpec(cron="0 3 * * *"),) if i % 2 else ()
        spec = wf(f"w{i:03d}", py("t"), schedules=schedules)
        app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
        for _ in range(3):
            app.store.runs.create_run(spec, {}, now=app.clock.now())


def _get(app: App, path: str) -> httpx.Response:
    tokens = [t for t in app.accounts.list_tokens() if t.name == "ui-queries"]
    if not tokens:  # signed in as an admin (its token lookup is one query per request)
        _TOKEN[id(app)], _ = app.accounts.create_token("ui-queries", {"*": "admin"})
    headers = {"Authorization": f"Bearer {_TOKEN[id(app)]}"}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_server(app))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://ui", headers=headers
        ) as client:
            return await client.get(path)

    return asyncio.run(get())


_TOKEN: dict[int, str] = {}


def _queries(app: App, path: str) -> int:
    db = app.store.backend
    assert isinstance(db, Database)
    counted = Counted(db)
    try:
        res = _get(app, path)
    finally:
        del db.read  # back to the class's method
    assert res.status_code == 200, res.text
    return counted.n


@pytest.mark.parametrize("path", ["/workflows", "/", "/fragments/overview"])
def test_summary_pages_read_a_fixed_number_of_times(app: App, path: str) -> None:
    _add(app, 0, 4)
    few = _queries(app, path)
    _add(app, 4, 60)
    many = _queries(app, path)
    assert many == few, f"{path}: {few} reads for 4 workflows, {many} for 64"
    if path == "/workflows":
        body = _get(app, path).text
        assert body.count('class="mark s-') == 64 * 3  # every workflow's last runs
        assert "every day at" in body

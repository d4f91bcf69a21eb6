"""Task result caching (docs/caching.md) on a real database (SQLite file, or PostgreSQL
with ``ORCHESTRION_TEST_DATABASE=postgres``), through the real worker, under a `FakeClock`:
hits and their link to the source run, expiry by ttl, retention sweeping entries (expired,
and those whose source run was pruned), the API's routes (authorised, audited) and a
key whose computing task run stopped being taken over."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.cli.main import main
from orchestrion.clock import FakeClock
from orchestrion.spec.model import CacheSpec, WorkflowSpec
from orchestrion.states import RunState
from orchestrion.store.records import AuditFilter, CacheKey, TaskRunRecord
from tests.helpers import admin_client, assert_consistent, by_name, make_app, py, serve_api, wf


def _spec(ttl: float | None = 60.0) -> WorkflowSpec:
    return wf(
        "cached",
        py("add", inputs={"x": "params.n"}, cache=CacheSpec(ttl=ttl)),
        py("plain", "add", inputs={"x": "tasks.add"}),
        params={"n": {"type": "integer", "default": 1}},
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Any:
    calls: Counter[str] = Counter()

    def add(x: int) -> int:
        calls["add"] += 1
        return x + 1

    def plain(x: int) -> int:
        calls["plain"] += 1
        return x * 10

    with make_app(tmp_path, clock=clock) as opened:
        opened.code.add({"t:add": add, "t:plain": plain})
        opened.store.workflows.register_workflow(_spec(), source=None, now=clock.now())
        opened.calls = calls  # type: ignore[attr-defined]
        yield opened


def _run(app: App, **kw: Any) -> tuple[str, dict[str, TaskRunRecord]]:
    run = app.runs.trigger("cached", kw.pop("params", None), **kw)
    done = app.runtime.run_until_done(run.id, every=0.01)
    assert done.state is RunState.SUCCEEDED, done
    return run.id, by_name(app.runs.task_runs(run.id))


def test_hit_links_its_source_and_expires_by_ttl(
    app: Any, clock: FakeClock, tmp_path: Path
) -> None:
    first, trs = _run(app)
    assert trs["add"].cache_run_id is None and app.calls == {"add": 1, "plain": 1}
    second, trs = _run(app)
    assert app.calls == {"add": 1, "plain": 2}  # only the uncached task ran again
    assert trs["add"].result == 2
    assert trs["add"].cache_run_id == first
    assert trs["add"].cache_task_run_id == by_name(app.runs.task_runs(first))["add"].id
    [hit] = [e for e in app.runs.events(second) if e.kind == "task.cache_hit"]
    assert hit.task_run_id == trs["add"].id and hit.data["run_id"] == first
    assert_consistent(app.store, tmp_path / "app.db", second)

    clock.advance(61)  # past the ttl: computed again, and that run is the new source
    third, trs = _run(app)
    assert trs["add"].cache_run_id is None and app.calls["add"] == 2
    _, trs = _run(app)
    assert trs["add"].cache_run_id == third and app.calls["add"] == 2

    fresh, trs = _run(app, no_cache=True)  # refresh: computes and overwrites
    assert trs["add"].cache_run_id is None and app.calls["add"] == 3
    [entry] = app.cache.list_entries(workflow="cached")
    assert entry.run_id == fresh and entry.state == "ready"


def test_retention_sweeps_expired_entries_and_those_of_pruned_runs(
    app: Any, clock: FakeClock
) -> None:
    old, _ = _run(app, params={"n": 1})
    clock.advance(30)
    _run(app, params={"n": 2})
    assert len(app.cache.list_entries()) == 2
    clock.advance(31)  # the first entry is past its ttl, the second is not
    counts = app.retention.apply_policies()
    assert counts.cache == 1
    [left] = app.cache.list_entries()
    assert left.run_id != old
    # Pruning the run that produced an entry takes the entry with it.
    clock.advance(1)
    went = app.retention.prune(older_than=0.5)
    assert went.counts.runs == 2 and went.counts.cache == 1
    assert app.cache.list_entries() == []


def test_a_key_whose_computing_task_run_stopped_is_taken_over(app: Any, clock: FakeClock) -> None:
    spec = _spec()
    key = CacheKey(spec.namespace, "cached", "add", "k")
    run = app.runs.trigger("cached")
    trs = by_name(app.runs.task_runs(run.id))
    other = app.runs.trigger("cached")
    mine = by_name(app.runs.task_runs(other.id))["add"].id
    cache = app.store.cache
    first = cache.cache_begin(key, run_id=run.id, task_run_id=trs["add"].id, now=clock.now())
    assert first.verdict == "compute"
    # Its owner is not running under a lease (never claimed here): the key is taken over.
    took = cache.cache_begin(key, run_id=other.id, task_run_id=mine, now=clock.now())
    assert took.verdict == "compute"
    assert [e.task_run_id for e in cache.list_cache(workflow="cached")] == [mine]


def test_api_lists_and_clears_entries_audited(app: Any) -> None:
    _run(app)
    with serve_api(app) as url, admin_client(app, url) as client:
        listed = client.get("/api/v1/workflows/cached/cache")
        assert listed.status_code == 200, listed.text
        [entry] = listed.json()
        assert entry["task"] == "add" and entry["state"] == "ready"
        assert client.get("/api/v1/cache").json() == [entry]
        assert client.get("/api/v1/workflows/nope/cache").status_code == 404
        anonymous = httpx.delete(f"{url}/api/v1/cache")
        assert anonymous.status_code == 401
        cleared = client.delete("/api/v1/workflows/cached/cache")
        assert cleared.json() == {"cleared": 1}
        assert client.get("/api/v1/cache").json() == []
        run = client.post("/api/v1/workflows/cached/runs", json={"no_cache": True})
        assert run.status_code == 201, run.text
    found = app.accounts.list_audit(AuditFilter(action="cache.clear"))
    assert [a.outcome for a in found] == ["ok"]


def test_cli_lists_and_clears_locally_and_through_a_server(app: Any) -> None:
    """``orchestrion cache list|clear``: the same output with ``--db`` and ``--server``."""
    runner = CliRunner()
    db = app.store.url

    def cli(*args: str, env: dict[str, str] | None = None) -> str:
        result = runner.invoke(main, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    first, _ = _run(app, params={"n": 1})
    _run(app, params={"n": 2})
    local = json.loads(cli("cache", "list", "--workflow", "cached", "-o", "json", "--db", db))
    assert len(local) == 2 and {e["task"] for e in local} == {"add"}
    token, _ = app.accounts.create_token("cli", {"*": "admin"}, expires="never")
    env = {"ORCHESTRION_TOKEN": token}
    with serve_api(app) as url:
        remote = json.loads(cli("cache", "list", "-o", "json", "--server", url, env=env))
        assert remote == local
        table = cli("cache", "list", "--workflow", "cached", "--server", url, env=env)
        assert first in table and "ready" in table
        cleared = cli("cache", "clear", "--workflow", "cached", "--server", url, env=env)
        assert cleared.strip() == "cleared 2 cache entries"
        _run(app)  # computes n=1 again: the entry is back
        calls = app.calls["add"]
        out = cli("trigger", "cached", "--no-cache", "--server", url, env=env)
        run_id = out.split()[1]
        assert app.runtime.run_until_done(run_id, every=0.01).state is RunState.SUCCEEDED
        assert by_name(app.runs.task_runs(run_id))["add"].cache_run_id is None
        assert app.calls["add"] == calls + 1  # refreshed through the server, not reused
    assert cli("cache", "clear", "--db", db).strip() == "cleared 1 cache entry"
    assert app.cache.list_entries() == []

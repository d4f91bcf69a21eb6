"""`GET /metrics` over a real store and a real uvicorn: the exposition parses with
prometheus_client's own text parser, its counters and histograms agree with the database,
folding deltas into totals changes nothing a scrape says, and access needs a token that may
read every namespace or a configured scraper address."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrion.app import App
from orchestrion.clock import FakeClock
from orchestrion.store.broker_records import ConsumerRecord
from orchestrion.store.records import WorkerRecord
from tests.helpers import Driver, make_app, py, serve_api, wf

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "orchestrion.json"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition, by (name, sorted labels)."""
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def pick(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[App, Driver, FakeClock]]:
    clock = FakeClock()
    app = make_app(tmp_path, clock=clock)
    driver = Driver(tmp_path / "app.db", clock)
    try:
        yield app, driver, clock
    finally:
        driver.close()
        app.close()


def _workload(driver: Driver, clock: FakeClock) -> dict[str, Any]:
    """Two workflows: `ok` succeeds twice (one task of 2 s), `flaky` fails once, is retried
    and fails again (two failed attempts, one failed run), and one `ok` run is left running."""
    ok = wf("ok", py("a"))
    flaky = wf("flaky", py("b", retries=1), namespace="team")
    for _ in range(2):
        run_id = driver.start(ok)
        claim = driver.claim_one("a")
        clock.advance(2.0)
        driver.succeed(claim, 1)
    run_id = driver.start(flaky)
    driver.fail(driver.claim_one("b"))
    clock.advance(1000)  # past the retry's back-off
    driver.fail(driver.claim_one("b"))
    driver.start(ok)
    driver.claim_one("a", worker="w2")
    return {"flaky_run": run_id}


def test_scrape_parses_and_matches_the_database(
    setup: tuple[App, Driver, FakeClock],
) -> None:
    app, driver, clock = setup
    _workload(driver, clock)
    with serve_api(app) as url:
        token, _ = app.accounts.create_token("scraper", {"*": "viewer"}, expires="never")
        headers = {"Authorization": f"Bearer {token}"}
        answer = httpx.get(f"{url}/metrics", headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
        before = parse(answer.text)

        runs = "orchestrion_runs_finished_total"
        assert pick(before, runs, workflow="ok", outcome="succeeded", namespace="default") == 2
        assert pick(before, runs, workflow="flaky", outcome="failed", namespace="team") == 1
        attempts = "orchestrion_task_attempts_total"
        assert pick(before, attempts, workflow="ok", outcome="succeeded") == 2
        assert pick(before, attempts, workflow="flaky", outcome="failed") == 2
        # The histogram: both `ok` attempts took 2 s (bucket le=5.0, not le=1.0).
        hist = "orchestrion_task_attempt_duration_seconds_bucket"
        assert pick(before, hist, workflow="ok", outcome="succeeded", le="1.0") == 0
        assert pick(before, hist, workflow="ok", outcome="succeeded", le="5.0") == 2
        assert pick(before, hist, workflow="ok", outcome="succeeded", le="+Inf") == 2
        sums = "orchestrion_task_attempt_duration_seconds_sum"
        assert pick(before, sums, workflow="ok", outcome="succeeded") == pytest.approx(4.0)
        # Live figures: one run running, one attempt held by w2.
        assert pick(before, "orchestrion_runs_active", workflow="ok", state="running") == 1
        assert pick(before, "orchestrion_database_roundtrip_seconds") >= 0

        # Folding moves deltas into totals: a scrape says exactly the same.
        assert driver.store.runs.fold_metrics(now=clock.now()) > 0
        assert driver.store.runs.fold_metrics(now=clock.now()) == 0
        after = parse(httpx.get(f"{url}/metrics", headers=headers).text)
        ended = ("orchestrion_runs_finished", "orchestrion_task_attempt", "orchestrion_run_d")
        assert {k: v for k, v in after.items() if k[0].startswith(ended)} == {
            k: v for k, v in before.items() if k[0].startswith(ended)
        }
        # This server's own requests are counted by route template.
        assert pick(after, "orchestrion_api_requests_total", route="/metrics", status="200") >= 1


def test_queue_depth_oldest_age_and_worker_slots(setup: tuple[App, Driver, FakeClock]) -> None:
    app, driver, clock = setup
    spec = wf("q", py("a"))
    driver.start(spec)
    clock.advance(10)
    driver.start(spec)
    clock.advance(5)
    driver.start(spec)
    driver.store.runs.register_worker(
        WorkerRecord(
            id="w1",
            host="h",
            pid=1,
            queues=("default",),
            started_at=clock.now(),
            heartbeat_at=clock.now(),
            state="running",
            slots=4,
        )
    )
    driver.claim(1, worker="w1")  # the oldest is claimed: the next oldest waited 5 s
    snap = app.reads.metrics()
    [queue] = snap.queues
    assert (queue.queue, queue.ready) == ("default", 2)
    assert snap.taken_at - queue.oldest_ready_at == pytest.approx(5.0)
    with serve_api(app) as url:
        token, _ = app.accounts.create_token("scraper", {"*": "viewer"}, expires="never")
        text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    samples = parse(text)
    assert pick(samples, "orchestrion_queue_ready_tasks", queue="default") == 2
    assert pick(samples, "orchestrion_queue_oldest_ready_age_seconds", queue="default") == 5
    assert pick(samples, "orchestrion_worker_running_attempts", worker="w1") == 1
    assert pick(samples, "orchestrion_worker_free_slots", worker="w1") == 3
    clock.advance(60)  # its heartbeats stopped for longer than a lease: no longer counted
    assert app.reads.metrics().workers == ()


def test_access_needs_a_token_for_every_namespace_or_a_scraper_address(
    setup: tuple[App, Driver, FakeClock],
) -> None:
    app, _, _ = setup
    with serve_api(app) as url:
        anonymous = httpx.get(f"{url}/metrics")
        assert anonymous.status_code == 401, anonymous.text
        one, _ = app.accounts.create_token("one", {"team": "admin"}, expires="never")
        narrow = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {one}"})
        assert narrow.status_code == 403, narrow.text
        assert "every namespace" in narrow.json()["error"]["message"]
        bad = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
    app.settings = msgspec.structs.replace(app.settings, metrics_scrapers=("127.0.0.0/8",))
    with serve_api(app) as url:
        assert httpx.get(f"{url}/metrics").status_code == 200


def test_the_grafana_dashboard_asks_only_for_metrics_the_server_exposes(
    setup: tuple[App, Driver, FakeClock],
) -> None:
    app, _, _ = setup
    dashboard = json.loads(DASHBOARD.read_text())
    asked = {
        re.sub(r"_(total|bucket|sum|count)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"orchestrion_[a-z_]+", target["expr"])
    }
    with serve_api(app) as url:
        token, _ = app.accounts.create_token("scraper", {"*": "viewer"}, expires="never")
        text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    exposed = {family.name for family in text_string_to_metric_families(text)}
    assert asked and asked <= exposed, asked - exposed


def test_request_labels_stay_bounded_whatever_clients_send(
    setup: tuple[App, Driver, FakeClock],
) -> None:
    app, _, _ = setup
    with serve_api(app) as url:
        for n in range(3):
            httpx.request("BREW", f"{url}/no/such/path/{n}")
            httpx.get(f"{url}/api/v1/runs/{n}")
        token, _ = app.accounts.create_token("scraper", {"*": "viewer"}, expires="never")
        text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    samples = parse(text)
    labels = {
        dict(ls)["route"] + " " + dict(ls)["method"]
        for (name, ls) in samples
        if name == "orchestrion_api_requests_total"
    }
    assert "unmatched other" in labels
    assert not any("/no/such" in label or "BREW" in label for label in labels), labels
    assert all("/api/v1/runs/" not in label or "{run_id}" in label for label in labels), labels


def test_broker_consumers_lag_dead_letters_and_state(
    setup: tuple[App, Driver, FakeClock],
) -> None:
    """What a consumer's scheduler reported (issue 14) is scraped: its lag where the broker
    says, its dead-lettered count, and whether it runs; no lag series where it is unknown."""
    app, _, clock = setup
    reported: list[tuple[str, str, str, int | None]] = [
        ("k1", "redis", "running", 42),
        ("k2", "mqtt", "error", None),
    ]
    for key, kind, state, waiting in reported:
        app.store.triggers.put_consumer(
            ConsumerRecord(
                key=key, workflow="orders", kind=kind, connection="bus",
                destination=f"{kind}-dest", holder="s:1:x", epoch=1, state=state, lag=waiting,
            ),
            now=clock.now(),
        )  # fmt: skip
    with serve_api(app) as url:
        token, _ = app.accounts.create_token("scraper", {"*": "viewer"}, expires="never")
        text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}).text
    samples = parse(text)
    lag = "orchestrion_broker_consumer_lag_messages"
    assert pick(samples, lag, kind="redis", destination="redis-dest", workflow="orders") == 42
    assert not [k for k in samples if k[0] == lag and ("kind", "mqtt") in k[1]]
    running = "orchestrion_broker_consumer_running"
    assert pick(samples, running, kind="redis") == 1
    assert pick(samples, running, kind="mqtt") == 0
    assert pick(samples, "orchestrion_broker_consumer_dead_lettered_messages", kind="redis") == 0

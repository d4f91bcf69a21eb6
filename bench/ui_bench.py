"""Web UI benchmarks: time to interactive of the heaviest pages, in Debian's Chromium.

Usage: .venv/bin/python bench/ui_bench.py [--workflows 500] [--runs-each 10] [--tasks 2000]

Starts a real `orchestrion server` (SQLite, no worker processes, so nothing moves while it
is measured), registers `--workflows` workflows (half of them scheduled) with
`--runs-each` runs each, and one `--tasks`-task workflow with one run, then measures over
5 loads each (median and best):
  - the workflows page: from navigation to the `load` event (the list is server-rendered;
    its scripts are modules, which run before `load`), and the server's HTML time alone;
  - the run page of the big run: from navigation until a click on its last node has
    opened that task's panel (the graph, the panel and the live stream are all wired);
  - requests an idle open page makes in 3 s (the run page and the overview): push only.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from bench_auth import seed_admin, session_cookie
from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
LOADS = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(client: httpx.Client) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if client.get("/api/v1/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not come up")


def populate(client: httpx.Client, workflows: int, runs_each: int, tasks: int) -> str:
    for i in range(workflows):
        spec: dict[str, object] = {
            "name": f"bench_{i:04d}",
            "description": f"Benchmark workflow {i}",
            "tasks": [
                {"name": "a", "queue": "nowhere", "action": {"kind": "shell", "argv": ["true"]}},
                {"name": "b", "queue": "nowhere", "depends_on": ["a"],
                 "action": {"kind": "shell", "argv": ["true"]}},
            ],
        }  # fmt: skip
        if i % 2:
            spec["schedules"] = [{"cron": f"{i % 60} {i % 24} * * *", "timezone": "UTC"}]
        assert client.post("/api/v1/workflows", json=spec).status_code == 201
        for _ in range(runs_each):
            assert client.post(f"/api/v1/workflows/bench_{i:04d}/runs", json={}).status_code == 201
    big = {
        "name": "big",
        "tasks": [
            {"name": f"t{i}", "queue": "nowhere", "action": {"kind": "shell", "argv": ["true"]},
             "depends_on": [f"t{i - 50}"] if i >= 50 else []}
            for i in range(tasks)
        ],
    }  # fmt: skip
    assert client.post("/api/v1/workflows", json=big).status_code == 201
    res = client.post("/api/v1/workflows/big/runs", json={})
    assert res.status_code == 201, res.text
    return str(res.json()["id"])


def timed(action: Callable[[], None]) -> list[float]:
    out = []
    for _ in range(LOADS):
        t0 = time.perf_counter()
        action()
        out.append(time.perf_counter() - t0)
    return out


def show(label: str, secs: list[float]) -> None:
    print(
        f"{label}: median {statistics.median(secs) * 1000:.0f} ms, best {min(secs) * 1000:.0f} ms"
    )


def nav_timing(page: Page) -> dict[str, int]:
    """Where the last load's time went: server response, HTML parsed, scripts run, loaded."""
    timing: dict[str, float] = page.evaluate(
        """() => { const n = performance.getEntriesByType('navigation')[0];
          return {response_end: n.responseEnd, dom_interactive: n.domInteractive,
                  dom_content_loaded: n.domContentLoadedEventEnd, load: n.loadEventEnd}; }"""
    )
    return {k: round(v) for k, v in timing.items()}


def idle_requests(page: Page, url: str) -> int:
    page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1000)
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url))
    page.wait_for_timeout(3000)
    return len(seen)


def start_server(tmp: Path, port: int) -> subprocess.Popen[bytes]:
    """A server with no worker on a throwaway database (the insecure dev key is fine)."""
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrion.cli.main", "server", "--port", str(port),
         "--workflows", str(tmp / "flows"), "--workers", "0", "--db", str(tmp / "bench.db")],
        cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "ORCHESTRION_DEV_MODE": "1"},
    )  # fmt: skip


def server_html(client: httpx.Client, args: argparse.Namespace, run_id: str) -> None:
    """How long the server takes to answer each page's HTML (no browser)."""

    def fetch(path: str) -> Callable[[], None]:
        def get() -> None:
            client.get(path).raise_for_status()

        return get

    fetch("/workflows")()  # warm the spec cache, as any running server has it
    show(f"workflows page ({args.workflows}), server HTML", timed(fetch("/workflows")))
    show(f"run page ({args.tasks} tasks), server HTML", timed(fetch(f"/runs/{run_id}")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflows", type=int, default=500)
    parser.add_argument("--runs-each", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="orchestrion-ui-bench-"))
    (tmp / "flows").mkdir()
    port = free_port()
    token = seed_admin(tmp / "bench.db")
    server = start_server(tmp, port)
    base = f"http://127.0.0.1:{port}"
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, timeout=60, headers=headers) as client:
            wait_ready(client)
            t0 = time.perf_counter()
            run_id = populate(client, args.workflows, args.runs_each, args.tasks)
            print(
                f"setup: {args.workflows} workflows x {args.runs_each} runs and a"
                f" {args.tasks}-task run in {time.perf_counter() - t0:.1f} s"
            )

            server_html(client, args, run_id)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_cookies([session_cookie(base)])  # type: ignore[list-item]
            page = context.new_page()

            def workflows() -> None:
                page.goto(f"{base}/workflows")
                page.wait_for_load_state("load")

            def run_page() -> None:
                page.goto(f"{base}/runs/{run_id}")
                page.wait_for_selector("html[data-ready='1']", state="attached")
                page.click(f"#dag .node[data-task='t{args.tasks - 1}']")
                page.locator("#panel h2", has_text=f"t{args.tasks - 1}").wait_for()

            workflows()
            show(f"workflows page ({args.workflows}), time to interactive", timed(workflows))
            print(f"  navigation timing (ms): {nav_timing(page)}")
            rows = page.locator("#wf-table tbody tr").count()
            marks = page.locator("#wf-table .mark").count()
            print(f"  rows {rows}, run marks {marks}")
            run_page()
            show(f"run page ({args.tasks} tasks), time to interactive", timed(run_page))
            print(f"  nodes {page.locator('#dag .node').count()}")
            print(f"  navigation timing (ms): {nav_timing(page)}")
            print(f"idle run page: {idle_requests(page, f'{base}/runs/{run_id}')} requests in 3 s")
            print(f"idle overview: {idle_requests(page, f'{base}/')} requests in 3 s")
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()

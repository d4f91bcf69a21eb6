"""Render three pages of the documentation site to PNG with Debian's Chromium.

    uv run --frozen python scripts/docs_screenshots.py [OUT_DIR]

Builds the site (strict) into a temporary folder, serves it on a free loopback port and
screenshots the home page, the tutorial and a generated REST API page into OUT_DIR
(default ``test-output/docs-screenshots``). Offline: the site loads nothing from the
network, and the browser is told not to try.
"""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PAGES = {
    "home": "",
    "tutorial": "tutorial/",
    "api-runs": "reference/api/runs/",
}


def build(site: Path) -> None:
    """The site, strictly, into `site`."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        check=True,
    )


class _Quiet(http.server.SimpleHTTPRequestHandler):
    """A static file handler that does not log every request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


def shoot(site: Path, out: Path) -> list[Path]:
    """Serve `site` on loopback and write one PNG per page of `PAGES` into `out`."""
    handler = functools.partial(_Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    out.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            for name, path in PAGES.items():
                page.goto(base + path, wait_until="networkidle")
                target = out / f"{name}.png"
                page.screenshot(path=str(target))
                written.append(target)
            browser.close()
    finally:
        server.shutdown()
    return written


def main() -> None:
    """Build, serve and screenshot; print the PNGs written."""
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "test-output" / "docs-screenshots"
    with tempfile.TemporaryDirectory() as folder:
        site = Path(folder) / "site"
        build(site)
        for path in shoot(site, out.resolve()):
            print(path)


if __name__ == "__main__":
    main()

"""Secrets across every place the worker shortens output: real worker runs, real database.

Each boundary gets one run whose tasks place a secret at every offset around the limit:
wholly kept, straddling it by 1 .. len-1 characters, and wholly cut away. Afterwards no
piece of the secret (any 3 consecutive characters) may be found in an attempt's error or
traceback, a task's result, the run's error or its log lines, and no 8 consecutive
characters in the database's bytes (main file and WAL, or every PostgreSQL row).

The boundaries: a shell line cut at `MAX_LINE_BYTES`, a Python task's printed line cut by
the log buffer, the stderr tail kept for a shell failure, the preview of shell stdout that
is not JSON, the tail of a Python traceback, the body of an HTTP error and the preview of
HTTP JSON that does not parse.
"""

from __future__ import annotations

import json
import os
import random
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey, Secret
from orchestrion.auth.ssrf import AllowList
from orchestrion.spec.model import ShellAction
from orchestrion.spec.yaml.loader import load_yaml_text
from orchestrion.worker import http as http_runner
from orchestrion.worker import logs, runner, shell
from orchestrion.worker.context import TaskContext
from tests.helpers import database_url_for, stored_bytes, task_context

#: Letters that appear in no word the worker writes in upper case (HTTP, JSON, GET, SIG...),
#: so any 3 of them in a row can only come from the secret.
_ALPHABET = "QZXJKWVY"
SECRET = "".join(random.SystemRandom().choice(_ALPHABET) for _ in range(24))
N = len(SECRET)

LINE = shell.MAX_LINE_BYTES
TAIL = shell._STDERR_TAIL_CHARS
PREVIEW = shell._PREVIEW_CHARS
TRACEBACK = runner._MAX_TRACEBACK
LOG_LINE = logs._MAX_LINE
HTTP_BODY = http_runner._ERROR_BODY_CHARS
HTTP_PREVIEW = http_runner._PREVIEW_CHARS


def around(limit: int) -> range:
    """Offsets from "the secret ends just before the limit" to "it starts at the limit"."""
    return range(limit - N - 1, limit + 2)


def fragments(text: str | bytes, size: int) -> list[str]:
    """The pieces of `size` characters of the secret found in `text`."""
    data = text.decode("latin-1") if isinstance(text, bytes) else text
    return [SECRET[i : i + size] for i in range(N - size + 1) if SECRET[i : i + size] in data]


def print_long(ctx: TaskContext) -> None:
    """Print one line of more than the log's maximum with the secret at character ``o``."""
    offset = int(ctx.task_name.rsplit("_", 1)[1])
    print("." * offset + ctx.secret("token") + "." * 100)


def raise_long(ctx: TaskContext) -> None:
    """Raise an error whose traceback ends with the secret, then ``after`` characters."""
    after = int(ctx.task_name.rsplit("_", 1)[1])
    raise ValueError("." * 50 + ctx.secret("token") + "." * after)


# ------------------------------------------------------------------------------ the tasks


def _shell_task(name: str, script: str, env: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {name: {"shell": {"script": script, "env": env, **extra}, "secrets": {"S": "token"}}}


def line_cut_tasks() -> dict[str, Any]:
    """One stdout line of more than `LINE` bytes with the secret at byte `O`."""
    script = (
        "head -c \"$O\" /dev/zero | tr '\\0' '.'; printf '%s' \"$S\";"
        " head -c 70000 /dev/zero | tr '\\0' '.'; echo; echo done"
    )
    tasks: dict[str, Any] = {}
    for o in around(LINE):
        tasks.update(_shell_task(f"line_{o}", script, {"O": str(o)}))
    return tasks


def stderr_tail_tasks() -> dict[str, Any]:
    """A failing command whose stderr ends with the secret, then ``A`` characters."""
    script = "printf '%s' \"$S\" >&2; head -c \"$A\" /dev/zero | tr '\\0' '.' >&2; exit 3"
    tasks: dict[str, Any] = {}
    for a in around(TAIL):
        tasks.update(_shell_task(f"tail_{a}", script, {"A": str(a)}))
    return tasks


def json_preview_tasks() -> dict[str, Any]:
    """Stdout that is not JSON, with the secret at character ``O``."""
    script = "head -c \"$O\" /dev/zero | tr '\\0' '.'; printf '%s' \"$S\"; echo '...'"
    tasks: dict[str, Any] = {}
    for o in around(PREVIEW):
        tasks.update(_shell_task(f"json_{o}", script, {"O": str(o)}, json_output=True))
    return tasks


def traceback_tasks() -> dict[str, Any]:
    """A Python task whose traceback's kept tail starts around the secret."""
    # The traceback ends "...<secret><after dots>\n": the cut falls in the secret when
    # after + 1 is between TRACEBACK - N and TRACEBACK.
    return {
        f"tb_{after}": {
            "python": "tests.integration.test_secret_cuts:raise_long",
            "secrets": {"S": "token"},
        }
        for after in range(TRACEBACK - N - 2, TRACEBACK + 1)
    }


def python_line_tasks() -> dict[str, Any]:
    """A Python task printing a line cut by the log buffer (`LOG_LINE` characters)."""
    return {
        f"print_{o}": {
            "python": "tests.integration.test_secret_cuts:print_long",
            "secrets": {"S": "token"},
        }
        for o in around(LOG_LINE)
    }


def http_tasks(base: str) -> dict[str, Any]:
    """HTTP errors and bad JSON whose bodies hold the secret at character ``o``."""
    tasks: dict[str, Any] = {}
    for kind, limit in (("status", HTTP_BODY), ("badjson", HTTP_PREVIEW)):
        for o in around(limit):
            tasks[f"{kind}_{o}"] = {
                "http": {"url": f"{base}/{kind}/{o}"},
                "secrets": {"S": "token"},
            }
    return tasks


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        _, kind, offset = self.path.split("/")
        body = ("." * int(offset) + SECRET + "." * 1000).encode()
        self.send_response(500 if kind == "status" else 200)
        self.send_header("Content-Type", "text/plain" if kind == "status" else "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def peer() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    ring = KeyRing([MasterKey("test", os.urandom(32))])
    settings = Settings(
        database_url=database_url_for(tmp_path / "cuts.db"),
        key_ring=ring,
        http_allow=AllowList.parse(["127.0.0.1/32"]),
        concurrency=4,
    )
    with App(settings) as app:
        app.secrets.set_secret("cuts", "token", SECRET)
        yield app


@pytest.mark.parametrize(
    "boundary", ["line", "stderr_tail", "json_preview", "traceback", "python_line", "http"]
)
def test_no_fragment_of_a_secret_survives_a_cut(
    app: App, tmp_path: Path, peer: str, boundary: str
) -> None:
    makers: dict[str, Callable[[], dict[str, Any]]] = {
        "line": line_cut_tasks,
        "stderr_tail": stderr_tail_tasks,
        "json_preview": json_preview_tasks,
        "traceback": traceback_tasks,
        "python_line": python_line_tasks,
        "http": lambda: http_tasks(peer),
    }
    tasks = makers[boundary]()
    spec = load_yaml_text(
        json.dumps({"name": f"cut-{boundary}", "namespace": "cuts", "tasks": tasks})
    )
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    run = app.runtime.run_until_done(app.runs.trigger(spec.name, {}).id, concurrency=4)

    task_runs = app.runs.task_runs(run.id)
    assert len(task_runs) == len(tasks)
    attempts = app.runs.attempts(run.id)
    texts = [
        *(a.error or "" for a in attempts),
        *(getattr(a, "traceback", "") or "" for a in attempts),
        *(json.dumps(t.result) for t in task_runs),
        *(t.error or "" for t in task_runs),
        app.runs.get_run(run.id).error or "",
        *(line.line for line in app.runs.logs(run.id)),
    ]
    seen = "\n".join(texts)
    assert "***" in seen  # the secret reached the tasks, and was masked
    assert fragments(seen, 3) == [], f"a piece of the secret survived a cut ({boundary})"
    _expect_cut(boundary, seen)

    app.close()
    assert fragments(stored_bytes(tmp_path / "cuts.db"), 8) == []


def _expect_cut(boundary: str, seen: str) -> None:
    """The limits were really reached, so the offsets straddled a real cut."""
    marks = {
        "line": shell._TRUNCATED_MARK,
        "stderr_tail": "stderr ends with",
        "json_preview": "stdout is not valid JSON",
        "traceback": "ValueError",
        "python_line": "..........",
        "http": "malformed JSON",
    }
    assert marks[boundary] in seen


# ------------------------------------------------------------------------------ units


def test_a_line_cut_inside_a_multibyte_secret_leaves_nothing() -> None:
    """The byte cut may fall inside a character of the secret: the part before it goes too."""
    secret = "QZXJ\u00e9\u00e9\u00e9KWVY"
    lines: list[str] = []
    ctx = task_context(
        log_sink=lambda _s, line: lines.append(line), secret_values={"s": Secret(secret)}
    )
    for offset in range(LINE - len(secret.encode()) - 1, LINE + 1):
        lines.clear()
        action = ShellAction(
            script=f"head -c {offset} /dev/zero | tr '\\0' '.'; printf '%s' \"$S\"; "
            "head -c 100 /dev/zero | tr '\\0' '.'; echo"
        )
        shell.run_shell(action, ctx, timeout=30, extra_env={"S": secret})
        (line,) = lines
        assert not any(secret[:k] in line[-40:] for k in range(2, len(secret) + 1)), offset
        assert "QZ" not in line and "\ufffd" not in line, offset

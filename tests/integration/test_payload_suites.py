"""Hostile inputs through the real worker: shell injection, SSRF and template escapes.

* 30 shell-injection payloads arrive as run parameters and reach shell tasks as argv
  elements and environment variables, byte for byte; none is interpreted (each would
  create a marker file if it were).
* 40 SSRF URLs (loopback, private, link-local/metadata, encoded and IPv6 spellings) make
  HTTP tasks fail before any connection: a listener on 127.0.0.1 sees nothing, and every
  host is an address literal or a loopback name, so no DNS query leaves the machine.
* 20 template-escape payloads that walk attributes towards Python internals are refused
  when the workflow is loaded, and as parameter values they stay inert text.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.errors import ExpressionError, SpecError
from orchestrion.spec.yaml.loader import load_yaml_text
from tests.helpers import database_url_for


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    with App(Settings(database_url=database_url_for(tmp_path / "payloads.db"))) as app:
        yield app


def _run(app: App, yaml_text: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    spec = load_yaml_text(yaml_text)
    app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
    run = app.runtime.run_until_done(app.runs.trigger(spec.name, params).id, concurrency=4)
    # Mapped tasks: the group row (its result is the list of item results), not the items.
    rows = [t for t in app.runs.task_runs(run.id) if t.kind != "item"]
    return run.state.value, {t.task_name: t for t in rows}


# --------------------------------------------------------------------------- shell injection


def injection_payloads(marker: Path) -> list[str]:
    m = str(marker)
    return [
        f"; touch {m}",
        f"$(touch {m})",
        f"`touch {m}`",
        f"| touch {m}",
        f"|| touch {m}",
        f"&& touch {m}",
        f"& touch {m} &",
        f"\ntouch {m}\n",
        f"\r\ntouch {m}",
        f"x'; touch {m}; echo '",
        f'x"; touch {m}; echo "',
        f"$(touch${{IFS}}{m})",
        f"${{IFS}}touch${{IFS}}{m}",
        f"> {m}",
        f">> {m}",
        f"< /dev/null; touch {m}",
        f"$((1)); touch {m}",
        f"{{touch,{m}}}",
        f"!touch {m}",
        f"\\`touch {m}\\`",
        f"$'\\x3b' touch {m}",
        f"-c 'touch {m}'",
        f"--output={m}",
        f"*; touch {m}",
        f"~; touch {m}",
        f"%0a touch {m}",
        f"{{{{ params.p }}}} ; touch {m}",
        f"\t;touch\t{m}",
        f"$(printf 'touch {m}' | sh)",
        f"a\x1b[31m; touch {m}",
    ]


SHELL_FLOW = """
name: inject
params:
  payloads: {{type: array}}
tasks:
  via_argv:
    map: params.payloads
    shell:
      argv: [{py}, -c, "import json, os, sys; print(json.dumps([sys.argv[1], os.environ['P']]))",
             "{{{{ item }}}}"]
      env: {{P: "{{{{ item }}}}"}}
      json_output: true
  via_script:
    map: params.payloads
    shell:
      script: 'printf "%s" "$P" | wc -c'
      env: {{P: "{{{{ item }}}}"}}
"""


def test_30_shell_injection_payloads_are_never_interpreted(app: App, tmp_path: Path) -> None:
    marker = tmp_path / "INJECTED"
    payloads = injection_payloads(marker)
    assert len(payloads) == len(set(payloads)) == 30
    state, tasks = _run(
        app, SHELL_FLOW.format(py=json.dumps(sys.executable)), {"payloads": payloads}
    )
    assert state == "succeeded", {n: t.error for n, t in tasks.items() if t.error}
    assert tasks["via_argv"].result == [[p, p] for p in payloads]
    assert tasks["via_script"].result == [str(len(p.encode())) for p in payloads]
    assert not marker.exists()


# --------------------------------------------------------------------------- SSRF


class Listener:
    """A TCP listener on 127.0.0.1 that counts connections (it should see none)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def ssrf_urls(port: int) -> list[str]:
    p = port
    return [
        f"http://127.0.0.1:{p}/",
        f"http://127.1:{p}/",
        f"http://127.0.1:{p}/",
        f"http://2130706433:{p}/",
        f"http://0x7f000001:{p}/",
        f"http://0x7f.0.0.1:{p}/",
        f"http://0177.0.0.1:{p}/",
        f"http://017700000001:{p}/",
        f"http://127.0.0.1.:{p}/",
        f"http://127.255.255.254:{p}/",
        f"http://0.0.0.0:{p}/",
        f"http://0:{p}/",
        f"http://[::1]:{p}/",
        f"http://[::]:{p}/",
        f"http://[::ffff:127.0.0.1]:{p}/",
        f"http://[::ffff:7f00:1]:{p}/",
        f"http://[0:0:0:0:0:ffff:127.0.0.1]:{p}/",
        f"http://[::127.0.0.1]:{p}/",
        f"http://[64:ff9b::127.0.0.1]:{p}/",
        f"http://[2002:7f00:1::]:{p}/",
        f"http://localhost:{p}/",
        f"http://LOCALHOST:{p}/",
        f"http://localhost.:{p}/",
        f"http://api.localhost:{p}/",
        f"http://user:pw@127.0.0.1:{p}/",
        f"http://127.0.0.1:{p}@127.0.0.1:{p}/",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.169.254/computeMetadata/v1/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://0xa9fea9fe/",
        "http://2852039166/",
        "http://10.0.0.1/",
        "http://10.255.255.255/",
        "http://172.16.0.1/",
        "http://172.31.255.254/",
        "http://192.168.0.1/",
        "http://100.64.0.1/",
        "http://[fc00::1]/",
        "http://[fe80::1]/",
        "http://224.0.0.1/",
    ]


SSRF_FLOW = """
name: ssrf
params:
  urls: {type: array}
tasks:
  fetch:
    map: params.urls
    http: {url: "{{ item }}", timeout: 5s}
"""


def test_40_ssrf_urls_are_refused_before_connecting(app: App) -> None:
    listener = Listener()
    try:
        urls = ssrf_urls(listener.port)
        assert len(urls) == len(set(urls)) == 40
        spec = load_yaml_text(SSRF_FLOW)
        app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
        run = app.runtime.run_until_done(app.runs.trigger("ssrf", {"urls": urls}).id, concurrency=4)
        assert run.state.value == "failed"
        items = [t for t in app.runs.task_runs(run.id) if t.kind == "item"]
        assert len(items) == 40
        assert all(t.state.value == "failed" for t in items)
        errors = {a.task_run_id: a.error or "" for a in app.runs.attempts(run.id)}
        for item in items:
            error = errors[item.id]
            # Refused by the SSRF check, or by the URL parser before it (an invalid host).
            assert "refusing" in error or "invalid URL" in error, (urls[item.map_index], error)
        assert listener.accepted == 0
    finally:
        listener.close()


def test_an_admin_allow_list_lets_loopback_through(tmp_path: Path) -> None:
    from orchestrion.auth.ssrf import AllowList

    listener = Listener()
    settings = Settings(
        database_url=database_url_for(tmp_path / "allow.db"),
        http_allow=AllowList.parse(["127.0.0.1/32"]),
    )
    try:
        with App(settings) as app:
            spec = load_yaml_text(SSRF_FLOW)
            app.store.workflows.register_workflow(spec, source=None, now=app.clock.now())
            url = f"http://127.0.0.1:{listener.port}/"
            run = app.runtime.run_until_done(app.runs.trigger("ssrf", {"urls": [url]}).id)
            assert run.state.value == "failed"  # the listener hangs up: not an HTTP server
            assert listener.accepted >= 1
            error = app.runs.attempts(run.id)[-1].error or ""
            assert "refusing" not in error
    finally:
        listener.close()


# --------------------------------------------------------------------------- template escapes

ESCAPES = [
    "params.__class__",
    "params.__class__.__mro__",
    "params.__dict__",
    "params.__globals__",
    "params.__init__.__globals__",
    "tasks.__class__.__base__.__subclasses__()",
    "item.__class__",
    "''.__class__",
    "().__class__.__bases__",
    "[].__class__.__mro__",
    "params.x.__class__.__mro__",
    "__import__('os').system('id')",
    "__builtins__",
    "params._private",
    "getattr(params, '__class__')",
    "params['__class__']",
    "params.x.__format__('')",
    "params.x.__reduce_ex__(2)",
    "(lambda: 1).__code__",
    "type(params)",
]


@pytest.mark.parametrize("expr", ESCAPES, ids=[f"escape{i:02d}" for i in range(len(ESCAPES))])
def test_20_template_escapes_are_refused_at_load(expr: str) -> None:
    text = (
        "name: escape\nparams:\n  x: string\ntasks:\n  t:\n"
        f"    shell: [echo, {json.dumps('{{ ' + expr + ' }}')}]\n"
    )
    with pytest.raises((SpecError, ExpressionError)):
        load_yaml_text(text)


def test_template_escapes_as_parameter_values_stay_text(app: App) -> None:
    assert len(ESCAPES) == 20
    values = ["{{ " + e + " }}" for e in ESCAPES]
    flow = (
        "name: inert\nparams:\n  xs: {type: array}\ntasks:\n  t:\n    map: params.xs\n"
        '    shell: [printf, "%s", "{{ item }}"]\n'
    )
    state, tasks = _run(app, flow, {"xs": values})
    assert state == "succeeded"
    assert tasks["t"].result == values

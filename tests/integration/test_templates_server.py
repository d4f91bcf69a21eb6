"""Template libraries on a server (docs/templates.md): `App.templates`, /api/v1/templates
(authorised, audited, 4xx for bad input), ``orchestrion templates`` and ``deploy`` with
``--server`` (templates expanded client-side, the server's libraries used when the client
has none) and the UI, over one real server on a real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.cli.main import main
from orchestrion.errors import AlreadyExists
from orchestrion.store.records import AuditFilter
from tests.helpers import ADMIN_PASSWORD, admin_client, database_url_for, serve_api, session_cookie

LIB = """\
library: etl
version: 1
description: Data movement
templates:
  transfer:
    description: Copy a table
    params: {source: string, target: string, batch: {type: integer, default: 500}}
    task:
      shell: [transfer, "{{ params.source }}", "{{ params.target }}", "{{ str(params.batch) }}"]
      retry: 2
"""
FLOW = """\
name: copy_etl
tasks:
  copy:
    uses: etl/transfer@1
    with: {source: pg, target: wh}
"""


class Server:
    def __init__(self, app: App, url: str, client: httpx.Client, root: Path) -> None:
        self.app, self.url, self.client, self.root = app, url, client, root


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("templates")
    settings = Settings(database_url=database_url_for(root / "t.db"))
    with App(settings).open() as app, serve_api(app) as url, admin_client(app, url) as client:
        yield Server(app, url, client, root)


def _library(version: int = 1, retries: int = 2) -> dict[str, object]:
    import yaml

    data = yaml.safe_load(LIB.replace("version: 1", f"version: {version}"))
    data["templates"]["transfer"]["task"]["retry"] = retries
    return dict(data)


def test_api_pushes_once_per_version_lists_shows_and_audits(server: Server) -> None:
    client = server.client
    first = client.post("/api/v1/templates", json=_library())
    assert first.status_code == 201, first.text
    assert first.json()["outcome"] == "created"
    again = client.post("/api/v1/templates", json=_library())
    assert (again.status_code, again.json()["outcome"]) == (200, "unchanged")
    other = client.post("/api/v1/templates", json=_library(retries=5))
    assert other.status_code == 409 and "push it as version 2" in other.text
    with pytest.raises(AlreadyExists):
        server.app.templates.push(_library(retries=6))
    broken = _library(version=9)
    broken["templates"]["transfer"]["task"]["timeout"] = -1  # type: ignore[index]
    bad = [
        client.post("/api/v1/templates", json=broken),
        client.post("/api/v1/templates", json={"library": "x"}),
        client.post("/api/v1/templates", json=["not", "a", "mapping"]),
        client.get("/api/v1/templates/etl/0"),
        client.get("/api/v1/templates/bad%20name/1"),
    ]
    assert [r.status_code for r in bad] == [422, 422, 422, 422, 422], [r.text for r in bad]
    assert "templates.transfer.task.timeout" in bad[0].text
    assert client.get("/api/v1/templates/etl/7").status_code == 404
    listed = client.get("/api/v1/templates").json()
    [lib] = [row for row in listed if row["name"] == "etl" and row["version"] == 1]
    assert lib["templates"][0]["params"]["batch"] == {"type": "integer", "default": 500}
    shown = client.get("/api/v1/templates/etl/1").json()
    assert shown["library"]["templates"]["transfer"]["task"]["retry"] == 2
    token, _ = server.app.accounts.create_token("v", {"ops": "viewer"}, expires="never")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as v:
        assert v.get("/api/v1/templates").status_code == 200
        assert v.post("/api/v1/templates", json=_library(version=3)).status_code == 403
    # Libraries are server-wide: an editor (even an admin) of one namespace may not push.
    token, _ = server.app.accounts.create_token("ed", {"ops": "admin"}, expires="never")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}) as e:
        assert e.post("/api/v1/templates", json=_library(version=3)).status_code == 403
    actions = [r.action for r in server.app.accounts.list_audit(AuditFilter())]
    assert "template.push" in actions


def test_deploy_with_server_uses_the_servers_library(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no templates/ here: only the server holds etl@2
    token, _ = server.app.accounts.create_token("cli", {"*": "admin"}, expires="never")
    env = {"ORCHESTRION_TOKEN": token}
    lib = tmp_path / "lib" / "etl@2.yaml"
    lib.parent.mkdir()
    lib.write_text(LIB.replace("version: 1", "version: 2"))
    runner = CliRunner()
    pushed = runner.invoke(main, ["templates", "push", str(lib), "--server", server.url], env=env)
    assert pushed.exit_code == 0 and pushed.output.startswith("created library etl@2"), (
        pushed.output
    )
    listed = runner.invoke(
        main, ["templates", "list", "--server", server.url, "-o", "json"], env=env
    )
    assert {(r["name"], r["version"]) for r in json.loads(listed.output)} >= {("etl", 2)}
    shown = runner.invoke(main, ["templates", "show", "etl@2", "--server", server.url], env=env)
    assert "version: 2" in shown.output and "transfer" in shown.output
    flow = tmp_path / "flow.yaml"
    flow.write_text(FLOW.replace("@1", "@2"))
    deployed = runner.invoke(main, ["deploy", str(flow), "--server", server.url], env=env)
    assert deployed.exit_code == 0, deployed.output
    [task] = server.app.workflows.workflow("copy_etl").tasks
    assert task.template is not None and task.template.ref == "etl/transfer@2"
    code = tmp_path / "templates_server_flow.py"  # a module name no other test takes
    code.write_text(
        "from orchestrion import use, workflow\n"
        "transfer = use('etl/transfer@2')\n"
        "@workflow(name='copy_py')\n"
        "def copy_py():\n"
        "    transfer(source='pg', target='wh', batch=10)\n"
    )
    deployed = runner.invoke(main, ["deploy", str(code), "--server", server.url], env=env)
    assert deployed.exit_code == 0, deployed.output
    [task] = server.app.workflows.workflow("copy_py").tasks
    assert task.template is not None and task.template.ref == "etl/transfer@2"
    missing = tmp_path / "missing.yaml"
    missing.write_text(FLOW.replace("@1", "@5"))
    refused = runner.invoke(main, ["deploy", str(missing), "--server", server.url], env=env)
    assert refused.exit_code == 2 and "library 'etl' has no version 5" in refused.output


def test_yaml_loaded_by_the_server_resolves_stored_libraries_and_the_ui_shows_them(
    server: Server, tmp_path: Path
) -> None:
    server.app.templates.push(_library())  # "unchanged" when another test pushed it
    flow = tmp_path / "copy.yaml"
    flow.write_text(FLOW.replace("copy_etl", "copy_local"))
    [spec] = server.app.workflows.load(flow)
    assert spec.tasks[0].template is not None and spec.tasks[0].retry.retries == 2
    server.app.accounts.create_user("admin", ADMIN_PASSWORD, {"*": "admin"})
    cookie = session_cookie(server.url)
    with httpx.Client(base_url=server.url, cookies={"orchestrion_session": cookie}) as browser:
        page = browser.get("/templates")
        shown = browser.get("/workflows/copy_local")
    assert page.status_code == 200 and "etl/transfer@1" in page.text and "Copy a table" in page.text
    assert 'href="/templates"' in page.text
    assert shown.status_code == 200 and "from etl/transfer@1" in shown.text

"""Container workflows through the REST API (issue 15, part 2): registered from their spec
JSON like any workflow, read back with the container action, and a bad container field is a
clear 422 naming it, never a 5xx. No engine needed: nothing runs here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrion.app import App
from orchestrion.spec.yaml.loader import load_yaml_text
from tests.helpers import admin_client, make_app, serve_api

SPEC = load_yaml_text("""
name: boxed
params:
  day: {type: string, default: "2024-01-01"}
tasks:
  transform:
    container:
      image: ghcr.io/acme/transform:1.4
      command: [transform, --day, "{{ params.day }}"]
      secrets: {DB_PASSWORD: warehouse-password}
      resources: {cpus: 1.5, memory: 512Mi}
      result: {file: /out/result.json}
""")


@pytest.fixture
def client(tmp_path: Path) -> Iterator[httpx.Client]:
    app: App = make_app(tmp_path)
    try:
        with serve_api(app) as url, admin_client(app, url) as client:
            yield client
    finally:
        app.close()


def test_a_container_workflow_registers_and_reads_back(client: httpx.Client) -> None:
    created = client.post("/api/v1/workflows", json=SPEC.model_dump(mode="json"))
    assert created.status_code == 201, created.text
    assert created.json()["version"] == SPEC.version
    shown = client.get("/api/v1/workflows/boxed", params={"version": SPEC.version})
    assert shown.status_code == 200, shown.text
    (task,) = _tasks(shown.json())
    assert task["action"]["kind"] == "container"
    assert task["action"]["resources"] == {"cpus": 1.5, "memory": "512Mi"}
    assert task["secrets"] == {"DB_PASSWORD": "warehouse-password"}


def test_a_bad_container_field_is_a_422_naming_it(client: httpx.Client) -> None:
    data = SPEC.model_dump(mode="json")
    data["tasks"][0]["action"]["resources"]["memory"] = "12Zi"
    answer = client.post("/api/v1/workflows", json=data)
    assert answer.status_code == 422, answer.text
    assert "bad memory size '12Zi'" in answer.text


def _tasks(body: dict[str, Any]) -> list[dict[str, Any]]:
    spec = body.get("spec", body)
    return list(spec["tasks"])

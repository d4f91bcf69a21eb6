"""The public surface is small and pinned: a change to it is a deliberate decision."""

from __future__ import annotations

import subprocess
import sys

import orchestrion


def test_all_is_exact() -> None:
    assert sorted(orchestrion.__all__) == [
        "App",
        "CancelRequested",
        "OrchestrionError",
        "ParameterError",
        "SpecError",
        "TaskContext",
        "TaskError",
        "TaskTimeout",
        "approval",
        "asset",
        "asset_metadata",
        "assets_updated",
        "broker",
        "container",
        "http",
        "plugin",
        "publish",
        "shell",
        "sql",
        "task",
        "template_library",
        "use",
        "wait_for",
        "workflow",
    ]
    for name in orchestrion.__all__:
        assert getattr(orchestrion, name) is not None


def test_authoring_import_is_cheap() -> None:
    """A workflow file's imports must not drag in the store, CLI or HTTP client (P10)."""
    code = (
        "import sys, orchestrion; "
        "heavy = [m for m in ('sqlite3', 'click', 'rich', 'httpx', 'orchestrion.store',"
        " 'orchestrion.cli') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cancel_is_not_an_exception() -> None:
    assert not issubclass(orchestrion.CancelRequested, Exception)

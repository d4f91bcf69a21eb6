"""The reference pages the docs build generates (docs/hooks/reference.py) lose nothing:
every operation of the server's OpenAPI document, every definition of the YAML schema and
every state transition appears on a page. (./scripts/test also builds the site strictly.)"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from orchestrion import states

ROOT = Path(__file__).resolve().parents[2]


def _hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_reference", ROOT / "docs/hooks/reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_operation_of_the_openapi_document_has_its_section() -> None:
    hook = _hook()
    document = hook.openapi_document()
    pages = hook.api_pages(document)
    text = "\n".join(pages.values())
    operations = [
        f"`{method.upper()} {path}`"
        for path, item in document["paths"].items()
        for method in item
        if method in hook.METHODS
    ]
    assert len(operations) > 40
    missing = [op for op in operations if op not in text]
    assert not missing
    for name in document["components"]["schemas"]:
        assert f"## {name}\n" in pages["schemas.md"], name
    # The index links every tag page, and nothing else is generated.
    assert {f"{tag}.md" for tag in ("runs", "workflows", "secrets")} <= set(pages)
    for page in pages:
        if page not in ("index.md", "schemas.md"):
            assert f"]({page})" in pages["index.md"], page


def test_every_definition_of_the_yaml_schema_has_its_section() -> None:
    hook = _hook()
    schema = json.loads((ROOT / "schemas/workflow.schema.json").read_text())
    page = hook.yaml_schema_page(schema)
    for name in schema["$defs"]:
        assert f"\n## {name}\n" in page, name
    for key in schema["properties"]:
        assert f"| `{key}` |" in page, key


def test_the_state_tables_have_every_state_and_edge() -> None:
    hook = _hook()
    for which, enum, table in (
        ("task", states.TaskState, states.TASK_TRANSITIONS),
        ("run", states.RunState, states.RUN_TRANSITIONS),
    ):
        meanings = hook.states_table(which)
        for state in enum:
            assert f"| `{state.value}` | " in meanings, state
        edges = hook.transitions_table(which)
        for (source, event), target in table.items():
            row = next(
                line
                for line in edges.splitlines()
                if line.startswith(f"| `{event.value}` |")
                and line.endswith(f"| `{target.value}` |")
            )
            assert f"`{source.value}`" in row

"""Reference pages generated from the code at build time (an MkDocs hook, see mkdocs.yml).

* ``reference/api/index.md`` and one page per tag under ``reference/api/``: the REST API, from
  the OpenAPI document the server itself publishes (``create_server(app).openapi()`` on a
  throw-away SQLite file), rendered to plain Markdown so that the site needs no script from
  a CDN to show it;
* ``reference/yaml-schema.md``: the YAML format, from ``schemas/workflow.schema.json`` (the
  file ``python -m orchestrion.spec.json_schema`` writes and a test keeps in step).

The CLI page uses mkdocs-click and the Python page mkdocstrings, both from the code too.
Nothing here is written into ``docs/``: the pages exist only in the built site.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "workflow.schema.json"
METHODS = ("get", "post", "put", "patch", "delete")

Json = dict[str, Any]


def openapi_document() -> Json:
    """The OpenAPI document of the code as it is (imported here: the hook runs in MkDocs)."""
    from orchestrion.app import App
    from orchestrion.app.settings import Settings
    from orchestrion.server import create_server

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'doc.db'}"
        with App(Settings(database_url=url)) as app:
            document: Json = create_server(app).openapi()
    return document


# ----------------------------------------------------------------------------- OpenAPI


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def _anchor(heading: str) -> str:
    """The id Python-Markdown's toc gives a heading (it keeps underscores: ``wait_for``)."""
    return str(slugify(heading, "-"))


def _type_of(schema: Json) -> str:
    """A short readable type: ``string``, ``integer | null``, ``[Run](#run)`` ..."""
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](schemas.md#{_slug(name)})"
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return " | ".join(_type_of(s) for s in schema[key])
    if schema.get("type") == "array":
        return f"array of {_type_of(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    return str(schema.get("type", "any"))


def _cell(text: Any) -> str:
    """Plain `text` for a table cell: one line, pipes and asterisks taken literally (not for
    code spans, where the Markdown tables extension leaves both alone)."""
    return str(text).replace("\n", " ").replace("|", "\\|").replace("*", "\\*")


def _body_type(content: Json) -> str:
    kinds = []
    for media, spec in content.items():
        kinds.append(f"`{media}` {_type_of(spec.get('schema', {}))}")
    return "; ".join(kinds)


def _operation(path: str, method: str, op: Json) -> list[str]:
    lines = [f"## {op.get('summary', path)}", "", f"`{method.upper()} {path}`", ""]
    if op.get("description"):
        lines += [str(op["description"]).strip(), ""]
    params = op.get("parameters", [])
    if params:
        lines += [
            "| parameter | in | type | required | description |",
            "| --- | --- | --- | --- | --- |",
        ]
        for p in params:
            lines.append(
                f"| `{p['name']}` | {p['in']} | {_cell(_type_of(p.get('schema', {})))} "
                f"| {'yes' if p.get('required') else 'no'} "
                f"| {_cell(p.get('description', p.get('schema', {}).get('description', '')))} |"
            )
        lines.append("")
    body = op.get("requestBody")
    if body:
        lines += [f"Request body: {_body_type(body.get('content', {}))}", ""]
    lines += ["| status | meaning | body |", "| --- | --- | --- |"]
    for status, answer in op.get("responses", {}).items():
        lines.append(
            f"| {status} | {_cell(answer.get('description', ''))} "
            f"| {_cell(_body_type(answer.get('content', {})))} |"
        )
    lines.append("")
    return lines


def _schemas_page(document: Json) -> str:
    lines = ["# Schemas", "", "The bodies the REST API takes and returns.", ""]
    for name, schema in sorted(document.get("components", {}).get("schemas", {}).items()):
        lines += [f"## {name}", ""]
        if schema.get("description"):
            lines += [str(schema["description"]).strip(), ""]
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        if props:
            lines += ["| field | type | required | description |", "| --- | --- | --- | --- |"]
            for field, spec in props.items():
                need = "yes" if field in required else "no"
                lines.append(
                    f"| `{field}` | {_cell(_type_of(spec))} | {need} "
                    f"| {_cell(spec.get('description', ''))} |"
                )
            lines.append("")
        elif "enum" in schema:
            lines += ["One of " + ", ".join(f"`{v}`" for v in schema["enum"]) + ".", ""]
    return "\n".join(lines)


def api_pages(document: Json) -> dict[str, str]:
    """Markdown pages (path under ``reference/api/`` -> text) for an OpenAPI document: an
    index, one page per tag with its operations, and one page of schemas."""
    by_tag: dict[str, list[tuple[str, str, Json]]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                op = item[method]
                for tag in op.get("tags", ["other"]):
                    by_tag.setdefault(tag, []).append((path, method, op))
    pages: dict[str, str] = {}
    index = [
        "# REST API",
        "",
        f"Generated from the server's OpenAPI document (version "
        f"{document['info'].get('version', '?')}); a running server also serves it at "
        "`/api/v1/openapi.json`, with interactive documentation at `/api/v1/docs`.",
        "",
        "Every call carries `Authorization: Bearer <token>` (or the UI's session cookie). "
        "Refusals are JSON bodies naming the problem: 401 without a valid token, 403 outside "
        "your role or namespaces, 404, 409 and 422 for the request itself.",
        "",
        "| group | operations |",
        "| --- | --- |",
    ]
    for tag in sorted(by_tag):
        ops = by_tag[tag]
        index.append(f"| [{tag}]({_slug(tag)}.md) | {len(ops)} |")
        lines = [f"# {tag.capitalize()}", ""]
        for path, method, op in ops:
            lines += _operation(path, method, op)
        pages[f"{_slug(tag)}.md"] = "\n".join(lines)
    index += ["", "All the bodies: [schemas](schemas.md).", ""]
    pages["index.md"] = "\n".join(index)
    pages["schemas.md"] = _schemas_page(document)
    return pages


# ----------------------------------------------------------------------------- YAML schema


def _schema_type(schema: Json) -> str:
    if "$ref" in schema:
        name = str(schema["$ref"]).rsplit("/", 1)[-1]
        return f"[{name}](#{_anchor(name)})"
    for key in ("oneOf", "anyOf"):
        if key in schema:
            # Alternatives that only constrain (e.g. {"required": [...]}) are not types.
            forms = [s for s in schema[key] if {"type", "$ref", "enum", "properties"} & set(s)]
            return " or ".join(_schema_type(s) for s in forms) or "object"
    if "enum" in schema:
        return " | ".join(f"`{v}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {_schema_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"map of {_schema_type(schema['additionalProperties'])}"
    if "properties" in schema:
        return "object (keys below)"
    return str(kind)


def _notes(schema: Json) -> str:
    """Description (as text), default, pattern and bounds (as code) of a key, for a cell."""
    parts = [_cell(schema.get("description", ""))]
    if "default" in schema:
        parts.append(f"Default `{json.dumps(schema['default'])}`.")
    if "pattern" in schema:
        parts.append(f"Pattern `{schema['pattern']}`.")
    for key, word in (("minimum", "at least"), ("maximum", "at most")):
        if key in schema:
            parts.append(f"{word.capitalize()} {schema[key]}.")
    return " ".join(p for p in parts if p).replace("\n", " ")


def _object_table(schema: Json) -> list[str]:
    props = schema.get("properties", {})
    if not props:
        return []
    required = set(schema.get("required", []))
    lines = ["| key | type | required | notes |", "| --- | --- | --- | --- |"]
    for key, spec in props.items():
        lines.append(
            f"| `{key}` | {_cell(_schema_type(spec))} | {'yes' if key in required else ''} "
            f"| {_notes(spec)} |"
        )
    return [*lines, ""]


def yaml_schema_page(schema: Json) -> str:
    """The YAML format's reference page, from its JSON Schema."""
    lines = [
        "# YAML schema",
        "",
        "Generated from `schemas/workflow.schema.json` (also printed by `orchestrion schema`; "
        "point your editor's YAML language server at it). The [YAML format guide](../yaml.md) "
        "explains the same keys with examples.",
        "",
        "## Workflow file",
        "",
        *_object_table(schema),
    ]
    for name, definition in schema.get("$defs", {}).items():
        lines += [f"## {name}", ""]
        if definition.get("description"):
            lines += [_cell(definition["description"]), ""]
        table = _object_table(definition)
        if table:
            lines += table
            continue
        notes = _notes({k: v for k, v in definition.items() if k != "description"})
        lines += [f"Type: {_cell(_schema_type(definition))}. {notes}".rstrip(), ""]
        # The object forms of a oneOf (a schedule's mapping, a shell task's): their keys.
        for alternative in definition.get("oneOf", definition.get("anyOf", [])):
            lines += _object_table(alternative)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- states


def transitions_table(which: str) -> str:
    """The transitions of ``orchestrion.states`` (``task`` or ``run``) as a Markdown table:
    for each event, the states it moves from and the one it moves to."""
    from orchestrion import states

    table = states.TASK_TRANSITIONS if which == "task" else states.RUN_TRANSITIONS
    by_event: dict[tuple[str, str], list[str]] = {}
    for (source, event), target in table.items():
        by_event.setdefault((event.value, target.value), []).append(source.value)
    lines = ["| event | from | to |", "| --- | --- | --- |"]
    for (name, goal), sources in by_event.items():
        lines.append(f"| `{name}` | {', '.join(f'`{s}`' for s in sources)} | `{goal}` |")
    return "\n".join(lines)


def states_table(which: str) -> str:
    """The states of ``TaskState`` or ``RunState`` with their meaning: the ``#:`` comment
    above each member in ``states.py``."""
    source = (ROOT / "src" / "orchestrion" / "states.py").read_text()
    cls = "TaskState" if which == "task" else "RunState"
    body = source.split(f"class {cls}(StrEnum):", 1)[1].split("\nclass ", 1)[0]
    found = re.findall(r'#: (.*?)\n\s+[A-Z_]+ = "([a-z_]+)"', body, re.S)
    lines = ["| state | meaning |", "| --- | --- |"]
    for comment, value in found:
        meaning = " ".join(part.strip().removeprefix("#:").strip() for part in comment.split("\n"))
        lines.append(f"| `{value}` | {_cell(meaning)} |")
    return "\n".join(lines)


_GENERATED: dict[str, Callable[[], str]] = {
    "<!-- generated: task states -->": lambda: states_table("task"),
    "<!-- generated: run states -->": lambda: states_table("run"),
    "<!-- generated: task transitions -->": lambda: transitions_table("task"),
    "<!-- generated: run transitions -->": lambda: transitions_table("run"),
}


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """MkDocs hook: put the generated state tables where a page asks for them."""
    for marker, make in _GENERATED.items():
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def generated_pages() -> dict[str, str]:
    """Every generated page: path under ``docs/`` -> Markdown."""
    pages = {f"reference/api/{name}": text for name, text in api_pages(openapi_document()).items()}
    pages["reference/yaml-schema.md"] = yaml_schema_page(json.loads(SCHEMA.read_text()))
    return pages


def on_files(files: Any, config: Any) -> Any:
    """MkDocs hook: add the generated pages to the site's files."""
    from mkdocs.structure.files import File

    for path, text in generated_pages().items():
        files.append(File.generated(config, path, content=text))
    return files

"""Artifacts: what a task publishes for people to read beside its result — a Markdown
report, a table, a link, a file. Call these inside a task's body::

    from orchestrion import artifact

    @task
    def report(rows):
        artifact.markdown("# Daily load\\n\\n12 files, 3.1 GB", title="summary")
        artifact.table(rows[:100], title="first rows")
        artifact.link("https://dashboards.example/load", title="dashboard")
        artifact.file("/tmp/load.csv", title="raw data")

They are stored with the attempt (also a failed one), listed by the API and
``orchestrion runs artifacts RUN`` and shown on the run page. Shell tasks write JSON lines
to the file named by ``$ORCHESTRION_ARTIFACTS`` (docs/results.md). Outside a task (or in an
executor other than the worker's threads) a call raises `ArtifactError`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import msgspec

from orchestrion.errors import OrchestrionError

__all__ = [
    "MAX_ARTIFACTS",
    "MAX_TEXT_BYTES",
    "ArtifactError",
    "Published",
    "active",
    "collecting",
    "file",
    "link",
    "markdown",
    "publish",
    "publish_line",
    "table",
]

#: A Markdown report or a table's JSON is cut off above this (files have the result cap).
MAX_TEXT_BYTES = 1024 * 1024
#: Artifacts one attempt may publish.
MAX_ARTIFACTS = 100
_MAX_TITLE = 200

Kind = Literal["markdown", "table", "link", "file"]


class ArtifactError(OrchestrionError):
    """An artifact that cannot be published (outside a task, too large, malformed)."""


class Published(msgspec.Struct, frozen=True, kw_only=True):
    """One artifact as the task published it; a file's `path` is uploaded by the worker."""

    kind: Kind
    title: str | None
    #: Markdown text, a table's rows as JSON, a link's URL; None for a file.
    body: str | None = None
    path: Path | None = None


_current = threading.local()


def collecting(sink: Callable[[Published], None] | None) -> Callable[[Published], None] | None:
    """Send this thread's artifacts to `sink` (None: stop); the worker's call. Returns the
    sink it replaces, for a caller that nests (an executor run in a worker's thread)."""
    before: Callable[[Published], None] | None = getattr(_current, "sink", None)
    _current.sink = sink
    return before


def publish(item: Published) -> None:
    """Publish an artifact that an executor collected (the worker's call)."""
    _publish(item)


def active() -> bool:
    """Whether this thread runs an attempt that collects artifacts."""
    return getattr(_current, "sink", None) is not None


def _publish(item: Published) -> None:
    sink: Callable[[Published], None] | None = getattr(_current, "sink", None)
    if sink is None:
        raise ArtifactError("artifacts can be published only inside a task run by a worker")
    sink(item)


def _title(title: str | None) -> str | None:
    if title is None:
        return None
    if not isinstance(title, str):
        raise ArtifactError("an artifact's title must be text")
    return title[:_MAX_TITLE]


def _text(text: str, what: str) -> str:
    if not isinstance(text, str):
        raise ArtifactError(f"{what} must be text, not {type(text).__name__}")
    if len(text.encode()) > MAX_TEXT_BYTES:
        raise ArtifactError(f"{what} is over {MAX_TEXT_BYTES} bytes; publish it as a file")
    return text


def markdown(text: str, *, title: str | None = None) -> None:
    """Publish a Markdown report (rendered with raw HTML escaped)."""
    _publish(Published(kind="markdown", title=_title(title), body=_text(text, "Markdown")))


def table(rows: Sequence[Mapping[str, Any]], *, title: str | None = None) -> None:
    """Publish a table: a list of rows, each a mapping of column to a JSON value."""
    if not isinstance(rows, Sequence) or not all(isinstance(r, Mapping) for r in rows):
        raise ArtifactError("a table is a list of rows, each a mapping of column to value")
    try:
        body = json.dumps([dict(r) for r in rows], ensure_ascii=False, default=str)
    except (TypeError, ValueError) as exc:
        raise ArtifactError(f"a table's rows must be JSON values: {exc}") from None
    _publish(Published(kind="table", title=_title(title), body=_text(body, "a table")))


def link(url: str, *, title: str | None = None) -> None:
    """Publish a link (http or https only: the run page makes it clickable)."""
    if not isinstance(url, str) or urlparse(url).scheme not in ("http", "https"):
        raise ArtifactError(f"a link must be an http(s) URL, not {url!r}")
    _publish(Published(kind="link", title=_title(title), body=_text(url, "a link")))


def file(path: str | Path, *, title: str | None = None) -> None:
    """Publish a file: copied to the result store now (the task may delete it after)."""
    found = Path(path)
    if not found.is_file():
        raise ArtifactError(f"no file at {str(path)!r} to publish")
    _publish(Published(kind="file", title=_title(title) or found.name, path=found))


def publish_line(line: str, cwd: Path | None = None) -> None:
    """Publish one JSON line of a shell task's ``$ORCHESTRION_ARTIFACTS`` file: an object
    with ``kind`` (markdown, table, link, file), an optional ``title`` and, by kind,
    ``text``, ``rows``, ``url`` or ``path`` (relative to the task's working folder)."""
    try:
        item = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"an artifact line is not JSON ({exc}): {line[:80]!r}") from None
    if not isinstance(item, dict):
        raise ArtifactError(f"an artifact line must be a JSON object: {line[:80]!r}")
    kind, title = item.get("kind"), item.get("title")
    if kind == "markdown":
        markdown(item.get("text", ""), title=title)
    elif kind == "table":
        table(item.get("rows", []), title=title)
    elif kind == "link":
        link(item.get("url", ""), title=title)
    elif kind == "file":
        where = Path(str(item.get("path", "")))
        file(where if where.is_absolute() or cwd is None else cwd / where, title=title)
    else:
        raise ArtifactError(
            f"an artifact's kind must be markdown, table, link or file, not {kind!r}"
        )

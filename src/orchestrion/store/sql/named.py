"""Named queries: the store's SQL lives in ``queries.sql`` files, read once at import.

A file is a list of entries, each under a header and a description (procrastinate's
``queries.sql`` is the model)::

    -- name: task_row
    -- One task run, by id, with the columns a decision reads.
    SELECT {task_cols} FROM task_runs WHERE id = ?

Text before the first header is the file's own comment. Within a body, whole-line ``--``
comments are dropped; a comment after code on the same line is refused, because the
PostgreSQL placeholder translation (``?`` to ``%s``) tracks quotes and would be misled by
an apostrophe in it. A body's lines are joined by single spaces and a trailing ``;`` is
dropped, so a statement is sent as one line, as the store always sent them.

``{name}`` in a body is filled at load time when `name` is another entry of the file (a
fragment, such as a column list), an entry of the `base` file (the shared SQL, for a
dialect's file), or a state guard (`guards.GUARDS`, rendered from `orchestrion.states`). Any
other ``{hole}`` is left for the one composing function that fills it at run time (an IN
list of variable length, optional conditions, a dialect's fragment), through `Sql.fill`,
which refuses a hole left empty or a part that fits no hole.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType

__all__ = ["NamedQueries", "Sql", "also_set", "load_queries", "marks", "read_entries", "where"]

_HEADER = re.compile(r"^-- name: ([a-z][a-z0-9_]*)\s*$")
_FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")
#: Each statement text split at its holes (text, hole, text, ...) and its holes, found once
#: (statements are few and fixed): `fill` is on the hot path.
_SPLIT: dict[str, tuple[list[str], frozenset[str]]] = {}


def marks(count: int) -> str:
    """``?,?,?``: the placeholders of an IN list of `count` values."""
    return ",".join("?" * count)


def where(*conditions: str) -> str:
    """``WHERE a AND b`` for a ``{where}`` hole: the conditions that apply (entries of a
    file), or nothing when none does."""
    return f"WHERE {' AND '.join(conditions)}" if conditions else ""


def also_set(columns: Iterable[str]) -> str:
    """``, a = ?, b = ?`` for a ``{sets}`` hole: the columns a compare-and-set or an
    update also writes, named by the code that calls it (one parameter each, in order)."""
    return "".join(f", {column} = ?" for column in columns)


class Sql(str):
    """One entry's text: sent as it is, or, where it has ``{holes}``, through `fill`."""

    __slots__ = ()

    @property
    def holes(self) -> frozenset[str]:
        """The names of the ``{holes}`` that `fill` must be given."""
        return self._split()[1]

    def fill(self, **parts: str) -> str:
        """The statement with its holes filled by `parts` (exactly its holes)."""
        pieces, holes = self._split()
        if parts.keys() != holes:
            raise KeyError(f"holes {sorted(holes)} filled with {sorted(parts)}: {self}")
        filled = pieces.copy()
        filled[1::2] = [parts[name] for name in pieces[1::2]]
        return "".join(filled)

    def _split(self) -> tuple[list[str], frozenset[str]]:
        found = _SPLIT.get(self)
        if found is None:
            pieces = _FIELD.split(self)
            found = _SPLIT[self] = (pieces, frozenset(pieces[1::2]))
        return found


class NamedQueries(Mapping[str, Sql]):
    """The statements of one ``queries.sql`` file by name, read-only; ``Q.task_row`` is
    ``Q["task_row"]``."""

    # No __slots__: each statement is also an instance attribute, so ``Q.task_row`` is a
    # plain attribute read; ``__getattr__`` only explains a name that is not there.

    #: The file the statements were read from.
    path: Path
    _queries: Mapping[str, Sql]
    _descriptions: Mapping[str, str]

    def __init__(self, path: Path, queries: Mapping[str, str], descriptions: Mapping[str, str]):
        taken = {name for name in queries if hasattr(NamedQueries, name)}
        if taken:
            raise ValueError(f"{path.name}: entries named like attributes: {sorted(taken)}")
        object.__setattr__(self, "path", path)
        object.__setattr__(
            self, "_queries", MappingProxyType({k: Sql(v) for k, v in queries.items()})
        )
        object.__setattr__(self, "_descriptions", MappingProxyType(dict(descriptions)))
        self.__dict__.update(self._queries)

    def __getattr__(self, name: str) -> Sql:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"{self.path.name} has no query named {name!r}") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("named queries are read-only")

    def __getitem__(self, name: str) -> Sql:
        return self._queries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)

    def description(self, name: str) -> str:
        """The entry's description line(s), as written under its header."""
        return self._descriptions[name]


def load_queries(
    path: Path,
    *,
    substitutions: Mapping[str, str] = MappingProxyType({}),
    base: NamedQueries | None = None,
) -> NamedQueries:
    """Read `path`'s entries, filling ``{name}`` from its own entries, `base`'s and
    `substitutions` (see the module docstring)."""
    raw, descriptions = read_entries(path)
    known = {**(dict(base) if base is not None else {}), **substitutions}
    clash = set(raw) & set(substitutions)
    if clash:
        raise ValueError(f"{path.name}: entries named like substitutions: {sorted(clash)}")
    filled: dict[str, str] = {}

    def fill(name: str, seen: tuple[str, ...]) -> str:
        if name in filled:
            return filled[name]
        if name in seen:
            raise ValueError(f"{path.name}: {' -> '.join((*seen, name))} refers to itself")

        def one(match: re.Match[str]) -> str:
            field = match[1]
            if field in raw:
                return fill(field, (*seen, name))
            return known.get(field, match[0])

        filled[name] = _FIELD.sub(one, raw[name])
        return filled[name]

    for name in raw:
        fill(name, ())
    return NamedQueries(path, filled, descriptions)


def read_entries(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """The bodies of `path`'s entries as written (braces unfilled) and their descriptions,
    by name, in file order."""
    bodies: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for number, name, lines in _sections(path):
        if name in bodies:
            raise ValueError(f"{path.name}:{number}: {name!r} is defined twice")
        bodies[name], descriptions[name] = _entry(path.name, name, lines)
    return bodies, descriptions


def _sections(path: Path) -> Iterator[tuple[int, str, list[tuple[int, str]]]]:
    """Each entry's header line number, name and following lines (numbered, stripped);
    the text before the first header is the file's own comment."""
    header: tuple[int, str] | None = None
    lines: list[tuple[int, str]] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        found = _HEADER.match(line)
        if found:
            if header is not None:
                yield (*header, lines)
            header, lines = (number, found[1]), []
        elif header is not None:
            lines.append((number, line.strip()))
    if header is not None:
        yield (*header, lines)


def _entry(file: str, name: str, lines: list[tuple[int, str]]) -> tuple[str, str]:
    """An entry's body (one line, no final ``;``) and its description: the comment lines
    before its first line of code."""
    description: list[str] = []
    body: list[str] = []
    for number, line in lines:
        if line.startswith("--"):
            if not body:
                description.append(line.removeprefix("--").strip())
        elif "--" in line:
            raise ValueError(f"{file}:{number}: a comment after code; give it a line")
        elif line:
            body.append(line)
    if not description:
        raise ValueError(f"{file}: {name!r} has no description line under its header")
    if not body:
        raise ValueError(f"{file}: {name!r} is empty")
    return " ".join(body).removesuffix(";").rstrip(), " ".join(description)

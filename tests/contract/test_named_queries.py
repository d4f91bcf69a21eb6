"""The store's SQL files (`orchestrion.store.sql.named`): every named query is used and
every use names one that exists; the holes a composing function fills are exactly the
statement's; and the state guards come from the transition tables, never by hand.

Uses are found in the store's source by their spelling: ``Q.name`` (the portable file),
``SQLITE.name`` and ``PG.name`` (a dialect's), ``….q.name`` (a `Database`'s own file, so
the name must be in both dialects' files), and ``{name}`` inside another entry.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion import store
from orchestrion.states import (
    RunEvent,
    RunState,
    TaskEvent,
    TaskState,
    run_sources,
    task_sources,
    task_target,
)
from orchestrion.store.postgres.queries import PG
from orchestrion.store.sql.guards import GUARDS, STATE_SETS, in_list, literal
from orchestrion.store.sql.named import NamedQueries, Sql, load_queries, read_entries
from orchestrion.store.sql.queries import Q
from orchestrion.store.sqlite.queries import SQLITE

ROOT = Path(store.__file__).parent
FILES: dict[str, NamedQueries] = {"Q": Q, "SQLITE": SQLITE, "PG": PG}
#: Where each name must be imported from, in every module that uses it.
MODULES = {
    "Q": "orchestrion.store.sql.queries",
    "SQLITE": "orchestrion.store.sqlite.queries",
    "PG": "orchestrion.store.postgres.queries",
}
DIALECTS = ("SQLITE", "PG")
_BRACED = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def _sources() -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(ROOT.rglob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def _uses() -> dict[str, set[str]]:
    """File -> the entry names the store's code spells (``"q"``: through `Database.q`)."""
    used: dict[str, set[str]] = {name: set() for name in (*FILES, "q")}
    for _, tree in _sources():
        for node in ast.walk(tree):
            if not isinstance(node, ast.Attribute):
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in FILES:
                used[owner.id].add(node.attr)
            elif isinstance(owner, ast.Attribute) and owner.attr == "q":
                used["q"].add(node.attr)
    return used


def _referenced(raw: dict[str, str]) -> set[str]:
    return {name for body in raw.values() for name in _BRACED.findall(body)}


def _raw(name: str) -> dict[str, str]:
    return read_entries(FILES[name].path)[0]


def test_every_use_names_an_existing_query() -> None:
    used = _uses()
    for name, queries in FILES.items():
        assert used[name] <= set(queries), f"{name}: {sorted(used[name] - set(queries))}"
    for dialect in DIALECTS:
        assert used["q"] <= set(FILES[dialect]), f"{dialect} lacks a `Database.q` query"


def test_every_named_query_is_used() -> None:
    used = _uses()
    shared_refs = set().union(*(_referenced(_raw(n)) for n in FILES))
    unused = set(Q) - used["Q"] - shared_refs
    assert not unused, f"store/sql/queries.sql: unused {sorted(unused)}"
    for dialect in DIALECTS:
        refs = _referenced(_raw(dialect))
        unused = set(FILES[dialect]) - used[dialect] - used["q"] - refs
        assert not unused, f"{dialect}: unused {sorted(unused)}"


def test_the_names_come_from_their_files() -> None:
    for path, tree in _sources():
        spelled = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in FILES}
        imported = {
            alias.asname or alias.name: node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names
        }
        for name in spelled:
            defined_here = path.with_suffix("").name == "queries" and name == _owner(path)
            assert defined_here or imported.get(name) == MODULES[name], f"{path}: {name}"


def _owner(path: Path) -> str:
    return {"sql": "Q", "sqlite": "SQLITE", "postgres": "PG"}[path.parent.name]


def test_holes_are_filled_exactly() -> None:
    """Every ``X.name.fill(...)`` in the store gives exactly that statement's holes (a
    stray keyword would be ignored by `str.format` and a hole left unfilled)."""
    calls = 0
    for path, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if node.func.attr != "fill" or not isinstance(node.func.value, ast.Attribute):
                continue
            entry = node.func.value
            if not isinstance(entry.value, ast.Name) or entry.value.id not in FILES:
                continue
            given = {k.arg for k in node.keywords}
            assert given == FILES[entry.value.id][entry.attr].holes, f"{path}: {entry.attr}"
            calls += 1
    assert calls > 20


def test_fill_refuses_a_wrong_part() -> None:
    with pytest.raises(KeyError):
        Q.results_of.fill(nmes="?")
    with pytest.raises(KeyError):
        Q.task_row.fill(names="?")
    assert Q.results_of.fill(names="?,?").endswith("task_name IN (?,?)")


def test_holes_left_are_the_composers() -> None:
    """A typo in a guard or fragment name would stay a hole: only these are composed."""
    composed = {
        "names", "ids", "keys", "queues", "routed", "queue_match", "sets", "where",
        "of_task", "of_workflows", "per", "ends", "marks", "pairs", "update", "channel",
        "bucket", "scope",
    }  # fmt: skip
    for name, queries in FILES.items():
        for entry, sql in queries.items():
            assert sql.holes <= composed, f"{name}.{entry}: {sorted(sql.holes - composed)}"


def test_every_entry_is_described() -> None:
    for queries in FILES.values():
        for entry in queries:
            assert len(queries.description(entry)) > 10, entry


def test_the_loader_refuses_what_would_mislead(tmp_path: Path) -> None:
    cases = {
        "-- name: a\nSELECT 1\n": "no description",
        "-- name: a\n-- one\nSELECT 1 -- the quote's trouble\n": "comment after code",
        "-- name: a\n-- one\nSELECT 1\n-- name: a\n-- two\nSELECT 2\n": "defined twice",
        "-- name: a\n-- one\nSELECT {b}\n-- name: b\n-- two\nSELECT {a}\n": "refers to itself",
        "-- name: get\n-- one\nSELECT 1\n": "named like attributes",
    }
    for text, error in cases.items():
        path = tmp_path / "q.sql"
        path.write_text(text)
        with pytest.raises(ValueError, match=error):
            load_queries(path)


def test_a_statement_is_sent_as_one_line() -> None:
    for queries in FILES.values():
        for entry, sql in queries.items():
            assert isinstance(sql, Sql)
            assert "\n" not in sql and "--" not in sql and not sql.endswith(";"), entry


# ---------------------------------------------------------------------- state guards


def test_guards_are_the_transition_tables() -> None:
    assert GUARDS["task_claimable"] == in_list(task_sources(TaskEvent.CLAIM))
    assert GUARDS["task_claimable"] == "('queued', 'retry_wait')"
    assert GUARDS["task_leased"] == literal(task_target(TaskEvent.CLAIM)) == "'running'"
    assert GUARDS["task_cancelable"] == in_list(task_sources(TaskEvent.CANCEL))
    assert GUARDS["run_cancelable"] == "('queued', 'running', 'compensating')"
    assert GUARDS["run_active"] == "('running', 'compensating')"
    assert set(STATE_SETS["run_active"]) == set(run_sources(RunEvent.CANCEL)) - set(
        run_sources(RunEvent.START)
    )


_STATE_CMP = re.compile(
    r"\bstate\s*(?:=|<>|!=)\s*('[^']*'|\{\w+\}|\?)"
    r"|\bstate\s+(?:NOT\s+)?IN\s*(\([^)]*\)|\{\w+\})",
    re.IGNORECASE,
)
_TABLES = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+([a-z_]+)", re.IGNORECASE)
_QUOTED = re.compile(r"'([^']*)'")
#: States of the tables without a state machine in `orchestrion.states` (records.py
#: documents them): a statement on these alone may spell its states.
OTHER_STATES = {
    "fires": {"new", "started", "skipped", "queued", "failed"},
    "backfills": {"running", "completed", "canceled"},
    "workers": {"running", "dead"},
    "notification_deliveries": {"pending", "sent", "failed"},
    "broker_consumers": {"running", "held", "error", "stopped"},
    "task_cache": {"computing", "ready"},
}
MACHINE_STATES = {s.value for s in TaskState} | {s.value for s in RunState}


def test_no_state_is_spelled_by_hand_in_runs_or_task_runs() -> None:
    checked = 0
    for name in FILES:
        for entry, body in _raw(name).items():
            for match in _STATE_CMP.finditer(body):
                operand = match[1] or match[2]
                literals = _QUOTED.findall(operand)
                if not literals:
                    continue  # a guard, or a parameter set from `orchestrion.states`
                tables = set(_TABLES.findall(body))
                assert tables and tables <= set(OTHER_STATES), (
                    f"{name}.{entry}: state {operand} by hand; use a guard (sql/guards.py)"
                )
                for table in tables:
                    assert set(literals) <= OTHER_STATES[table], f"{name}.{entry}: {operand}"
                checked += 1
    assert checked >= 5  # the fires, backfills and workers statements were looked at


def test_no_state_is_inserted_by_hand() -> None:
    insert = re.compile(r"INSERT INTO (task_runs|runs)\b", re.IGNORECASE)
    for name in FILES:
        for entry, body in _raw(name).items():
            if insert.search(body):
                spelled = set(_QUOTED.findall(body)) & MACHINE_STATES
                assert not spelled, f"{name}.{entry}: {spelled} by hand; use a guard"


def test_every_state_literal_sent_is_one_the_machines_define() -> None:
    for name, queries in FILES.items():
        for entry, sql in queries.items():
            if not {"task_runs", "runs"} & set(_TABLES.findall(sql)):
                continue
            for match in _STATE_CMP.finditer(sql):
                for value in _QUOTED.findall(match[1] or match[2]):
                    assert value in MACHINE_STATES, f"{name}.{entry}: {value}"


def test_the_schemas_spell_only_states_the_machines_define() -> None:
    """schema.sql's partial indexes name states (a migration's text cannot be derived):
    each is one of the state machines', or of its table's own vocabulary."""
    checked = 0
    for dialect in ("sqlite", "postgres"):
        text = (ROOT / dialect / "schema.sql").read_text()
        for statement in re.sub(r"--[^\n]*", "", text).split(";"):
            tables = set(_TABLES.findall(statement)) | set(re.findall(r"\bON (\w+)", statement))
            for match in _STATE_CMP.finditer(statement):
                for value in _QUOTED.findall(match[1] or match[2]):
                    allowed = set().union(*(OTHER_STATES.get(t, MACHINE_STATES) for t in tables))
                    assert value in allowed, f"{dialect}/schema.sql: {value} in {statement}"
                    checked += 1
    assert checked >= 10

"""The policies table's named queries and reader, and the policies in force as a
transaction reads them: shared by `SqlPolicies` (the role) and `Advance` (which admits a
mapped task once its items are known), apart from both so neither imports the other."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from orchestrion.errors import OrchestrionError
from orchestrion.store.policy_records import PolicyRecord
from orchestrion.store.sql.named import NamedQueries, load_queries
from orchestrion.store.sql.rows import column_list, reader

if TYPE_CHECKING:
    from orchestrion.spec.policies.model import Policy

__all__ = ["PQ", "policies_in_force"]

log = logging.getLogger("orchestrion.policies")

PQ: Final[NamedQueries] = load_queries(
    Path(__file__).with_name("policies.sql"),
    substitutions={"policy_columns": column_list(PolicyRecord)},
)


def policies_in_force(read: Callable[[str], Sequence[Any]]) -> list[Policy]:
    """The parsed policies in force, read with `read` (a transaction's or the database's).
    A stored document that no longer parses (written by another version of Orchestrion)
    is left out with a log line: a transaction that records a task's outcome must not fail
    on it."""
    rows = read(PQ.policies_current)
    if not rows:
        return []
    # The policy models (pydantic classes, built when imported) only to parse a stored
    # policy: importing this module (the store's policies role, a mapped task's admission
    # check) builds none.
    from orchestrion.spec.policies.model import parse_policy

    parse = reader(PolicyRecord)
    found: list[Policy] = []
    for row in rows:
        record = parse(row)
        try:
            found.append(parse_policy(record.document, source=f"policy {record.name}"))
        except OrchestrionError as exc:
            log.warning("policy.unreadable", extra={"policy": record.name, "error": str(exc)})
    return found

"""`PG`: PostgreSQL's own SQL, read from ``queries.sql`` next to this module (the
portable statements and the state guards fill its braces; see `orchestrion.store.sql.named`)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from orchestrion.store.sql.guards import GUARDS
from orchestrion.store.sql.named import NamedQueries, load_queries
from orchestrion.store.sql.queries import Q

__all__ = ["PG"]

#: PostgreSQL's statements, by name (``PG.claim_candidates``).
PG: Final[NamedQueries] = load_queries(
    Path(__file__).with_name("queries.sql"), substitutions=GUARDS, base=Q
)

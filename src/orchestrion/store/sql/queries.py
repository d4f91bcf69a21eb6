"""`Q`: the store's portable SQL, read from ``queries.sql`` next to this module.

The state guards (`guards.GUARDS`) and the column lists of the records that some reads
select by name (`rows.column_list`) are filled in at load time; see `named` for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from orchestrion.store.records import ConnectionRecord, RunMark, SealedRow, SecretMeta
from orchestrion.store.sql.guards import GUARDS
from orchestrion.store.sql.named import NamedQueries, load_queries
from orchestrion.store.sql.rows import column_list

__all__ = ["Q"]

#: The portable statements, by name (``Q.task_row``).
Q: Final[NamedQueries] = load_queries(
    Path(__file__).with_name("queries.sql"),
    substitutions={
        **GUARDS,
        "connection_columns": column_list(ConnectionRecord),
        "run_mark_columns": column_list(RunMark),
        "secret_meta_columns": column_list(SecretMeta),
        "sealed_row_columns": column_list(SealedRow),
    },
)

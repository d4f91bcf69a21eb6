"""The SQL implementation of the store's roles, written once for both dialects.

One class per role (`SqlWorkflows`, `SqlRuns`, `SqlTriggers`, `SqlAccounts`, `SqlSecrets`,
`SqlReads`, `SqlNotifier`) over a dialect's `Database` (`database.py`), and the
dialect-free transactional code they hand their work to: `advance.py` (the decisions of one
transaction) over `guarded.py` (its compare-and-sets), `lifecycle.py`, `marking.py`,
`rerun.py`, `trigger_verbs.py`; the claim (`claim.py`) and the trigger reads
(`trigger_queries.py`); concurrency slots (`slots.py`) and label routing (`routing.py`).
`stores.stores_of` bundles a database's roles.

The statements themselves are SQL files, read once at import: ``queries.sql`` here (the
portable ones, `queries.Q`) and each dialect's own ``queries.sql``, in the named-query
format of `named.py`, with the state guards rendered from `orchestrion.states`
(`guards.py`). Rows become records through `rows.py`, one reader per record derived from
its fields.
"""

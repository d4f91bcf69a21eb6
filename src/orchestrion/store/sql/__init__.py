"""The SQL implementation of the store's roles, written once for both dialects.

One class per role (`SqlWorkflows`, `SqlRuns`, `SqlTriggers`, `SqlAccounts`, `SqlSecrets`,
`SqlReads`, `SqlNotifier`) over a dialect's `Database` (`database.py`), and the
dialect-free transactional code they hand their work to: `advance.py` (the decisions of one
transaction) over `guarded.py` (its compare-and-sets), `lifecycle.py`, `marking.py`,
`rerun.py`, `trigger_verbs.py`; the reads and the claim in `queries.py` and
`trigger_queries.py`; concurrency slots (`slots.py`) and label routing (`routing.py`).
`stores.stores_of` bundles a database's roles.
"""

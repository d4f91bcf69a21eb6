-- Retention (issue 16, part 4): per-namespace policies, a `keep` mark on runs, and the one
-- narrow way to delete audit rows (after they were exported).

-- A run marked "keep" is never pruned, nor are the runs of its family (its parent's and
-- child runs). 0 or 1.
ALTER TABLE runs ADD COLUMN keep INTEGER NOT NULL DEFAULT 0;

-- The newest runs of each workflow (kept by `keep_last`), and the oldest (what prunes next).
CREATE INDEX runs_workflow_created ON runs (workflow, created_at);

-- Per namespace ('*': every namespace without a row of its own); NULL: that rule is off.
-- runs_days: finished runs older than this go, with all their rows; logs_days: log lines
-- of finished runs older than this go; keep_last: the newest N runs of each workflow stay
-- whatever their age; audit_days: audit records older than this are exported to a
-- JSON-lines file in audit_export_dir, then deleted.
CREATE TABLE retention_policies (
    namespace         TEXT PRIMARY KEY,
    runs_days         REAL CHECK (runs_days > 0),
    logs_days         REAL CHECK (logs_days > 0),
    keep_last         INTEGER CHECK (keep_last >= 0),
    audit_days        REAL CHECK (audit_days > 0),
    audit_export_dir  TEXT,
    updated_at        REAL NOT NULL,
    CHECK (audit_days IS NULL OR audit_export_dir IS NOT NULL)
);

-- The audit log's pruning gate. The only DELETE the audit log accepts is of a row at or
-- below `up_to_id` and older than `before` while this one row exists; retention inserts
-- it, deletes the rows it has just exported, and deletes it again, in one transaction.
-- Nothing else writes this table (docs/security.md, "The audit log").
CREATE TABLE audit_prune_gate (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    up_to_id  INTEGER NOT NULL,
    before    REAL NOT NULL
);

DROP TRIGGER audit_log_no_delete;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN NOT EXISTS (
    SELECT 1 FROM audit_prune_gate g WHERE OLD.id <= g.up_to_id AND OLD.at < g.before
)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

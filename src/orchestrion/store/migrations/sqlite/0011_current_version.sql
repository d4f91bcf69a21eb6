-- Each workflow's current version: the one that triggers, schedules and `trigger` without a
-- version start. Registering a version (new or known again) or `set-version` makes it
-- current; before this, "latest" was the version first registered most recently, so an
-- upgraded database starts with that one current and behaves as before until a deploy.
CREATE TABLE workflow_current (
    name        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    -- when this version became current (a schedule new to it fires from then)
    updated_at  REAL NOT NULL,
    FOREIGN KEY (name, version) REFERENCES workflows (name, version)
);

INSERT INTO workflow_current (name, version, updated_at)
SELECT w.name, w.version, w.created_at FROM workflows w
WHERE w.rowid = (SELECT w2.rowid FROM workflows w2 WHERE w2.name = w.name
                 ORDER BY w2.created_at DESC, w2.rowid DESC LIMIT 1);

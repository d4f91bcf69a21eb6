-- Declarative projects and Git sync (issue 19, parts 2 and 3).
-- project_applies: one row per `orchestrion apply` (or sync) of a namespace's project: who,
-- when, from which commit, what it changed (summary: JSON counts of create/update/delete),
-- and how it ended (a failed apply changed nothing: it was validated first, or undone).
CREATE TABLE project_applies (
    id           INTEGER PRIMARY KEY,
    namespace    TEXT NOT NULL,
    project      TEXT NOT NULL,
    actor        TEXT NOT NULL,
    commit_sha   TEXT,
    source       TEXT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'failed')),
    summary      TEXT NOT NULL,
    error        TEXT,
    created_at   REAL NOT NULL
);
CREATE INDEX project_applies_namespace ON project_applies (namespace, id);

-- The commit a workflow version was first deployed from (Git sync, or `apply --commit`).
-- A version is content-addressed: a later commit with the same content keeps the first.
CREATE TABLE workflow_commits (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    PRIMARY KEY (name, version)
);

-- Git repositories the ``sync`` duty follows: a branch or a tag, the project file in it,
-- and the secret (by reference, never its value) holding an HTTPS token or an SSH key.
CREATE TABLE sync_sources (
    name         TEXT PRIMARY KEY,
    repo         TEXT NOT NULL,
    ref_kind     TEXT NOT NULL CHECK (ref_kind IN ('branch', 'tag')),
    ref          TEXT NOT NULL,
    project_path TEXT NOT NULL,
    secret       TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);

-- What each look at a source found: the commit, and whether it was applied, needed
-- nothing, or failed (validation or apply; the error names why). The duty skips a commit
-- it has a row for, so a bad commit is reported once and the next good one applied.
CREATE TABLE sync_results (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'failed')),
    error        TEXT,
    summary      TEXT NOT NULL,
    created_at   REAL NOT NULL
);
CREATE INDEX sync_results_source ON sync_results (source, id);

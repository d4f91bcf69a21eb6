-- Admission policies (issue 19): one row per version of a policy. The newest version of
-- a name is in force unless it records a deletion (deleted = 1, keeping the last
-- document), so the history is never rewritten. document: the policy as JSON text;
-- digest: SHA-256 of it, so that writing an unchanged policy writes nothing.
CREATE TABLE policies (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    document    TEXT NOT NULL,
    digest      TEXT NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    created_at  DOUBLE PRECISION NOT NULL,
    created_by  TEXT,
    PRIMARY KEY (name, version)
);

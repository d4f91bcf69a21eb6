-- The code of workflow versions (`orchestrion.spec.bundle`), content-addressed: a file's
-- content is kept once however many versions contain it, and a version's spec names its
-- bundle by digest (`WorkflowSpec.code`). Rows are written once and never changed.
CREATE TABLE code_blobs (
    digest      TEXT PRIMARY KEY,       -- SHA-256 of the content
    content     BLOB NOT NULL,
    size        INTEGER NOT NULL
);

CREATE TABLE code_bundles (
    digest      TEXT PRIMARY KEY,       -- CodeBundle.digest
    paths       TEXT NOT NULL,          -- JSON list: the folders imports resolve against
    files       TEXT NOT NULL,          -- JSON object: path -> code_blobs.digest
    created_at  REAL NOT NULL
);

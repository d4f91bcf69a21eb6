-- Large results and artifacts (docs/results.md).

-- Objects in the result store that hold a task run's result (its result column holds a
-- small reference to it); also those of superseded attempts, so that retention deletes
-- every object a run's attempts wrote.
CREATE TABLE result_objects (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    task_run_id INTEGER NOT NULL,
    uri         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX result_objects_run ON result_objects (run_id);
CREATE INDEX result_objects_task_run ON result_objects (task_run_id);

-- What attempts published: kind markdown, table, link or file; body holds the text, the
-- rows as JSON or the URL; a file's object is at uri.
CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    task_run_id INTEGER NOT NULL,
    task_name   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('markdown', 'table', 'link', 'file')),
    title       TEXT,
    body        TEXT,
    uri         TEXT,
    size        INTEGER,
    sha256      TEXT,
    media_type  TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX artifacts_run ON artifacts (run_id, id);

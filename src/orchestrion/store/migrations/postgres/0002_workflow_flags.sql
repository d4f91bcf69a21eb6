-- Per-workflow switches that are not part of a version: pausing stops schedules and
-- event triggers from starting runs (manual triggers still work).
CREATE TABLE workflow_flags (
    name        TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  DOUBLE PRECISION NOT NULL
);

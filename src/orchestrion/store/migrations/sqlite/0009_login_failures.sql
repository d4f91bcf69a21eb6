-- Failed logins (auth/passwords.py LoginLimiter), shared by every server on the database, so
-- that servers behind a load balancer limit password guessing together. `key` is a digest
-- of (user name, source address): what was typed as a user name is never stored.
CREATE TABLE login_failures (
    id   INTEGER PRIMARY KEY,
    key  TEXT NOT NULL,
    at   REAL NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);

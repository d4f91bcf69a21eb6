-- Users, API tokens, UI sessions and the audit log.

-- bindings: JSON {namespace: role}. auth_epoch is bumped by every password or role change;
-- a session remembers the epoch it was made at and dies when they differ.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    bindings       TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    auth_epoch     INTEGER NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);

-- Only the SHA-256 of a token is kept; `id` is the token's public id part.
CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    token_hash     TEXT NOT NULL,
    bindings       TEXT NOT NULL,
    created_by     TEXT,
    created_at     REAL NOT NULL,
    expires_at     REAL,
    revoked_at     REAL
);

-- Only the SHA-256 of a session id is kept, so a copy of the database opens no session.
CREATE TABLE sessions (
    id_hash        TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id),
    csrf           TEXT NOT NULL,
    auth_epoch     INTEGER NOT NULL,
    created_at     REAL NOT NULL,
    expires_at     REAL NOT NULL,
    revoked_at     REAL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Append-only: the triggers below refuse every UPDATE and DELETE.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             REAL NOT NULL,
    actor          TEXT NOT NULL,
    actor_kind     TEXT NOT NULL,
    action         TEXT NOT NULL,
    object         TEXT NOT NULL,
    namespace      TEXT,
    params         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    detail         TEXT,
    request_id     TEXT,
    source         TEXT
);
CREATE INDEX audit_actor ON audit_log (actor, id);
CREATE INDEX audit_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

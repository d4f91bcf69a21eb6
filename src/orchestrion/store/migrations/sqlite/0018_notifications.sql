-- Notifications and SLAs (issue 16, part 3).
--
-- A channel is where messages go: a generic webhook (signed with HMAC-SHA256), a
-- Slack-compatible incoming webhook, or email over SMTP. `config` is a JSON object of what
-- is not secret (a webhook's URL, an SMTP host, port, sender and recipients); `secret`
-- names a secret of the same namespace (`secrets` table, sealed) holding what is: the HMAC
-- key, the Slack URL (its path is the credential), the SMTP password.
CREATE TABLE notification_channels (
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'smtp')),
    config       TEXT NOT NULL DEFAULT '{}',
    secret       TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- A rule: which workflows of its namespace (a name pattern, tags they must all carry) on
-- which events go to which channel (same namespace), with an optional message template
-- (the sandboxed {{ expression }} language).
CREATE TABLE notification_rules (
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    channel      TEXT NOT NULL,
    workflows    TEXT NOT NULL DEFAULT '*',
    tags         TEXT NOT NULL DEFAULT '[]',
    events       TEXT NOT NULL,
    template     TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- The outbox: one row per message to send, written by the scheduler's `notifications`
-- duty and sent by it with retries and back-off. `dedupe_key` (rule, event, subject)
-- makes a re-read of the history or a second scheduler write nothing twice.
-- state: pending | sent | failed (gave up after its last attempt).
CREATE TABLE notification_deliveries (
    id               INTEGER PRIMARY KEY,
    dedupe_key       TEXT NOT NULL UNIQUE,
    namespace        TEXT NOT NULL,
    rule             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    event            TEXT NOT NULL,
    workflow         TEXT,
    run_id           TEXT,
    message          TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    sent_at          REAL
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);

-- Replay keys of signed webhook deliveries (a digest of what the signature covers, under
-- the webhook's name), each kept until its signature would be refused anyway or its window
-- ends: a second delivery of one starts nothing, whatever its unsigned headers say.
CREATE TABLE webhook_seen (
    digest      TEXT PRIMARY KEY,
    -- the event the first delivery recorded (inbox source, event id)
    source      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX webhook_seen_expires ON webhook_seen (expires_at);

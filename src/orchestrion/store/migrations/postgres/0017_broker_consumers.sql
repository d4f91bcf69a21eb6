-- The state of each broker trigger's consumer (issue 14), for the consumers page and API.
-- Written by the scheduler running the consumer about once a second while it runs, and
-- only by the holder of the trigger's newest lease epoch (an older holder's late write
-- changes nothing). Telemetry like the workers' heartbeats: no event row per write; the
-- messages themselves are recorded in the inbox (source 'broker:' || trigger_key), which
-- is where the counts of received and dead-lettered messages are read from.
CREATE TABLE broker_consumers (
    trigger_key      TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    connection       TEXT NOT NULL,
    destination      TEXT NOT NULL,
    holder           TEXT NOT NULL,
    epoch            BIGINT NOT NULL,
    -- running | held (at its in-flight limit) | error | stopped
    state            TEXT NOT NULL,
    -- messages waiting at the broker, where it says (NULL: unknown)
    lag              BIGINT,
    last_message_at  DOUBLE PRECISION,
    error            TEXT,
    updated_at       DOUBLE PRECISION NOT NULL
);

-- Broker connections (issue 14): named per namespace, used by `publish` tasks and broker
-- triggers. No credential is stored here: `password_secret` names a secret of the same
-- namespace (the `secrets` table, sealed), opened by a worker or consumer when it connects.
-- `tls` is a JSON object of TLS options (enabled, ca_file, cert_file, key_file, insecure).
CREATE TABLE connections (
    namespace        TEXT NOT NULL,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('redis', 'rabbitmq', 'nats', 'mqtt')),
    url              TEXT NOT NULL,
    username         TEXT,
    password_secret  TEXT,
    tls              TEXT NOT NULL DEFAULT '{}',
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- SQL task connections (issue 15): a connection may name a database (postgres, mysql for
-- MariaDB and MySQL, sqlite) as well as a broker. SQLite cannot change a CHECK constraint
-- in place, so the table is copied aside, made again with the wider check, and filled back.
CREATE TABLE connections_0020 AS SELECT * FROM connections;
DROP TABLE connections;
CREATE TABLE connections (
    namespace        TEXT NOT NULL,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('redis', 'rabbitmq', 'nats', 'mqtt',
                                                   'postgres', 'mysql', 'sqlite')),
    url              TEXT NOT NULL,
    username         TEXT,
    password_secret  TEXT,
    tls              TEXT NOT NULL DEFAULT '{}',
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);
INSERT INTO connections
    (namespace, name, kind, url, username, password_secret, tls, created_at, updated_at)
SELECT namespace, name, kind, url, username, password_secret, tls, created_at, updated_at
FROM connections_0020;
DROP TABLE connections_0020;

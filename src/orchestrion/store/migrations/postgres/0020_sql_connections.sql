-- SQL task connections (issue 15): a connection may name a database (postgres, mysql for
-- MariaDB and MySQL, sqlite) as well as a broker.
ALTER TABLE connections DROP CONSTRAINT connections_kind_check;
ALTER TABLE connections ADD CONSTRAINT connections_kind_check
    CHECK (kind IN ('redis', 'rabbitmq', 'nats', 'mqtt', 'postgres', 'mysql', 'sqlite'));

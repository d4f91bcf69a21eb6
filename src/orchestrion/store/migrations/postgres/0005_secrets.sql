-- Secrets, sealed with AES-256-GCM by orchestrion.auth.secret_box: the store never sees a
-- plaintext. The associated data binds each ciphertext to (namespace, name), so a row
-- copied under another name fails to open. key_id says which master key sealed it.
CREATE TABLE secrets (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BYTEA NOT NULL,
    ciphertext  BYTEA NOT NULL,
    created_at  DOUBLE PRECISION NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (namespace, name)
);

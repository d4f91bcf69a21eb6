-- Secrets, sealed with AES-256-GCM by orchestrion.auth.secret_box: the store never sees a
-- plaintext. The associated data binds each ciphertext to (namespace, name), so a row
-- copied under another name fails to open. key_id says which master key sealed it.
CREATE TABLE secrets (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);

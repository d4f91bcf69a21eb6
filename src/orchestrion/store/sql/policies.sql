-- The SQL of admission policies (`orchestrion.store.sql.policies`): both dialects send it
-- as written. A policy's versions are rows of `policies`; the newest one is in force
-- unless it records a deletion.

-- name: policy_latest
-- The newest version of one policy (locked where the dialect locks: an insert follows).
SELECT {policy_columns} FROM policies WHERE name = ? ORDER BY version DESC LIMIT 1

-- name: policy_history
-- Every version of one policy, newest first.
SELECT {policy_columns} FROM policies WHERE name = ? ORDER BY version DESC

-- name: policies_current
-- The newest version of each policy that is not a deletion, by name.
SELECT {policy_columns} FROM policies AS p
WHERE version = (SELECT MAX(version) FROM policies AS q WHERE q.name = p.name)
AND deleted = 0 ORDER BY name

-- name: insert_policy
-- A new version; nothing when another writer took that version first (the first version
-- of a policy has no row to lock: two writers can both read "none" and race for it).
INSERT INTO policies (name, version, document, digest, deleted, created_at, created_by)
VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, version) DO NOTHING RETURNING version

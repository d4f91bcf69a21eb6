-- Declarative projects and Git sync, both dialects (`orchestrion.store.sql.projects`).

-- name: insert_apply
-- One apply of a project.
INSERT INTO project_applies
    (namespace, project, actor, commit_sha, source, outcome, summary, error, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id

-- name: applies
-- The newest applies.
SELECT id, namespace, project, actor, commit_sha, source, outcome, summary, error, created_at
FROM project_applies ORDER BY id DESC LIMIT ?

-- name: applies_of
-- The newest applies of one namespace.
SELECT id, namespace, project, actor, commit_sha, source, outcome, summary, error, created_at
FROM project_applies WHERE namespace = ? ORDER BY id DESC LIMIT ?

-- name: insert_commit
-- A version keeps the first commit it was deployed from.
INSERT INTO workflow_commits (name, version, commit_sha, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT DO NOTHING

-- name: commits_of
-- The commits of a workflow's versions.
SELECT version, commit_sha FROM workflow_commits WHERE name = ?

-- name: source_exists
-- Whether a sync source exists.
SELECT name FROM sync_sources WHERE name = ?

-- name: put_source
-- Create or replace a sync source.
INSERT INTO sync_sources
    (name, repo, ref_kind, ref, project_path, secret, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (name) DO UPDATE SET repo = excluded.repo, ref_kind = excluded.ref_kind,
    ref = excluded.ref, project_path = excluded.project_path, secret = excluded.secret,
    updated_at = excluded.updated_at

-- name: source
-- One sync source.
SELECT name, repo, ref_kind, ref, project_path, secret, created_at, updated_at
FROM sync_sources WHERE name = ?

-- name: sources
-- Every sync source.
SELECT name, repo, ref_kind, ref, project_path, secret, created_at, updated_at
FROM sync_sources ORDER BY name

-- name: delete_source
-- Delete a sync source.
DELETE FROM sync_sources WHERE name = ? RETURNING name

-- name: insert_result
-- What one look at a source found.
INSERT INTO sync_results (source, commit_sha, outcome, error, summary, created_at)
VALUES (?, ?, ?, ?, ?, ?) RETURNING id

-- name: results
-- The newest sync results.
SELECT id, source, commit_sha, outcome, error, summary, created_at
FROM sync_results ORDER BY id DESC LIMIT ?

-- name: results_of
-- The newest sync results of one source.
SELECT id, source, commit_sha, outcome, error, summary, created_at
FROM sync_results WHERE source = ? ORDER BY id DESC LIMIT ?

-- name: runs_of_workflow
-- Whether a workflow has any run.
SELECT 1 FROM runs WHERE workflow = ? LIMIT 1

-- name: drop_current
-- Forget a workflow's current version.
DELETE FROM workflow_current WHERE name = ?

-- name: drop_flags
-- Forget a workflow's flags.
DELETE FROM workflow_flags WHERE name = ?

-- name: drop_commits
-- Forget a workflow's commits.
DELETE FROM workflow_commits WHERE name = ?

-- name: drop_versions
-- Forget a workflow's versions.
DELETE FROM workflows WHERE name = ?

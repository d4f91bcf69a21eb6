-- The audit log refuses to be overwritten by an insert. SQLite's REPLACE (INSERT OR REPLACE,
-- REPLACE INTO) on an existing id deletes the old row without firing the DELETE trigger, so
-- an insert naming an id that is already there is refused before conflict resolution runs.
-- The store always lets the database pick the id (NEW.id is -1 here then, which no record
-- has), so only a hand-written insert is refused. An upsert (ON CONFLICT DO UPDATE) is an
-- UPDATE and was refused already.
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

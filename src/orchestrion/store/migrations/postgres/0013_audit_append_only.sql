-- The audit log refuses to be overwritten by an insert, as on SQLite (where REPLACE would
-- otherwise replace a row). Here an insert naming an existing id already fails on the
-- primary key and INSERT ... ON CONFLICT DO UPDATE (and MERGE) fire the UPDATE trigger; this
-- trigger makes every such attempt fail with the same message, ON CONFLICT DO NOTHING
-- included, so a tampering attempt is an error rather than a silent no-op.
CREATE FUNCTION audit_log_no_overwrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'the audit log is append-only';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER audit_log_no_overwrite BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_no_overwrite();

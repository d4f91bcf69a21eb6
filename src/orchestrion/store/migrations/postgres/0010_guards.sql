-- Fails the statement (and so the transaction, whose COMMIT then rolls back) when a guarded
-- update moved another number of rows than it must: a compare-and-set on rows the
-- transaction holds locked, sent without waiting for its result (store/postgres_tx.py,
-- PgTx.queue_expecting), is still checked, in the server, before the COMMIT behind it.
CREATE FUNCTION orchestrion_expect_rows(moved BIGINT, expected BIGINT, what TEXT)
RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    IF moved <> expected THEN
        RAISE EXCEPTION '%: the guarded update moved % rows, not %', what, moved, expected
            USING ERRCODE = 'OR002';
    END IF;
    RETURN moved;
END
$$;

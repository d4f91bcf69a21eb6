-- Routing: a task run's worker-label requirements, as canonical JSON text (store/routing.py);
-- NULL when it requires nothing. A claim matches it by equality against the subsets of the
-- claiming worker's labels.
ALTER TABLE task_runs ADD COLUMN requires TEXT;

-- Priority ageing: how many times the claim priority was raised for waiting (store verb
-- age_priorities, run by the housekeeping sweep).
ALTER TABLE task_runs ADD COLUMN aged INTEGER NOT NULL DEFAULT 0;

-- Fails the statement (and so the transaction) when n > 0: a finish that queued its
-- counting with the COMMIT (store/postgres_finish.py) counted some row to zero, so a
-- decision is due; the store runs the finish again, taking it.
CREATE FUNCTION orchestrion_expect_zero(n BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
BEGIN
    IF n > 0 THEN
        RAISE EXCEPTION 'a counter reached zero' USING ERRCODE = 'OR001';
    END IF;
    RETURN n;
END
$$;

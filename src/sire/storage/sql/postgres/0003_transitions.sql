-- Step transitions in one round trip: `sire_transitions(written_at, batch)` writes a
-- batch of transitions (staged ones, then a recorded one) as the store's one statement.
-- Each element of `batch` (a JSON array, in order) is one transition:
--   [execution_id, lease_token, at, key, status, event_data, output, error, attempts,
--    next_attempt, started_at, finished_at, checkpoint, mocked]
-- Each (execution_id, lease_token) is fenced: its execution's row is updated (updated_at)
-- only while lease_token is the current one; the transitions of a pair whose fence
-- fails write nothing. Every other transition appends its `step` event, in order, and
-- upserts its step once per run of consecutive transitions of that step, in the run's
-- last state; a new step is placed at its first event's seq. Returns the pairs whose
-- fence held. The batch is one JSON text, cheap for the client to build (no array
-- parameters to adapt), and the statements inside are planned once per session
-- (PL/pgSQL caches their plans).

CREATE FUNCTION sire_transitions(written_at double precision, batch jsonb)
RETURNS TABLE (fenced_id text, fenced_token bigint)
LANGUAGE plpgsql AS $fn$
DECLARE
    total integer := jsonb_array_length(batch);
    i integer := 0;
    t jsonb;
    next_t jsonb;
    held boolean := false;
    event_seq bigint;
    first_seq bigint;
BEGIN
    WHILE i < total LOOP
        t := batch -> i;
        i := i + 1;
        IF fenced_id IS DISTINCT FROM t ->> 0
                OR fenced_token IS DISTINCT FROM (t ->> 1)::int8 THEN
            fenced_id := t ->> 0;
            fenced_token := (t ->> 1)::int8;
            UPDATE executions AS x SET updated_at = written_at
            WHERE x.id = fenced_id AND x.lease_token = fenced_token;
            held := FOUND;
            IF held THEN
                RETURN NEXT;
            END IF;
        END IF;
        CONTINUE WHEN NOT held;
        INSERT INTO events AS v (execution_id, at, kind, key, status, data)
        VALUES (fenced_id, (t ->> 2)::float8, 'step', t ->> 3, t ->> 4, t -> 5)
        RETURNING v.seq INTO event_seq;
        first_seq := coalesce(first_seq, event_seq);
        next_t := batch -> i;  -- NULL past the end
        CONTINUE WHEN next_t ->> 0 = fenced_id AND (next_t ->> 1)::int8 = fenced_token
            AND next_t ->> 3 = t ->> 3;
        INSERT INTO steps AS s (
            execution_id, key, status, output, error, attempts, next_attempt, started_at,
            finished_at, checkpoint, mocked, pos
        ) VALUES (
            fenced_id, t ->> 3, t ->> 4, nullif(t -> 6, 'null'), t ->> 7, (t ->> 8)::int4,
            (t ->> 9)::float8, (t ->> 10)::float8, (t ->> 11)::float8, nullif(t -> 12, 'null'),
            (t ->> 13)::bool, first_seq
        )
        ON CONFLICT (execution_id, key) DO UPDATE SET
            status = excluded.status,
            output = excluded.output,
            error = excluded.error,
            attempts = excluded.attempts,
            next_attempt = excluded.next_attempt,
            started_at = excluded.started_at,
            finished_at = excluded.finished_at,
            checkpoint = excluded.checkpoint,
            mocked = excluded.mocked;
        first_seq := NULL;
    END LOOP;
END
$fn$;

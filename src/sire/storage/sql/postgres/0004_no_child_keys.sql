-- Steps and events no longer carry foreign keys to executions. Every write of either
-- runs in the transaction that first updates its execution's row under the lease
-- token (the fence), so the execution is known to exist and is locked; the key only
-- repeated that check, once per row, on the per-step path. `delete_executions`
-- removes an execution's steps and events itself.
ALTER TABLE steps DROP CONSTRAINT steps_execution_id_fkey;
ALTER TABLE events DROP CONSTRAINT events_execution_id_fkey;


-- One index for running tasks instead of two: every task enters and leaves it once, so
-- each index less is work less per task. Leases are renewed without touching it (in
-- PostgreSQL a renewal can then be a HOT update). The running set is bounded by the
-- workers' slots, so queries by agent or by lease time scan it whole.
DROP INDEX tasks_worker;
DROP INDEX tasks_running;
CREATE INDEX tasks_running ON tasks (worker_id, agent) WHERE status = 'running';

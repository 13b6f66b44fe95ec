-- The last event number a task handed out in blocks to a running attempt's live events
-- (0: none). The live events are numbered from memory and stored behind, so `seq`, what
-- the task's snapshot reports, stays at the newest event stored; every other path
-- numbers its events after both.
ALTER TABLE tasks ADD COLUMN numbered bigint NOT NULL DEFAULT 0;

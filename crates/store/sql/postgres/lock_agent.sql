-- Serialises claims of one concurrency-limited agent until the transaction ends, so the
-- running count read next cannot be raced by another claimer.
SELECT pg_advisory_xact_lock(hashtextextended($1, 0))

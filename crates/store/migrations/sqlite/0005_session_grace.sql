-- The current refresh token, sealed under a key only the token it replaced yields: a
-- repeat of the last refresh within the grace window gets the same token back.
ALTER TABLE sessions ADD COLUMN sealed_next TEXT NOT NULL DEFAULT '';

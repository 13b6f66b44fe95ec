-- The audit log (docs/audit.md): who did what, to what, with which outcome, from where.
-- Entries are only ever added; the retention prune (audit.retention_days) is the only
-- delete, and no statement of Switchyard's updates one (the trigger below refuses it).
CREATE TABLE audit_log (
    id             BLOB PRIMARY KEY NOT NULL,
    at             INTEGER NOT NULL,
    -- Who: an email (for a failed login, the email tried), `system` or `cli`; the user
    -- and the API key behind it, when known.
    actor          TEXT NOT NULL,
    actor_user_id  BLOB,
    actor_key_id   BLOB,
    actor_key_name TEXT,
    -- A stable dotted name: auth.login, user.create, ...
    action         TEXT NOT NULL,
    target_kind    TEXT,
    target_id      TEXT,
    -- success, failure or denied, and why not success.
    outcome        TEXT NOT NULL,
    reason         TEXT,
    request_id     TEXT,
    client_addr    TEXT,
    -- A few facts about the change (JSON), never a secret.
    detail         TEXT
);
-- The list is newest first with ties broken by id: every filter below ends in (at, id).
CREATE INDEX audit_log_at ON audit_log (at, id);
CREATE INDEX audit_log_actor ON audit_log (actor, at, id);
CREATE INDEX audit_log_actor_user ON audit_log (actor_user_id, at, id)
    WHERE actor_user_id IS NOT NULL;
CREATE INDEX audit_log_actor_key ON audit_log (actor_key_id, at, id)
    WHERE actor_key_id IS NOT NULL;
CREATE INDEX audit_log_action ON audit_log (action, at, id);
-- A kind of target alone (`target=task`) has an index of its own: on audit_log_target, its
-- entries would come out by target id and have to be sorted by time.
CREATE INDEX audit_log_target_kind ON audit_log (target_kind, at, id);
CREATE INDEX audit_log_target ON audit_log (target_kind, target_id, at, id);

CREATE TRIGGER audit_log_immutable BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log entries cannot be changed');
END;

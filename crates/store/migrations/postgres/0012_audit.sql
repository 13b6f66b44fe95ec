-- The same logical schema as migrations/sqlite/0012_audit.sql.
CREATE TABLE audit_log (
    id             uuid PRIMARY KEY,
    at             bigint NOT NULL,
    actor          text NOT NULL,
    actor_user_id  uuid,
    actor_key_id   uuid,
    actor_key_name text,
    action         text NOT NULL,
    target_kind    text,
    target_id      text,
    outcome        text NOT NULL,
    reason         text,
    request_id     text,
    client_addr    text,
    detail         jsonb
);
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

-- Entries are never changed, by Switchyard or by anyone with a connection: an UPDATE
-- fails. DELETE stays possible, because two things must delete: the retention prune
-- (audit.retention_days, which the database does not know) and a restore, which replaces
-- the whole log with the archive's. A database role that must not delete at all is a
-- matter of GRANTs, outside the application (docs/audit.md).
CREATE FUNCTION audit_log_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log entries cannot be changed';
END
$$;
CREATE TRIGGER audit_log_immutable BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_update();

#!/bin/bash
# A streaming replica: on first start, clone the primary with pg_basebackup (-R writes
# the standby settings), then run as a hot standby. The cluster test does the same.
set -euo pipefail
export PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA"
  chown postgres:postgres "$PGDATA"
  chmod 700 "$PGDATA"
  until gosu postgres pg_basebackup -h postgres-primary -U switchyard -D "$PGDATA" -R -X stream; do
    echo "waiting for the primary…"
    sleep 2
    rm -rf "${PGDATA:?}"/*
  done
fi
# Backups read their snapshot here (docs/backup.md): replaying the primary's changes waits up
# to 10 minutes for a backup's reads instead of cancelling them after the default 30 s.
exec gosu postgres postgres -c hot_standby=on -c max_connections=300 \
  -c max_standby_streaming_delay=10min

#!/usr/bin/env bash
# Backup and restore benchmark (issue 34). On this machine:
#   1. fills a fresh SQLite deployment with TASKS finished tasks (default 1,000,000), each
#      with an input, an output and one log line (written by sqlite3, not through the API:
#      the benchmark is of the backup, not of the submit path);
#   2. `switchyard backup` of it: seconds and archive size;
#   3. `switchyard restore` of that archive into a fresh PostgreSQL database: seconds;
#   4. `switchyard backup` of the PostgreSQL deployment, and `restore` of it into a fresh
#      SQLite one: seconds and size;
#   5. server throughput during a backup, on each backend: `switchyard bench` (echo tasks,
#      submit → completion) against a server on the filled database, without and then
#      with backups running back to back beside it; the ratio (goal: ≥ 80 %).
#
#   scripts/bench-backup.sh [BINARY] [TASKS]   (default: target/release/switchyard, 1000000)
#
# Needs sqlite3 and a PostgreSQL server (BENCH_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/postgres; it creates and drops the database
# sy_bench_backup). BENCH_REPLICA_URL names a streaming replica of that server (same
# form, e.g. postgres://postgres@127.0.0.1:5433/postgres): step 5's PostgreSQL server and
# backups are then configured with it as database.replica_url, so the backups read their
# snapshot there. BENCH_BACKUP_FLAGS are added to the backups of step 5 (e.g.
# --full-speed); BENCH_THROUGHPUT_TASKS is the size of each throughput run (150000). Every step has a timeout; the whole run is bounded by BENCH_BUDGET_S
# (default 1500 s). Exits 0 with a table, or 1 if something could not be set up.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(realpath "${1:-$here/target/release/switchyard}")
tasks=${2:-1000000}
admin_url=${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
pg_url="${admin_url%/*}/sy_bench_backup"
budget=${BENCH_BUDGET_S:-1500}
deadline=$((SECONDS + budget))
password=bench-backup-password

for tool in sqlite3 psql curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-backup: $tool is missing" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "bench-backup: no binary at $bin" >&2; exit 1; }

left() {
  local rem=$((deadline - SECONDS))
  ((rem < 1)) && rem=1
  echo $(($1 < rem ? $1 : rem))
}
note() { printf '[%4ds] %s\n' "$SECONDS" "$*" >&2; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
mib() { awk -v b="$1" 'BEGIN { printf "%.0f", b / 1048576 }'; }

tmp=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/bench-backup.XXXXXX")
server_pid="" loop_pid=""
stop_server() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  set +e
  [[ -n $loop_pid ]] && kill "$loop_pid" 2>/dev/null
  stop_server
  # Servers started inside $(…) are not this shell's children.
  [[ -f $tmp/servers ]] && xargs -r kill -KILL <"$tmp/servers" 2>/dev/null
  psql -q "$admin_url" -c "DROP DATABASE IF EXISTS sy_bench_backup" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT

sy() { timeout "$(left 900)" "$bin" "$@"; }

note "filling SQLite with $tasks finished tasks"
export SWITCHYARD__TELEMETRY__LOG_LEVEL=warn
SWITCHYARD__DATA_DIR=$tmp/sqlite sy migrate >/dev/null
sqlite3 "$tmp/sqlite/switchyard.db" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = OFF;
BEGIN;
CREATE TEMP TABLE n AS
  WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < $tasks)
  SELECT i, randomblob(16) AS id FROM c;
INSERT INTO tasks (id, agent, status, priority, input, output, cached, run_at, created_at,
                   updated_at, started_at, finished_at, attempt, seq, fair_key)
SELECT id, 'echo',
       'succeeded', 0,
       json_object('i', i, 'text', 'a task input of ordinary size, with some words in it'),
       json_object('i', i, 'text', 'a task input of ordinary size, with some words in it'),
       0, 1764000000000 + i, 1764000000000 + i, 1764000000000 + i, 1764000000000 + i,
       1764000000000 + i, 1, 1, 'u:'
FROM n;
INSERT INTO task_logs (task_id, seq, attempt, at, level, message)
SELECT id, 1, 1,
       1764000000000 + i, 'info', 'ran in 1 ms'
FROM n;
COMMIT;
SQL
db_size=$(stat -c %s "$tmp/sqlite/switchyard.db")
note "SQLite database: $(mib "$db_size") MiB"

note "backup of SQLite"
t=$(now)
sy backup --data-dir "$tmp/sqlite" --output "$tmp/sqlite.backup" >/dev/null
sqlite_backup_s=$(since "$t")
sqlite_backup_size=$(stat -c %s "$tmp/sqlite.backup")

note "restore into PostgreSQL"
psql -q "$admin_url" -c "DROP DATABASE IF EXISTS sy_bench_backup" -c "CREATE DATABASE sy_bench_backup" >/dev/null
t=$(now)
SWITCHYARD__DATABASE__URL=$pg_url sy restore --data-dir "$tmp/pg" --input "$tmp/sqlite.backup" >/dev/null
pg_restore_s=$(since "$t")

note "backup of PostgreSQL"
t=$(now)
SWITCHYARD__DATABASE__URL=$pg_url sy backup --data-dir "$tmp/pg" --output "$tmp/pg.backup" >/dev/null
pg_backup_s=$(since "$t")
pg_backup_size=$(stat -c %s "$tmp/pg.backup")

note "restore into SQLite"
t=$(now)
sy restore --data-dir "$tmp/sqlite2" --input "$tmp/pg.backup" >/dev/null
sqlite_restore_s=$(since "$t")
rm -rf "$tmp/sqlite2" "$tmp/pg.backup"

# Throughput of a server on the filled database, without and with backups beside it.
throughput() { # $1: data dir, $2: database URL or empty
  local env=() port=$((20000 + RANDOM % 20000)) key
  [[ -n $2 ]] && env=(SWITCHYARD__DATABASE__URL="$2")
  [[ -n $2 && -n ${BENCH_REPLICA_URL:-} ]] &&
    env+=(SWITCHYARD__DATABASE__REPLICA_URL="${BENCH_REPLICA_URL%/*}/${2##*/}")
  env "${env[@]}" SWITCHYARD_ADMIN_PASSWORD=$password "$bin" serve --data-dir "$1" \
    --listen 127.0.0.1:$port >"$tmp/server.log" 2>&1 &
  server_pid=$!
  echo "$server_pid" >>"$tmp/servers"
  for _ in $(seq 300); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local token=""
  # The admin user is created just after the server starts listening.
  for _ in $(seq 300); do
    token=$(curl -fs "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
      -d "{\"email\":\"admin@localhost\",\"password\":\"$password\"}" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null) && break
    sleep 0.1
  done
  key=$(curl -fs "http://127.0.0.1:$port/api/v1/api-keys" -H "authorization: Bearer $token" \
    -H 'content-type: application/json' -d '{"name":"bench","scopes":["submit","read","admin"]}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  local args=(bench --url "http://127.0.0.1:$port" --api-key "$key" --tasks "${BENCH_THROUGHPUT_TASKS:-150000}"
              --concurrency 32 --batch 50 --json)
  timeout "$(left 300)" "$bin" "${args[@]}" >/dev/null 2>>"$tmp/bench.err" || { cat "$tmp/bench.err" "$tmp/server.log" >&2; exit 1; } # warm up
  local alone with
  alone=$(timeout "$(left 300)" "$bin" "${args[@]}" 2>>"$tmp/bench.err" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["throughput_per_s"]))')
  (
    while true; do
      env "${env[@]}" "$bin" backup ${BENCH_BACKUP_FLAGS:-} --data-dir "$1" \
        --output "$tmp/loop.backup" >/dev/null 2>&1 || true
    done
  ) &
  loop_pid=$!
  sleep 2
  with=$(timeout "$(left 300)" "$bin" "${args[@]}" 2>>"$tmp/bench.err" | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["throughput_per_s"]))')
  kill "$loop_pid" 2>/dev/null; pkill -f "$tmp/loop.backup" 2>/dev/null || true
  wait "$loop_pid" 2>/dev/null || true
  loop_pid=""
  stop_server
  rm -f "$tmp/loop.backup" "$tmp/.loop.backup.partial"
  echo "$alone $with"
}
note "throughput on SQLite without and with a backup"
read -r sqlite_alone sqlite_with < <(throughput "$tmp/sqlite" "")
note "throughput on PostgreSQL without and with a backup"
read -r pg_alone pg_with < <(throughput "$tmp/pg" "$pg_url")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.0f", 100 * b / a; else print "n/a" }'; }

cat <<EOF

Backup and restore, $tasks finished tasks (each with one log line), $(date -u +%Y-%m-%d)
| Step | Result |
| --- | --- |
| SQLite database | $(mib "$db_size") MiB |
| backup of SQLite | $sqlite_backup_s s, archive $(mib "$sqlite_backup_size") MiB |
| restore into PostgreSQL | $pg_restore_s s |
| backup of PostgreSQL | $pg_backup_s s, archive $(mib "$pg_backup_size") MiB |
| restore into SQLite | $sqlite_restore_s s |
| SQLite server throughput, alone → during backups | $sqlite_alone → $sqlite_with tasks/s ($(pct "$sqlite_alone" "$sqlite_with") %) |
| PostgreSQL server throughput, alone → during backups${BENCH_REPLICA_URL:+ (read from the replica)} | $pg_alone → $pg_with tasks/s ($(pct "$pg_alone" "$pg_with") %) |
EOF

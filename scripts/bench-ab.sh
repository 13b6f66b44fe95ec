#!/usr/bin/env bash
# Compares two release binaries with `switchyard bench`: for each case (SQLite and PostgreSQL +
# Redis, batch API and single requests) the two run back to back, alternating which goes first,
# so both see the same machine. One JSON line per run on stdout:
#   {"round", "bin": "before"|"after", "case", "at", "summary": <bench --json summary>}
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY [ROUNDS] > ab.jsonl
#
# PostgreSQL cases use the database `bench` on 127.0.0.1:5432 (dropped and created before each
# run) and Redis on 127.0.0.1:6379 (flushed); override with BENCH_PG_ADMIN / BENCH_PG_URL /
# BENCH_REDIS_URL.
set -euo pipefail
before=$1 after=$2 rounds=${3:-3}
pg_admin=${BENCH_PG_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
pg_url=${BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432/bench}
redis_url=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}

run() { # label binary case args...
  local label=$1 bin=$2 name=$3
  shift 3
  if [[ $name == pg-* ]]; then
    psql -q "$pg_admin" -c 'drop database if exists bench' -c 'create database bench' >/dev/null 2>&1
    redis-cli -u "$redis_url" flushall >/dev/null
    export SWITCHYARD__DATABASE__URL=$pg_url SWITCHYARD__REDIS__URL=$redis_url
  else
    unset SWITCHYARD__DATABASE__URL SWITCHYARD__REDIS__URL
  fi
  local summary
  summary=$(timeout 900 "$bin" bench "$@" --json 2>/dev/null | tail -n 1)
  printf '{"round":%d,"bin":"%s","case":"%s","at":"%s","summary":%s}\n' \
    "$round" "$label" "$name" "$(date -u +%H:%M:%S)" "$summary"
}

pair() { # case args...
  local name=$1
  shift
  if ((round % 2)); then
    run before "$before" "$name" "$@"
    run after "$after" "$name" "$@"
  else
    run after "$after" "$name" "$@"
    run before "$before" "$name" "$@"
  fi
}

for ((round = 1; round <= rounds; round++)); do
  pair sqlite-batch --tasks 100000 --batch 500 --concurrency 4 --runs 3
  pair sqlite-single --tasks 30000 --concurrency 32 --runs 3
  pair pg-batch --tasks 100000 --batch 500 --concurrency 4 --runs 3
  pair pg-single --tasks 30000 --concurrency 32 --runs 3
done

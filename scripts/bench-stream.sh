#!/usr/bin/env bash
# Streaming benchmark (issue 35). Starts a fresh `switchyard dev` on a temporary data
# directory (SQLite), or uses SWITCHYARD__DATABASE__URL / SWITCHYARD__REDIS__URL if set,
# and runs `switchyard bench --stream TASKS` against it from a separate process: TASKS
# tasks at once, each streaming TOKENS_PER_S partial events a second for SECONDS from an
# SDK worker in the bench process, each followed over SSE by a client of its own. Prints
# the bench's JSON report: the delay from a worker's partial to its follower (p50, p95,
# p99, max, in ms; goal p99 ≤ 5 ms), tokens sent and received, the server's CPU time
# per token (from its /metrics), and `load_cpu_share`: how busy the load generator's one
# thread was while the tasks streamed (near 1, the delays measure it, not the server).
#
#   scripts/bench-stream.sh [BINARY] [TASKS] [TOKENS_PER_S] [SECONDS]
#   (defaults: target/release/switchyard 100 1000 10)
#
# Needs curl and python3. Bounded by BENCH_BUDGET_S (default 300 s).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$(realpath "${1:-$here/target/release/switchyard}")
tasks=${2:-100}
rate=${3:-1000}
seconds=${4:-10}
budget=${BENCH_BUDGET_S:-300}

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench-stream: $tool is missing" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "bench-stream: no binary at $bin" >&2; exit 1; }
note() { printf '[%3ds] %s\n' "$SECONDS" "$*" >&2; }

tmp=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/bench-stream.XXXXXX")
server_pid=""
cleanup() {
  set +e
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

password=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$tmp/data"
note "starting $bin dev"
(cd "$tmp" && exec env SWITCHYARD_ADMIN_PASSWORD="$password" NO_COLOR=1 \
  SWITCHYARD__TELEMETRY__LOG_LEVEL=warn \
  "$bin" dev --listen 127.0.0.1:0 --data-dir "$tmp/data") >"$tmp/server.log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq 600); do
  base=$(grep -o 'running at http://[0-9.:]*' "$tmp/server.log" 2>/dev/null | head -n1 | sed 's/^running at //' || true)
  [[ -n $base ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $base ]]; then
  echo "bench-stream: the server did not start; its log:" >&2
  tail -n 30 "$tmp/server.log" >&2
  exit 1
fi
note "server at $base (pid $server_pid)"

jfield() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
token=""
for _ in $(seq 100); do
  token=$(curl -sS -m 10 --fail-with-body -H 'Content-Type: application/json' \
    -d "{\"email\":\"admin@localhost\",\"password\":\"$password\"}" "$base/api/v1/auth/login" |
    jfield access_token 2>/dev/null) && break
  sleep 0.1
done
key=$(curl -sS -m 10 --fail-with-body -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
  -d '{"name":"bench-stream","scopes":["submit","read","worker","admin"]}' "$base/api/v1/api-keys" | jfield secret)

note "$tasks tasks × $rate tokens/s × $seconds s, one SSE follower each"
timeout "$budget" "$bin" bench --url "$base" --api-key "$key" --stream "$tasks" \
  --tokens-per-s "$rate" --stream-seconds "$seconds" --json

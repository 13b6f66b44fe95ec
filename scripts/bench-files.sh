#!/usr/bin/env bash
# File storage benchmark (issue 33). Starts a fresh `switchyard dev` on a temporary data
# directory and measures, on this machine:
#   1. `dd … bs=1M count=1024 conv=fsync` to the same disk: the baseline (the server fsyncs
#      every upload before it counts as stored);
#   2. a 1 GiB upload (raw body streamed by curl from a file of random bytes): MB/s and the
#      server's RSS growth (VmRSS sampled every 50 ms; max − the value before);
#   3. a 1 GiB download to /dev/null and to a file: MB/s, RSS growth, sha256 and ETag check;
#   4. 4 KiB uploads with wrk (2 threads, 32 connections, 10 s): every body different (new
#      content), then the same body every time (the dedupe path): requests/s, p99, non-2xx.
# Prints a table with PASS/MISS per target (RSS growth ≤ 50 MB, upload/download ≥ 70 % of
# dd, 4 KiB uploads ≥ 2,000/s) and exits 0 either way (1 only if the server cannot be set up).
# MB/s are 10^6 bytes per second (as dd reports them); RSS growth is in MiB (2^20 bytes).
# The whole run is bounded (BENCH_BUDGET_S, default 285 s), and every step has a timeout.
#
#   scripts/bench-files.sh [BINARY]     (default: target/release/switchyard)
#
# Needs curl, python3 and wrk (`apt-get install -y wrk`). Temporary files go under
# BENCH_TMPDIR (default /tmp): that is the disk measured; about 3 GiB free is needed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${1:-$here/target/release/switchyard}
bin=$(realpath "$bin")
budget=${BENCH_BUDGET_S:-285}
deadline=$((SECONDS + budget))
size=$((1 << 30))
mb() { awk -v b="$1" -v s="$2" 'BEGIN { if (s > 0) printf "%.1f", b / s / 1e6; else print "n/a" }'; }

for tool in curl python3 wrk; do
  command -v "$tool" >/dev/null || { echo "bench-files: $tool is missing" >&2; exit 1; }
done
[[ -x $bin ]] || { echo "bench-files: no binary at $bin" >&2; exit 1; }

# Seconds a step may take: its own bound, cut to what is left of the whole budget.
left() {
  local rem=$((deadline - SECONDS))
  ((rem < 1)) && rem=1
  echo $(($1 < rem ? $1 : rem))
}
flush() { timeout "$(left 60)" sync || true; }
note() { printf '[%3ds] %s\n' "$SECONDS" "$*" >&2; }

tmp=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/bench-files.XXXXXX")
server_pid="" sampler_pid=""
cleanup() {
  set +e
  note "cleaning up"
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
  note "done"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- RSS sampler: max VmRSS (kiB) of a pid, every 50 ms, until SIGTERM --------------------
cat >"$tmp/rss.py" <<'EOF'
import signal, sys, time
pid, out = sys.argv[1], sys.argv[2]
def rss():
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
peak = rss() or 0
while not stop:
    time.sleep(0.05)
    r = rss()
    if r is None:
        break
    peak = max(peak, r)
with open(out, "w") as f:
    f.write(f"{peak}\n")
EOF
vmrss() { awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status"; }
rss_base=0
sample_start() {
  rss_base=$(vmrss)
  rm -f "$tmp/rss.out"
  python3 "$tmp/rss.py" "$server_pid" "$tmp/rss.out" &
  sampler_pid=$!
}
rss_growth=n/a
sample_stop() { # sets rss_growth (MiB); not in a subshell: it waits for the sampler
  kill -TERM "$sampler_pid" 2>/dev/null || true
  wait "$sampler_pid" 2>/dev/null || true
  sampler_pid=""
  local peak
  peak=$(cat "$tmp/rss.out" 2>/dev/null || echo "$rss_base")
  rss_growth=$(awk -v p="$peak" -v b="$rss_base" 'BEGIN { printf "%.1f", (p - b) / 1024 }')
}

# --- wrk script: POST 4 KiB bodies, unique per request or all the same -------------------
cat >"$tmp/post4k.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
local chars = {}
math.randomseed(33)
for i = 1, 4096 do chars[i] = string.char(math.random(97, 122)) end
local filler = table.concat(chars)

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads)
end

function init(args)
  bad = 0
  counter = 0
end

if os.getenv("BENCH_MODE") == "unique" then
  -- a thread/counter prefix makes every body new content (no dedupe hit)
  function request()
    counter = counter + 1
    local head = string.format("%04d:%012d:", id, counter)
    return wrk.format(nil, nil, nil, head .. filler:sub(#head + 1))
  end
else
  wrk.body = filler
end

function response(status, headers, body)
  if status < 200 or status > 299 then bad = bad + 1 end
end

function done(summary, latency, requests)
  local nbad = 0
  for _, t in ipairs(threads) do nbad = nbad + (t:get("bad") or 0) end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, latency:percentile(99.0), nbad,
    e.connect + e.read + e.write + e.timeout))
end
EOF

# --- 1. test data and the dd baseline ----------------------------------------------------
note "writing 1 GiB of random data to $tmp"
timeout "$(left 60)" head -c "$size" /dev/urandom >"$tmp/big.bin"
local_sha=$(timeout "$(left 60)" sha256sum "$tmp/big.bin" | cut -d' ' -f1)
flush

note "dd baseline"
dd_mbs=n/a
t0=$(date +%s.%N)
if timeout "$(left 90)" dd if=/dev/zero of="$tmp/dd.bin" bs=1M count=1024 conv=fsync status=none; then
  t1=$(date +%s.%N)
  dd_mbs=$(mb "$size" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
fi
rm -f "$tmp/dd.bin"
flush

# --- the server ---------------------------------------------------------------------------
password=bench-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
mkdir -p "$tmp/data"
note "starting $bin dev"
# Run in the temp dir (no stray ./switchyard.toml) and without SWITCHYARD__* overrides.
mapfile -t overrides < <(env | grep -o '^SWITCHYARD__[A-Z0-9_]*' || true)
unset_args=()
for v in "${overrides[@]}"; do unset_args+=(-u "$v"); done
(cd "$tmp" && exec env "${unset_args[@]}" SWITCHYARD_ADMIN_PASSWORD="$password" NO_COLOR=1 \
  "$bin" dev --listen 127.0.0.1:0 --data-dir "$tmp/data") >"$tmp/server.log" 2>&1 &
server_pid=$!
base=""
for _ in $(seq $((10 * $(left 60)))); do
  base=$(grep -o 'running at http://[0-9.:]*' "$tmp/server.log" 2>/dev/null | head -n1 | sed 's/^running at //' || true)
  [[ -n $base ]] && break
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z $base ]]; then
  echo "bench-files: the server did not start; its log:" >&2
  tail -n 30 "$tmp/server.log" >&2
  exit 1
fi
note "server at $base (pid $server_pid)"

jfield() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
token=$(curl -sS -m 10 --fail-with-body -H 'Content-Type: application/json' \
  -d "{\"email\":\"admin@localhost\",\"password\":\"$password\"}" "$base/api/v1/auth/login" | jfield access_token)
key=$(curl -sS -m 10 --fail-with-body -H 'Content-Type: application/json' -H "Authorization: Bearer $token" \
  -d '{"name":"bench-files","scopes":["submit","read"]}' "$base/api/v1/api-keys" | jfield secret)
auth="Authorization: Bearer $key"

# --- 2. 1 GiB upload -----------------------------------------------------------------------
note "1 GiB upload"
up_mbs=n/a up_rss=n/a file_id="" server_sha=""
sample_start
if out=$(curl -sS -m "$(left 120)" -o "$tmp/up.json" -w '%{http_code} %{time_total}' -X POST \
  -T "$tmp/big.bin" -H 'Expect:' -H "$auth" -H 'Content-Type: application/octet-stream' \
  "$base/api/v1/files?name=big.bin"); then
  read -r code secs <<<"$out"
  if [[ $code == 201 ]]; then
    up_mbs=$(mb "$size" "$secs")
    file_id=$(jfield id <"$tmp/up.json")
    server_sha=$(jfield sha256 <"$tmp/up.json")
  else
    note "upload answered $code: $(head -c 300 "$tmp/up.json")"
  fi
else
  note "upload failed"
fi
sample_stop; up_rss=$rss_growth
[[ $up_mbs == n/a ]] && up_rss=n/a
flush

# --- 3. 1 GiB download, to /dev/null and to a file -------------------------------------------
dn_null_mbs=n/a dn_null_rss=n/a dn_file_mbs=n/a dn_file_sync_mbs=n/a dn_file_rss=n/a
sha_ok=no etag_ok=no
if [[ -n $file_id ]]; then
  note "1 GiB download to /dev/null"
  sample_start
  if out=$(curl -sS -m "$(left 120)" -o /dev/null -D "$tmp/dn.headers" -w '%{http_code} %{time_total} %{size_download}' \
    -H "$auth" "$base/api/v1/files/$file_id/content"); then
    read -r code secs got <<<"$out"
    [[ $code == 200 && $got == "$size" ]] && dn_null_mbs=$(mb "$size" "$secs")
    grep -qi "^etag: \"$local_sha\"" "$tmp/dn.headers" && etag_ok=yes
  fi
  sample_stop; dn_null_rss=$rss_growth
  [[ $dn_null_mbs == n/a ]] && dn_null_rss=n/a

  note "1 GiB download to a file"
  sample_start
  t0=$(date +%s.%N)
  if out=$(curl -sS -m "$(left 120)" -o "$tmp/down.bin" -w '%{http_code} %{time_total} %{size_download}' \
    -H "$auth" "$base/api/v1/files/$file_id/content"); then
    read -r code secs got <<<"$out"
    if [[ $code == 200 && $got == "$size" ]]; then
      dn_file_mbs=$(mb "$size" "$secs")
      # the same, counting the fsync of the file too (as dd's figure does)
      timeout "$(left 60)" sync "$tmp/down.bin" &&
        dn_file_sync_mbs=$(mb "$size" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')")
    fi
  fi
  sample_stop; dn_file_rss=$rss_growth
  [[ $dn_file_mbs == n/a ]] && dn_file_rss=n/a
  if [[ -f $tmp/down.bin ]]; then
    down_sha=$(timeout "$(left 60)" sha256sum "$tmp/down.bin" | cut -d' ' -f1 || true)
    [[ $down_sha == "$local_sha" && $server_sha == "$local_sha" ]] && sha_ok=yes
  fi
  rm -f "$tmp/down.bin"
fi
rm -f "$tmp/big.bin"
flush

# --- 4. 4 KiB uploads with wrk --------------------------------------------------------------
run_wrk() { # mode → "rps p99_ms non2xx socket_errors"
  local mode=$1 line
  if ((deadline - SECONDS < 15)); then echo "n/a n/a n/a n/a"; return; fi
  BENCH_MODE=$mode timeout -k 5 "$(left 30)" wrk -t 2 -c 32 -d 10s --timeout 5s -s "$tmp/post4k.lua" \
    -H "$auth" "$base/api/v1/files?name=small-$mode.bin" >"$tmp/wrk-$mode.log" 2>&1 || true
  line=$(grep '^BENCH ' "$tmp/wrk-$mode.log" || true)
  if [[ -z $line ]]; then
    note "wrk ($mode) gave no result: $(tail -n 5 "$tmp/wrk-$mode.log")"
    echo "n/a n/a n/a n/a"
    return
  fi
  awk '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%.0f %.1f %d %d\n", v["requests"] / (v["duration_us"] / 1e6), v["p99_us"] / 1000, v["non2xx"], v["socket_errors"]
  }' <<<"$line"
}
note "4 KiB uploads, every body new (wrk 10 s)"
read -r uniq_rps uniq_p99 uniq_bad uniq_sock < <(run_wrk unique)
note "4 KiB uploads, the same body (wrk 10 s)"
read -r same_rps same_p99 same_bad same_sock < <(run_wrk same)

# --- the table ----------------------------------------------------------------------------
verdict() { # value op limit → PASS / MISS
  [[ $1 == n/a || $3 == n/a ]] && { echo MISS; return; }
  awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print ok ? "PASS" : "MISS" }'
}
floor=n/a
[[ $dd_mbs != n/a ]] && floor=$(awk -v d="$dd_mbs" 'BEGIN { printf "%.1f", d * 0.7 }')
row() { printf '%-34s %14s  %-18s %s\n' "$@"; }
echo
echo "switchyard file storage benchmark — $bin ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, $tmp)"
row "measure" "value" "target" "result"
row "dd 1 GiB conv=fsync (baseline)" "$dd_mbs MB/s" "" ""
row "upload 1 GiB" "$up_mbs MB/s" ">= $floor (70%)" "$(verdict "$up_mbs" '>=' "$floor")"
row "  server RSS growth" "$up_rss MB" "<= 50" "$(verdict "$up_rss" '<=' 50)"
row "download 1 GiB -> /dev/null" "$dn_null_mbs MB/s" ">= $floor (70%)" "$(verdict "$dn_null_mbs" '>=' "$floor")"
row "  server RSS growth" "$dn_null_rss MB" "<= 50" "$(verdict "$dn_null_rss" '<=' 50)"
row "download 1 GiB -> file" "$dn_file_mbs MB/s" ">= $floor (70%)" "$(verdict "$dn_file_mbs" '>=' "$floor")"
row "  same, counting its fsync" "$dn_file_sync_mbs MB/s" "(info)" ""
row "  server RSS growth" "$dn_file_rss MB" "<= 50" "$(verdict "$dn_file_rss" '<=' 50)"
row "  sha256 (file, upload) / ETag" "$sha_ok / $etag_ok" "yes / yes" \
  "$([[ $sha_ok == yes && $etag_ok == yes ]] && echo PASS || echo MISS)"
row "4 KiB uploads, new content" "$uniq_rps req/s" ">= 2000" "$(verdict "$uniq_rps" '>=' 2000)"
row "  p99 latency" "$uniq_p99 ms" "" ""
row "  non-2xx / socket errors" "$uniq_bad / $uniq_sock" "0 / 0" \
  "$([[ $uniq_bad == 0 && $uniq_sock == 0 ]] && echo PASS || echo MISS)"
row "4 KiB uploads, same body (dedupe)" "$same_rps req/s" ">= 2000" "$(verdict "$same_rps" '>=' 2000)"
row "  p99 latency" "$same_p99 ms" "" ""
row "  non-2xx / socket errors" "$same_bad / $same_sock" "0 / 0" \
  "$([[ $same_bad == 0 && $same_sock == 0 ]] && echo PASS || echo MISS)"
echo "(total ${SECONDS}s)"
exit 0

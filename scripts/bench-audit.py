#!/usr/bin/env python3
"""Audit log benchmark (issue 36): how long `GET /api/v1/audit` takes for a page, newest
first and under each filter, once the log holds many entries.

Starts a fresh `switchyard dev` on a temporary data directory (SQLite), or on a fresh
PostgreSQL database with --postgres URL (the database named in the URL is dropped and
created again: give it one of its own), fills `audit_log` with ENTRIES rows straight in
the database (spread over 90 days, 40 actors, 16 actions, 400 targets), and times each
query REPEAT times from this process over loopback. Prints a JSON report: per query, the
rows it returned and the median and p95 time in ms.

    scripts/bench-audit.py [--binary target/release/switchyard] [--entries 200000]
                           [--repeat 30] [--postgres postgres://postgres@127.0.0.1:5432/bench_audit]

Needs python3 (and psql with --postgres). Bounded: the server is stopped on exit, and
every request has a 30 s timeout.
"""

import argparse
import json
import os
import re
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
ACTIONS = [
    "auth.login", "auth.login_failed", "auth.logout", "session.revoke", "user.create",
    "user.update", "api_key.create", "api_key.revoke", "agent.create", "agent.update",
    "agent.delete", "alert.create", "schedule.update", "task.cancel", "task.retry",
    "backup.create",
]
KINDS = ["agent", "user", "task", "schedule"]
DAY_MS = 86_400_000

# One statement per backend: ENTRIES rows, newest now, one every (90 days / ENTRIES).
SQLITE_FILL = """
WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :entries)
INSERT INTO audit_log (id, at, actor, action, target_kind, target_id, outcome, request_id,
                       client_addr)
SELECT randomblob(16), :now - i * :step,
       'user' || (i % 40) || '@example.com',
       json_extract(:actions, '$[' || (i % 16) || ']'),
       json_extract(:kinds, '$[' || (i % 4) || ']'), 'target-' || (i % 400),
       CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END,
       hex(randomblob(8)), '192.0.2.' || (i % 250)
FROM n
"""
POSTGRES_FILL = """
INSERT INTO audit_log (id, at, actor, action, target_kind, target_id, outcome, request_id,
                       client_addr)
SELECT gen_random_uuid(), {now}::bigint - i::bigint * {step},
       'user' || (i % 40) || '@example.com',
       (ARRAY[{actions}])[i % 16 + 1],
       (ARRAY[{kinds}])[i % 4 + 1], 'target-' || (i % 400),
       CASE WHEN i % 10 = 0 THEN 'failure' ELSE 'success' END,
       md5(i::text), '192.0.2.' || (i % 250)
FROM generate_series(0, {last}) AS i
"""


def request(base, path, token, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method="POST" if data else "GET")
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(HERE / "target/release/switchyard"))
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--postgres", metavar="URL")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench-audit.")
    data = Path(tmp.name) / "data"
    data.mkdir()
    password = "bench-" + secrets.token_hex(12)
    env = dict(os.environ, SWITCHYARD_ADMIN_PASSWORD=password, NO_COLOR="1",
               SWITCHYARD__TELEMETRY__LOG_LEVEL="warn")
    backend = "sqlite"
    if args.postgres:
        backend = "postgres"
        url = urllib.parse.urlparse(args.postgres)
        db = url.path.lstrip("/")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", db):
            sys.exit(f"bench-audit: {db!r} is not a plain database name")
        admin_url = url._replace(path="/postgres").geturl()
        for sql in (f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}"):
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c", sql],
                           check=True)
        env["SWITCHYARD__DATABASE__URL"] = args.postgres
    log = open(Path(tmp.name) / "server.log", "w+")
    server = subprocess.Popen(
        [args.binary, "dev", "--listen", "127.0.0.1:0", "--data-dir", str(data)],
        cwd=tmp.name, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        base = None
        for _ in range(600):
            log.seek(0)
            m = re.search(r"running at (http://[0-9.:]+)", log.read())
            if m:
                base = m.group(1)
                break
            if server.poll() is not None:
                break
            time.sleep(0.1)
        if not base:
            log.seek(0)
            sys.exit("bench-audit: the server did not start:\n" + log.read()[-3000:])
        token = request(base, "/api/v1/auth/login", None,
                        {"email": "admin@localhost", "password": password})["access_token"]

        now = int(time.time() * 1000)
        step = max(1, 90 * DAY_MS // args.entries)
        started = time.monotonic()
        if backend == "sqlite":
            con = sqlite3.connect(data / "switchyard.db", timeout=30)
            con.execute(SQLITE_FILL, {"entries": args.entries, "now": now, "step": step,
                                      "actions": json.dumps(ACTIONS),
                                      "kinds": json.dumps(KINDS)})
            con.commit()
            con.execute("ANALYZE")
            con.close()
        else:
            quote = lambda xs: ", ".join(f"'{x}'" for x in xs)  # noqa: E731
            sql = POSTGRES_FILL.format(now=now, step=step, actions=quote(ACTIONS),
                                       kinds=quote(KINDS), last=args.entries - 1)
            subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", "-d", args.postgres, "-c", sql, "-c",
                            "ANALYZE audit_log"], check=True)
        fill_s = time.monotonic() - started

        week_ago = iso(now - 7 * DAY_MS)
        first = request(base, "/api/v1/audit?limit=100", token)
        queries = {
            "newest 100": "limit=100",
            "page 2 (cursor)": "limit=100&cursor=" + urllib.parse.quote(first["next_cursor"]),
            "action": "action=agent.update&limit=100",
            "action family": "action=auth.&limit=100",
            "actor (email)": "actor=user7%40example.com&limit=100",
            "target kind": "target=task&limit=100",
            "one target": "target=agent%3Atarget-8&limit=100",
            "last 7 days, one action": f"since={week_ago}&action=task.retry&limit=100",
            "rare: no match": "actor=nobody%40example.com&limit=100",
        }
        report = {"backend": backend, "entries": args.entries, "fill_s": round(fill_s, 1),
                  "repeat": args.repeat, "queries": {}}
        for name, query in queries.items():
            times, rows = [], 0
            for _ in range(args.repeat):
                t = time.perf_counter()
                rows = len(request(base, "/api/v1/audit?" + query, token)["items"])
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            report["queries"][name] = {
                "rows": rows,
                "median_ms": round(statistics.median(times), 2),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
            }
        print(json.dumps(report, indent=1))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        tmp.cleanup()


if __name__ == "__main__":
    main()

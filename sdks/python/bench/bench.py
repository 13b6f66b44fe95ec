"""Benchmark of the Python SDK against a real Switchyard server.

One command reproduces it: without ``--url`` it starts the server binary (``--server-bin``,
default ``$SWITCHYARD_BIN``) with ``dev`` on a fresh data directory, creates an API key, and
measures:

- throughput: one Python worker *process* (this SDK's ``Worker``) serving an echo agent; tasks
  submitted in batches (``POST /api/v1/tasks/batch``) by this process; the time from the first
  submit to the last task's ``finished_at`` (the server's clock, the same machine's);
- the same case with the Rust SDK's worker (``switchyard bench --remote 1`` of ``--rust-bench-bin``,
  default the server binary, against the same server), for the ratio;
- idle memory: the resident set (VmRSS) of the Python worker process, connected and idle;
- latency: one task at a time, ``client.submit(..., wait=...)``, p50 / p99.

``BENCH_PROFILE=/tmp/worker.prof`` runs the worker under cProfile and writes its profile there.

    SWITCHYARD_BIN=/work/switchyard-after python bench/bench.py --tasks 20000 --runs 3

With ``--url`` and ``--api-key`` (scopes ``submit``, ``read``, ``worker``; ``admin`` too for the
Rust case, which lists workers) it measures an existing server instead.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import queue
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

AGENT = "bench-python-echo"
#: Answers when its handler started (wall clock): where one task's latency goes.
STAMP_AGENT = "bench-python-stamp"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


# ---------------------------------------------------------------- the worker process


def run_worker(url: str, api_key: str, slots: int) -> None:
    """The measured worker: this SDK, an echo handler, nothing else."""
    from switchyard import TaskContext, Worker

    worker = Worker(url, api_key=api_key, slots=slots, name="bench-python")

    @worker.agent(AGENT, description="Returns its input (benchmark).")
    async def echo(ctx: TaskContext, input: Any) -> Any:
        return input

    @worker.agent(STAMP_AGENT, description="Returns when it started (benchmark).")
    async def stamp(ctx: TaskContext, input: Any) -> Any:
        return {"started": time.time()}

    profile_to = os.environ.get("BENCH_PROFILE")
    if not profile_to:
        asyncio.run(worker.run())
        return
    import cProfile

    with cProfile.Profile() as profile:
        asyncio.run(worker.run())
    profile.dump_stats(profile_to)


# ---------------------------------------------------------------- the server


@contextmanager
def own_server(binary: str) -> Iterator[tuple[str, str]]:
    """Starts ``binary dev`` on a free port and a fresh data directory; yields (url, api key)."""
    password = secrets.token_urlsafe(16)
    data_dir = tempfile.mkdtemp(prefix="switchyard-pybench-")
    env = dict(os.environ)
    env.update(
        SWITCHYARD_ADMIN_PASSWORD=password,
        SWITCHYARD__TELEMETRY__LOG_FORMAT="json",
        SWITCHYARD__TELEMETRY__LOG_LEVEL="warn,switchyard=info",
        # As `switchyard bench` sets for its embedded server: its completion follower reads
        # every event of the run.
        SWITCHYARD__SERVER__SUBSCRIBER_BUFFER="65536",
    )
    process = subprocess.Popen(
        [binary, "dev", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        url = f"http://{announced_addr(process, 120)}"
        login = httpx.post(
            f"{url}/api/v1/auth/login",
            json={"email": "admin@localhost", "password": password},
            timeout=30,
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        key = httpx.post(
            f"{url}/api/v1/api-keys",
            headers={"authorization": f"Bearer {token}"},
            json={"name": "bench", "scopes": ["admin", "submit", "read", "worker"]},
            timeout=30,
        )
        key.raise_for_status()
        yield url, str(key.json()["secret"])
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)


def announced_addr(process: subprocess.Popen[str], timeout: float) -> str:
    found: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:  # read to the end so the pipe never fills
            try:
                record = json.loads(line)
            except ValueError:
                continue
            fields = record.get("fields", record) if isinstance(record, dict) else {}
            if fields.get("message") == "switchyard is up":
                found.put(str(fields.get("addr")))

    threading.Thread(target=read, daemon=True).start()
    try:
        return found.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        raise SystemExit("the server did not report its address") from None


# ---------------------------------------------------------------- measurements


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def wait_for_worker(http: httpx.AsyncClient, agent: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        workers = (await http.get("/api/v1/workers")).json()["items"]
        if any(agent in (w.get("agents") or []) for w in workers):
            return
        await asyncio.sleep(0.05)
    raise SystemExit(f"no worker serving {agent} connected within {timeout} s")


async def throughput(
    http: httpx.AsyncClient, tasks: int, batch: int, concurrency: int, run: int
) -> dict[str, Any]:
    """Submits ``tasks`` echo tasks in batches from ``concurrency`` submitters; returns
    tasks/s from the first submit to the last ``finished_at``."""
    marker = f"run-{run}-{secrets.token_hex(4)}"
    # Bodies encoded before the clock starts, answers not parsed: the load generator shares
    # the machine's two cores with the worker and the server, and should take little of them.
    bodies = [
        json.dumps(
            {
                "tasks": [
                    {"agent": AGENT, "input": {"i": i, "m": marker}}
                    for i in range(start, min(tasks, start + batch))
                ]
            }
        ).encode()
        for start in range(0, tasks, batch)
    ]
    content_type = {"content-type": "application/json"}

    async def submitter() -> None:
        while bodies:
            body = bodies.pop()
            answer = await http.post("/api/v1/tasks/batch", content=body, headers=content_type)
            if answer.status_code >= 300:
                raise SystemExit(f"batch submit failed: {answer.status_code} {answer.text[:300]}")

    started = time.time()
    await asyncio.gather(*(submitter() for _ in range(concurrency)))
    submitted = time.time()
    # Done when nothing of the agent is waiting or running. A cheap indexed query, polled.
    deadline = time.monotonic() + max(120.0, tasks / 500)
    while True:
        page = await http.get(
            "/api/v1/tasks",
            params={"agent": AGENT, "status": "queued,running,retrying", "limit": "1"},
        )
        page.raise_for_status()
        if not page.json()["items"]:
            break
        if time.monotonic() > deadline:
            raise SystemExit("the tasks did not finish in time")
        await asyncio.sleep(0.1)
    # The last task's finish, from the server's record of every task of this run.
    last_finish = 0.0
    succeeded = 0
    cursor: str | None = None
    while True:
        params = {"agent": AGENT, "limit": "500", "created_after": _iso(started - 1)}
        if cursor:
            params["cursor"] = cursor
        page = await http.get("/api/v1/tasks", params=params)
        page.raise_for_status()
        data = page.json()
        for item in data["items"]:
            if (item.get("input") or {}).get("m") != marker:
                continue
            if item["status"] == "succeeded" and item.get("output") == item.get("input"):
                succeeded += 1
                last_finish = max(last_finish, parse_time(item["finished_at"]))
        cursor = data.get("next_cursor")
        if not cursor:
            break
    if succeeded != tasks:
        raise SystemExit(f"only {succeeded} of {tasks} tasks succeeded with their input echoed")
    elapsed = last_finish - started
    return {
        "tasks": tasks,
        "seconds": round(elapsed, 3),
        "tasks_per_s": round(tasks / elapsed),
        "submit_seconds": round(submitted - started, 3),
    }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


async def latency(url: str, api_key: str, count: int) -> dict[str, Any]:
    """One task at a time with ``wait``; also split each into submit → handler start and
    handler start → answer (wall clocks of two processes on one machine)."""
    from switchyard import Client

    def p(samples: list[float], q: float) -> float:
        ordered = sorted(samples)
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 3)

    total: list[float] = []
    to_handler: list[float] = []
    to_answer: list[float] = []
    async with Client(url, api_key=api_key) as client:
        for i in range(count + 20):
            begin_wall, begin = time.time(), time.perf_counter()
            task = await client.submit(STAMP_AGENT, {"i": i}, wait=10.0)
            took = time.perf_counter() - begin
            if task.status != "succeeded":
                raise SystemExit(f"latency task ended {task.status}: {task.error}")
            if i >= 20:  # the first ones warm up connections
                total.append(took * 1000)
                started = float(task.output["started"])
                to_handler.append((started - begin_wall) * 1000)
                to_answer.append((begin_wall + took - started) * 1000)
    return {
        "tasks": count,
        "p50_ms": p(total, 0.5),
        "p99_ms": p(total, 0.99),
        "submit_to_handler_p50_ms": p(to_handler, 0.5),
        "handler_to_answer_p50_ms": p(to_answer, 0.5),
    }


def rust_load(
    binary: str, url: str, api_key: str, tasks: int, batch: int, agent: str | None
) -> dict[str, Any]:
    """`switchyard bench` as the load generator (batch submits, completions followed over
    Server-Sent Events, the time from the first submit to the last completion). With ``agent``
    it loads that agent (the Python worker's); without, ``--remote 1`` runs one Rust SDK worker
    in the bench process, over the worker WebSocket, against this server."""
    command = [
        binary, "bench", "--url", url, "--api-key", api_key,
        "--tasks", str(tasks), "--batch", str(batch), "--concurrency", "4", "--json",
    ]  # fmt: skip
    command += ["--agent", agent] if agent else ["--remote", "1"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"rust bench failed: {out.stderr[-2000:]}")
    for line in out.stdout.splitlines():
        with_json = line.strip()
        if with_json.startswith("{"):
            report = json.loads(with_json)
            return {
                "tasks": tasks,
                "seconds": round(float(report["seconds"]), 3),
                "tasks_per_s": round(float(report["throughput_per_s"])),
            }
    raise SystemExit(f"no JSON from the rust bench: {out.stdout[-2000:]}")


def measure(args: argparse.Namespace, url: str, api_key: str) -> dict[str, Any]:
    """Starts the worker process, measures, stops it."""
    worker = subprocess.Popen(
        [sys.executable, __file__, "_worker", url, api_key, str(args.slots)],
        stderr=None if args.verbose else subprocess.DEVNULL,
    )
    try:
        results = asyncio.run(measure_with(worker.pid, args, url, api_key))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    results["python_median"] = statistics.median(r["tasks_per_s"] for r in results["python"])
    if results["rust"]:
        same = statistics.median(r["tasks_per_s"] for r in results["python_rust_load"])
        rust = statistics.median(r["tasks_per_s"] for r in results["rust"])
        results["python_rust_load_median"] = same
        results["rust_median"] = rust
        # Same load generator, same server, same run: only the worker differs.
        results["ratio"] = round(same / rust, 3)
    return results


def rust_one_at_a_time(binary: str, url: str, api_key: str, tasks: int) -> dict[str, Any]:
    """`switchyard bench --latency --remote 1`: one task at a time with `?wait`, served by one
    Rust SDK worker, against this server."""
    command = [
        binary, "bench", "--url", url, "--api-key", api_key, "--latency", "--remote", "1",
        "--tasks", str(tasks), "--json",
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise SystemExit(f"rust bench failed: {out.stderr[-2000:]}")
    report = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("{")))
    return {
        "tasks": tasks,
        "p50_ms": round(float(report["latency_ms"]["p50"]), 3),
        "p99_ms": round(float(report["latency_ms"]["p99"]), 3),
    }


async def measure_with(
    worker_pid: int, args: argparse.Namespace, url: str, api_key: str
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=args.concurrency + 4)
    results: dict[str, Any] = {"python": [], "python_rust_load": [], "rust": []}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=120, limits=limits) as http:
        await wait_for_worker(http, AGENT)
        await asyncio.sleep(2.0)  # settle: imports done, connection idle
        results["idle_rss_mb"] = round(rss_mb(worker_pid), 1)
        # Warm-up, unmeasured.
        await throughput(http, min(2000, args.tasks), args.batch, args.concurrency, -1)
        # Alternating runs: the machine's speed drifts, each pair sees the same drift.
        for run in range(args.runs):
            py = await throughput(http, args.tasks, args.batch, args.concurrency, run)
            py["worker_rss_mb"] = round(rss_mb(worker_pid), 1)
            results["python"].append(py)
            print(f"python run {run + 1}: {py}", file=sys.stderr)
            if not args.no_rust:
                bench = (args.rust_bench_bin, url, api_key, args.tasks, args.batch)
                same_load = await asyncio.to_thread(rust_load, *bench, AGENT)
                results["python_rust_load"].append(same_load)
                print(f"python, switchyard bench load, run {run + 1}: {same_load}", file=sys.stderr)
                rust = await asyncio.to_thread(rust_load, *bench, None)
                results["rust"].append(rust)
                print(f"rust, switchyard bench load, run {run + 1}: {rust}", file=sys.stderr)
        if args.latency:
            results["latency"] = await latency(url, api_key, args.latency)
            print(f"python latency: {results['latency']}", file=sys.stderr)
            if not args.no_rust:
                rust_latency = await asyncio.to_thread(
                    rust_one_at_a_time, args.rust_bench_bin, url, api_key, args.latency
                )
                results["rust_latency"] = rust_latency
                print(f"rust latency: {rust_latency}", file=sys.stderr)
    return results


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        run_worker(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an existing server; default: start --server-bin")
    parser.add_argument("--api-key", default=os.environ.get("SWITCHYARD_API_KEY"))
    parser.add_argument("--server-bin", default=os.environ.get("SWITCHYARD_BIN"))
    parser.add_argument("--rust-bench-bin", help="default: --server-bin")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent submitters")
    parser.add_argument(
        "--slots",
        type=int,
        default=2048,
        help="the Python worker's slots (as `switchyard bench --remote` gives its Rust worker)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--latency", type=int, default=500, help="tasks one at a time; 0: skip")
    parser.add_argument("--no-rust", action="store_true", help="skip the Rust SDK case")
    parser.add_argument("--verbose", action="store_true", help="show the worker's log")
    args = parser.parse_args()
    args.rust_bench_bin = args.rust_bench_bin or args.server_bin
    if not args.rust_bench_bin:
        args.no_rust = True
    if args.url:
        if not args.api_key:
            raise SystemExit("--url needs --api-key (or SWITCHYARD_API_KEY)")
        results = measure(args, args.url.rstrip("/"), args.api_key)
    else:
        if not args.server_bin or not Path(args.server_bin).exists():
            raise SystemExit("give --url, or --server-bin / SWITCHYARD_BIN to start a server")
        with own_server(args.server_bin) as (url, api_key):
            results = measure(args, url, api_key)
    results["orjson"] = importlib.util.find_spec("orjson") is not None
    results["date"] = datetime.now().astimezone().isoformat(timespec="seconds")
    results["command"] = " ".join([Path(sys.executable).name, *sys.argv])
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

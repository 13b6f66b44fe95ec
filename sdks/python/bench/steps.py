"""What a durable step costs, measured through the Python SDK against a real server.

Without ``--url`` it starts ``--server-bin`` (default ``$SWITCHYARD_BIN``) with ``dev`` on a fresh
data directory, as ``bench.py`` does, and runs a worker in this process serving one agent whose
handler runs ``--steps`` trivial steps and times them from inside the handler:

- a step that runs: one round trip to the server, which stores the result before it answers
  (``step`` → ``step_recorded``), measured one task at a time (latency per step) and with
  ``--concurrency`` tasks at once (steps per second);
- a step that is replayed: the handler fails once after its last step, so its second run gets
  every step from the assignment without a round trip.

    SWITCHYARD_BIN=target/release/switchyard python bench/steps.py --tasks 20 --steps 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import httpx

from bench import own_server, wait_for_worker
from switchyard import Client, RetryableError, TaskContext, Worker

AGENT = "bench-python-steps"


def step_value(i: int) -> Callable[[], dict[str, int]]:
    return lambda: {"i": i}


def serve(url: str, api_key: str) -> Worker:
    worker = Worker(url, api_key=api_key, slots=256, handle_signals=False)

    @worker.agent(AGENT, retry={"max_attempts": 2, "base_ms": 1, "cap_ms": 1})
    async def steps(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        for i in range(int(input["steps"])):
            await ctx.step(f"s{i}", step_value(i))
        elapsed = time.perf_counter() - started
        if input.get("fail_once") and ctx.attempt == 1:
            raise RetryableError("once more, from memory", code="replay")
        return {"seconds": elapsed, "attempt": ctx.attempt}

    return worker


async def run_tasks(
    client: Client, tasks: int, steps: int, concurrency: int, fail_once: bool
) -> tuple[list[float], float]:
    """Per-task handler time per step, and the wall time for all of them."""
    gate = asyncio.Semaphore(concurrency)

    async def one() -> float:
        async with gate:
            task = await client.submit(AGENT, {"steps": steps, "fail_once": fail_once}, wait=60)
            while not task.done:
                task = await client.get(task.id)
                await asyncio.sleep(0.01)
            assert task.status == "succeeded", task
            return float(task.output["seconds"]) / steps

    started = time.perf_counter()
    per_step = await asyncio.gather(*(one() for _ in range(tasks)))
    return list(per_step), time.perf_counter() - started


async def measure(url: str, api_key: str, args: argparse.Namespace) -> dict[str, Any]:
    worker = serve(url, api_key)
    running = asyncio.ensure_future(worker.run())
    try:
        async with httpx.AsyncClient(
            base_url=url, headers={"authorization": f"Bearer {api_key}"}, timeout=30
        ) as http:
            await wait_for_worker(http, AGENT)
        async with Client(url, api_key=api_key) as client:
            await run_tasks(client, 2, args.steps, 1, False)  # warm-up
            single, _ = await run_tasks(client, args.tasks, args.steps, 1, False)
            _, wall = await run_tasks(
                client, args.tasks * args.concurrency, args.steps, args.concurrency, False
            )
            replayed, _ = await run_tasks(client, args.tasks, args.steps, 1, True)
        ms = sorted(x * 1000 for x in single)
        return {
            "steps_per_task": args.steps,
            "one_task_at_a_time_ms_per_step": {
                "p50": round(statistics.median(ms), 3),
                "p90": round(ms[int(len(ms) * 0.9) - 1], 3),
            },
            "concurrent_tasks": args.concurrency,
            "steps_per_second": round(args.tasks * args.concurrency * args.steps / wall),
            "replayed_us_per_step": round(statistics.median(replayed) * 1e6, 2),
        }
    finally:
        worker.stop()
        await asyncio.wait_for(running, 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="an existing server; default: start --server-bin")
    parser.add_argument("--api-key", default=os.environ.get("SWITCHYARD_API_KEY"))
    parser.add_argument("--server-bin", default=os.environ.get("SWITCHYARD_BIN"))
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    if args.url:
        result = asyncio.run(measure(args.url, args.api_key, args))
    else:
        if not args.server_bin:
            raise SystemExit("give --url and --api-key, or --server-bin / SWITCHYARD_BIN")
        with own_server(args.server_bin) as (url, key):
            result = asyncio.run(measure(url, key, args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

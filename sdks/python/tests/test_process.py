"""The example worker as a real separate process: SIGKILL mid-task (the task completes on
another worker exactly once) and drain on SIGTERM (the running task finishes, nothing new is
taken)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from typing import Any

from conftest import SDK_ROOT
from helpers import WAIT, unique, wait_until

from switchyard import Client

EXAMPLE = SDK_ROOT / "examples" / "worker.py"


def start_worker(
    server: Any, name: str, agent: str, slots: int = 1
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        SWITCHYARD_API_KEY=server.worker_key,
        WORKER_NAME=name,
        WORKER_SLOTS=str(slots),
        AGENT_NAME=agent,
    )
    return subprocess.Popen(
        [sys.executable, str(EXAMPLE), server.url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    await asyncio.to_thread(process.wait, WAIT)


async def wait_for_workers(client: Client, *names: str) -> None:
    """Waits until the server lists the named workers as connected."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        response = await client._http.get("/api/v1/workers")
        if response.status_code == 200:
            body = response.json()
            items = body.get("items", body) if isinstance(body, dict) else body
            seen = {w.get("name") for w in items if isinstance(w, dict)}
            if set(names) <= seen:
                return
        assert loop.time() < deadline, f"workers {names} never connected: {response.text}"
        await asyncio.sleep(0.1)


async def test_sigkill_mid_task_completes_elsewhere_exactly_once(server: Any) -> None:
    agent = unique("wordcount")
    first = start_worker(server, "py-kill-a", agent)
    second: subprocess.Popen[bytes] | None = None
    try:
        async with Client(server.url, api_key=server.admin_key) as client:
            await wait_for_workers(client, "py-kill-a")
            words = " ".join(f"w{i}" for i in range(20))
            task = await client.submit(agent, {"text": words, "delay_ms": 150})
            await wait_until(
                client,
                task.id,
                lambda t: t.status == "running" and t.attempts[-1].worker == "py-kill-a",
            )
            first.send_signal(signal.SIGKILL)
            await asyncio.to_thread(first.wait, WAIT)
            second = start_worker(server, "py-kill-b", agent)
            done = await wait_until(client, task.id, lambda t: t.done, timeout=120)
            assert done.status == "succeeded", json.dumps(done.raw["attempts"])
            assert done.output == {"words": 20, "worker": "py-kill-b"}
            succeeded = [a for a in done.attempts if a.status == "succeeded"]
            assert len(succeeded) == 1 and succeeded[0].worker == "py-kill-b"
            assert done.attempts[0].worker == "py-kill-a" and done.attempts[0].status != "succeeded"
            events = [e async for e in client.follow(done.id, since=0)]
            assert [e["kind"] for e in events].count("result") == 1
    finally:
        await stop(first)
        if second is not None:
            await stop(second)


async def test_sigterm_drains_running_task_and_takes_no_new_one(server: Any) -> None:
    agent = unique("wordcount")
    process = start_worker(server, "py-drain", agent, slots=4)
    try:
        async with Client(server.url, api_key=server.admin_key) as client:
            await wait_for_workers(client, "py-drain")
            words = " ".join(f"w{i}" for i in range(10))
            running = await client.submit(agent, {"text": words, "delay_ms": 200})
            await wait_until(
                client,
                running.id,
                lambda t: t.status == "running" and t.attempts[-1].worker == "py-drain",
            )
            process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.3)
            later = await client.submit(agent, {"text": "not taken"})
            code = await asyncio.to_thread(process.wait, WAIT)
            assert code == 0
            done = await client.get(running.id)
            assert done.status == "succeeded", json.dumps(done.raw["attempts"])
            assert done.output == {"words": 10, "worker": "py-drain"}
            assert len(done.attempts) == 1
            untouched = await client.get(later.id)
            assert untouched.status == "queued" and not untouched.attempts, untouched
            await client.cancel(later.id)
    finally:
        await stop(process)

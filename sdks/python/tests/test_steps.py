"""Durable steps (``ctx.step``) against the real server: memoized across retries, a failed step
run again, the server's limit on a step's output, one result per name."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
from conftest import MAX_STEP_OUTPUT_BYTES, SDK_ROOT
from helpers import WAIT, make_worker, running, unique, wait_until

from switchyard import Client, RetryableError, RetryPolicy, SwitchyardError, TaskContext

#: Retry soon, so that the tests do not wait for the default backoff.
QUICK_RETRY: RetryPolicy = {"max_attempts": 3, "base_ms": 50, "cap_ms": 200}


async def listed_steps(server: Any, task_id: str) -> list[dict[str, Any]]:
    """``GET /api/v1/tasks/{id}/steps`` with the admin credential."""
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(
            f"{server.url}/api/v1/tasks/{task_id}/steps",
            headers={"authorization": f"Bearer {server.admin_key}"},
        )
    assert response.status_code == 200, response.text
    steps = response.json()["items"]
    assert isinstance(steps, list), steps
    return steps


async def test_steps_are_memoized_across_a_retry(server: Any) -> None:
    name = unique("steps")
    worker = make_worker(server)
    runs = {"a": 0, "b": 0, "c": 0}

    @worker.agent(name, retry=QUICK_RETRY)
    async def handler(ctx: TaskContext, input: Any) -> Any:
        def work(step: str) -> Callable[[], dict[str, Any]]:
            def fn() -> dict[str, Any]:
                runs[step] += 1
                return {"step": step, "attempt": ctx.attempt}

            return fn

        a = await ctx.step("a", work("a"))
        b = await ctx.step("b", work("b"))
        if ctx.attempt == 1:
            raise RetryableError("failing after b", code="after_b")
        c = await ctx.step("c", work("c"))
        return {"joined": [a, b, c], "attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
        events = [e async for e in client.follow(task.id, since=0)]
    assert task.status == "succeeded", task
    assert [a.status for a in task.attempts] == ["failed", "succeeded"]
    assert (task.attempts[0].error or {}).get("code") == "after_b"
    assert runs == {"a": 1, "b": 1, "c": 1}
    assert task.output == {
        "joined": [
            {"step": "a", "attempt": 1},
            {"step": "b", "attempt": 1},
            {"step": "c", "attempt": 2},
        ],
        "attempt": 2,
    }
    steps = await listed_steps(server, task.id)
    assert [(s["name"], s["status"], s["attempt"]) for s in steps] == [
        ("a", "succeeded", 1),
        ("b", "succeeded", 1),
        ("c", "succeeded", 2),
    ]
    assert steps[0]["output"] == {"step": "a", "attempt": 1}
    async with Client(server.url, api_key=server.client_key) as client:
        typed = await client.steps(task.id)
    assert [(s.name, s.status, s.attempt, s.output) for s in typed] == [
        (s["name"], s["status"], s["attempt"], s["output"]) for s in steps
    ]
    finished = [e for e in events if e["kind"] == "step_finished"]
    assert [(e["name"], e["status"], e["attempt"]) for e in finished] == [
        ("a", "succeeded", 1),
        ("b", "succeeded", 1),
        ("c", "succeeded", 2),
    ]


async def test_a_step_that_raises_runs_again_on_the_retry(server: Any) -> None:
    name = unique("step-retry")
    worker = make_worker(server)
    seen: list[BaseException] = []
    raised: list[BaseException] = []

    @worker.agent(name, retry=QUICK_RETRY)
    async def handler(ctx: TaskContext, input: Any) -> Any:
        def fetch() -> dict[str, int]:
            if ctx.attempt == 1:
                error = KeyError("flaky")
                raised.append(error)
                raise error
            return {"fetched_on": ctx.attempt}

        try:
            return await ctx.step("fetch", fetch)
        except Exception as e:
            seen.append(e)
            raise

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
        events = [e async for e in client.follow(task.id, since=0)]
    assert task.status == "succeeded" and task.output == {"fetched_on": 2}, task
    assert [a.status for a in task.attempts] == ["failed", "succeeded"]
    first_error = task.attempts[0].error or {}
    assert first_error.get("code") == "exception" and "KeyError" in str(first_error.get("message"))
    assert seen == raised and len(seen) == 1  # the handler saw the very exception fn raised
    steps = await listed_steps(server, task.id)
    assert [(s["name"], s["status"], s["attempt"]) for s in steps] == [("fetch", "succeeded", 2)]
    assert steps[0]["output"] == {"fetched_on": 2}
    finished = [e for e in events if e["kind"] == "step_finished"]
    assert [(e["status"], e["attempt"]) for e in finished] == [("failed", 1), ("succeeded", 2)]
    assert finished[0]["error"]["class"] == "retryable"
    assert finished[0]["error"]["code"] == "exception"


async def test_a_step_output_over_the_limit_fails_the_task_permanently(server: Any) -> None:
    name = unique("step-large")
    worker = make_worker(server)
    after: list[str] = []

    @worker.agent(name, retry=QUICK_RETRY)
    async def handler(ctx: TaskContext, input: Any) -> Any:
        big = await ctx.step("big", lambda: "x" * (2 * MAX_STEP_OUTPUT_BYTES))
        after.append("went on")
        return len(big)

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "dead", task
    assert len(task.attempts) == 1
    assert task.error is not None
    assert task.error["class"] == "permanent" and task.error["code"] == "step_output_too_large"
    assert after == []


async def test_the_same_name_twice_in_a_run_returns_the_first_result(server: Any) -> None:
    name = unique("step-twice")
    worker = make_worker(server)
    runs: list[int] = []

    @worker.agent(name)
    async def handler(ctx: TaskContext, input: Any) -> Any:
        def count() -> int:
            runs.append(1)
            return len(runs) * 10

        return [await ctx.step("n", count), await ctx.step("n", count)]

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        task = await client.submit(name, {}, wait=WAIT)
    assert task.status == "succeeded" and task.output == [10, 10], task
    assert runs == [1]
    steps = await listed_steps(server, task.id)
    assert [(s["name"], s["status"], s["output"]) for s in steps] == [("n", "succeeded", 10)]


async def test_a_null_result_is_a_result(server: Any) -> None:
    name = unique("step-null")
    worker = make_worker(server)
    runs: list[int] = []

    @worker.agent(name, retry=QUICK_RETRY)
    async def handler(ctx: TaskContext, input: Any) -> Any:
        def nothing() -> object:
            runs.append(ctx.attempt)
            return None

        value = await ctx.step("nothing", nothing)
        if ctx.attempt == 1:
            raise RetryableError("once more")
        return {"value": value, "attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "succeeded" and task.output == {"value": None, "attempt": 2}, task
    assert runs == [1]


async def test_a_plain_def_handler_memoizes_with_step_sync(server: Any) -> None:
    name = unique("step-sync")
    worker = make_worker(server)
    runs: list[int] = []

    @worker.agent(name, retry=QUICK_RETRY)
    def handler(ctx: TaskContext, input: Any) -> Any:
        def fetch() -> dict[str, int]:
            runs.append(ctx.attempt)
            return {"fetched_on": ctx.attempt}

        page = ctx.step_sync("fetch", fetch)
        if ctx.attempt == 1:
            raise RetryableError("failing after fetch")
        return {"page": page, "attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "succeeded", task
    assert task.output == {"page": {"fetched_on": 1}, "attempt": 2}
    assert runs == [1]


def start_conformance_worker(server: Any, name: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(SWITCHYARD_API_KEY=server.worker_key, WORKER_NAME=name)
    return subprocess.Popen(
        [sys.executable, str(SDK_ROOT / "examples" / "conformance_worker.py"), server.url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_the_conformance_workers_conf_steps_agent(server: Any) -> None:
    process = start_conformance_worker(server, "py-conf-steps")
    try:
        async with Client(server.url, api_key=server.client_key) as client:
            submitted = await _submit_when_served(
                client, "conf-steps", {"steps": ["a", "b", "c"], "fail_after": "b"}
            )
            task = await wait_until(client, submitted.id, lambda t: t.done)
        assert task.status == "succeeded", task
        assert task.output == {
            "results": [
                {"step": "a", "run": 1},
                {"step": "b", "run": 1},
                {"step": "c", "run": 2},
            ],
            "worker": "py-conf-steps",
        }
        first_error = task.attempts[0].error or {}
        assert first_error.get("code") == "after_step"
        assert first_error.get("message") == "failing after b"
    finally:
        process.terminate()
        await asyncio.to_thread(process.wait, 30)


async def _submit_when_served(client: Client, agent: str, input: Any) -> Any:
    """Submits once the agent is registered (the worker process is still starting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        try:
            return await client.submit(agent, input)
        except SwitchyardError as e:
            if e.code != "unknown_agent" or loop.time() > deadline:
                raise
            await asyncio.sleep(0.2)

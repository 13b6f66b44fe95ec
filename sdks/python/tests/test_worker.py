"""The worker against the real server: results, streaming, error classes, timeouts,
cancellation, sync handlers, refusals, schemas and retry policies."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from helpers import WAIT, CuttingProxy, make_worker, running, unique, wait_until

from switchyard import (
    Client,
    PermanentError,
    RateLimitedError,
    RetryableError,
    SwitchyardError,
    TaskContext,
    Worker,
    WorkerRefusedError,
)


def ts(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_success_with_logs_progress_and_partial_output(server: Any) -> None:
    name = unique("stream")
    worker = make_worker(server, slots=4)

    @worker.agent(name, description="streams", version="2")
    async def stream(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        await ctx.log("info", "starting")
        for i, token in enumerate(["Hel", "lo"]):
            await ctx.partial({"token": token})
            await ctx.progress((i + 1) / 2, f"token {i}")
        return {"text": "Hello", "x": input["x"], "attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        task = await client.submit(name, {"x": 1}, wait=WAIT)
        assert task.status == "succeeded", task
        assert task.output == {"text": "Hello", "x": 1, "attempt": 1}
        assert [a.status for a in task.attempts] == ["succeeded"]
        events = [e async for e in client.follow(task.id, since=0)]
    kinds = [e["kind"] for e in events]
    seqs = [e["seq"] for e in events]
    assert seqs[0] == 1 and all(a < b for a, b in itertools.pairwise(seqs)), seqs
    logs = [e["message"] for e in events if e["kind"] == "log"]
    assert "starting" in logs
    assert [e["data"] for e in events if e["kind"] == "partial"] == [
        {"token": "Hel"},
        {"token": "lo"},
    ]
    assert [e["progress"] for e in events if e["kind"] == "progress"] == [0.5, 1.0]
    assert kinds[-1] == "result" and events[-1]["output"]["text"] == "Hello"


async def test_sync_handler_runs_in_a_thread(server: Any) -> None:
    name = unique("sync")
    worker = make_worker(server)
    threads: list[str] = []

    @worker.agent(name)
    def blocking(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        ctx.log("info", "from a thread")
        ctx.partial("p")
        return {"doubled": input["n"] * 2}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        task = await client.submit(name, {"n": 21}, wait=WAIT)
        assert task.status == "succeeded" and task.output == {"doubled": 42}
        events = [e async for e in client.follow(task.id, since=0)]
    assert threads and threads[0] != threading.main_thread().name
    assert any(e["kind"] == "log" and e["message"] == "from a thread" for e in events)
    assert any(e["kind"] == "partial" and e["data"] == "p" for e in events)


async def test_retryable_error_is_retried(server: Any) -> None:
    name = unique("retryable")
    worker = make_worker(server)

    @worker.agent(name)
    async def flaky(ctx: TaskContext, input: Any) -> Any:
        if ctx.attempt == 1:
            raise RetryableError("upstream busy", code="busy")
        return {"attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "succeeded" and task.output == {"attempt": 2}
    assert [a.status for a in task.attempts] == ["failed", "succeeded"]
    first_error = task.attempts[0].error or {}
    assert first_error.get("class") == "retryable" and first_error.get("code") == "busy"


async def test_unexpected_exception_is_retryable(server: Any) -> None:
    name = unique("raises")
    worker = make_worker(server)

    @worker.agent(name)
    async def raises(ctx: TaskContext, input: Any) -> Any:
        if ctx.attempt == 1:
            raise KeyError("missing")
        return "ok"

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "succeeded" and task.output == "ok"
    assert "KeyError" in str((task.attempts[0].error or {}).get("message"))


async def test_permanent_error_goes_dead_without_retries(server: Any) -> None:
    name = unique("permanent")
    worker = make_worker(server)
    calls: list[int] = []

    @worker.agent(name)
    async def bad(ctx: TaskContext, input: Any) -> Any:
        calls.append(ctx.attempt)
        raise PermanentError("bad input", code="bad_input")

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "dead", task
    assert calls == [1] and len(task.attempts) == 1
    assert task.error is not None
    assert task.error["class"] == "permanent" and task.error["message"] == "bad input"
    assert task.error["code"] == "bad_input"


async def test_rate_limited_error_honours_retry_after(server: Any) -> None:
    name = unique("ratelimited")
    worker = make_worker(server)

    @worker.agent(name)
    async def limited(ctx: TaskContext, input: Any) -> Any:
        if ctx.attempt == 1:
            raise RateLimitedError("slow down", retry_after=2.0)
        return {"attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "succeeded" and task.output == {"attempt": 2}
    first, second = task.attempts
    assert (first.error or {}).get("class") == "rate_limited"
    pause = (ts(second.started_at) - ts(first.finished_at)).total_seconds()
    assert pause >= 1.9, f"retried after {pause:.3f}s, before retry_after"


async def test_timeout_fails_the_attempt_and_the_handler_sees_it(server: Any) -> None:
    name = unique("timeout")
    worker = make_worker(server)
    saw_cancel: list[int] = []

    @worker.agent(name, timeout=1.0)
    async def slow(ctx: TaskContext, input: Any) -> Any:
        if ctx.attempt == 1:
            await asyncio.wait_for(ctx.cancel_event.wait(), 30)
            saw_cancel.append(ctx.attempt)
            await asyncio.sleep(30)
        return {"attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "succeeded" and task.output == {"attempt": 2}
    error = task.attempts[0].error or {}
    assert error.get("code") == "timeout" and error.get("class") == "retryable", error
    assert saw_cancel == [1]


async def test_cancel_reaches_the_running_handler(server: Any) -> None:
    name = unique("cancel")
    worker = make_worker(server)
    started = asyncio.Event()
    seen: list[bool] = []

    @worker.agent(name)
    async def long(ctx: TaskContext, input: Any) -> Any:
        started.set()
        while not ctx.cancelled:  # noqa: ASYNC110 - the polling style a handler may use
            await asyncio.sleep(0.02)
        seen.append(ctx.cancel_event.is_set())
        return {"stopped": True}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        await asyncio.wait_for(started.wait(), WAIT)
        await client.cancel(submitted.id)
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "cancelled", task
    assert seen == [True]


async def test_wrong_key_is_a_clear_error(server: Any) -> None:
    worker = make_worker(server, key="sy_not-a-real-key")

    @worker.agent(unique("never"))
    async def never(ctx: TaskContext, input: Any) -> Any:
        return None

    with pytest.raises(WorkerRefusedError) as caught:
        await asyncio.wait_for(worker.run(), WAIT)
    assert caught.value.status == 401 and caught.value.code == "unauthorized"
    assert "API key" in str(caught.value)


async def test_worker_connects_with_a_fresh_ticket_per_connection(server: Any) -> None:
    name = unique("ticketed")
    minted = 0
    async with Client(server.url, api_key=server.worker_key) as minter:

        async def ticket() -> str:
            nonlocal minted
            minted += 1
            return await minter.ws_ticket()

        worker = Worker(server.url, ticket=ticket, handle_signals=False)

        @worker.agent(name)
        async def echo(ctx: TaskContext, input: Any) -> Any:
            return input

        async with running(worker), Client(server.url, api_key=server.client_key) as client:
            task = await client.submit(name, {"via": "ticket"}, wait=WAIT)
            task = await wait_until(client, task.id, lambda t: t.done)
    assert task.output == {"via": "ticket"} and minted == 1

    async def made_up() -> str:
        return "not-a-ticket"

    refused = Worker(server.url, ticket=made_up, handle_signals=False)
    refused.agent(unique("never"))(echo)
    with pytest.raises(WorkerRefusedError) as caught:
        await asyncio.wait_for(refused.run(), WAIT)
    assert caught.value.status == 401 and "ticket" in str(caught.value)
    with pytest.raises(ValueError, match="api_key"):
        Worker(server.url)


async def test_key_without_worker_scope_is_refused(server: Any) -> None:
    worker = make_worker(server, key=server.client_key)

    @worker.agent(unique("never"))
    async def never(ctx: TaskContext, input: Any) -> Any:
        return None

    with pytest.raises(WorkerRefusedError) as caught:
        await asyncio.wait_for(worker.run(), WAIT)
    assert caught.value.status in (401, 403)


async def test_rejected_hello_is_a_clear_error(server: Any) -> None:
    worker = make_worker(server)

    @worker.agent("echo")  # built-in agents cannot be served remotely
    async def echo(ctx: TaskContext, input: Any) -> Any:
        return input

    with pytest.raises(WorkerRefusedError) as caught:
        await asyncio.wait_for(worker.run(), WAIT)
    assert "hello" in str(caught.value) and caught.value.code


async def test_unknown_agent_and_schema_violations_list_each_field(server: Any) -> None:
    name = unique("schema")
    worker = make_worker(server)

    @worker.agent(
        name,
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["text"],
        },
    )
    async def typed(ctx: TaskContext, input: Any) -> Any:
        return input

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        with pytest.raises(SwitchyardError) as caught:
            await client.submit(name, {"n": "three"})
        error = caught.value
        assert error.code == "validation_failed" and error.status == 422
        paths = {v["path"] for v in error.violations}
        assert "/n" in paths, error.violations
        assert len(error.violations) >= 2, error.violations  # the missing `text` too
        assert "/n" in str(error)
        with pytest.raises(SwitchyardError) as unknown:
            await client.submit(unique("nobody-serves-this"), {})
        assert unknown.value.code == "unknown_agent" and unknown.value.status is not None


async def test_retry_policy_is_declared_with_the_agent(server: Any) -> None:
    name = unique("policy")
    worker = make_worker(server)  # a worker key: no right to manage agents over REST

    @worker.agent(name, retry={"max_attempts": 2, "base_ms": 50, "cap_ms": 100})
    async def failing(ctx: TaskContext, input: Any) -> Any:
        raise RetryableError("always")

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        agent = await _agent_when(server, name, lambda a: True)
        assert agent["retry"] == {"max_attempts": 2, "base_ms": 50, "cap_ms": 100}
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
    assert task.status == "dead" and len(task.attempts) == 2

    # A new deployment declares another policy: it replaces the old one, and the fields it
    # leaves out take the server defaults.
    redeployed = make_worker(server)
    redeployed.agent(name, retry={"max_attempts": 3})(failing)
    async with running(redeployed):
        agent = await _agent_when(server, name, lambda a: True)
    assert agent["retry"] == {"max_attempts": 3, "base_ms": 200, "cap_ms": 30000}


async def test_bad_retry_policy_is_a_clear_error(server: Any) -> None:
    worker = make_worker(server)
    with pytest.raises(ValueError, match="max_attempt"):

        @worker.agent(unique("typo"), retry={"max_attempt": 2})  # type: ignore[arg-type]
        async def typo(ctx: TaskContext, input: Any) -> Any:
            return None

    @worker.agent(unique("zero"), retry={"max_attempts": 0})
    async def never(ctx: TaskContext, input: Any) -> Any:
        return None

    with pytest.raises(WorkerRefusedError) as caught:
        await asyncio.wait_for(worker.run(), WAIT)
    assert "retry.max_attempts" in str(caught.value), caught.value


async def _agent_when(server: Any, name: str, check: Any) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers) as http:
        for _ in range(200):
            agent: dict[str, Any] = (await http.get(f"/api/v1/agents/{name}")).json()
            if "retry" in agent and check(agent):
                return agent
            await asyncio.sleep(0.05)
    raise AssertionError(f"agent {name} never matched: {agent}")


async def test_heartbeats_keep_a_long_task_on_its_worker(server: Any) -> None:
    # The server's lease is 3 s (conftest): without heartbeats this attempt would be lost.
    name = unique("long")
    worker = make_worker(server)

    @worker.agent(name)
    async def long(ctx: TaskContext, input: Any) -> Any:
        await asyncio.sleep(7)
        return {"attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        task = await client.submit(name, {}, wait=WAIT)
        task = await wait_until(client, task.id, lambda t: t.done)
    assert task.status == "succeeded" and task.output == {"attempt": 1}
    assert len(task.attempts) == 1


async def test_reconnects_after_the_connection_drops(server: Any) -> None:
    name = unique("reconnect")
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    started = asyncio.Event()
    lost: list[int] = []

    async with CuttingProxy(address.hostname, address.port) as proxy:
        worker = make_worker(server, max_backoff=1.0, cancel_grace=1.0)
        worker.url = proxy.url  # REST calls, if any, go the same way
        worker._ws_url = proxy.url.replace("http://", "ws://") + "/api/v1/workers/ws"

        @worker.agent(name)
        async def handler(ctx: TaskContext, input: Any) -> Any:
            if ctx.attempt == 1:
                started.set()
                await asyncio.wait_for(ctx.cancel_event.wait(), WAIT)
                lost.append(ctx.attempt)
                await asyncio.sleep(WAIT)  # cancelled after the worker's cancel_grace
            return {"attempt": ctx.attempt}

        async with running(worker), Client(server.url, api_key=server.client_key) as client:
            first_id = worker.worker_id
            task = await client.submit(name, {})
            await asyncio.wait_for(started.wait(), WAIT)
            proxy.cut()
            done = await wait_until(client, task.id, lambda t: t.done)
            await worker.wait_until_connected(WAIT)
            assert worker.worker_id != first_id
    assert done.status == "succeeded" and done.output == {"attempt": 2}, done
    assert done.attempts[0].status != "succeeded"
    assert lost == [1]
    assert proxy.connections >= 2


async def test_output_that_is_not_json_fails_permanent_and_the_worker_serves_on(
    server: Any,
) -> None:
    name = unique("not-json")
    worker = make_worker(server)

    @worker.agent(name)
    async def handler(ctx: TaskContext, input: dict[str, Any]) -> Any:
        if input.get("bad"):
            return {"value": object()}
        return {"ok": True}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {"bad": True})
        bad = await wait_until(client, submitted.id, lambda t: t.done)
        good = await client.submit(name, {"bad": False}, wait=WAIT)
    assert bad.status == "dead", bad
    assert bad.error is not None
    assert bad.error["class"] == "permanent" and bad.error["code"] == "invalid_output"
    assert len(bad.attempts) == 1
    assert good.status == "succeeded" and good.output == {"ok": True}, good


async def test_a_partial_that_is_not_json_is_dropped_not_fatal(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    name = unique("partial-not-json")
    worker = make_worker(server)

    @worker.agent(name)
    async def handler(ctx: TaskContext, input: Any) -> Any:
        await ctx.partial({"value": object()})
        await ctx.partial({"token": "kept"})
        return {"done": True}

    caplog.set_level(logging.WARNING, logger="switchyard.worker")
    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        task = await client.submit(name, {}, wait=WAIT)
        assert task.status == "succeeded", task
        events = [e async for e in client.follow(task.id, since=0)]
    assert [e["data"] for e in events if e["kind"] == "partial"] == [{"token": "kept"}]
    assert any("not JSON" in r.getMessage() for r in caplog.records)


async def test_a_burst_of_tasks_each_gets_its_own_output_and_events_in_order(
    server: Any,
) -> None:
    """Many attempts finishing together: their messages leave in shared writes, each
    attempt's in order and before its result."""
    name = unique("burst")
    worker = make_worker(server, slots=64)

    @worker.agent(name)
    async def handler(ctx: TaskContext, input: dict[str, Any]) -> Any:
        await ctx.log("info", f"item {input['i']}")
        await ctx.partial({"i": input["i"]})
        await asyncio.sleep(0)
        return {"i": input["i"], "task": ctx.task_id}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        tasks = await client.submit_batch(name, [{"i": i} for i in range(300)], wait=WAIT)
        assert [t.status for t in tasks] == ["succeeded"] * 300, [
            t for t in tasks if t.status != "succeeded"
        ]
        assert [t.output for t in tasks] == [{"i": i, "task": t.id} for i, t in enumerate(tasks)]
        events = [e async for e in client.follow(tasks[123].id, since=0)]
    kinds = [e["kind"] for e in events]
    assert kinds.index("log") < kinds.index("partial") < kinds.index("result"), kinds
    assert [e["data"] for e in events if e["kind"] == "partial"] == [{"i": 123}]


async def test_a_handler_that_ignores_a_cancellation_is_cancelled_after_the_grace(
    server: Any,
) -> None:
    name = unique("stubborn")
    worker = make_worker(server, cancel_grace=0.2)
    started = asyncio.Event()
    interrupted = asyncio.Event()

    @worker.agent(name)
    async def stubborn(ctx: TaskContext, input: Any) -> Any:
        started.set()
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError:
            interrupted.set()
            raise
        return {"finished": True}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        await asyncio.wait_for(started.wait(), WAIT)
        await client.cancel(submitted.id)
        task = await wait_until(client, submitted.id, lambda t: t.done)
        await asyncio.wait_for(interrupted.wait(), WAIT)
    assert task.status == "cancelled", task

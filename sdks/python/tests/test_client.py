"""The client against the real server: submit/get/cancel/retry/batch/wait, follow with
resume after a forced disconnect, and clear errors."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any
from urllib.parse import urlsplit

import pytest
from helpers import WAIT, CuttingProxy, make_worker, running, unique, wait_until

from switchyard import Client, SwitchyardError, TaskContext


async def test_submit_wait_get(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        task = await client.submit("echo", {"x": 1}, wait=WAIT)
        assert task.status == "succeeded" and task.output == {"x": 1}
        assert task.agent == "echo" and task.input == {"x": 1} and task.error is None
        assert task.attempts and task.attempts[0].number == 1
        again = await client.get(task.id)
        assert again.id == task.id and again.output == {"x": 1} and again.done


async def test_submit_without_wait_returns_at_once(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        task = await client.submit("sleep", {"ms": 200})
        assert task.status in ("queued", "running")
        done = await client.wait(task.id, WAIT)
        assert done.status == "succeeded"


async def test_cancel_then_retry(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        task = await client.submit("echo", {"later": True}, delay_ms=600_000)
        assert task.status == "queued"
        cancelled = await client.cancel(task.id)
        assert cancelled.id == task.id
        final = await wait_until(client, task.id, lambda t: t.status == "cancelled")
        assert final.done
        retried = await client.retry(task.id)
        assert retried.id == task.id
        done = await client.wait(task.id, WAIT)
        assert done.status == "succeeded" and done.output == {"later": True}
        with pytest.raises(SwitchyardError) as caught:
            await client.retry(task.id)  # succeeded tasks cannot be retried
        assert caught.value.code == "invalid_state" and caught.value.status == 409


async def test_submit_batch_with_wait(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        tasks = await client.submit_batch("echo", [{"x": 1}, {"x": 2}, {"x": 3}], wait=WAIT)
        assert [t.output for t in tasks] == [{"x": 1}, {"x": 2}, {"x": 3}]
        assert all(t.status == "succeeded" for t in tasks)
        queued = await client.submit_batch("echo", [{"y": 1}, {"y": 2}])
        assert len(queued) == 2 and len({t.id for t in queued}) == 2


async def test_not_found_and_wrong_key(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        with pytest.raises(SwitchyardError) as missing:
            await client.get("01a21062-2a40-76b2-a393-4157091d7440")
        assert missing.value.status == 404 and missing.value.code
    async with Client(server.url, api_key="sy_wrong") as bad:
        with pytest.raises(SwitchyardError) as caught:
            await bad.submit("echo", {})
        assert caught.value.status == 401 and caught.value.code == "unauthorized"
        with pytest.raises(SwitchyardError) as follow:
            async for _ in bad.follow("01a21062-2a40-76b2-a393-4157091d7440"):
                pass
        assert follow.value.code == "unauthorized"


@pytest.mark.parametrize("transport", ["websocket", "sse"])
async def test_follow_resumes_after_a_forced_disconnect(server: Any, transport: str) -> None:
    name = unique("ticker")
    worker = make_worker(server)
    release = asyncio.Event()

    @worker.agent(name)
    async def ticker(ctx: TaskContext, input: Any) -> Any:
        for i in range(input["n"]):
            await ctx.log("info", f"line {i}")
            if i == 5:
                await asyncio.wait_for(release.wait(), WAIT)
            await asyncio.sleep(0.01)
        return {"done": input["n"]}

    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    async with (
        running(worker),
        CuttingProxy(address.hostname, address.port) as proxy,
        Client(proxy.url, api_key=server.client_key) as client,
    ):
        task = await client.submit(name, {"n": 30})
        events: list[dict[str, Any]] = []
        async for event in client.follow(task.id, since=0, transport=transport):  # type: ignore[arg-type]
            events.append(event)
            if event["kind"] == "log" and event["message"] == "line 3" and proxy.cuts == 0:
                proxy.cut()  # the connection dies mid-stream
                release.set()  # events keep coming while the client is away
        assert proxy.cuts == 1
        assert proxy.connections >= 2  # the stream before the cut and the resumed one
    seqs = [e["seq"] for e in events]
    # None repeated, in order (live events take numbers from blocks: gaps are allowed);
    # none lost: every line below.
    assert seqs[0] == 1 and all(a < b for a, b in itertools.pairwise(seqs)), seqs
    lines = [e["message"] for e in events if e["kind"] == "log"]
    assert lines == [f"line {i}" for i in range(30)]
    assert events[-1]["kind"] == "result" and events[-1]["output"] == {"done": 30}


async def test_follow_ends_with_the_final_event(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        task = await client.submit("echo", {"z": 1}, wait=WAIT)
        events = [e async for e in client.follow(task.id)]
        assert len(events) == 1 and events[0]["kind"] == "result"  # the current state


async def test_follow_with_a_ws_ticket(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key, ws_auth="ticket") as client:
        task = await client.submit("sleep", {"ms": 300})
        events = [e async for e in client.follow(task.id, since=0)]
        assert events[-1]["kind"] == "result"
        seqs = [e["seq"] for e in events]
        assert seqs[0] == 1 and all(a < b for a, b in itertools.pairwise(seqs)), seqs
        ticket = await client.ws_ticket()
        assert ticket and ticket != await client.ws_ticket()  # single use: a new one each time

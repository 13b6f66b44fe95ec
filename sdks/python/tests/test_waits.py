"""Durable waits, signals and child tasks (``ctx.sleep``, ``ctx.wait_for_signal``, ``ctx.spawn``,
``ctx.join``): the pieces that need no server, then the real server ending and resuming runs."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import httpx
import pytest
from helpers import make_worker, running, unique, wait_until

from switchyard import (
    ChildFailure,
    ChildTaskFailed,
    Client,
    PermanentError,
    RetryableError,
    RetryPolicy,
    SwitchyardError,
    Task,
    TaskContext,
    Wait,
    WaitTimeout,
)
from switchyard.worker import _join_results, _millis

QUICK_RETRY: RetryPolicy = {"max_attempts": 3, "base_ms": 50, "cap_ms": 200}


# --- without a server ---------------------------------------------------------------------


def test_join_results_keep_order_and_turn_failures_into_objects() -> None:
    error = {"class": "permanent", "code": "boom", "message": "it broke"}
    results = [
        {"task_id": "a", "status": "succeeded", "output": {"n": 1}},
        {"task_id": "b", "status": "dead", "error": error},
        {"task_id": "c", "status": "succeeded", "output": None},
        {"task_id": "d", "status": "cancelled"},
    ]
    assert _join_results(results, False) == [
        {"n": 1},
        ChildFailure("b", "dead", error),
        None,
        ChildFailure("d", "cancelled", None),
    ]
    with pytest.raises(ChildTaskFailed) as raised:
        _join_results(results, True)
    assert raised.value.failure == ChildFailure("b", "dead", error)
    assert raised.value.code == "child_failed" and raised.value.error_class == "permanent"
    assert "child task b ended dead: it broke" in str(raised.value)


def test_wait_durations_are_whole_milliseconds() -> None:
    assert _millis(1.5, "seconds") == 1500
    assert _millis(0.0004, "seconds") == 0
    assert _millis(-3, "seconds") == 0
    assert _millis(1_700_000_000.25, "when") == 1_700_000_000_250
    with pytest.raises(ValueError):
        _millis(math.inf, "seconds")
    with pytest.raises(TypeError):
        _millis("1", "seconds")  # type: ignore[arg-type]


def test_a_wait_timeout_names_its_signal_and_is_permanent() -> None:
    error = WaitTimeout("approval")
    assert error.signal == "approval" and error.code == "wait_timeout"
    assert isinstance(error, PermanentError)


def test_a_waiting_task_parses_its_wait() -> None:
    task = Task.from_json(
        {
            "id": "t",
            "agent": "a",
            "status": "waiting",
            "parent_id": "p",
            "wait": {"kind": "children", "name": "join:#1", "children": ["c1", "c2"]},
        }
    )
    assert task.wait == Wait(kind="children", name="join:#1", children=["c1", "c2"])
    assert task.parent_id == "p" and not task.done
    assert Task.from_json({"id": "t", "status": "queued"}).wait is None


# --- against the real server --------------------------------------------------------------


async def test_a_sleep_ends_the_run_and_the_task_resumes(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="switchyard.worker")
    name = unique("sleep")
    worker = make_worker(server)
    swallowed: list[BaseException] = []
    unwound: list[int] = []
    runs: list[int] = []

    @worker.agent(name)
    async def napper(ctx: TaskContext, input: Any) -> Any:
        runs.append(ctx.attempt)
        await ctx.sleep_until("in-the-past", time.time() - 60)  # over already: no new run
        first = await ctx.step("first", lambda: ctx.attempt)
        try:
            await ctx.sleep("nap", 0.3)
        except Exception as e:  # the end of a run is not an Exception
            swallowed.append(e)
        finally:
            unwound.append(ctx.attempt)
        await ctx.log("info", f"awake on run {ctx.attempt}")
        return {"first": first, "run": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
        events = [e async for e in client.follow(task.id, since=0)]
        steps = await client.steps(task.id)
    assert task.status == "succeeded" and task.output == {"first": 1, "run": 2}, task
    assert [a.status for a in task.attempts] == ["suspended", "succeeded"]
    assert runs == [1, 2] and unwound == [1, 2] and swallowed == []
    kinds = [e["kind"] for e in events]
    assert kinds.count("waiting") == 1 and kinds.count("result") == 1
    waiting = next(e for e in events if e["kind"] == "waiting")
    assert waiting["attempt"] == 1 and waiting["wait"]["kind"] == "sleep"
    assert waiting["wait"]["name"] == "nap"
    resumed = next(e for e in events if e["kind"] == "resumed")
    assert resumed["reason"] == "time"
    assert [(s.name, s.status, s.output) for s in steps] == [
        ("in-the-past", "succeeded", None),
        ("first", "succeeded", 1),
        ("nap", "succeeded", None),
    ]
    logs = [e["message"] for e in events if e["kind"] == "log"]
    assert logs == ["awake on run 2"]  # nothing was sent for the suspended run
    assert not [r for r in caplog.records if "rejected" in r.getMessage()]


async def test_signals_before_and_after_the_wait_with_the_only_slot_free(server: Any) -> None:
    name = unique("signal")
    worker = make_worker(server, slots=1)

    @worker.agent(name)
    async def approval(ctx: TaskContext, input: Any) -> Any:
        first = await ctx.wait_for_signal("first")
        second = await ctx.wait_for_signal("second")
        return {"first": first, "second": second, "run": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        a = await client.submit(name, {})
        b = await client.submit(name, {})
        # One slot: b runs only because a's run ended and gave the slot back.
        for task_id in (a.id, b.id):
            waiting = await wait_until(client, task_id, lambda t: t.status == "waiting")
            assert waiting.wait == Wait(kind="signal", name="signal:first", signal="first")
        # To a: "second" before its wait (kept), then "first" (wakes it), a null payload.
        kept = await client.signal(a.id, "second", {"n": 2})
        assert kept == {"task_id": a.id, "name": "second", "resumed": False}
        woke = await client.signal(a.id, "first", None)
        assert woke["resumed"] is True
        # To b: "first", then "second" once it waits for it.
        await client.signal(b.id, "first", "one")
        await wait_until(client, b.id, lambda t: t.wait is not None and t.wait.signal == "second")
        await client.signal(b.id, "second", ["two"])
        done_a = await wait_until(client, a.id, lambda t: t.done)
        done_b = await wait_until(client, b.id, lambda t: t.done)
        with pytest.raises(SwitchyardError) as finished:
            await client.signal(a.id, "late", {})
    assert done_a.status == "succeeded", done_a
    assert done_a.output == {"first": None, "second": {"n": 2}, "run": 2}
    assert [a.status for a in done_a.attempts] == ["suspended", "succeeded"]
    assert done_b.output == {"first": "one", "second": ["two"], "run": 3}, done_b
    assert finished.value.status == 409 and finished.value.code == "task_finished"


async def test_a_signal_wait_times_out_and_the_handler_catches_it(server: Any) -> None:
    name = unique("signal-timeout")
    worker = make_worker(server)
    caught: list[WaitTimeout] = []

    @worker.agent(name)
    async def impatient(ctx: TaskContext, input: Any) -> Any:
        try:
            return await ctx.wait_for_signal("never", timeout=0.3)
        except WaitTimeout as e:
            caught.append(e)
            return {"timed_out": e.signal, "run": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(name, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
        steps = await client.steps(task.id)
    assert task.status == "succeeded" and task.output == {"timed_out": "never", "run": 2}, task
    assert [e.signal for e in caught] == ["never"]
    assert [(s.name, s.status, (s.error or {}).get("code")) for s in steps] == [
        ("signal:never", "failed", "wait_timeout")
    ]


async def test_spawned_children_are_joined_in_order_with_a_failure(server: Any) -> None:
    parent_agent, child_agent = unique("parent"), unique("child")
    worker = make_worker(server, slots=4)

    @worker.agent(child_agent)
    async def child(ctx: TaskContext, input: Any) -> Any:
        if input.get("fail"):
            raise PermanentError("no luck", code="unlucky")
        return {"n": input["n"], "parent": ctx.parent_id}

    @worker.agent(parent_agent)
    async def parent(ctx: TaskContext, input: Any) -> Any:
        ids = [
            await ctx.spawn(child_agent, {"n": 1}),
            await ctx.spawn(child_agent, {"n": 2, "fail": True}, key="risky"),
            await ctx.spawn(child_agent, {"n": 3}, priority=5),
        ]
        try:
            ctx.join(["not-a-task-id"]).close()  # refused before any number is taken
            bad_id = None
        except PermanentError as e:
            bad_id = e.code
        assert await ctx.join([]) == []  # nothing to wait for: join:#1, not sent
        joined = await ctx.join(ids)
        try:
            await ctx.join(ids, raise_on_failure=True)
            raised = None
        except ChildTaskFailed as e:
            raised = e.failure.task_id
        failure = joined[1]
        assert isinstance(failure, ChildFailure)
        return {
            "ids": ids,
            "outputs": [joined[0], joined[2]],
            "failure": [failure.task_id, failure.status, (failure.error or {}).get("code")],
            "raised": raised,
            "bad_id": bad_id,
        }

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(parent_agent, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
        steps = await client.steps(task.id)
        children = await _children(server, task.id)
    assert task.status == "succeeded", task
    ids = task.output["ids"]
    assert task.output["outputs"] == [
        {"n": 1, "parent": task.id},
        {"n": 3, "parent": task.id},
    ]
    assert task.output["failure"] == [ids[1], "dead", "unlucky"]
    assert task.output["raised"] == ids[1]
    assert task.output["bad_id"] == "invalid_wait"
    assert sorted(c["id"] for c in children) == sorted(ids)
    assert [s.name for s in steps] == ["spawn:#1", "spawn:risky", "spawn:#2", "join:#2", "join:#3"]
    assert [s.output for s in steps[:3]] == ids


async def test_a_spawn_is_not_repeated_by_a_retry(server: Any) -> None:
    parent_agent, child_agent = unique("parent-retry"), unique("child-retry")
    worker = make_worker(server, slots=4)
    spawned: list[list[str]] = []

    @worker.agent(child_agent)
    async def child(ctx: TaskContext, input: Any) -> Any:
        return input

    @worker.agent(parent_agent, retry=QUICK_RETRY)
    async def parent(ctx: TaskContext, input: Any) -> Any:
        ids = [
            await ctx.spawn(child_agent, {"k": True}, key="k"),
            await ctx.spawn(child_agent, {"k": False}),
        ]
        spawned.append(ids)
        if ctx.attempt == 1:
            raise RetryableError("failing after the spawns")
        return await ctx.join(ids, raise_on_failure=True)

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        submitted = await client.submit(parent_agent, {})
        task = await wait_until(client, submitted.id, lambda t: t.done)
        children = await _children(server, task.id)
    assert task.status == "succeeded" and task.output == [{"k": True}, {"k": False}], task
    assert len(spawned) >= 2 and all(ids == spawned[0] for ids in spawned), spawned
    assert sorted(c["id"] for c in children) == sorted(spawned[0])


async def test_waits_are_for_async_handlers(server: Any) -> None:
    name = unique("sync-wait")
    worker = make_worker(server)

    @worker.agent(name)
    def blocking(ctx: TaskContext, input: Any) -> Any:
        try:
            ctx.sleep("nap", 1).close()  # raises before: no coroutine to close
        except RuntimeError as e:
            raise PermanentError(str(e), code="not_async") from e
        return "slept"

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        task = await client.submit(name, {}, wait=30)
    assert task.status == "dead" and (task.error or {}).get("code") == "not_async", task


async def _children(server: Any, task_id: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(
            f"{server.url}/api/v1/tasks",
            params={"parent_id": task_id},
            headers={"authorization": f"Bearer {server.admin_key}"},
        )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items

"""Flow control against the real server: concurrency keys on submissions, cron schedules (CRUD,
pause/resume, run-now, a per-second schedule firing), their errors, and a worker's
RateLimitedError pausing a rate-limited agent's starts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
from helpers import WAIT, make_worker, running, unique, wait_until

from switchyard import Client, RateLimitedError, Schedule, SwitchyardError, TaskContext


def ts(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_concurrency_key_round_trips(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        task = await client.submit("echo", {"n": 1}, concurrency_key="customer-7", wait=WAIT)
        assert task.status == "succeeded" and task.concurrency_key == "customer-7"
        assert (await client.get(task.id)).concurrency_key == "customer-7"
        batch = await client.submit_batch("echo", [{"n": 2}, {"n": 3}], concurrency_key="cust-8")
        assert [t.concurrency_key for t in batch] == ["cust-8", "cust-8"]
        plain = await client.submit("echo", {"n": 4}, wait=WAIT)
        assert plain.concurrency_key is None
        assert plain.schedule is None and plain.scheduled_for is None
        with pytest.raises(SwitchyardError) as empty:
            await client.submit("echo", {}, concurrency_key="")
        assert empty.value.status == 400 and empty.value.code == "invalid_parameter"
        with pytest.raises(SwitchyardError) as long:
            await client.submit("echo", {}, concurrency_key="k" * 257)
        assert long.value.code == "invalid_parameter"


async def test_schedule_crud_pause_resume_and_trigger(server: Any) -> None:
    name = unique("nightly")
    async with Client(server.url, api_key=server.admin_key) as client:
        created = await client.create_schedule(
            name, "echo", "0 2 * * *", input={"report": "daily"}, timezone="Europe/Berlin"
        )
        try:
            assert isinstance(created, Schedule)
            assert (created.name, created.agent, created.cron) == (name, "echo", "0 2 * * *")
            assert created.input == {"report": "daily"} and created.timezone == "Europe/Berlin"
            assert (created.overlap, created.catchup, created.paused) == ("allow", "none", False)
            assert len(created.next_runs) == 5 and created.last_runs == []
            assert created.owner and created.created_at and created.updated_at
            assert (await client.get_schedule(name)) == created
            assert name in [s.name for s in await client.list_schedules()]

            updated = await client.update_schedule(
                name,
                "echo",
                "30 3 * * 1",
                input={"report": "weekly"},
                overlap="skip",
                catchup="latest",
            )
            assert (updated.cron, updated.input) == ("30 3 * * 1", {"report": "weekly"})
            assert (updated.overlap, updated.catchup) == ("skip", "latest")
            assert updated.timezone == "UTC"  # a replacement: left out, the default

            paused = await client.pause_schedule(name)
            assert paused.paused and paused.next_runs == []
            assert paused.cron == "30 3 * * 1" and paused.input == {"report": "weekly"}
            assert (paused.overlap, paused.catchup) == ("skip", "latest")
            assert (await client.pause_schedule(name)).paused  # already paused: as it is

            fired = await client.trigger_schedule(name)  # runs while paused too
            assert fired.schedule == name and fired.task_id and fired.scheduled_for
            task = await client.wait(fired.task_id, WAIT)
            assert task.status == "succeeded" and task.output == {"report": "weekly"}
            assert task.schedule == name and task.scheduled_for == fired.scheduled_for

            resumed = await client.resume_schedule(name)
            assert not resumed.paused and len(resumed.next_runs) == 5
            assert [r.task_id for r in resumed.last_runs] == [fired.task_id]
            run = resumed.last_runs[0]
            assert run.scheduled_for == fired.scheduled_for and run.fired_at
            assert run.status == "succeeded"

            preview = await client.preview_schedule("0 12 * * *", "America/New_York")
            assert len(preview) == 5 and all(ts(t).hour in (16, 17) for t in preview)
            assert len(await client.preview_schedule("*/10 * * * * *")) == 5
        finally:
            await client.delete_schedule(name)
        with pytest.raises(SwitchyardError) as gone:
            await client.get_schedule(name)
        assert gone.value.status == 404 and gone.value.code == "schedule_not_found"
        assert name not in [s.name for s in await client.list_schedules()]


async def test_a_per_second_schedule_fires_tasks(server: Any) -> None:
    name = unique("ticker")
    async with Client(server.url, api_key=server.admin_key) as client:
        await client.create_schedule(name, "echo", "*/1 * * * * *", input={"tick": True})
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 3.5
            schedule = await client.get_schedule(name)
            while len(schedule.last_runs) < 2 and loop.time() < deadline:
                await asyncio.sleep(0.1)
                schedule = await client.get_schedule(name)
        finally:
            await client.delete_schedule(name)
        runs = schedule.last_runs
        assert len(runs) >= 2, f"fired {len(runs)} tasks in 3.5 s"
        ticks = [ts(r.scheduled_for) for r in runs]
        assert ticks == sorted(ticks, reverse=True) and len(set(ticks)) == len(ticks)
        assert all(t.microsecond == 0 for t in ticks)  # on whole seconds
        for run in runs[:2]:
            task = await client.wait(run.task_id, WAIT)
            assert task.schedule == name and task.scheduled_for == run.scheduled_for
            assert task.status == "succeeded" and task.input == {"tick": True}


async def test_schedule_errors_carry_the_server_code(server: Any) -> None:
    name = unique("errors")
    async with Client(server.url, api_key=server.admin_key) as client:
        cases: list[tuple[str, str, str, dict[str, Any], int, str]] = [
            (name, "echo", "every day", {}, 422, "invalid_schedule"),
            (name, "echo", "0 2 * * *", {"timezone": "Mars/Olympus"}, 422, "invalid_schedule"),
            ("Not A Name!", "echo", "0 2 * * *", {}, 422, "invalid_schedule"),
            (name, unique("no-such-agent"), "0 2 * * *", {}, 422, "unknown_agent"),
        ]
        for schedule, agent, cron, options, status, code in cases:
            with pytest.raises(SwitchyardError) as caught:
                await client.create_schedule(schedule, agent, cron, **options)
            assert (caught.value.status, caught.value.code) == (status, code), cron
            assert caught.value.message
        with pytest.raises(SwitchyardError) as bad_cron:
            await client.create_schedule(name, "echo", "61 * * * *")
        assert bad_cron.value.code == "invalid_schedule" and "61" in bad_cron.value.message

        await client.create_schedule(name, "echo", "0 2 * * *", paused=True)
        try:
            with pytest.raises(SwitchyardError) as taken:
                await client.create_schedule(name, "echo", "0 3 * * *")
            assert (taken.value.status, taken.value.code) == (409, "schedule_exists")
            with pytest.raises(SwitchyardError) as bad_update:
                await client.update_schedule(name, "echo", "0 2 * * *", timezone="Nowhere")
            assert bad_update.value.code == "invalid_schedule"
            async with Client(server.url, api_key=server.client_key) as reader:
                assert (await reader.get_schedule(name)).paused  # reading needs no admin
                with pytest.raises(SwitchyardError) as denied:
                    await reader.resume_schedule(name)
                assert (denied.value.status, denied.value.code) == (403, "forbidden")
                with pytest.raises(SwitchyardError) as denied:
                    await reader.trigger_schedule(name)
                assert denied.value.status == 403
        finally:
            await client.delete_schedule(name)

        missing = unique("missing")
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: client.get_schedule(missing),
            lambda: client.update_schedule(missing, "echo", "0 2 * * *"),
            lambda: client.pause_schedule(missing),
            lambda: client.resume_schedule(missing),
            lambda: client.trigger_schedule(missing),
            lambda: client.delete_schedule(missing),
        ]
        for call in calls:
            with pytest.raises(SwitchyardError) as absent:
                await call()
            assert (absent.value.status, absent.value.code) == (404, "schedule_not_found")
        with pytest.raises(SwitchyardError) as preview:
            await client.preview_schedule("* * *")
        assert (preview.value.status, preview.value.code) == (422, "invalid_schedule")


async def test_rate_limited_error_pauses_a_rate_limited_agent(server: Any) -> None:
    name = unique("limited")
    async with httpx.AsyncClient(timeout=30) as http:
        registered = await http.post(
            f"{server.url}/api/v1/agents",
            headers={"authorization": f"Bearer {server.admin_key}"},
            json={"name": name, "kind": "remote", "rate_limit": {"limit": 100, "period_s": 1}},
        )
        assert registered.status_code == 201, registered.text
    worker = make_worker(server)

    @worker.agent(name)
    async def limited(ctx: TaskContext, input: dict[str, Any]) -> Any:
        if input.get("first") and ctx.attempt == 1:
            raise RateLimitedError("upstream says 429", retry_after=1.5)
        return {"attempt": ctx.attempt}

    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        first = await client.submit(name, {"first": True})
        failed = await wait_until(
            client, first.id, lambda t: bool(t.attempts) and t.attempts[0].finished_at is not None
        )
        failed_at = ts(failed.attempts[0].finished_at)
        second = await client.submit(name, {"first": False})
        second_done = await client.wait(second.id, WAIT)
        first_done = await client.wait(first.id, WAIT)
    assert second_done.status == "succeeded" and first_done.status == "succeeded"
    assert (failed.attempts[0].error or {}).get("class") == "rate_limited"
    retry = (ts(first_done.attempts[1].started_at) - failed_at).total_seconds()
    assert retry >= 1.5, f"the retry started {retry:.3f}s after the failure"
    # Without the pause the second task would start within milliseconds.
    pause = (ts(second_done.attempts[0].started_at) - failed_at).total_seconds()
    # The pause is retry_after from the failure (a few ms of clock between the attempt's end
    # and the completer that sets it); giving back unused starts never shortens it.
    assert pause >= 1.45, f"the next task started {pause:.3f}s after the rate-limited failure"

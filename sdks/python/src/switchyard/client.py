"""The client: submit tasks over REST and follow their events live."""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from ._http import FileData, error_from_response, get_bytes, get_to_path, post_file, upload_name
from ._urls import http_url, ws_url
from .errors import SwitchyardError
from .models import (
    FileInfo,
    FilePage,
    Schedule,
    ScheduleTriggered,
    Step,
    Task,
    is_final_event,
)

Transport = Literal["websocket", "sse"]
WsAuth = Literal["header", "ticket"]
#: What a schedule's tick does while its previous task is unfinished.
ScheduleOverlap = Literal["allow", "skip", "cancel_previous"]
#: What happens to ticks missed while no server ran (a resumed schedule fires none of its pause).
ScheduleCatchup = Literal["none", "latest", "all"]

#: Exceptions after which ``follow`` reconnects and resumes.
_DISCONNECTS: tuple[type[BaseException], ...] = (
    ConnectionClosed,
    WebSocketException,
    OSError,
    httpx.TransportError,
    asyncio.TimeoutError,
)


def _wait_param(wait: float) -> str:
    return f"{max(0, round(wait * 1000))}ms"


class Client:
    """Talks to a Switchyard server with an API key (scopes ``submit``/``read``) or an access
    token. Use it as ``async with Client(url, api_key=...) as client:`` or call
    :meth:`aclose` when done."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        timeout: float = 30.0,
        max_backoff: float = 10.0,
        ws_auth: WsAuth = "header",
    ) -> None:
        self.url = http_url(url)
        self._ws_auth = ws_auth
        self._token = api_key
        self._max_backoff = max_backoff
        headers = {"user-agent": "switchyard-python"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._http = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=timeout)

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        kwargs: dict[str, Any] = {}
        if timeout is not None:
            kwargs["timeout"] = timeout
        if content is not None:  # a JSON body already encoded (e.g. `null`, which json= omits)
            kwargs["content"] = content
            kwargs["headers"] = {"content-type": "application/json"}
        response = await self._http.request(method, path, json=json_body, params=params, **kwargs)
        if response.status_code >= 400:
            raise error_from_response(response)
        if not response.content:
            return None
        return response.json()

    async def submit(
        self,
        agent: str,
        input: Any = None,
        *,
        wait: float | None = None,
        priority: int | None = None,
        delay_ms: int | None = None,
        run_at: str | None = None,
        idempotency_key: str | None = None,
        parent_id: str | None = None,
        concurrency_key: str | None = None,
    ) -> Task:
        """Submits a task. With ``wait`` (seconds), answers when the task finished or the wait
        ran out (then the task is still queued or running). ``concurrency_key`` (1-256 bytes)
        is the task's flow key: tasks of one key share the agent's ``concurrency_per_key`` and
        per-key rate limit, and dispatch takes turns between keys (it overrides the agent's
        ``concurrency_key`` pointer)."""
        body: dict[str, Any] = {"agent": agent, "input": {} if input is None else input}
        for key, value in (
            ("priority", priority),
            ("delay_ms", delay_ms),
            ("run_at", run_at),
            ("idempotency_key", idempotency_key),
            ("parent_id", parent_id),
            ("concurrency_key", concurrency_key),
        ):
            if value is not None:
                body[key] = value
        params = None
        timeout = None
        if wait is not None:
            params = {"wait": _wait_param(wait)}
            timeout = self._http.timeout.read + wait if self._http.timeout.read else None
        data = await self._request(
            "POST", "/api/v1/tasks", json_body=body, params=params, timeout=timeout
        )
        return Task.from_json(data)

    async def submit_batch(
        self,
        agent: str,
        inputs: Sequence[Any],
        *,
        wait: float | None = None,
        priority: int | None = None,
        delay_ms: int | None = None,
        concurrency_key: str | None = None,
    ) -> list[Task]:
        """Submits many tasks of one agent in one transaction: all or none. With ``wait``
        (seconds), answers when every task finished or the wait ran out. ``concurrency_key``
        is the flow key of every task of the batch (per-input keys come from the agent's
        ``concurrency_key`` pointer)."""
        items: list[dict[str, Any]] = []
        for value in inputs:
            item: dict[str, Any] = {"agent": agent, "input": value}
            if priority is not None:
                item["priority"] = priority
            if delay_ms is not None:
                item["delay_ms"] = delay_ms
            if concurrency_key is not None:
                item["concurrency_key"] = concurrency_key
            items.append(item)
        data = await self._request("POST", "/api/v1/tasks/batch", json_body={"tasks": items})
        tasks = [Task.from_json(t) for t in data["items"]]
        if wait is None:
            return tasks
        return list(await asyncio.gather(*(self.wait(t.id, wait) for t in tasks)))

    async def get(self, task_id: str) -> Task:
        return Task.from_json(await self._request("GET", f"/api/v1/tasks/{task_id}"))

    async def steps(self, task_id: str) -> list[Step]:
        """The task's durable steps, in the order they were first recorded."""
        data = await self._request("GET", f"/api/v1/tasks/{task_id}/steps")
        return [Step.from_json(s) for s in data.get("items", []) if isinstance(s, dict)]

    async def cancel(self, task_id: str) -> Task:
        """Cancels a task: a waiting one at once, a running one once its worker stopped it
        (or the server's grace period ended)."""
        return Task.from_json(await self._request("POST", f"/api/v1/tasks/{task_id}/cancel"))

    async def signal(self, task_id: str, name: str, payload: Any = None) -> dict[str, Any]:
        """Sends the signal ``name`` with ``payload`` (any JSON, ``None`` included) to a task
        (``POST /api/v1/tasks/{id}/signals/{name}``). A task waiting for it
        (``ctx.wait_for_signal(name)``) runs again with the payload; otherwise the signal is
        kept until the task waits for it. Returns ``{"task_id", "name", "resumed"}``
        (``resumed``: the task was waiting for it). Raises :class:`SwitchyardError`:
        ``not_found``, ``task_finished`` (409), ``signal_too_large``."""
        data = await self._request(
            "POST",
            f"/api/v1/tasks/{task_id}/signals/{quote(name, safe='')}",
            content=json.dumps(payload, allow_nan=False).encode(),
        )
        result: dict[str, Any] = data if isinstance(data, dict) else {}
        return result

    async def retry(self, task_id: str) -> Task:
        """Runs a failed, dead or cancelled task again."""
        return Task.from_json(await self._request("POST", f"/api/v1/tasks/{task_id}/retry"))

    async def wait(self, task_id: str, timeout: float) -> Task:
        """Waits up to ``timeout`` seconds for the task to finish; returns it either way."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pause = 0.05
        while True:
            task = await self.get(task_id)
            left = deadline - loop.time()
            if task.done or left <= 0:
                return task
            await asyncio.sleep(min(pause, left))
            pause = min(pause * 2, 0.5)

    async def create_schedule(
        self,
        name: str,
        agent: str,
        cron: str,
        *,
        input: Any = None,
        timezone: str | None = None,
        overlap: ScheduleOverlap | None = None,
        catchup: ScheduleCatchup | None = None,
        paused: bool | None = None,
    ) -> Schedule:
        """Creates a schedule (``POST /api/v1/schedules``): every tick of ``cron`` (5 fields,
        or 6 with seconds first: ``*/2 * * * * *``) in ``timezone`` (IANA, default ``UTC``)
        submits a task of ``agent`` with ``input`` (default ``{}``). ``overlap`` (default
        ``allow``), ``catchup`` (default ``none``) and ``paused`` (default ``False``) are
        left to the server when ``None``. Needs the ``ManageAgents`` permission (an admin).
        Raises :class:`SwitchyardError`: ``invalid_schedule`` (422: a bad name, cron or time
        zone; the message names it), ``unknown_agent`` (422), ``schedule_exists`` (409),
        ``forbidden`` (403)."""
        body = _schedule_body(agent, cron, input, timezone, overlap, catchup, paused)
        body["name"] = name
        return Schedule.from_json(await self._request("POST", "/api/v1/schedules", json_body=body))

    async def list_schedules(self) -> list[Schedule]:
        """Every schedule, by name (``GET /api/v1/schedules``)."""
        data = await self._request("GET", "/api/v1/schedules")
        return [Schedule.from_json(s) for s in data.get("items", []) if isinstance(s, dict)]

    async def get_schedule(self, name: str) -> Schedule:
        """One schedule, with its next 5 fire times and its latest tasks. Raises
        :class:`SwitchyardError` ``schedule_not_found`` (404)."""
        return Schedule.from_json(await self._request("GET", _schedule_path(name)))

    async def update_schedule(
        self,
        name: str,
        agent: str,
        cron: str,
        *,
        input: Any = None,
        timezone: str | None = None,
        overlap: ScheduleOverlap | None = None,
        catchup: ScheduleCatchup | None = None,
        paused: bool | None = None,
    ) -> Schedule:
        """Replaces a schedule (``PUT /api/v1/schedules/{name}``): like :meth:`create_schedule`,
        a field left ``None`` takes the server's default, not its stored value. The caller
        becomes the schedule's owner. Raises ``schedule_not_found`` (404) and what
        :meth:`create_schedule` raises."""
        body = _schedule_body(agent, cron, input, timezone, overlap, catchup, paused)
        data = await self._request("PUT", _schedule_path(name), json_body=body)
        return Schedule.from_json(data)

    async def pause_schedule(self, name: str) -> Schedule:
        """Pauses a schedule: no more ticks until :meth:`resume_schedule` (``trigger_schedule``
        still runs it). Reads the schedule and replaces it with ``paused`` set; a schedule
        already paused is returned as it is."""
        return await self._set_paused(name, True)

    async def resume_schedule(self, name: str) -> Schedule:
        """Resumes a paused schedule from its next tick (the ticks of the pause never fire).
        Reads the schedule and replaces it with ``paused`` cleared; a schedule that is not
        paused is returned as it is."""
        return await self._set_paused(name, False)

    async def _set_paused(self, name: str, paused: bool) -> Schedule:
        current = await self.get_schedule(name)
        if current.paused == paused:
            return current
        body = _schedule_body(
            current.agent,
            current.cron,
            current.input,
            current.timezone,
            current.overlap,
            current.catchup,
            paused,
        )
        data = await self._request("PUT", _schedule_path(name), json_body=body)
        return Schedule.from_json(data)

    async def delete_schedule(self, name: str) -> None:
        """Deletes a schedule; the tasks it fired stay. Raises ``schedule_not_found`` (404)."""
        await self._request("DELETE", _schedule_path(name))

    async def trigger_schedule(self, name: str) -> ScheduleTriggered:
        """Submits the schedule's task now, outside its timetable (a paused schedule too).
        The task carries ``schedule`` and ``scheduled_for`` like a fired one."""
        data = await self._request("POST", f"{_schedule_path(name)}/trigger")
        return ScheduleTriggered.from_json(data)

    async def preview_schedule(self, cron: str, timezone: str | None = None) -> list[str]:
        """The next 5 fire times (RFC 3339) of ``cron`` in ``timezone`` (default ``UTC``),
        without creating anything. Raises ``invalid_schedule`` (422) for a bad expression or
        time zone."""
        params = {"cron": cron}
        if timezone is not None:
            params["timezone"] = timezone
        data = await self._request("GET", "/api/v1/schedules/preview", params=params)
        return [str(t) for t in data.get("next_runs", [])]

    async def upload_file(
        self, data: FileData, name: str | None = None, content_type: str | None = None
    ) -> FileInfo:
        """Stores a file (``POST /api/v1/files``) and returns it. ``data`` is the bytes, or the
        path of a file (``str`` or ``os.PathLike``), streamed from disk in chunks, never read
        whole. ``name`` defaults to a path's file name (bytes need one); ``content_type``
        left ``None`` is guessed by the server from the name. Reference the file in a task's
        input as ``{"$file": info.id}`` (``info.ref``). Needs the ``submit`` scope. Raises
        :class:`SwitchyardError`: ``file_too_large`` or ``quota_exceeded`` (413),
        ``invalid_file`` (422)."""
        params = {"name": upload_name(data, name)}
        body = await post_file(
            self._http, "/api/v1/files", data, content_type=content_type, params=params
        )
        return FileInfo.from_json(body)

    async def get_file(self, file_id: str) -> FileInfo:
        """A file's metadata. Raises :class:`SwitchyardError` ``file_not_found`` (404) for an
        unknown file or someone else's."""
        return FileInfo.from_json(await self._request("GET", _file_path(file_id)))

    async def list_files(
        self,
        task: str | None = None,
        owner: str | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> FilePage:
        """Files the caller may read, newest first (``GET /api/v1/files``): those of the task
        ``task`` (its artifacts) or of the user ``owner`` only if given; ``limit`` per page,
        the next page from ``cursor=page.next_cursor``."""
        params: dict[str, str] = {}
        for key, value in (("task", task), ("owner", owner), ("cursor", cursor)):
            if value is not None:
                params[key] = value
        if limit is not None:
            params["limit"] = str(int(limit))
        data = await self._request("GET", "/api/v1/files", params=params or None)
        return FilePage.from_json(data)

    async def download_file(self, file_id: str) -> bytes:
        """A file's content, whole in memory (:meth:`download_file_to` streams it to disk).
        Raises ``file_not_found`` (404)."""
        return await get_bytes(self._http, f"{_file_path(file_id)}/content")

    async def download_file_to(self, file_id: str, path: str | os.PathLike[str]) -> None:
        """Streams a file's content into ``path`` (created or replaced) chunk by chunk. An
        error raises :class:`SwitchyardError` (``file_not_found``, 404) before ``path`` is
        touched; a download that breaks off removes the partial file."""
        await get_to_path(self._http, f"{_file_path(file_id)}/content", path)

    async def delete_file(self, file_id: str) -> None:
        """Deletes a file (its owner or an admin). Raises ``file_not_found`` (404)."""
        await self._request("DELETE", _file_path(file_id))

    async def task_artifacts(self, task_id: str) -> list[FileInfo]:
        """The files the task's agent uploaded (``ctx.upload``), each with its ``task_id``."""
        data = await self._request("GET", f"/api/v1/tasks/{quote(task_id, safe='')}/artifacts")
        return [FileInfo.from_json(f) for f in data.get("items", []) if isinstance(f, dict)]

    async def ws_ticket(self) -> str:
        """A single-use ticket (valid 30 s) for ``/api/v1/ws?ticket=…``, for code that cannot
        set headers."""
        data = await self._request("POST", "/api/v1/auth/ws-ticket")
        return str(data["ticket"])

    async def follow(
        self,
        task_id: str,
        *,
        since: int | None = None,
        transport: Transport = "websocket",
    ) -> AsyncIterator[dict[str, Any]]:
        """Yields the task's events (``{"kind", "seq", …}``) until its final event. Without
        ``since`` the first event is the task's current state; with it, every event after that
        sequence number. A dropped connection is resumed after the last ``seq`` seen: no event
        is lost or repeated."""
        last_seq = since
        backoff = 0.1
        while True:
            source = (
                self._follow_ws(task_id, last_seq)
                if transport == "websocket"
                else self._follow_sse(task_id, last_seq)
            )
            try:
                async for event in source:
                    seq = event.get("seq")
                    if isinstance(seq, int):
                        if last_seq is not None and seq <= last_seq:
                            continue
                        last_seq = seq
                    backoff = 0.1
                    yield event
                    if is_final_event(event):
                        return
                # The server ended the stream without a final event: resume.
            except _DISCONNECTS:
                pass
            finally:
                await source.aclose()
            await asyncio.sleep(max(0.05, random.uniform(0, backoff)))
            backoff = min(backoff * 2, self._max_backoff)

    async def _follow_ws(
        self, task_id: str, since: int | None
    ) -> AsyncGenerator[dict[str, Any], None]:
        headers: dict[str, str] = {}
        address = ws_url(self.url, "/api/v1/ws")
        if self._ws_auth == "ticket":
            # A fresh single-use ticket per connection, resumptions included.
            address += f"?ticket={await self.ws_ticket()}"
        elif self._token:
            headers["authorization"] = f"Bearer {self._token}"
        try:
            socket = await ws_connect(
                address,
                additional_headers=headers,
                max_size=2**20 * 2,
                open_timeout=15,
            )
        except InvalidStatus as e:
            status = e.response.status_code
            if status in (401, 403):
                body = e.response.body.decode("utf-8", "replace") if e.response.body else ""
                raise _error_from_body(body, status) from None
            raise
        async with socket:
            subscribe: dict[str, Any] = {"type": "subscribe", "task_id": task_id}
            if since is not None:
                subscribe["since"] = since
            await socket.send(json.dumps(subscribe))
            async for raw in socket:
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "event" and message.get("task_id") == task_id:
                    yield message
                elif kind == "error":
                    code = str(message.get("code", "error"))
                    if code == "slow_consumer":
                        return
                    raise SwitchyardError(code, str(message.get("message", "")))

    async def _follow_sse(
        self, task_id: str, since: int | None
    ) -> AsyncGenerator[dict[str, Any], None]:
        headers = {"accept": "text/event-stream"}
        if since is not None:
            headers["last-event-id"] = str(since)
        timeout = httpx.Timeout(self._http.timeout.connect, read=90.0)
        async with self._http.stream(
            "GET", f"/api/v1/tasks/{task_id}/events", headers=headers, timeout=timeout
        ) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_from_response(response)
            data: list[str] = []
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        message = json.loads("\n".join(data))
                        data = []
                        if isinstance(message, dict) and message.get("type", "event") == "event":
                            yield message
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))


def _file_path(file_id: str) -> str:
    return f"/api/v1/files/{quote(file_id, safe='')}"


def _schedule_path(name: str) -> str:
    return f"/api/v1/schedules/{quote(name, safe='')}"


def _schedule_body(
    agent: str,
    cron: str,
    input: Any,
    timezone: str | None,
    overlap: str | None,
    catchup: str | None,
    paused: bool | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"agent": agent, "cron": cron}
    for key, value in (
        ("input", input),
        ("timezone", timezone),
        ("overlap", overlap),
        ("catchup", catchup),
        ("paused", paused),
    ):
        if value is not None:
            body[key] = value
    return body


def _error_from_body(body: str, status: int) -> SwitchyardError:
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        return SwitchyardError(
            str(error.get("code", "unauthorized")),
            str(error.get("message", "")),
            status=status,
            details=error.get("details"),
        )
    return SwitchyardError(
        "unauthorized" if status == 401 else "forbidden",
        body or "the server refused the credential",
        status=status,
    )

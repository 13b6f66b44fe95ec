"""The worker: serve agents over the worker WebSocket (``/api/v1/workers/ws``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import logging
import math
import os
import random
import signal
import socket as _socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, TypedDict, TypeVar, overload
from urllib.parse import quote

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from . import __version__
from ._http import FileData, get_bytes, get_to_path, post_file, upload_name
from ._urls import http_url, ws_url
from .errors import (
    ChildFailure,
    ChildTaskFailed,
    PermanentError,
    TaskError,
    UnknownFileError,
    WaitTimeout,
    WorkerRefusedError,
)
from .models import InputFile

log = logging.getLogger("switchyard.worker")

orjson: Any
try:  # An optional speed-up (`pip install "./sdks/python[fast]"`); the standard library otherwise.
    import orjson  # type: ignore[no-redef, import-not-found, unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    orjson = None


def _dumps(message: dict[str, Any]) -> str:
    if orjson is not None:
        try:
            return str(orjson.dumps(message).decode())
        except TypeError:
            pass  # what orjson refuses (e.g. non-string keys) the standard library may take
    return json.dumps(message)


def _loads(raw: str | bytes) -> Any:
    if orjson is not None:
        return orjson.loads(raw)
    return json.loads(raw)


HANDSHAKE_TIMEOUT = 15.0
#: The largest message the worker accepts from the server (an ``assign`` carries the results of
#: the task's earlier steps).
MAX_MESSAGE_BYTES = 16 * 2**20
#: How long a draining worker waits for the server to acknowledge its last outcomes.
ACK_WAIT = 10.0
_OUTCOMES = frozenset({"result", "error", "cancelled"})
#: Server errors at hello that are worth another try; any other refusal is final.
_TRANSIENT_CODES = frozenset({"internal", "unavailable", "rate_limited"})

#: ``(ctx, input) -> output``: an ``async def`` or a plain ``def`` (run in a thread pool).
Handler = Callable[["TaskContext", Any], Any]
H = TypeVar("H", bound=Handler)
T = TypeVar("T")
#: Waiters for the server's answer about a step (``step_recorded``, ``wait_result``,
#: ``spawned``), by (task id, attempt, step name).
_StepKey = tuple[str, int, str]
#: The server's answers about a step, a wait and a spawn.
_STEP_ANSWERS = frozenset({"step_recorded", "wait_result", "spawned"})


class Sent:
    """What the context's reporting methods return: already queued, so awaiting it is
    optional (``await ctx.log(...)`` in async handlers, ``ctx.log(...)`` in plain ``def`` ones)."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        return
        yield  # pragma: no cover


_SENT = Sent()


class _Lost(Exception):
    """The connection broke; reconnect."""


class _Suspended(BaseException):
    """The run ended in a durable wait: the server has ended the attempt and freed its slot.
    Raised in the handler to unwind it; a ``BaseException``, so that ``except Exception`` in a
    handler lets it through. The worker sends nothing more for the attempt."""


class TaskContext:
    """What a handler can see and do while it runs one attempt."""

    def __init__(
        self,
        *,
        task_id: str,
        attempt: int,
        agent: str,
        traceparent: str | None,
        parent_id: str | None,
        timeout: float,
        session: _Session,
        steps: dict[str, Any] | None = None,
        files: dict[str, InputFile] | None = None,
        upload_url: str | None = None,
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.agent = agent
        #: W3C trace context of the task (``00-<trace id>-<span id>-01``), if any.
        self.traceparent = traceparent
        self.parent_id = parent_id
        #: The attempt's time budget in seconds.
        self.timeout = timeout
        #: Set when the server cancels this attempt, it times out, or the worker loses its
        #: connection.
        self.cancel_event = asyncio.Event()
        # A plain flag: a bool is read and written atomically, from any thread.
        self._cancelled = False
        self._session = session
        #: Results of the task's steps: those of earlier runs (from `assign`), then this run's.
        self._steps: dict[str, Any] = dict(steps) if steps else {}
        #: Steps of this run being run now, by name: done when the run ends (event loop only).
        self._steps_running: dict[str, asyncio.Future[None]] = {}
        #: The run ended in a durable wait: nothing more is sent for this attempt.
        self._suspended = False
        #: This run's key-less spawns and joins so far: their step names count them.
        self._spawns = 0
        self._joins = 0
        #: The files referenced in the input (from `assign`), by id, and where artifacts go.
        self._files: dict[str, InputFile] = files if files is not None else {}
        self._upload_url = upload_url

    @property
    def cancelled(self) -> bool:
        """Whether the attempt should stop (readable from any thread)."""
        return self._cancelled

    @property
    def trace_id(self) -> str | None:
        if not self.traceparent:
            return None
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) > 1 else None

    def _cancel(self) -> None:
        self._cancelled = True
        self.cancel_event.set()

    @property
    def files(self) -> Mapping[str, InputFile]:
        """The files referenced in the task's input as ``{"$file": id}``, by id
        (:class:`InputFile`: ``name``, ``size``, ``content_type``, ``sha256``, ``url``); empty
        when the input references none. Read them with :meth:`download` or
        :meth:`download_to`."""
        return MappingProxyType(self._files)

    def upload(
        self, name: str, data: FileData, content_type: str | None = None
    ) -> Coroutine[Any, Any, str]:
        """Stores an artifact of this task: ``await ctx.upload(name, data, content_type=None)``
        returns the new file's id (put ``{"$file": id}`` in the output to point at it).
        ``data`` is the bytes, or the path of a file (``str`` or ``os.PathLike``), streamed
        from disk in chunks, never read whole. ``content_type`` left ``None`` is guessed by
        the server from ``name``. The file belongs to the task's owner and is listed by
        ``client.task_artifacts(task_id)``. Works while this attempt runs: afterwards the
        server answers ``lease_lost`` (409). Raises :class:`SwitchyardError` with the server's
        code (``file_too_large``, ``quota_exceeded``, ``invalid_file``, ``invalid_signature``
        once the upload URL expired, …). A plain ``def`` handler calls :meth:`upload_sync`."""
        upload_name(data, name)
        self._async_only("upload", "upload_sync")
        return self._upload(name, data, content_type)

    def upload_sync(self, name: str, data: FileData, content_type: str | None = None) -> str:
        """:meth:`upload` for a plain ``def`` handler: blocks its thread until stored."""
        upload_name(data, name)
        self._thread_only("upload_sync", "upload")
        return self._blocking(self._upload(name, data, content_type))

    def download(self, file_id: str) -> Coroutine[Any, Any, bytes]:
        """``await ctx.download(file_id)``: the content of an input file (one of
        :attr:`files`), whole in memory (:meth:`download_to` streams it to disk). A file the
        input does not reference raises :class:`UnknownFileError` (a ``KeyError``); an error
        answer raises :class:`SwitchyardError` (``invalid_signature``, 403, once the URL
        expired). A plain ``def`` handler calls :meth:`download_sync`."""
        file = self._input_file(file_id)
        self._async_only("download", "download_sync")
        return self._download(file)

    def download_sync(self, file_id: str) -> bytes:
        """:meth:`download` for a plain ``def`` handler: blocks its thread."""
        file = self._input_file(file_id)
        self._thread_only("download_sync", "download")
        return self._blocking(self._download(file))

    def download_to(self, file_id: str, path: str | os.PathLike[str]) -> Coroutine[Any, Any, None]:
        """``await ctx.download_to(file_id, path)``: streams an input file's content into
        ``path`` (created or replaced) chunk by chunk; a download that breaks off removes the
        partial file. Raises like :meth:`download`. A plain ``def`` handler calls
        :meth:`download_to_sync`."""
        file = self._input_file(file_id)
        self._async_only("download_to", "download_to_sync")
        return self._download_to(file, path)

    def download_to_sync(self, file_id: str, path: str | os.PathLike[str]) -> None:
        """:meth:`download_to` for a plain ``def`` handler: blocks its thread."""
        file = self._input_file(file_id)
        self._thread_only("download_to_sync", "download_to")
        self._blocking(self._download_to(file, path))

    def _input_file(self, file_id: str) -> InputFile:
        file = self._files.get(file_id) if isinstance(file_id, str) else None
        if file is None:
            raise UnknownFileError(str(file_id))
        return file

    def _async_only(self, what: str, instead: str) -> None:
        if not self._on_loop():
            raise RuntimeError(
                f"ctx.{what} is awaited in an async handler; a plain def handler, which runs "
                f"in a thread, calls ctx.{instead}(...)"
            )

    def _thread_only(self, what: str, instead: str) -> None:
        if self._on_loop():
            raise RuntimeError(
                f"ctx.{what} blocks: it is for plain def handlers, which run in a thread; an "
                f"async handler awaits ctx.{instead}(...)"
            )

    async def _upload(self, name: str, data: FileData, content_type: str | None) -> str:
        if self._upload_url is None:
            raise RuntimeError(
                "the server sent no upload_url with this task: it does not store files"
            )
        files = self._session.files
        url = files.url(self._upload_url)
        url += ("&" if "?" in url else "?") + "name=" + quote(name, safe="")
        stored = await post_file(files.client(), url, data, content_type=content_type)
        return str(stored["id"])

    async def _download(self, file: InputFile) -> bytes:
        return await get_bytes(self._session.files.client(), file.url)

    async def _download_to(self, file: InputFile, path: str | os.PathLike[str]) -> None:
        await get_to_path(self._session.files.client(), file.url, path)

    def _send(self, message: dict[str, Any]) -> Sent:
        if self._suspended:
            return _SENT  # the attempt is over: the server would refuse it
        message["task_id"] = self.task_id
        message["attempt"] = self.attempt
        self._session.enqueue(message)
        return _SENT

    def log(self, level: str, message: str) -> Sent:
        """A log line (``debug``, ``info``, ``warn`` or ``error``), stored with the task."""
        if level == "warning":
            level = "warn"
        return self._send({"type": "log", "level": level, "message": str(message)})

    def progress(self, progress: float | None = None, message: str | None = None) -> Sent:
        """Progress: a fraction in [0, 1] and/or a message."""
        body: dict[str, Any] = {"type": "progress"}
        if progress is not None:
            body["progress"] = float(progress)
        if message is not None:
            body["message"] = message
        return self._send(body)

    def partial(self, data: Any) -> Sent:
        """A piece of output before the result (e.g. LLM tokens)."""
        return self._send({"type": "partial", "data": data})

    @overload
    def step(self, name: str, fn: Callable[[], Awaitable[T]]) -> Coroutine[Any, Any, T]: ...

    @overload
    def step(self, name: str, fn: Callable[[], T]) -> Coroutine[Any, Any, T]: ...

    def step(self, name: str, fn: Callable[[], Any]) -> Coroutine[Any, Any, Any]:
        """A durable step: ``await ctx.step(name, fn)`` runs ``fn()`` (a plain function, or one
        that returns an awaitable, e.g. an ``async def``) once per task and returns its result.

        The result, which must be JSON, is stored on the server before this returns; every later
        run of the task (a retry, after a lost worker) gets it back without running ``fn``, as
        does a second call with the same name in this run. What is returned is the result as
        JSON gives it back (a tuple comes back as a list), the same on every run.

        If ``fn`` raises, the failure is recorded on the step and the exception is re-raised
        unchanged. A result that is not JSON raises :class:`PermanentError`
        (``invalid_step_output``); a step the server refuses raises :class:`PermanentError` with
        the server's code (``step_output_too_large``, ``too_many_steps``, ``invalid_step``); if the
        attempt lost its lease or the connection, it raises :class:`asyncio.CancelledError`, as
        does a step that would run once ``ctx.cancelled`` is set (``fn`` does not run).

        For async handlers, on the worker's event loop; a plain ``def`` handler (in a thread)
        calls :meth:`step_sync`.
        """
        if not isinstance(name, str):
            raise TypeError(f"a step name is a str, not {type(name).__name__}")
        if not self._on_loop():
            raise RuntimeError(
                "ctx.step is awaited in an async handler; a plain def handler, which runs in a "
                "thread, calls ctx.step_sync(name, fn)"
            )
        return self._step(name, fn)

    @overload
    def step_sync(self, name: str, fn: Callable[[], Awaitable[T]]) -> T: ...

    @overload
    def step_sync(self, name: str, fn: Callable[[], T]) -> T: ...

    def step_sync(self, name: str, fn: Callable[[], Any]) -> Any:
        """:meth:`step` for a plain ``def`` handler: runs ``fn`` in the calling thread (an
        awaitable it returns is awaited on the worker's event loop) and blocks until the server
        stored the result. Not for the event loop's thread: there, ``await ctx.step(...)``."""
        if not isinstance(name, str):
            raise TypeError(f"a step name is a str, not {type(name).__name__}")
        if self._on_loop():
            raise RuntimeError(
                "ctx.step_sync blocks: it is for plain def handlers, which run in a thread; "
                "an async handler awaits ctx.step(name, fn)"
            )
        if name in self._steps:
            return self._steps[name]
        if not self._blocking(self._claim_step(name)):
            return self._steps[name]
        try:
            self._raise_if_cancelled()
            started = time.monotonic()
            try:
                output = fn()
                if inspect.isawaitable(output):
                    output = self._blocking(_awaited(output))
            except Exception as error:
                self._blocking(self._record_step(name, started, error=error))
                raise
            stored = _step_output(name, output)
            return self._blocking(self._record_step(name, started, output=stored))
        finally:
            with contextlib.suppress(RuntimeError):  # the event loop is gone: nothing waits
                self._session.loop.call_soon_threadsafe(self._release_step, name)

    async def _step(self, name: str, fn: Callable[[], Any]) -> Any:
        if name in self._steps:
            return self._steps[name]
        if not await self._claim_step(name):
            return self._steps[name]
        try:
            self._raise_if_cancelled()
            started = time.monotonic()
            try:
                output = fn()
                if inspect.isawaitable(output):
                    output = await output
            except Exception as error:
                await self._record_step(name, started, error=error)
                raise
            stored = _step_output(name, output)
            return await self._record_step(name, started, output=stored)
        finally:
            self._release_step(name)

    def sleep(self, name: str, seconds: float) -> Coroutine[Any, Any, None]:
        """A durable sleep: ``await ctx.sleep(name, seconds)`` ends this run and frees the
        worker's slot; the task shows ``waiting`` and runs again once ``seconds`` have passed
        (measured by the server), when the same call returns ``None`` at once. ``name`` is the
        wait's step name, unique within the task like a step's."""
        return self._wait(
            "sleep", name, {"kind": "sleep", "duration_ms": _millis(seconds, "seconds")}
        )

    def sleep_until(self, name: str, when: datetime | float) -> Coroutine[Any, Any, None]:
        """:meth:`sleep` until ``when``: a ``datetime`` (one without a time zone is taken as
        UTC) or seconds since the Unix epoch. A time already past returns at once."""
        if isinstance(when, datetime):
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            epoch = when.timestamp()
        else:
            epoch = when
        return self._wait("sleep_until", name, {"kind": "sleep", "until": _millis(epoch, "when")})

    def wait_for_signal(self, name: str, timeout: float | None = None) -> Coroutine[Any, Any, Any]:
        """Waits for the signal ``name`` (``client.signal(task_id, name, payload)``, or
        ``POST /api/v1/tasks/{id}/signals/{name}``) and returns its payload. A signal sent
        before the wait is kept for it, so this returns at once; otherwise the run ends and the
        task runs again when the signal comes. With ``timeout`` (seconds), a signal that has
        not come by then raises :class:`WaitTimeout` (in the next run), which the handler may
        catch. The step name is ``signal:{name}``."""
        if not isinstance(name, str):
            raise TypeError(f"a signal name is a str, not {type(name).__name__}")
        message: dict[str, Any] = {"kind": "signal", "signal": name}
        if timeout is not None:
            message["timeout_ms"] = _millis(timeout, "timeout")
        return self._wait("wait_for_signal", f"signal:{name}", message)

    def spawn(
        self, agent: str, input: Any, key: str | None = None, priority: int | None = None
    ) -> Coroutine[Any, Any, str]:
        """Creates a child task of ``agent`` with ``input`` (its ``parent_id`` is this task)
        and returns its id. Once per task: a later run that spawns under the same step name
        gets the same child. The name is ``spawn:{key}``, or without ``key``
        ``spawn:#{n}``, ``n`` counting this run's key-less spawns from 1 (so a handler that
        spawns in the same order on every run meets its children again)."""
        if key is not None and not isinstance(key, str):
            raise TypeError(f"a spawn key is a str, not {type(key).__name__}")
        if key is None:
            self._spawns += 1
            name = f"spawn:#{self._spawns}"
        else:
            name = f"spawn:{key}"
        message: dict[str, Any] = {
            "type": "spawn",
            "agent": agent,
            "input": _as_json(input, f"the input of spawn {name!r}", "invalid_input"),
        }
        if priority is not None:
            message["priority"] = int(priority)
        return self._wait("spawn", name, message)

    def join(
        self, ids: Iterable[str], raise_on_failure: bool = False
    ) -> Coroutine[Any, Any, list[Any]]:
        """Waits until every child task in ``ids`` (from :meth:`spawn`, or submitted with this
        task as ``parent_id``) has finished, and returns, in the same order, each one's output,
        or a :class:`ChildFailure` for one that failed, died or was cancelled. With
        ``raise_on_failure``, the first such child raises :class:`ChildTaskFailed` instead.
        Unless they have all finished already, the run ends and the task runs again when they
        have. The step name is ``join:#{n}``, ``n`` counting this run's joins from 1."""
        children = list(ids)
        if not all(isinstance(child, str) for child in children):
            raise TypeError("ctx.join takes task ids (str), as ctx.spawn returns them")
        for child in children:
            try:
                uuid.UUID(child)
            except ValueError:
                raise PermanentError(
                    f"ctx.join: {child!r} is not a task id", code="invalid_wait"
                ) from None
        self._joins += 1
        name = f"join:#{self._joins}"
        if not children:
            self._check_on_loop("join")
            return _nothing()
        joined = self._wait("join", name, {"kind": "children", "children": children})
        return _joined(joined, raise_on_failure)

    def _wait(self, what: str, name: str, message: dict[str, Any]) -> Coroutine[Any, Any, Any]:
        """A step the server completes (a wait, a spawn): ``message`` without its name."""
        if not isinstance(name, str):
            raise TypeError(f"a step name is a str, not {type(name).__name__}")
        self._check_on_loop(what)
        message.setdefault("type", "wait")
        message["name"] = name
        return self._server_step(name, message)

    def _check_on_loop(self, what: str) -> None:
        if not self._on_loop():
            raise RuntimeError(
                f"ctx.{what} is awaited in an async handler, on the worker's event loop (a plain "
                "def handler, which runs in a thread, cannot wait durably)"
            )

    async def _server_step(self, name: str, message: dict[str, Any]) -> Any:
        """Runs a wait or a spawn: its result from an earlier run, or the server's answer."""
        if name in self._steps:
            return self._steps[name]
        if not await self._claim_step(name):
            return self._steps[name]
        try:
            self._raise_if_cancelled()
            answer = await self._ask(message)
            if answer.get("type") == "spawned":
                output = answer.get("child_id")
                if answer.get("accepted") is not True or not isinstance(output, str):
                    raise self._refused(name, answer)
            else:
                status = answer.get("status")
                if status == "suspended":
                    self._suspend()
                    raise _Suspended(name)
                if status == "timed_out":
                    raise WaitTimeout(str(message.get("signal", name)))
                if status != "ready":
                    raise self._refused(name, answer)
                output = answer.get("output")
            self._steps[name] = output
            return output
        finally:
            self._release_step(name)

    def _suspend(self) -> None:
        """The server ended this run in a wait: the slot is free at once, and nothing more is
        sent for the attempt (the handler unwinds with :class:`_Suspended`)."""
        if self._suspended:
            return
        self._suspended = True
        self._cancel()
        self._session.end_run(self)

    def _raise_if_cancelled(self) -> None:
        """A step that would run once the attempt is cancelled, timed out, lost its connection
        or ended in a wait does not start: its result could not be used."""
        if self._suspended:
            raise _Suspended("the run ended in a wait")
        if self._cancelled:
            raise asyncio.CancelledError("the attempt was cancelled")

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._session.loop
        except RuntimeError:
            return False

    def _blocking(self, work: Coroutine[Any, Any, T]) -> T:
        """Runs ``work`` on the worker's event loop and waits for it (from a handler's thread)."""
        try:
            future = asyncio.run_coroutine_threadsafe(work, self._session.loop)
        except RuntimeError:  # the event loop is closed: the worker is gone
            work.close()
            raise asyncio.CancelledError("the worker stopped") from None
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise asyncio.CancelledError() from None

    async def _claim_step(self, name: str) -> bool:
        """Whether the caller is to run step ``name``: not if it has a result, and only once
        another run of it in this attempt (a concurrent call with the same name) ended."""
        while name not in self._steps:
            running = self._steps_running.get(name)
            if running is None:
                self._steps_running[name] = self._session.loop.create_future()
                return True
            await asyncio.shield(running)
        return False

    def _release_step(self, name: str) -> None:
        running = self._steps_running.pop(name, None)
        if running is not None and not running.done():
            running.set_result(None)

    async def _record_step(
        self,
        name: str,
        started: float,
        *,
        output: Any = None,
        error: Exception | None = None,
    ) -> Any:
        """Sends the step's outcome and waits for the server's ``step_recorded``; returns the
        output once stored, raises if the server refused it."""
        message: dict[str, Any] = {
            "type": "step",
            "name": name,
            "duration_ms": max(0, round((time.monotonic() - started) * 1000)),
        }
        if error is None:
            message["output"] = output
        else:
            message["error"] = _step_error(error)
        answer = await self._ask(message)
        if answer.get("accepted") is False:
            raise self._refused(name, answer) from error
        if error is None:
            self._steps[name] = output
        return output

    async def _ask(self, message: dict[str, Any]) -> dict[str, Any]:
        """Sends a message about the step ``message["name"]`` (``step``, ``wait``, ``spawn``)
        and waits for the server's answer (``step_recorded``, ``wait_result``, ``spawned``)."""
        if self._suspended:
            raise _Suspended("the run ended in a wait")
        session = self._session
        if session.closed:
            self._cancel()
            raise asyncio.CancelledError("the connection was lost")
        key: _StepKey = (self.task_id, self.attempt, message["name"])
        waiter: asyncio.Future[dict[str, Any]] = session.loop.create_future()
        session.step_waiters[key] = waiter
        try:
            self._send(message)
            return await waiter
        except asyncio.CancelledError:
            if self._suspended:  # another wait of this run ended it
                raise _Suspended("the run ended in a wait") from None
            raise
        finally:
            if session.step_waiters.get(key) is waiter:
                del session.step_waiters[key]

    def _refused(self, name: str, answer: dict[str, Any]) -> BaseException:
        """The server refused step ``name``: a permanent error with its code; ``lease_lost``
        (the attempt is no longer this worker's) as a cancellation."""
        code = str(answer.get("code") or "step_refused")
        reason = str(answer.get("message") or f"the server refused step {name!r}")
        if code == "lease_lost":
            self._cancel()
            return asyncio.CancelledError(reason)
        return PermanentError(reason, code=code)


class RetryPolicy(TypedDict, total=False):
    """An agent's retry policy, declared with its worker's ``hello``. It replaces the policy
    the agent has on the server; each field left out takes the server default (5 attempts,
    200 ms base, 30 s cap). Attempts count the first one; the backoff after the n-th failure
    is a random delay up to ``min(cap_ms, base_ms * 2**(n-1))``."""

    max_attempts: int
    base_ms: int
    cap_ms: int


@dataclass
class AgentSpec:
    name: str
    handler: Handler
    version: str = "1"
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    timeout: float | None = None
    retry: RetryPolicy | None = None

    def __post_init__(self) -> None:
        if self.retry is not None:
            unknown = set(self.retry) - set(RetryPolicy.__annotations__)
            if unknown:
                raise ValueError(
                    f"agent {self.name!r}: unknown retry field(s) {sorted(unknown)}; "
                    "the fields are max_attempts, base_ms and cap_ms"
                )

    def declaration(self) -> dict[str, Any]:
        decl: dict[str, Any] = {"name": self.name, "version": self.version}
        if self.description is not None:
            decl["description"] = self.description
        if self.input_schema is not None:
            decl["input_schema"] = self.input_schema
        if self.output_schema is not None:
            decl["output_schema"] = self.output_schema
        if self.timeout is not None:
            decl["timeout_ms"] = max(1, round(self.timeout * 1000))
        if self.retry is not None:
            decl["retry"] = dict(self.retry)
        return decl


def _default_name() -> str:
    return f"{_socket.gethostname() or 'worker'}-{os.getpid()}"


class _Running:
    """One attempt this connection runs: its context, its handler's task, its deadline."""

    __slots__ = ("ctx", "reported", "task", "timed_out", "timer")

    def __init__(self, ctx: TaskContext) -> None:
        self.ctx = ctx
        self.task: asyncio.Future[Any] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timed_out = False
        #: The attempt's outcome was queued (or the connection is gone): nothing more to send.
        self.reported = False


class _FileHttp:
    """The worker's HTTP client for input files and artifacts. Their URLs are signed, so it
    sends no credential; made on first use, closed when :meth:`Worker.run` returns."""

    def __init__(self, base: str) -> None:
        self.base = base
        self._client: httpx.AsyncClient | None = None

    def url(self, path: str) -> str:
        """A URL of the server's (a path such as ``/api/v1/files/…``) made absolute against
        the HTTP base URL the worker connects to."""
        if path.startswith(("http://", "https://")):
            return path
        return self.base + (path if path.startswith("/") else "/" + path)

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers={"user-agent": f"switchyard-sdk-python/{__version__}"},
                timeout=httpx.Timeout(60.0, connect=15.0),
            )
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class _Session:
    """One connection's state. Outgoing messages queue in ``outbox``; one sender task writes
    them, as many as are waiting at a time."""

    def __init__(self, socket: ClientConnection, files: _FileHttp) -> None:
        self.socket = socket
        self.loop = asyncio.get_running_loop()
        #: HTTP for input files and artifacts (signed URLs).
        self.files = files
        self.outbox: list[dict[str, Any]] = []
        self.wakeup = asyncio.Event()
        #: Set whenever something a draining worker waits for changes (an attempt ended, an
        #: ack or `draining` arrived, the outbox was written).
        self.changed = asyncio.Event()
        self.sending = False
        self.running: dict[str, _Running] = {}
        #: Outcomes (result, error, cancelled) sent and not yet acknowledged: (task id, attempt).
        self.unacked: set[tuple[str, int]] = set()
        #: The server answered `drain` with `draining`: every assignment it made came before.
        self.drain_confirmed = False
        self.closed = False
        #: Steps, waits and spawns sent and waiting for the server's answer.
        self.step_waiters: dict[_StepKey, asyncio.Future[dict[str, Any]]] = {}

    def end_run(self, ctx: TaskContext) -> None:
        """The attempt's run ended in a durable wait (the server ended the attempt): its slot
        is free at once and nothing is reported for it, whatever its handler does next."""
        running = self.running.get(ctx.task_id)
        if running is not None and running.ctx is ctx:
            running.reported = True
            if running.timer is not None:
                running.timer.cancel()
            del self.running[ctx.task_id]
            self.changed.set()
        self.cancel_step_waiters(ctx.task_id, ctx.attempt)

    def cancel_step_waiters(self, task_id: str | None = None, attempt: int | None = None) -> None:
        """Ends the waits for ``step_recorded`` (of one attempt, or all) with a cancellation."""
        for key, waiter in list(self.step_waiters.items()):
            if task_id is None or (key[0], key[1]) == (task_id, attempt):
                del self.step_waiters[key]
                waiter.cancel()

    def enqueue(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self.loop:
            self._put(message)
        else:
            self.loop.call_soon_threadsafe(self._put, message)

    def _put(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        self.outbox.append(message)
        self.wakeup.set()


class Worker:
    """Serves agents: connects with an API key of scope ``worker`` (or, with ``ticket=``, a
    single-use WebSocket ticket from an async source, fresh per connection), declares its agents in
    ``hello``, runs what the server assigns (at most ``slots`` at once), reconnects with
    backoff and jitter, and on SIGINT/SIGTERM (or :meth:`stop`) drains: takes nothing new,
    finishes what it runs, and returns."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        ticket: Callable[[], Awaitable[str]] | None = None,
        slots: int = 4,
        name: str | None = None,
        version: str | None = None,
        max_backoff: float = 30.0,
        threads: int | None = None,
        handle_signals: bool = True,
        cancel_grace: float = 5.0,
    ) -> None:
        self.url = http_url(url)
        self._ws_url = ws_url(url, "/api/v1/workers/ws")
        if not api_key and ticket is None:
            raise ValueError("Worker needs an api_key with the worker scope, or a ticket source")
        self._api_key = api_key
        self._ticket = ticket
        self.slots = max(1, min(4096, int(slots)))
        self.name = name or _default_name()
        self.version = version
        self.max_backoff = max_backoff
        self.handle_signals = handle_signals
        self.cancel_grace = cancel_grace
        self._threads = threads
        self._agents: dict[str, AgentSpec] = {}
        #: Per agent: whether its handler is an ``async def`` (checked once, not per task).
        self._coroutine_handlers: dict[str, bool] = {}
        self._stop: asyncio.Event | None = None
        self._connected: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._files = _FileHttp(self.url)
        #: The id the server gave this worker on its last connection.
        self.worker_id: str | None = None

    def agent(
        self,
        name: str,
        *,
        input_schema: dict[str, Any] | None = None,
        output_schema: dict[str, Any] | None = None,
        timeout: float | None = None,
        version: str = "1",
        description: str | None = None,
        retry: RetryPolicy | None = None,
    ) -> Callable[[H], H]:
        """Declares agent ``name`` served by the decorated handler ``(ctx, input) -> output``
        (``async def``, or a plain ``def`` that runs in a thread pool)."""

        def register(handler: H) -> H:
            self.add_agent(
                AgentSpec(
                    name=name,
                    handler=handler,
                    version=str(version),
                    description=description,
                    input_schema=input_schema,
                    output_schema=output_schema,
                    timeout=timeout,
                    retry=retry,
                )
            )
            return handler

        return register

    def add_agent(self, spec: AgentSpec) -> None:
        self._agents[spec.name] = spec
        self._coroutine_handlers[spec.name] = inspect.iscoroutinefunction(spec.handler)

    def stop(self) -> None:
        """Drains: takes no new tasks, finishes the running ones, then :meth:`run` returns.
        Safe to call from any thread or a signal handler."""
        loop, stop = self._loop, self._stop
        if loop is None or stop is None:
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is loop:
            stop.set()
        else:
            loop.call_soon_threadsafe(stop.set)

    async def wait_until_connected(self, timeout: float = 30.0) -> None:
        """Waits until the server welcomed this worker (its agents are registered)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._connected is None:
            if asyncio.get_running_loop().time() > deadline:
                raise asyncio.TimeoutError("the worker is not running")
            await asyncio.sleep(0.02)
        left = max(0.0, deadline - asyncio.get_running_loop().time())
        await asyncio.wait_for(self._connected.wait(), left)

    async def run(self) -> None:
        """Runs until SIGINT/SIGTERM or :meth:`stop`, then drains and returns. Raises
        :class:`WorkerRefusedError` if the server refuses the key or the declarations."""
        if not self._agents:
            raise ValueError("declare at least one agent with @worker.agent(...) before run()")
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._connected = asyncio.Event()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._threads or min(self.slots, 64),
            thread_name_prefix="switchyard-handler",
        )
        installed: list[signal.Signals] = []
        if self.handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    self._loop.add_signal_handler(sig, self.stop)
                    installed.append(sig)
        try:
            await self._reconnecting()
        finally:
            for sig in installed:
                self._loop.remove_signal_handler(sig)
            self._pool.shutdown(wait=False)
            await self._files.aclose()

    async def _reconnecting(self) -> None:
        assert self._stop is not None
        backoff = 0.1
        while True:
            try:
                await self._session()
                return
            except _Lost as e:
                reason = str(e)
                if self._connected is not None and self._connected.is_set():
                    backoff = 0.1
            except WorkerRefusedError:
                raise
            except (OSError, WebSocketException, asyncio.TimeoutError) as e:
                reason = f"{type(e).__name__}: {e}"
            if self._connected is not None:
                self._connected.clear()
            if self._stop.is_set():
                return
            pause = max(0.05, random.uniform(0, backoff))
            log.warning("worker disconnected (%s); reconnecting in %.2fs", reason, pause)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), pause)
                return
            backoff = min(backoff * 2, self.max_backoff)

    async def _connect(self) -> ClientConnection:
        if self._ticket is not None:
            # A fresh single-use ticket per connection, reconnections included.
            address, headers = f"{self._ws_url}?ticket={quote(await self._ticket())}", {}
        else:
            address, headers = self._ws_url, {"authorization": f"Bearer {self._api_key}"}
        try:
            return await ws_connect(
                address,
                additional_headers=headers,
                max_size=MAX_MESSAGE_BYTES,
                open_timeout=HANDSHAKE_TIMEOUT,
                ping_interval=None,
            )
        except InvalidStatus as e:
            status = e.response.status_code
            if status in (401, 403):
                credential = "API key" if self._ticket is None else "ticket"
                code, message = "unauthorized" if status == 401 else "forbidden", ""
                body = e.response.body or b""
                with contextlib.suppress(ValueError, AttributeError):
                    error = json.loads(body)["error"]
                    code, message = str(error["code"]), str(error["message"])
                if not message:
                    message = body.decode("utf-8", "replace")
                raise WorkerRefusedError(
                    code,
                    f"the server refused the worker's {credential} "
                    f"({message or 'no reason given'}); "
                    "use an API key with the `worker` scope, or a ticket minted with one",
                    status=status,
                ) from None
            raise

    async def _session(self) -> None:
        assert self._stop is not None and self._connected is not None
        socket = await self._connect()
        session = _Session(socket, self._files)
        try:
            await socket.send(json.dumps(self._hello()))
            try:
                raw = await asyncio.wait_for(socket.recv(), HANDSHAKE_TIMEOUT)
            except ConnectionClosed as e:
                raise _Lost(f"the connection closed before welcome: {e}") from None
            welcome = json.loads(raw)
            if welcome.get("type") == "error":
                code, message = str(welcome.get("code")), str(welcome.get("message"))
                if code in _TRANSIENT_CODES:
                    raise _Lost(f"{code}: {message}")
                raise WorkerRefusedError(code, f"the server refused the worker's hello: {message}")
            if welcome.get("type") != "welcome":
                raise _Lost(f"expected welcome, got {welcome.get('type')!r}")
            self.worker_id = welcome.get("worker_id")
            heartbeat = max(0.1, float(welcome.get("heartbeat_ms", 5000)) / 2000)
            log.info("connected as %s (%s)", self.name, self.worker_id)
            self._connected.set()
            await self._serve(session, heartbeat)
        finally:
            session.closed = True
            session.cancel_step_waiters()
            # The connection is gone: the server re-queues these attempts. Each handler sees
            # `ctx.cancelled` and gets `cancel_grace` seconds to stop by itself.
            for r in session.running.values():
                r.reported = True
                if r.timer is not None:
                    r.timer.cancel()
                r.ctx._cancel()
                if r.task is not None and not r.task.done():
                    session.loop.call_later(self.cancel_grace, r.task.cancel)
            with contextlib.suppress(Exception):
                await socket.close()

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "name": self.name,
            "slots": self.slots,
            "version": self.version or f"switchyard-sdk-python/{__version__}",
            "agents": [a.declaration() for a in self._agents.values()],
        }

    async def _serve(self, session: _Session, heartbeat: float) -> None:
        assert self._stop is not None
        loop = asyncio.get_running_loop()
        receiver = loop.create_task(self._receive(session))
        sender = loop.create_task(self._write(session))
        beats = loop.create_task(self._heartbeats(session, heartbeat))
        stopping = loop.create_task(self._stop.wait())
        links = (receiver, sender, beats)
        try:
            await asyncio.wait({*links, stopping}, return_when=asyncio.FIRST_COMPLETED)
            _raise_if_done(links)
            log.info("draining: finishing %d running task(s)", len(session.running))
            session.enqueue({"type": "drain"})
            drain_sent = loop.time()
            ack_deadline: float | None = None
            while True:
                session.changed.clear()
                # Assignments sent before the server saw `drain` arrive before its `draining`.
                confirmed = session.drain_confirmed or loop.time() >= drain_sent + ACK_WAIT
                idle = not session.running and not session.outbox and not session.sending
                if confirmed and idle:
                    # Leave once the server acknowledged every outcome (it has recorded them),
                    # or after a bounded wait.
                    if ack_deadline is None:
                        ack_deadline = loop.time() + ACK_WAIT
                    if not session.unacked or loop.time() >= ack_deadline:
                        return
                changed = loop.create_task(session.changed.wait())
                try:
                    await asyncio.wait(
                        {*links, changed}, timeout=0.5, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    changed.cancel()
                _raise_if_done(links)
        finally:
            for pending in (*links, stopping):
                pending.cancel()

    async def _receive(self, session: _Session) -> None:
        socket = session.socket
        while True:
            try:
                raw = await socket.recv()
            except ConnectionClosed as e:
                raise _Lost(f"the connection closed: {e}") from None
            self._on_message(session, _loads(raw))

    async def _write(self, session: _Session) -> None:
        """Writes whatever is queued, in order, as it comes."""
        socket = session.socket
        corkable = _corkable(socket)
        while True:
            await session.wakeup.wait()
            session.wakeup.clear()
            batch, session.outbox = session.outbox, []
            session.sending = True
            # Several messages at once leave in as few TCP segments as they fill (Linux's
            # TCP_CORK), not one segment (and one wake-up of the server) per message.
            cork = corkable is not None and len(batch) > 1
            try:
                if cork:
                    _set_cork(corkable, True)
                for message in batch:
                    text = _encode(message)
                    if text is None:
                        continue
                    await socket.send(text)
                    if message["type"] in _OUTCOMES:
                        session.unacked.add((message["task_id"], message["attempt"]))
            except ConnectionClosed as e:
                raise _Lost(f"the connection closed: {e}") from None
            finally:
                session.sending = False
                if cork:
                    _set_cork(corkable, False)
            session.changed.set()

    @staticmethod
    async def _heartbeats(session: _Session, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            session.enqueue({"type": "heartbeat"})

    def _on_message(self, session: _Session, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "assign":
            self._start(session, message)
        elif kind == "ack":
            session.unacked.discard((str(message.get("task_id")), int(message.get("attempt", 0))))
            session.changed.set()
            if message.get("accepted") is False:
                log.warning(
                    "the server rejected the result of task %s attempt %s: the attempt had "
                    "lost its lease",
                    message.get("task_id"),
                    message.get("attempt"),
                )
        elif kind in _STEP_ANSWERS:
            key = (
                str(message.get("task_id")),
                int(message.get("attempt", 0)),
                str(message.get("name")),
            )
            waiter = session.step_waiters.pop(key, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(message)
        elif kind == "cancel":
            running = session.running.get(str(message.get("task_id")))
            if running is not None and running.ctx.attempt == message.get("attempt"):
                self._stop_attempt(session, running)
        elif kind == "draining":
            session.drain_confirmed = True
            session.changed.set()
        elif kind == "error":
            log.warning("server error: %s: %s", message.get("code"), message.get("message"))

    def _start(self, session: _Session, message: dict[str, Any]) -> None:
        """Starts one assigned attempt: one task for the handler, one timer for its deadline.
        Whichever ends first (the handler, the deadline, a cancellation) decides the outcome."""
        task_id = str(message["task_id"])
        timeout_ms = message.get("timeout_ms") or 60_000
        steps = message.get("steps")
        files = message.get("files")
        upload_url = message.get("upload_url")
        ctx = TaskContext(
            task_id=task_id,
            attempt=int(message["attempt"]),
            agent=str(message.get("agent", "")),
            traceparent=message.get("traceparent"),
            parent_id=message.get("parent_id"),
            timeout=float(timeout_ms) / 1000,
            session=session,
            steps=steps if isinstance(steps, dict) else None,
            files=_input_files(files, session.files) if files else None,
            upload_url=upload_url if isinstance(upload_url, str) else None,
        )
        spec = self._agents.get(ctx.agent)
        if spec is None:
            failure = _failure(f"this worker does not serve {ctx.agent!r}", "permanent", None, None)
            session.enqueue(_addressed(failure, ctx))
            return
        running = _Running(ctx)
        session.running[task_id] = running
        loop = session.loop
        input = message.get("input")
        if self._coroutine_handlers.get(ctx.agent, False):
            work: asyncio.Future[Any] = loop.create_task(spec.handler(ctx, input))
        else:
            work = loop.create_task(self._call_in_thread(spec.handler, ctx, input))
        running.task = work
        running.timer = loop.call_later(ctx.timeout, self._expire, session, running)
        work.add_done_callback(lambda done: self._finished(session, running, done))

    def _finished(self, session: _Session, running: _Running, work: asyncio.Future[Any]) -> None:
        if running.timer is not None:
            running.timer.cancel()
        if running.reported:
            if not work.cancelled():
                work.exception()  # retrieved: a late handler's failure is not worth a warning
            return
        if running.timed_out:
            outcome = _timeout_failure(running.ctx)
            if not work.cancelled():
                work.exception()
        elif running.ctx.cancelled:
            # The server asked to stop and the handler did: report the cancellation.
            outcome = {"type": "cancelled"}
            if not work.cancelled():
                work.exception()
        else:
            outcome = _result_of(work)
        self._report(session, running, outcome)

    def _report(self, session: _Session, running: _Running, outcome: dict[str, Any]) -> None:
        running.reported = True
        if session.running.get(running.ctx.task_id) is running:
            del session.running[running.ctx.task_id]
        session.enqueue(_addressed(outcome, running.ctx))
        session.changed.set()

    def _expire(self, session: _Session, running: _Running) -> None:
        if running.reported or running.ctx.cancelled:
            return  # already stopping for a cancellation: that stays its outcome
        running.timed_out = True
        self._stop_attempt(session, running)

    def _stop_attempt(self, session: _Session, running: _Running) -> None:
        """The attempt timed out or the server cancelled it: the handler sees ``ctx.cancelled``
        and gets ``cancel_grace`` seconds to stop by itself; then its task is cancelled and
        the outcome reported without waiting further."""
        if running.reported or running.ctx.cancelled:
            return
        running.ctx._cancel()

        def give_up() -> None:
            if running.reported:
                return
            if running.timed_out:
                self._report(session, running, _timeout_failure(running.ctx))
            else:
                self._report(session, running, {"type": "cancelled"})
            session.cancel_step_waiters(running.ctx.task_id, running.ctx.attempt)
            if running.task is not None:
                running.task.cancel()

        session.loop.call_later(self.cancel_grace, give_up)

    async def _call_in_thread(self, handler: Handler, ctx: TaskContext, input: Any) -> Any:
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, handler, ctx, input)
        if inspect.isawaitable(result):
            return await result
        return result


def _input_files(raw: Any, http: _FileHttp) -> dict[str, InputFile]:
    """The ``files`` of an ``assign``, by id, their URLs made absolute."""
    found: dict[str, InputFile] = {}
    if not isinstance(raw, dict):
        return found
    for file_id, info in raw.items():
        if not isinstance(info, dict) or not isinstance(info.get("url"), str):
            continue
        found[str(file_id)] = InputFile(
            id=str(file_id),
            name=str(info.get("name", "")),
            size=int(info.get("size") or 0),
            content_type=str(info.get("content_type") or "application/octet-stream"),
            sha256=str(info.get("sha256", "")),
            url=http.url(info["url"]),
        )
    return found


_TCP_CORK: int | None = getattr(_socket, "TCP_CORK", None)


def _corkable(connection: ClientConnection) -> Any:
    """The connection's TCP socket if this platform can cork it, else ``None``."""
    if _TCP_CORK is None:
        return None
    transport = getattr(connection, "transport", None)
    raw = transport.get_extra_info("socket") if transport is not None else None
    if raw is None or raw.family not in (_socket.AF_INET, _socket.AF_INET6):
        return None
    return raw


def _set_cork(raw: Any, on: bool) -> None:
    with contextlib.suppress(OSError):
        raw.setsockopt(_socket.IPPROTO_TCP, _TCP_CORK, 1 if on else 0)


def _encode(message: dict[str, Any]) -> str | None:
    """The message as JSON text. A result that is not JSON fails its attempt `permanent`;
    a log, progress or partial message that is not JSON is dropped with a warning."""
    try:
        return _dumps(message)
    except (TypeError, ValueError) as e:
        if message["type"] == "result":
            failure = _failure(f"the output is not JSON: {e}", "permanent", "invalid_output", None)
            failure["task_id"] = message["task_id"]
            failure["attempt"] = message["attempt"]
            return _dumps(failure)
        log.warning("dropped a %s message that is not JSON: %s", message["type"], e)
        return None


async def _awaited(value: Awaitable[T]) -> T:
    return await value


def _step_output(name: str, output: Any) -> Any:
    """The step's result as JSON gives it back (what later runs get), or a
    :class:`PermanentError` if it is not JSON."""
    return _as_json(output, f"the result of step {name!r}", "invalid_step_output")


def _as_json(value: Any, what: str, code: str) -> Any:
    """``value`` as JSON gives it back, or a :class:`PermanentError` with ``code``."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as e:
        raise PermanentError(f"{what} is not JSON: {e}", code=code) from e


def _millis(seconds: float, what: str) -> int:
    """Seconds as whole milliseconds (at least 0), for a wait's ``duration_ms``, ``until`` or
    ``timeout_ms``."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{what} is a number of seconds, not {type(seconds).__name__}")
    if not math.isfinite(seconds):
        raise ValueError(f"{what} must be finite, got {seconds}")
    return max(0, round(seconds * 1000))


async def _nothing() -> list[Any]:
    return []


async def _joined(results: Awaitable[Any], raise_on_failure: bool) -> list[Any]:
    return _join_results(await results, raise_on_failure)


def _join_results(results: Any, raise_on_failure: bool) -> list[Any]:
    """A join's results as ``ctx.join`` returns them: each succeeded child's output, a
    :class:`ChildFailure` for each other one (or, with ``raise_on_failure``, the first of
    those raised as :class:`ChildTaskFailed`)."""
    if not isinstance(results, list):
        raise PermanentError(f"a join's result is a list, got {results!r}", code="invalid_join")
    joined: list[Any] = []
    for item in results:
        child = item if isinstance(item, dict) else {}
        if child.get("status") == "succeeded":
            joined.append(child.get("output"))
            continue
        error = child.get("error")
        failure = ChildFailure(
            task_id=str(child.get("task_id", "")),
            status=str(child.get("status", "")),
            error=error if isinstance(error, dict) else None,
        )
        if raise_on_failure:
            raise ChildTaskFailed(failure)
        joined.append(failure)
    return joined


def _step_error(error: Exception) -> dict[str, Any]:
    """A failed step's ``error``, classified like an attempt's."""
    if isinstance(error, TaskError):
        body: dict[str, Any] = {"message": str(error.message), "class": error.error_class}
        if error.code is not None:
            body["code"] = str(error.code)
        return body
    message = f"{type(error).__name__}: {error}"
    return {"message": message, "class": "retryable", "code": "exception"}


def _raise_if_done(links: tuple[asyncio.Task[None], ...]) -> None:
    """A link task (receiver, sender, heartbeats) only ends by failing: re-raise that."""
    for link in links:
        if link.done():
            link.result()
            raise _Lost("a connection task ended")


def _addressed(outcome: dict[str, Any], ctx: TaskContext) -> dict[str, Any]:
    outcome["task_id"] = ctx.task_id
    outcome["attempt"] = ctx.attempt
    return outcome


def _timeout_failure(ctx: TaskContext) -> dict[str, Any]:
    ms = round(ctx.timeout * 1000)
    return _failure(f"the attempt did not finish within {ms} ms", "retryable", "timeout", None)


def _result_of(work: asyncio.Future[Any]) -> dict[str, Any]:
    try:
        output = work.result()
    except TaskError as e:
        return _failure(e.message, e.error_class, e.code, e.retry_after_ms)
    except asyncio.CancelledError:
        return _failure("the handler was cancelled", "retryable", "cancelled", None)
    except Exception as e:
        log.exception("handler raised")
        return _failure(f"{type(e).__name__}: {e}", "retryable", "exception", None)
    # Whether it is JSON is found when it is written (see `_encode`): encoded once.
    return {"type": "result", "output": output}


def _failure(
    message: str, error_class: str, code: str | None, retry_after_ms: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "error", "class": error_class, "message": message}
    if code is not None:
        body["code"] = code
    if retry_after_ms is not None:
        body["retry_after_ms"] = retry_after_ms
    return body

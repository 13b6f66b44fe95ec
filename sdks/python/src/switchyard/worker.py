"""The worker: serve agents over the worker WebSocket (``/api/v1/workers/ws``)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import logging
import os
import random
import signal
import socket as _socket
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from . import __version__
from ._urls import http_url, ws_url
from .errors import SwitchyardError, TaskError, WorkerRefusedError

log = logging.getLogger("switchyard.worker")

HANDSHAKE_TIMEOUT = 15.0
#: How long a draining worker waits for the server to acknowledge its last outcomes.
ACK_WAIT = 10.0
_OUTCOMES = frozenset({"result", "error", "cancelled"})
#: Server errors at hello that are worth another try; any other refusal is final.
_TRANSIENT_CODES = frozenset({"internal", "unavailable", "rate_limited"})

#: ``(ctx, input) -> output``: an ``async def`` or a plain ``def`` (run in a thread pool).
Handler = Callable[["TaskContext", Any], Any]
H = TypeVar("H", bound=Handler)


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
        self._cancelled = threading.Event()
        self._session = session

    @property
    def cancelled(self) -> bool:
        """Whether the attempt should stop (readable from any thread)."""
        return self._cancelled.is_set()

    @property
    def trace_id(self) -> str | None:
        if not self.traceparent:
            return None
        parts = self.traceparent.split("-")
        return parts[1] if len(parts) > 1 else None

    def _cancel(self) -> None:
        self._cancelled.set()
        self.cancel_event.set()

    def _send(self, message: dict[str, Any]) -> Sent:
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


@dataclass
class AgentSpec:
    name: str
    handler: Handler
    version: str = "1"
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    timeout: float | None = None
    retry: dict[str, Any] | None = None

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
        return decl


def _default_name() -> str:
    return f"{_socket.gethostname() or 'worker'}-{os.getpid()}"


@dataclass
class _Running:
    ctx: TaskContext
    task: asyncio.Task[None]


@dataclass
class _Session:
    """One connection's state."""

    socket: ClientConnection
    outbound: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    running: dict[str, _Running] = field(default_factory=dict)
    #: Outcomes (result, error, cancelled) sent and not yet acknowledged: (task id, attempt).
    unacked: set[tuple[str, int]] = field(default_factory=set)
    #: The server answered `drain` with `draining`: every assignment it made came before.
    drain_confirmed: bool = False
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    closed: bool = False

    def enqueue(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        try:
            current = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        if current is self.loop:
            self.outbound.put_nowait(message)
        else:
            self.loop.call_soon_threadsafe(self.outbound.put_nowait, message)


class Worker:
    """Serves agents: connects with an API key of scope ``worker``, declares its agents in
    ``hello``, runs what the server assigns (at most ``slots`` at once), reconnects with
    backoff and jitter, and on SIGINT/SIGTERM (or :meth:`stop`) drains: takes nothing new,
    finishes what it runs, and returns."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
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
        self._api_key = api_key
        self.slots = max(1, min(4096, int(slots)))
        self.name = name or _default_name()
        self.version = version
        self.max_backoff = max_backoff
        self.handle_signals = handle_signals
        self.cancel_grace = cancel_grace
        self._threads = threads
        self._agents: dict[str, AgentSpec] = {}
        self._stop: asyncio.Event | None = None
        self._connected: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._retry_applied = False
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
        retry: dict[str, Any] | None = None,
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
        try:
            return await ws_connect(
                self._ws_url,
                additional_headers={"authorization": f"Bearer {self._api_key}"},
                max_size=2**20 * 2,
                open_timeout=HANDSHAKE_TIMEOUT,
                ping_interval=None,
            )
        except InvalidStatus as e:
            status = e.response.status_code
            if status in (401, 403):
                code, message = "unauthorized" if status == 401 else "forbidden", ""
                body = e.response.body or b""
                with contextlib.suppress(ValueError, AttributeError):
                    error = json.loads(body)["error"]
                    code, message = str(error["code"]), str(error["message"])
                if not message:
                    message = body.decode("utf-8", "replace")
                raise WorkerRefusedError(
                    code,
                    f"the server refused the worker's API key ({message or 'no reason given'}); "
                    "use an API key with the `worker` scope",
                    status=status,
                ) from None
            raise

    async def _session(self) -> None:
        assert self._stop is not None and self._connected is not None
        socket = await self._connect()
        session = _Session(socket=socket)
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
            if not self._retry_applied:
                self._retry_applied = True
                await self._apply_retry_policies()
            await self._serve(session, heartbeat)
        finally:
            session.closed = True
            for r in session.running.values():
                r.ctx._cancel()
                r.task.cancel()
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

    async def _apply_retry_policies(self) -> None:
        """``hello`` cannot set a retry policy, so an agent's ``retry=`` is applied over REST
        (``PUT /api/v1/agents/{name}``) — which needs a key that may manage agents. Without
        that permission it is logged and skipped, never pretended."""
        wanted = [a for a in self._agents.values() if a.retry is not None]
        if not wanted:
            return
        headers = {"authorization": f"Bearer {self._api_key}"}
        async with httpx.AsyncClient(base_url=self.url, headers=headers, timeout=15) as http:
            for spec in wanted:
                try:
                    current = await http.get(f"/api/v1/agents/{spec.name}")
                    if current.status_code >= 400:
                        raise _refusal(current)
                    body = current.json()
                    retry = dict(body.get("retry") or {})
                    retry.update(spec.retry or {})
                    update = {
                        k: v
                        for k, v in body.items()
                        if k not in ("created_at", "updated_at", "builtin", "secrets")
                    }
                    update["retry"] = retry
                    answer = await http.put(f"/api/v1/agents/{spec.name}", json=update)
                    if answer.status_code >= 400:
                        raise _refusal(answer)
                except (SwitchyardError, httpx.HTTPError) as e:
                    log.warning(
                        "could not apply the retry policy of agent %r (%s): the worker "
                        "protocol cannot set it and this key may not update agents; set it "
                        "with PUT /api/v1/agents/%s using an admin credential",
                        spec.name,
                        e,
                        spec.name,
                    )

    async def _serve(self, session: _Session, heartbeat: float) -> None:
        assert self._stop is not None
        socket = session.socket
        draining = False
        done: asyncio.Queue[str] = asyncio.Queue()
        receive: asyncio.Task[Any] = asyncio.ensure_future(socket.recv())
        send_next: asyncio.Task[dict[str, Any]] = asyncio.ensure_future(session.outbound.get())
        finished: asyncio.Task[str] = asyncio.ensure_future(done.get())
        stopping: asyncio.Task[bool] = asyncio.ensure_future(self._stop.wait())
        loop = asyncio.get_running_loop()
        next_beat = loop.time() + heartbeat
        ack_deadline: float | None = None
        drain_sent: float | None = None
        try:
            while True:
                waiting: set[asyncio.Future[Any]] = {receive, send_next, finished}
                if not draining:
                    waiting.add(stopping)
                ready, _ = await asyncio.wait(
                    waiting,
                    timeout=max(0.0, next_beat - loop.time()),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if loop.time() >= next_beat:
                    await self._send(socket, {"type": "heartbeat"})
                    next_beat = loop.time() + heartbeat
                if stopping in ready and not draining:
                    draining = True
                    log.info("draining: finishing %d running task(s)", len(session.running))
                    await self._send(socket, {"type": "drain"})
                    drain_sent = loop.time()
                if send_next in ready:
                    await self._send(socket, send_next.result(), session)
                    while not session.outbound.empty():
                        await self._send(socket, session.outbound.get_nowait(), session)
                    send_next = asyncio.ensure_future(session.outbound.get())
                if finished in ready:
                    session.running.pop(finished.result(), None)
                    finished = asyncio.ensure_future(done.get())
                if receive in ready:
                    try:
                        raw = receive.result()
                    except ConnectionClosed as e:
                        raise _Lost(f"the connection closed: {e}") from None
                    receive = asyncio.ensure_future(socket.recv())
                    self._on_message(session, json.loads(raw), done)
                # Assignments sent before the server saw `drain` arrive before its `draining`.
                confirmed = session.drain_confirmed or (
                    drain_sent is not None and loop.time() >= drain_sent + ACK_WAIT
                )
                if draining and confirmed and not session.running:
                    while not session.outbound.empty():
                        await self._send(socket, session.outbound.get_nowait(), session)
                    # Leave once the server acknowledged every outcome (it has recorded
                    # them), or after a bounded wait.
                    if ack_deadline is None:
                        ack_deadline = loop.time() + ACK_WAIT
                    if not session.unacked or loop.time() >= ack_deadline:
                        return
        finally:
            for pending in (receive, send_next, finished, stopping):
                pending.cancel()

    async def _send(
        self,
        socket: ClientConnection,
        message: dict[str, Any],
        session: _Session | None = None,
    ) -> None:
        try:
            await socket.send(json.dumps(message))
        except ConnectionClosed as e:
            raise _Lost(f"the connection closed: {e}") from None
        if session is not None and message.get("type") in _OUTCOMES:
            session.unacked.add((str(message["task_id"]), int(message["attempt"])))

    def _on_message(
        self, session: _Session, message: dict[str, Any], done: asyncio.Queue[str]
    ) -> None:
        kind = message.get("type")
        if kind == "assign":
            task_id = str(message["task_id"])
            timeout_ms = message.get("timeout_ms") or 60_000
            ctx = TaskContext(
                task_id=task_id,
                attempt=int(message["attempt"]),
                agent=str(message.get("agent", "")),
                traceparent=message.get("traceparent"),
                parent_id=message.get("parent_id"),
                timeout=float(timeout_ms) / 1000,
                session=session,
            )
            task = asyncio.ensure_future(self._attempt(session, ctx, message.get("input"), done))
            session.running[task_id] = _Running(ctx=ctx, task=task)
        elif kind == "cancel":
            running = session.running.get(str(message.get("task_id")))
            if running is not None and running.ctx.attempt == message.get("attempt"):
                running.ctx._cancel()
        elif kind == "draining":
            session.drain_confirmed = True
        elif kind == "ack":
            session.unacked.discard((str(message.get("task_id")), int(message.get("attempt", 0))))
        if kind == "ack" and message.get("accepted") is False:
            log.warning(
                "the server rejected the result of task %s attempt %s: the attempt had lost "
                "its lease",
                message.get("task_id"),
                message.get("attempt"),
            )
        elif kind == "error":
            log.warning("server error: %s: %s", message.get("code"), message.get("message"))

    async def _attempt(
        self, session: _Session, ctx: TaskContext, input: Any, done: asyncio.Queue[str]
    ) -> None:
        try:
            outcome = await self._outcome(ctx, input)
            outcome["task_id"] = ctx.task_id
            outcome["attempt"] = ctx.attempt
            session.enqueue(outcome)
        finally:
            done.put_nowait(ctx.task_id)

    async def _outcome(self, ctx: TaskContext, input: Any) -> dict[str, Any]:
        spec = self._agents.get(ctx.agent)
        if spec is None:
            return _failure(f"this worker does not serve {ctx.agent!r}", "permanent", None, None)
        work = asyncio.ensure_future(self._call(spec.handler, ctx, input))
        cancelled = asyncio.ensure_future(ctx.cancel_event.wait())
        try:
            ready, _ = await asyncio.wait(
                {work, cancelled}, timeout=ctx.timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if work in ready:
                if cancelled in ready or ctx.cancelled:
                    # The server asked to stop and the handler did: report the cancellation.
                    return {"type": "cancelled"}
                return _result_of(work)
            timed_out = not ready
            ctx._cancel()
            # Give the handler a moment to see the cancellation and stop by itself.
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(work), self.cancel_grace)
            if not work.done():
                work.cancel()
            if timed_out:
                ms = round(ctx.timeout * 1000)
                return _failure(
                    f"the attempt did not finish within {ms} ms", "retryable", "timeout", None
                )
            return {"type": "cancelled"}
        except asyncio.CancelledError:
            # The connection was lost: the server re-queues the attempt. The handler has seen
            # `ctx.cancelled`; it gets `cancel_grace` seconds to stop by itself.
            ctx._cancel()
            if not work.done():
                asyncio.get_running_loop().call_later(self.cancel_grace, work.cancel)
            raise
        finally:
            cancelled.cancel()

    async def _call(self, handler: Handler, ctx: TaskContext, input: Any) -> Any:
        if inspect.iscoroutinefunction(handler):
            return await handler(ctx, input)
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, handler, ctx, input)
        if inspect.isawaitable(result):
            return await result
        return result


def _result_of(work: asyncio.Task[Any]) -> dict[str, Any]:
    try:
        output = work.result()
    except TaskError as e:
        return _failure(e.message, e.error_class, e.code, e.retry_after_ms)
    except asyncio.CancelledError:
        return _failure("the handler was cancelled", "retryable", "cancelled", None)
    except Exception as e:
        log.exception("handler raised")
        return _failure(f"{type(e).__name__}: {e}", "retryable", "exception", None)
    try:
        json.dumps(output)
    except (TypeError, ValueError) as e:
        return _failure(f"the output is not JSON: {e}", "permanent", "invalid_output", None)
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


def _refusal(response: httpx.Response) -> SwitchyardError:
    try:
        error = response.json()["error"]
        return SwitchyardError(
            str(error["code"]), str(error["message"]), status=response.status_code
        )
    except (ValueError, KeyError, TypeError):
        return SwitchyardError("http_error", response.text[:200], status=response.status_code)

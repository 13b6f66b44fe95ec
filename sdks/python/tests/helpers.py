"""Shared test helpers: a worker running in this event loop, unique agent names, a TCP proxy
that can cut every connection (a real forced disconnect between client and server)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from switchyard import Client, Task, Worker

WAIT = 60.0


def unique(name: str) -> str:
    return f"py-{name}-{uuid.uuid4().hex[:8]}"


@contextlib.asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    """Runs ``worker`` in the background until the block ends, then drains it."""
    task = asyncio.ensure_future(worker.run())
    try:
        waiter = asyncio.ensure_future(worker.wait_until_connected(WAIT))
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            waiter.cancel()
            task.result()
            raise AssertionError("the worker stopped before connecting")
        waiter.result()
        yield worker
    finally:
        worker.stop()
        try:
            await asyncio.wait_for(task, WAIT)
        except BaseException:
            task.cancel()
            raise


def make_worker(server: Any, *, key: str | None = None, **options: Any) -> Worker:
    options.setdefault("handle_signals", False)
    return Worker(server.url, api_key=key or server.worker_key, **options)


async def wait_until(
    client: Client, task_id: str, check: Callable[[Task], bool], timeout: float = WAIT
) -> Task:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        task = await client.get(task_id)
        if check(task):
            return task
        assert loop.time() < deadline, f"task never reached the expected state: {task}"
        await asyncio.sleep(0.05)


class CuttingProxy:
    """A TCP proxy to the server; :meth:`cut` closes every connection it carries."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        self.cuts = 0
        self.connections = 0

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self.cuts += 1
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers.update({writer, up_writer})

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

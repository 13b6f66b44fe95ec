"""HTTP plumbing shared by the client and the worker: the server's errors, and file bodies
streamed from disk and to disk (never read whole into memory)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any, TypeAlias

import httpx

from .errors import SwitchyardError

#: What an upload takes: the bytes themselves, or the path of a file (a ``str`` or
#: ``os.PathLike``), which is streamed from disk in chunks.
FileData: TypeAlias = bytes | bytearray | memoryview | str | os.PathLike[str]

#: The size of the chunks read from and written to disk.
CHUNK_BYTES = 256 * 1024
#: File contents are asked for as stored (no compression): what arrives is what the ETag hashes.
_IDENTITY = {"accept-encoding": "identity"}


def error_from_response(response: httpx.Response) -> SwitchyardError:
    """The server's ``{"error": {"code", "message", "details"?}}`` as a
    :class:`SwitchyardError` (the body must have been read)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return SwitchyardError(
            str(error.get("code", "unknown")),
            str(error.get("message", "")),
            status=response.status_code,
            details=error.get("details"),
            request_id=error.get("request_id"),
        )
    return SwitchyardError(
        "http_error",
        response.text[:500] or response.reason_phrase,
        status=response.status_code,
    )


def is_bytes(data: object) -> bool:
    return isinstance(data, (bytes, bytearray, memoryview))


def upload_name(data: FileData, name: str | None) -> str:
    """The name an upload is stored under: ``name``, else a path's file name."""
    if name is not None:
        if not isinstance(name, str) or not name:
            raise ValueError("a file's name is a non-empty str")
        return name
    if is_bytes(data):
        raise ValueError("uploading bytes needs a name (a path upload takes the file's name)")
    if not isinstance(data, (str, os.PathLike)):
        raise TypeError(f"upload takes bytes or a file path, not {type(data).__name__}")
    found = Path(os.fspath(data)).name
    if not found:
        raise ValueError(f"the path {os.fspath(data)!r} has no file name: pass name=")
    return found


async def post_file(
    http: httpx.AsyncClient,
    url: str,
    data: FileData,
    *,
    content_type: str | None = None,
    params: dict[str, str] | None = None,
) -> Any:
    """POSTs ``data`` (bytes, or a file streamed from disk) as the raw request body and
    returns the JSON answer; raises :class:`SwitchyardError` for an error status. Without
    ``content_type`` the server guesses it from the name."""
    headers: dict[str, str] = {}
    if content_type:
        headers["content-type"] = content_type
    if is_bytes(data):
        assert isinstance(data, (bytes, bytearray, memoryview))
        response = await http.post(url, content=bytes(data), headers=headers, params=params)
    elif isinstance(data, (str, os.PathLike)):
        file = await asyncio.to_thread(open, os.fspath(data), "rb")
        try:
            info = os.fstat(file.fileno())
            if stat.S_ISREG(info.st_mode):
                # A known length: sent as Content-Length (not chunked), so that the server can
                # refuse a file over its limit before reading it.
                headers["content-length"] = str(info.st_size)
            response = await http.post(url, content=_chunks(file), headers=headers, params=params)
        finally:
            await asyncio.to_thread(file.close)
    else:
        raise TypeError(f"upload takes bytes or a file path, not {type(data).__name__}")
    if response.status_code >= 400:
        raise error_from_response(response)
    return response.json()


async def _chunks(file: IO[bytes]) -> AsyncIterator[bytes]:
    while chunk := await asyncio.to_thread(file.read, CHUNK_BYTES):
        yield chunk


async def get_bytes(http: httpx.AsyncClient, url: str) -> bytes:
    """The body of ``GET url``; raises :class:`SwitchyardError` for an error status."""
    response = await http.get(url, headers=_IDENTITY)
    if response.status_code >= 400:
        raise error_from_response(response)
    return response.content


async def get_to_path(http: httpx.AsyncClient, url: str, path: str | os.PathLike[str]) -> None:
    """Streams the body of ``GET url`` into the file ``path`` (created or replaced), chunk by
    chunk. An error status raises :class:`SwitchyardError` before ``path`` is touched; a
    download that fails halfway removes the partial file."""
    target = os.fspath(path)
    async with http.stream("GET", url, headers=_IDENTITY) as response:
        if response.status_code >= 400:
            await response.aread()
            raise error_from_response(response)
        file = await asyncio.to_thread(open, target, "wb")
        try:
            async for chunk in response.aiter_bytes(CHUNK_BYTES):
                await asyncio.to_thread(file.write, chunk)
            await asyncio.to_thread(file.close)
        except BaseException:
            file.close()
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise

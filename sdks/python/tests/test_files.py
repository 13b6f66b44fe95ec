"""Files against the real server: upload and download (bytes, paths, streamed to disk), metadata,
listing and deletion; a worker that reads an input file and writes artifacts; clear errors."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from helpers import WAIT, make_worker, running, unique

from switchyard import (
    Client,
    FileInfo,
    SwitchyardError,
    TaskContext,
    UnknownFileError,
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


async def test_upload_download_round_trip(server: Any, tmp_path: Path) -> None:
    data = os.urandom(3 * 2**20 + 17)  # a few MiB, not a multiple of any chunk size
    async with Client(server.url, api_key=server.client_key) as client:
        info = await client.upload_file(data, name="blob.bin", content_type="application/x-test")
        assert isinstance(info, FileInfo)
        assert info.name == "blob.bin" and info.size == len(data)
        assert info.sha256 == sha256(data) and info.content_type == "application/x-test"
        assert info.task_id is None and info.created_at and info.ref == {"$file": info.id}
        assert await client.get_file(info.id) == info

        assert await client.download_file(info.id) == data
        target = tmp_path / "out.bin"
        await client.download_file_to(info.id, target)
        assert target.stat().st_size == len(data) and file_sha256(target) == info.sha256

        # A path is streamed from disk; its name and content type come from the file name.
        source = tmp_path / "notes.txt"
        source.write_bytes(b"hello, files\n" * 50_000)
        from_path = await client.upload_file(source)
        assert from_path.name == "notes.txt" and from_path.size == source.stat().st_size
        assert from_path.content_type.startswith("text/plain")
        assert from_path.sha256 == file_sha256(source)
        assert await client.download_file(from_path.id) == source.read_bytes()

        page = await client.list_files(limit=100)
        ids = [f.id for f in page.items]
        assert from_path.id in ids and info.id in ids
        assert ids.index(from_path.id) < ids.index(info.id)  # newest first
        first = await client.list_files(limit=1)
        assert len(first.items) == 1 and first.next_cursor is not None
        second = await client.list_files(limit=1, cursor=first.next_cursor)
        assert len(second.items) == 1 and second.items[0].id != first.items[0].id

        await client.delete_file(from_path.id)
        with pytest.raises(SwitchyardError) as gone:
            await client.get_file(from_path.id)
        assert gone.value.status == 404 and gone.value.code == "file_not_found"
        with pytest.raises(ValueError, match="needs a name"):
            await client.upload_file(b"no name")


async def test_unknown_file_is_404(server: Any, tmp_path: Path) -> None:
    missing = str(uuid.uuid4())
    async with Client(server.url, api_key=server.client_key) as client:
        for call in (client.get_file, client.download_file, client.delete_file):
            with pytest.raises(SwitchyardError) as caught:
                await call(missing)
            assert caught.value.status == 404 and caught.value.code == "file_not_found"
        target = tmp_path / "never.bin"
        with pytest.raises(SwitchyardError) as streamed:
            await client.download_file_to(missing, target)
        assert streamed.value.code == "file_not_found" and not target.exists()


async def test_submit_with_an_unknown_file_reference_is_422(server: Any) -> None:
    async with Client(server.url, api_key=server.client_key) as client:
        with pytest.raises(SwitchyardError) as caught:
            await client.submit("echo", {"doc": {"$file": str(uuid.uuid4())}})
    assert caught.value.status == 422 and caught.value.code == "validation_failed"
    assert "/doc" in caught.value.message


async def test_worker_reads_input_files_and_writes_artifacts(server: Any, tmp_path: Path) -> None:
    async_agent, sync_agent = unique("files"), unique("files-sync")
    worker = make_worker(server)
    seen: dict[str, Any] = {}

    @worker.agent(async_agent)
    async def shout(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        file_id = input["doc"]["$file"]
        seen["files"] = dict(ctx.files)
        try:
            await ctx.download(str(uuid.uuid4()))
        except KeyError as e:  # an UnknownFileError: not among the input's files
            seen["unknown"] = e
        text = await ctx.download(file_id)
        local = tmp_path / f"{ctx.task_id}.txt"
        await ctx.download_to(file_id, local)
        assert local.read_bytes() == text
        loud = await ctx.upload("loud.txt", text.upper(), "text/plain")
        copy = await ctx.upload("copy.txt", local)  # streamed from the path
        seen["ctx"] = ctx
        return {"loud": {"$file": loud}, "copy": {"$file": copy}}

    @worker.agent(sync_agent)
    def shout_sync(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        file_id = input["doc"]["$file"]
        local = tmp_path / f"{ctx.task_id}.txt"
        ctx.download_to_sync(file_id, local)
        loud = ctx.upload_sync("loud.txt", ctx.download_sync(file_id).upper())
        return {"loud": {"$file": loud}, "size": local.stat().st_size}

    content = b"a file for the agent\n" * 1000
    async with running(worker), Client(server.url, api_key=server.client_key) as client:
        doc = await client.upload_file(content, name="doc.txt")
        task = await client.submit(async_agent, {"doc": doc.ref}, wait=WAIT)
        assert task.status == "succeeded", task

        assert list(seen["files"]) == [doc.id]
        described = seen["files"][doc.id]
        assert (described.name, described.size, described.sha256) == (
            "doc.txt",
            len(content),
            doc.sha256,
        )
        assert described.url.startswith(server.url)
        unknown = seen["unknown"]
        assert isinstance(unknown, UnknownFileError) and unknown.code == "unknown_file"

        artifacts = {f.name: f for f in await client.task_artifacts(task.id)}
        assert set(artifacts) == {"loud.txt", "copy.txt"}
        assert all(f.task_id == task.id for f in artifacts.values())
        loud, copy = artifacts["loud.txt"], artifacts["copy.txt"]
        assert task.output == {"loud": loud.ref, "copy": copy.ref}
        assert loud.content_type.startswith("text/plain") and loud.sha256 == sha256(content.upper())
        assert await client.download_file(loud.id) == content.upper()
        assert await client.download_file(copy.id) == content
        listed = await client.list_files(task=task.id)
        assert {f.id for f in listed.items} == {loud.id, copy.id}

        # The upload URL works only while the attempt runs.
        with pytest.raises(SwitchyardError) as late:
            await seen["ctx"].upload("late.txt", b"too late")
        assert late.value.status == 409 and late.value.code == "lease_lost"

        synced = await client.submit(sync_agent, {"doc": doc.ref}, wait=WAIT)
        assert synced.status == "succeeded", synced
        assert synced.output["size"] == len(content)
        [artifact] = await client.task_artifacts(synced.id)
        assert synced.output["loud"] == artifact.ref
        assert await client.download_file(artifact.id) == content.upper()

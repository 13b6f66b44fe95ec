"""The Python SDK's worker for the protocol conformance suite (``sdks/conformance/``): serves
the same agents as ``crates/sdk/src/bin/switchyard-conformance-worker.rs`` and
``sdks/typescript/examples/conformance-worker.ts``, with the same names, schemas, timeouts
and retry policies.

    SWITCHYARD_API_KEY=sy_... WORKER_NAME=py-a python examples/conformance_worker.py URL

Environment: SWITCHYARD_API_KEY (scope ``worker``, required), WORKER_NAME, WORKER_SLOTS
(default 4). Drains on SIGTERM or SIGINT: takes nothing new, finishes the running tasks,
exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from switchyard import (
    ChildFailure,
    PermanentError,
    RateLimitedError,
    RetryableError,
    RetryPolicy,
    TaskContext,
    WaitTimeout,
    Worker,
    WorkerRefusedError,
)

#: ``conf-sleep``'s per-attempt timeout; the scenarios' sleeps stay well below it, except the
#: timeout scenario's.
SLEEP_TIMEOUT = 6.0

#: The retry policy ``conf-fail`` and ``conf-sleep`` declare: one retry, soon.
SCENARIO_RETRY: RetryPolicy = {"max_attempts": 2, "base_ms": 100, "cap_ms": 1000}


# A file reference (`{"$file": id}`), which the web UI fills with an upload.
FILE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "format": "file",
    "required": ["$file"],
    "properties": {"$file": {"type": "string"}},
}


def _object_schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


def build(url: str, api_key: str) -> Worker:
    name = os.environ.get("WORKER_NAME", "")
    worker = Worker(
        url,
        api_key=api_key,
        slots=int(os.environ.get("WORKER_SLOTS", "4")),
        name=name or None,
    )

    @worker.agent(
        "conf-echo",
        description="Returns its input.",
        input_schema=_object_schema({"message": {"type": "string"}}, ["message"]),
    )
    async def echo(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        return {"echo": input, "worker": name}

    @worker.agent(
        "conf-stream",
        description="Streams `parts` as partial output, with logs and progress.",
        input_schema=_object_schema({"parts": {"type": "array"}}, ["parts"]),
    )
    async def stream(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        parts = input.get("parts")
        if not isinstance(parts, list):
            raise PermanentError("`parts` must be an array")
        await ctx.log("info", f"streaming {len(parts)} parts")
        for i, part in enumerate(parts):
            await ctx.partial(part)
            await ctx.progress((i + 1) / len(parts), f"part {i + 1}")
        await ctx.log("warn", "stream finished")
        return {"parts": len(parts), "worker": name}

    @worker.agent(
        "conf-fail",
        description="Fails with the error class named in `class`.",
        input_schema=_object_schema(
            {
                "class": {"enum": ["retryable", "permanent", "rate_limited"]},
                "message": {"type": "string"},
                "code": {"type": "string"},
                "retry_after_ms": {"type": "integer", "minimum": 0},
            },
            ["class"],
        ),
        retry=SCENARIO_RETRY,
    )
    async def fail(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        message = str(input.get("message", "conformance failure"))
        code = input.get("code")
        kind = input.get("class")
        if kind == "retryable":
            raise RetryableError(message, code=code)
        if kind == "permanent":
            raise PermanentError(message, code=code)
        if kind == "rate_limited":
            after = input.get("retry_after_ms")
            raise RateLimitedError(
                message, retry_after=None if after is None else after / 1000, code=code
            )
        raise PermanentError(f"unknown class {kind!r}")

    @worker.agent(
        "conf-sleep",
        description="Sleeps `ms` milliseconds, cooperatively cancellable.",
        input_schema=_object_schema({"ms": {"type": "integer", "minimum": 0}}, ["ms"]),
        timeout=SLEEP_TIMEOUT,
        retry=SCENARIO_RETRY,
    )
    async def sleep(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        ms = int(input["ms"])
        await ctx.log("info", f"sleeping {ms} ms")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(ctx.cancel_event.wait(), ms / 1000)
        if ctx.cancelled:
            raise RetryableError("cancelled while sleeping", code="cancelled")
        return {"slept_ms": ms, "worker": name}

    @worker.agent(
        "conf-steps",
        description="Runs a durable step per name in `steps`; fails once after `fail_after`; "
        "pauses before `pause_in` on attempt 1.",
        input_schema=_object_schema(
            {
                "steps": {"type": "array", "items": {"type": "string"}},
                "fail_after": {"type": "string"},
                "pause_in": {"type": "string"},
            },
            ["steps"],
        ),
        retry=SCENARIO_RETRY,
    )
    async def steps(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        def run(step: str) -> Callable[[], dict[str, Any]]:
            return lambda: {"step": step, "run": ctx.attempt}

        results: list[dict[str, Any]] = []
        for step in input["steps"]:
            if ctx.attempt == 1 and step == input.get("pause_in"):
                # Long enough for the scenario to SIGKILL this worker here.
                await ctx.log("info", f"pausing in {step}")
                await asyncio.sleep(30)
            results.append(await ctx.step(step, run(step)))
            if ctx.attempt == 1 and step == input.get("fail_after"):
                raise RetryableError(f"failing after {step}", code="after_step")
        return {"results": results, "worker": name}

    @worker.agent(
        "conf-wait",
        description="Sleeps durably `sleep_ms`, then waits for the signal `signal` "
        "(up to `timeout_ms`).",
        input_schema={
            "type": "object",
            "properties": {
                "sleep_ms": {"type": "integer", "minimum": 0},
                "signal": {"type": "string"},
                "timeout_ms": {"type": "integer", "minimum": 0},
            },
            "additionalProperties": False,
        },
    )
    async def wait(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        sleep_ms = input.get("sleep_ms")
        if sleep_ms is not None:
            await ctx.sleep("nap", sleep_ms / 1000)
        payload: Any = None
        timed_out = False
        signal = input.get("signal")
        if signal is not None:
            timeout_ms = input.get("timeout_ms")
            try:
                payload = await ctx.wait_for_signal(
                    signal, timeout=None if timeout_ms is None else timeout_ms / 1000
                )
            except WaitTimeout:
                timed_out = True
        return {
            "slept": sleep_ms is not None,
            "signal": payload,
            "timed_out": timed_out,
            "run": ctx.attempt,
        }

    @worker.agent(
        "conf-parent",
        description="Spawns a `conf-echo` child per message of `messages`, then joins them.",
        input_schema=_object_schema(
            {"messages": {"type": "array", "items": {"type": "string"}}}, ["messages"]
        ),
    )
    async def parent(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        ids = [await ctx.spawn("conf-echo", {"message": m}) for m in input["messages"]]
        joined = await ctx.join(ids)
        children = [
            {"failed": child.status} if isinstance(child, ChildFailure) else child
            for child in joined
        ]
        return {"children": children, "ids": ids}

    @worker.agent(
        "conf-files",
        description="Reads the input file `doc`; stores it in upper case as `upper.txt`.",
        input_schema=_object_schema({"doc": FILE_SCHEMA}, ["doc"]),
    )
    async def files(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        file_id = input["doc"]["$file"]
        content = (await ctx.download(file_id)).decode()
        artifact = await ctx.upload("upper.txt", content.upper().encode(), "text/plain")
        return {
            "name": ctx.files[file_id].name,
            "content": content,
            "artifact": {"$file": artifact},
        }

    return worker


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    url = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
    api_key = os.environ.get("SWITCHYARD_API_KEY")
    if not api_key:
        print("set SWITCHYARD_API_KEY to an API key with the worker scope", file=sys.stderr)
        return 2
    try:
        asyncio.run(build(url, api_key).run())
    except WorkerRefusedError as e:
        print(f"worker stopped: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

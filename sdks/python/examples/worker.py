"""An example remote worker: serves `wordcount`, which counts the words of `text`, streaming
each word as partial output and reporting progress.

    SWITCHYARD_API_KEY=sy_... python examples/worker.py http://127.0.0.1:8080

Environment: SWITCHYARD_API_KEY (scope `worker`, required), WORKER_NAME, WORKER_SLOTS,
AGENT_NAME (default `wordcount`).
Stops on SIGINT/SIGTERM after finishing the tasks it runs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from switchyard import PermanentError, TaskContext, Worker, WorkerRefusedError


def build(url: str, api_key: str) -> Worker:
    worker = Worker(
        url,
        api_key=api_key,
        slots=int(os.environ.get("WORKER_SLOTS", "8")),
        name=os.environ.get("WORKER_NAME") or None,
    )

    @worker.agent(
        os.environ.get("AGENT_NAME", "wordcount"),
        description="Counts the words of `text`, streaming them as it goes.",
        input_schema={
            "type": "object",
            "properties": {
                "text": {"type": "string"},
                "delay_ms": {"type": "integer", "minimum": 0},
            },
            "required": ["text"],
        },
    )
    async def wordcount(ctx: TaskContext, input: dict[str, Any]) -> dict[str, Any]:
        text = input.get("text")
        if not isinstance(text, str):
            raise PermanentError("`text` must be a string")
        delay = float(input.get("delay_ms", 0)) / 1000
        words = text.split()
        await ctx.log("info", f"counting {len(words)} words")
        for i, word in enumerate(words):
            await ctx.partial(word)
            await ctx.progress((i + 1) / len(words))
            if delay:
                await asyncio.sleep(delay)
        return {"words": len(words), "worker": os.environ.get("WORKER_NAME", "")}

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

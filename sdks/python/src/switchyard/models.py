"""Typed views of the server's JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Statuses after which a task changes no more (until someone retries it).
FINAL_STATUSES = frozenset({"succeeded", "failed", "dead", "cancelled"})


@dataclass(frozen=True)
class Attempt:
    """One attempt of a task: which worker ran it and how it ended."""

    number: int
    status: str
    worker: str | None = None
    worker_id: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    error: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Attempt:
        return cls(
            number=int(data.get("number", 0)),
            status=str(data.get("status", "")),
            worker=data.get("worker"),
            worker_id=data.get("worker_id"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            error=data.get("error"),
        )


@dataclass(frozen=True)
class Step:
    """A durable step of a task (``ctx.step``), as ``GET /api/v1/tasks/{id}/steps`` lists it:
    a succeeded step with its ``output``, a failed one with the ``error`` of its last run."""

    name: str
    status: str
    attempt: int
    output: Any = None
    error: dict[str, Any] | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Step:
        return cls(
            name=str(data.get("name", "")),
            status=str(data.get("status", "")),
            attempt=int(data.get("attempt", 0)),
            output=data.get("output"),
            error=data.get("error"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
        )


@dataclass(frozen=True)
class Wait:
    """What a ``waiting`` task waits for (its ``wait``): ``kind`` ``sleep`` (until ``until``),
    ``signal`` (the signal ``signal``, until ``until`` if it has a timeout) or ``children``
    (the child tasks ``children``); ``name`` is the wait's step name."""

    kind: str
    name: str
    signal: str | None = None
    until: str | None = None
    children: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Wait:
        children = data.get("children") or []
        return cls(
            kind=str(data.get("kind", "")),
            name=str(data.get("name", "")),
            signal=data.get("signal"),
            until=data.get("until"),
            children=[str(c) for c in children] if isinstance(children, list) else [],
        )


@dataclass(frozen=True)
class Task:
    """A task as ``GET /api/v1/tasks/{id}`` returns it. ``raw`` keeps every field.

    ``status`` is ``queued``, ``running``, ``retrying``, ``waiting`` (its last run ended in a
    durable wait, described by ``wait``), ``succeeded``, ``failed``, ``dead`` or
    ``cancelled``."""

    id: str
    agent: str
    status: str
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    attempts: list[Attempt] = field(default_factory=list)
    priority: int = 0
    cached: bool = False
    fallback_task_id: str | None = None
    parent_id: str | None = None
    wait: Wait | None = None
    created_at: str | None = None
    finished_at: str | None = None
    seq: int = 0
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        """Whether the task reached a final status."""
        return self.status in FINAL_STATUSES

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Task:
        attempts = data.get("attempts") or []
        wait = data.get("wait")
        return cls(
            id=str(data["id"]),
            agent=str(data.get("agent", "")),
            status=str(data.get("status", "")),
            input=data.get("input"),
            output=data.get("output"),
            error=data.get("error"),
            attempts=[Attempt.from_json(a) for a in attempts if isinstance(a, dict)],
            priority=int(data.get("priority") or 0),
            cached=bool(data.get("cached", False)),
            fallback_task_id=data.get("fallback_task_id"),
            parent_id=data.get("parent_id"),
            wait=Wait.from_json(wait) if isinstance(wait, dict) else None,
            created_at=data.get("created_at"),
            finished_at=data.get("finished_at"),
            seq=int(data.get("seq") or 0),
            raw=data,
        )


def is_final_event(event: dict[str, Any]) -> bool:
    """Whether a task event is the last of its task: a result, a failure, or a cancellation."""
    kind = event.get("kind")
    if kind in ("result", "error"):
        return True
    return kind == "status" and event.get("status") == "cancelled"

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
    ``cancelled``. ``concurrency_key`` is the flow key the task is grouped under (given at
    submit or read from the input by the agent's ``concurrency_key`` pointer); ``schedule`` and
    ``scheduled_for`` (RFC 3339) are set on a task a schedule fired."""

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
    concurrency_key: str | None = None
    schedule: str | None = None
    scheduled_for: str | None = None
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
            concurrency_key=data.get("concurrency_key"),
            schedule=data.get("schedule"),
            scheduled_for=data.get("scheduled_for"),
            raw=data,
        )


@dataclass(frozen=True)
class ScheduleRun:
    """A task a schedule fired, as ``Schedule.last_runs`` lists it: its id, the tick it was
    fired for (``scheduled_for``), when it was submitted (``fired_at``) and the task's status
    (``None`` once the task is gone)."""

    task_id: str
    scheduled_for: str
    fired_at: str
    status: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleRun:
        return cls(
            task_id=str(data.get("task_id", "")),
            scheduled_for=str(data.get("scheduled_for", "")),
            fired_at=str(data.get("fired_at", "")),
            status=data.get("status"),
        )


@dataclass(frozen=True)
class Schedule:
    """A cron schedule (``GET /api/v1/schedules/{name}``): every tick of ``cron`` (5 fields, or
    6 with seconds first) in ``timezone`` submits a task of ``agent`` with ``input``, owned by
    ``owner`` (who created or last replaced it). ``overlap`` (``allow``, ``skip``,
    ``cancel_previous``) decides what a tick does while the previous task is unfinished,
    ``catchup`` (``none``, ``latest``, ``all``) what happens to ticks missed while no server
    ran (a paused schedule fires none of its pause). ``next_runs``: the next 5 fire times
    (empty while ``paused``); ``last_runs``: the latest tasks it fired, newest first. ``raw``
    keeps every field."""

    name: str
    agent: str
    cron: str
    input: Any = None
    timezone: str = "UTC"
    overlap: str = "allow"
    catchup: str = "none"
    paused: bool = False
    owner: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    next_runs: list[str] = field(default_factory=list)
    last_runs: list[ScheduleRun] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        next_runs = data.get("next_runs") or []
        last_runs = data.get("last_runs") or []
        return cls(
            name=str(data.get("name", "")),
            agent=str(data.get("agent", "")),
            cron=str(data.get("cron", "")),
            input=data.get("input"),
            timezone=str(data.get("timezone") or "UTC"),
            overlap=str(data.get("overlap") or "allow"),
            catchup=str(data.get("catchup") or "none"),
            paused=bool(data.get("paused", False)),
            owner=data.get("owner"),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            next_runs=[str(t) for t in next_runs] if isinstance(next_runs, list) else [],
            last_runs=[ScheduleRun.from_json(r) for r in last_runs if isinstance(r, dict)]
            if isinstance(last_runs, list)
            else [],
            raw=data,
        )


@dataclass(frozen=True)
class ScheduleTriggered:
    """What ``trigger_schedule`` answers: the task it submitted (``task_id``), the schedule's
    name and the time it stands for (``scheduled_for``, the moment of the trigger)."""

    task_id: str
    schedule: str
    scheduled_for: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScheduleTriggered:
        return cls(
            task_id=str(data["task_id"]),
            schedule=str(data.get("schedule", "")),
            scheduled_for=str(data.get("scheduled_for", "")),
        )


@dataclass(frozen=True)
class FileInfo:
    """A stored file (``GET /api/v1/files/{id}``): its ``id``, ``name``, ``size`` in bytes,
    ``content_type``, ``sha256`` (hex; also the content's ETag), ``created_at`` (RFC 3339) and
    ``owner`` (a user id). ``task_id`` is set on an artifact: a file a task's agent uploaded
    (``ctx.upload``). ``raw`` keeps every field."""

    id: str
    name: str
    size: int
    content_type: str
    sha256: str
    created_at: str | None = None
    owner: str | None = None
    task_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def ref(self) -> dict[str, str]:
        """The file as a reference in a task's input or output: ``{"$file": id}``."""
        return {"$file": self.id}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileInfo:
        return cls(
            id=str(data["id"]),
            name=str(data.get("name", "")),
            size=int(data.get("size") or 0),
            content_type=str(data.get("content_type") or "application/octet-stream"),
            sha256=str(data.get("sha256", "")),
            created_at=data.get("created_at"),
            owner=data.get("owner"),
            task_id=data.get("task_id"),
            raw=data,
        )


@dataclass(frozen=True)
class FilePage:
    """A page of ``list_files``: ``items`` newest first, and ``next_cursor`` to pass as
    ``cursor`` for the next page (``None`` on the last one)."""

    items: list[FileInfo]
    next_cursor: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FilePage:
        items = data.get("items") or []
        return cls(
            items=[FileInfo.from_json(f) for f in items if isinstance(f, dict)],
            next_cursor=data.get("next_cursor"),
        )


@dataclass(frozen=True)
class InputFile:
    """A file referenced in a task's input (``{"$file": id}``), as the worker's ``assign``
    describes it (``ctx.files``): ``id``, ``name``, ``size``, ``content_type``, ``sha256``, and
    ``url``, the absolute signed URL of its content (it needs no credential and expires,
    15 minutes after the assignment by default)."""

    id: str
    name: str
    size: int
    content_type: str
    sha256: str
    url: str = field(repr=False)


def is_final_event(event: dict[str, Any]) -> bool:
    """Whether a task event is the last of its task: a result, a failure, or a cancellation."""
    kind = event.get("kind")
    if kind in ("result", "error"):
        return True
    return kind == "status" and event.get("status") == "cancelled"

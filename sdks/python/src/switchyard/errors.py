"""Errors: what the server answers (`SwitchyardError`) and how a handler classifies a failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class SwitchyardError(Exception):
    """An error answered by the server (`{"error": {"code", "message", "details"?}}`), or a
    refusal of the worker's connection.

    ``code`` is the server's stable snake_case code (``unauthorized``, ``validation_failed``,
    ``unknown_agent``, ``not_found``, ``invalid_state``, …); ``status`` the HTTP status (``None``
    for errors that arrive over a WebSocket); ``details`` the server's details, e.g.
    ``{"violations": [{"path": "/text", "keyword": "required", "message": …}]}``.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        status: int | None = None,
        details: Any = None,
        request_id: str | None = None,
    ) -> None:
        self.code = code
        self.message = message
        self.status = status
        self.details = details
        self.request_id = request_id
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.code}: {self.message}"
        if self.status is not None:
            text = f"{text} (HTTP {self.status})"
        for violation in self.violations:
            where = violation.get("path") or violation.get("pointer") or "/"
            text += f"\n  {where}: {violation.get('message', '')}"
        return text

    @property
    def violations(self) -> list[dict[str, Any]]:
        """The per-field violations of a ``validation_failed`` error (JSON pointer ``path``,
        ``keyword``, ``message``; some name it ``pointer``); empty for other errors."""
        if isinstance(self.details, dict):
            found = self.details.get("violations")
            if isinstance(found, list):
                return [v for v in found if isinstance(v, dict)]
        return []


class WorkerRefusedError(SwitchyardError):
    """The server refused the worker: a wrong or revoked key, a key without the ``worker``
    scope, or a ``hello`` it rejected (e.g. a built-in agent's name). Not retried."""


class TaskError(Exception):
    """A classified failure of one attempt. Raise a subclass from a handler."""

    error_class: str = "retryable"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    @property
    def retry_after_ms(self) -> int | None:
        return None


class RetryableError(TaskError):
    """Worth retrying (the default for unexpected exceptions and timeouts): the task is tried
    again after the agent's backoff, until its retry policy runs out."""

    error_class = "retryable"


class PermanentError(TaskError):
    """Will fail the same way again (bad input): no retries, straight to the fallback or
    the dead-letter queue."""

    error_class = "permanent"


class RateLimitedError(TaskError):
    """The downstream asked to slow down; retry after ``retry_after`` seconds, if known."""

    error_class = "rate_limited"

    def __init__(
        self, message: str, *, retry_after: float | None = None, code: str | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after

    @property
    def retry_after_ms(self) -> int | None:
        if self.retry_after is None:
            return None
        return max(0, round(self.retry_after * 1000))


class WaitTimeout(PermanentError):
    """``ctx.wait_for_signal(name, timeout=…)`` timed out: the signal ``signal`` did not come
    in time. The handler may catch it; uncaught, it fails the attempt ``permanent`` with code
    ``wait_timeout`` (a retry would time out again: the timeout is recorded on the wait's
    step)."""

    def __init__(self, signal: str) -> None:
        super().__init__(f"the wait for signal {signal!r} timed out", code="wait_timeout")
        self.signal = signal


@dataclass(frozen=True)
class ChildFailure:
    """What ``ctx.join`` returns in place of the output of a child task that did not succeed:
    its id, its final status (``failed``, ``dead`` or ``cancelled``) and its error
    (``{"class", "code", "message", …}``, or ``None`` for a cancellation without one)."""

    task_id: str
    status: str
    error: dict[str, Any] | None = None


class ChildTaskFailed(PermanentError):
    """Raised by ``ctx.join(ids, raise_on_failure=True)`` for the first child task that did not
    succeed (``failure``). Uncaught, it fails the attempt ``permanent`` with code
    ``child_failed``: the join's result is recorded, so a retry would meet the same failure."""

    def __init__(self, failure: ChildFailure) -> None:
        reason = ""
        if failure.error is not None and failure.error.get("message"):
            reason = f": {failure.error['message']}"
        super().__init__(
            f"child task {failure.task_id} ended {failure.status}{reason}", code="child_failed"
        )
        self.failure = failure


class UnknownFileError(PermanentError, KeyError):
    """``ctx.download(file_id)`` of a file that is not among the task's input files
    (``ctx.files``: those referenced as ``{"$file": id}`` in its input). A ``KeyError`` to
    catch; uncaught, it fails the attempt ``permanent`` with code ``unknown_file`` (a retry
    would ask for the same file)."""

    def __init__(self, file_id: str) -> None:
        super().__init__(
            f"file {file_id!r} is not among this task's input files (ctx.files): a handler "
            'downloads the files its input references as {"$file": id}',
            code="unknown_file",
        )
        self.file_id = file_id

    def __str__(self) -> str:
        return self.message

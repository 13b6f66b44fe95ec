"""Switchyard Python SDK: submit and follow tasks (:class:`Client`) and serve agents as a
remote worker (:class:`Worker`)."""

__version__ = "0.1.0"

from ._http import FileData
from .client import Client, ScheduleCatchup, ScheduleOverlap
from .errors import (
    ChildFailure,
    ChildTaskFailed,
    PermanentError,
    RateLimitedError,
    RetryableError,
    SwitchyardError,
    TaskError,
    UnknownFileError,
    WaitTimeout,
    WorkerRefusedError,
)
from .models import (
    Attempt,
    FileInfo,
    FilePage,
    InputFile,
    Schedule,
    ScheduleRun,
    ScheduleTriggered,
    Step,
    Task,
    Wait,
    is_final_event,
)
from .worker import AgentSpec, RetryPolicy, TaskContext, Worker

__all__ = [
    "AgentSpec",
    "Attempt",
    "ChildFailure",
    "ChildTaskFailed",
    "Client",
    "FileData",
    "FileInfo",
    "FilePage",
    "InputFile",
    "PermanentError",
    "RateLimitedError",
    "RetryPolicy",
    "RetryableError",
    "Schedule",
    "ScheduleCatchup",
    "ScheduleOverlap",
    "ScheduleRun",
    "ScheduleTriggered",
    "Step",
    "SwitchyardError",
    "Task",
    "TaskContext",
    "TaskError",
    "UnknownFileError",
    "Wait",
    "WaitTimeout",
    "Worker",
    "WorkerRefusedError",
    "__version__",
    "is_final_event",
]

"""Switchyard Python SDK: submit and follow tasks (:class:`Client`) and serve agents as a
remote worker (:class:`Worker`)."""

__version__ = "0.1.0"

from .client import Client
from .errors import (
    PermanentError,
    RateLimitedError,
    RetryableError,
    SwitchyardError,
    TaskError,
    WorkerRefusedError,
)
from .models import Attempt, Step, Task, is_final_event
from .worker import AgentSpec, RetryPolicy, TaskContext, Worker

__all__ = [
    "AgentSpec",
    "Attempt",
    "Client",
    "PermanentError",
    "RateLimitedError",
    "RetryPolicy",
    "RetryableError",
    "Step",
    "SwitchyardError",
    "Task",
    "TaskContext",
    "TaskError",
    "Worker",
    "WorkerRefusedError",
    "__version__",
    "is_final_event",
]

"""The job queue interface: submit, status with progress, cancel, wait, list.

A backend keeps each job's state where every process that serves or runs jobs can see it (the
embedded pool: a dict in this process). The work itself is the Service's data path; the queue hands
it a progress callback that reports progress into that state and stops the work, by raising
Cancelled inside the worker, once the job's state says a cancel was asked for. So cancel is a state
that the worker checks, wherever the worker runs.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable

STATUSES = ("queued", "running", "done", "error", "cancelled")
ACTIVE = ("queued", "running")

Work = Callable[[str, dict, Callable[..., None]], Any]
"""work(job_id, payload, progress): what a worker runs; payload is JSON-serialisable."""


class Cancelled(Exception):
    """Raised in the worker by the progress callback once the job's state says 'cancel'."""


@dataclass
class JobState:
    """What anyone may know about a job: the five public statuses, progress 0-1, a message, and
    for an error its message, field and HTTP status."""
    id: str
    status: str = "queued"
    progress: float = 0.0
    message: str = ""
    error: dict | None = None
    created: float = field(default_factory=time.time)
    cancel_requested: bool = False

    def public(self) -> dict:
        return {"id": self.id, "status": self.status, "progress": round(self.progress, 3),
                "message": self.message, "error": self.error}

    @property
    def finished(self) -> bool:
        return self.status not in ACTIVE


class JobQueue(ABC):
    """One interface for every backend. `workers` is how many jobs run at once."""
    workers: int = 1

    @abstractmethod
    def submit(self, job_id: str, payload: dict) -> JobState:
        """Queue work(job_id, payload, progress); Busy (429) when the queue is full."""

    @abstractmethod
    def status(self, job_id: str) -> JobState:
        """The job's state; NotFound when the queue does not know it (any more)."""

    @abstractmethod
    def cancel(self, job_id: str) -> JobState:
        """Ask the job to stop: a queued job never starts, a running one stops at its next progress
        report. Finished jobs are left as they are."""

    @abstractmethod
    def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        """Block until the job is finished or timeout seconds passed; the state either way."""

    @abstractmethod
    def list(self) -> list[JobState]:
        """The jobs the queue knows, newest first."""

    def pending(self) -> int:
        return sum(not j.finished for j in self.list())

    def close(self) -> None:
        """Stop taking work (tests and shutdown)."""

"""A bounded worker pool for generations: progress, cancel, and refusal when saturated."""
from __future__ import annotations

import threading
import time
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import Busy, MelodyMakerError, NotFound


class Cancelled(Exception):
    """Raised inside a job's progress callback after the user cancelled it."""


@dataclass
class Job:
    id: str
    status: str = "queued"           # queued | running | done | error | cancelled
    progress: float = 0.0
    message: str = ""
    created: float = field(default_factory=time.time)
    error: dict | None = None
    result: Any = None
    cancel_requested: bool = False
    future: Future | None = None

    def public(self) -> dict:
        return {"id": self.id, "status": self.status, "progress": round(self.progress, 3),
                "message": self.message, "error": self.error}


class JobQueue:
    """Runs work(job_id, progress) on `workers` threads; at most max_pending wait in line."""

    def __init__(self, workers: int, max_pending: int, keep: int = 500):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generate")
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self.workers, self.max_pending, self.keep = workers, max_pending, keep

    def pending(self) -> int:
        with self._lock:
            return sum(j.status in ("queued", "running") for j in self._jobs.values())

    def submit(self, job_id: str, work: Callable[[str, Callable], Any]) -> Job:
        with self._lock:
            busy = sum(j.status in ("queued", "running") for j in self._jobs.values())
            if busy >= self.workers + self.max_pending:
                raise Busy(f"{busy} generations are already queued; try again in a few seconds")
            job = Job(job_id)
            self._jobs[job_id] = job
            self._forget_old()
        job.future = self._pool.submit(self._run, job, work)
        return job

    def _run(self, job: Job, work: Callable) -> None:
        if job.cancel_requested:
            job.status = "cancelled"
            return
        job.status = "running"

        def progress(fraction: float, message: str = "") -> None:
            if job.cancel_requested:
                raise Cancelled()
            job.progress = max(job.progress, min(1.0, float(fraction)))
            job.message = message

        try:
            job.result = work(job.id, progress)
            job.progress, job.status, job.message = 1.0, "done", "done"
        except Cancelled:
            job.status, job.message = "cancelled", "cancelled by the user"
        except MelodyMakerError as e:
            job.status = "error"
            job.error = {"message": e.message, "field": e.field, "status": e.status}
        except Exception as e:  # an engine bug must not kill the worker; report it
            job.status = "error"
            job.error = {"message": f"generation failed: {type(e).__name__}: {e}", "field": None,
                         "status": 500}

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", field="id")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.status in ("queued", "running"):
            job.cancel_requested = True
            if job.future is not None and job.future.cancel():
                job.status = "cancelled"
        return job

    def wait(self, job: Job, timeout: float | None = None) -> Job:
        if job.future is not None:
            try:
                job.future.result(timeout=timeout)
            except CancelledError:  # cancelled while still queued
                job.status = "cancelled"
        return job

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.status not in ("queued", "running")]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[j.id]

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

"""The embedded backend: a bounded thread pool in this process, job state in a dict."""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from ..errors import Busy, MelodyMakerError, NotFound
from .base import Cancelled, JobQueue, JobState, Work


class EmbeddedQueue(JobQueue):
    """Runs work on `workers` threads; at most `max_pending` more wait in line; remembers the newest
    `keep` finished jobs."""

    def __init__(self, work: Work, *, workers: int, max_pending: int, keep: int = 500):
        self._work = work
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generate")
        self._jobs: dict[str, JobState] = {}
        self._futures: dict[str, Future] = {}
        self._lock = threading.Lock()
        self.workers, self.max_pending, self.keep = workers, max_pending, keep

    def submit(self, job_id: str, payload: dict) -> JobState:
        with self._lock:
            busy = sum(not j.finished for j in self._jobs.values())
            if busy >= self.workers + self.max_pending:
                raise Busy(f"{busy} generations are already queued; try again in a few seconds")
            job = self._jobs[job_id] = JobState(job_id)
            self._forget_old()
            self._futures[job_id] = self._pool.submit(self._run, job, payload)
        return job

    def _run(self, job: JobState, payload: dict) -> None:
        if job.cancel_requested:
            job.status, job.message = "cancelled", "cancelled by the user"
            return
        job.status = "running"

        def progress(fraction: float, message: str = "") -> None:
            if job.cancel_requested:  # the state the worker checks
                raise Cancelled()
            job.progress = max(job.progress, min(1.0, float(fraction)))
            job.message = message

        try:
            self._work(job.id, payload, progress)
            job.progress, job.status, job.message = 1.0, "done", "done"
        except Cancelled:
            job.status, job.message = "cancelled", "cancelled by the user"
        except MelodyMakerError as e:
            job.status, job.message = "error", e.message
            job.error = {"message": e.message, "field": e.field, "status": e.status}
        except Exception as e:  # an engine bug must not kill the worker; report it
            message = f"generation failed: {type(e).__name__}: {e}"
            job.status, job.message = "error", message
            job.error = {"message": message, "field": None, "status": 500}

    def status(self, job_id: str) -> JobState:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}", field="id")
        return job

    def cancel(self, job_id: str) -> JobState:
        job = self.status(job_id)
        if not job.finished:
            job.cancel_requested = True
            future = self._futures.get(job_id)
            if future is not None and future.cancel():  # never started
                job.status, job.message = "cancelled", "cancelled by the user"
        return job

    def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        job = self.status(job_id)
        future = self._futures.get(job_id)
        if future is not None and not job.finished:
            try:  # _run catches everything, so result() only raises on a cancel or a timeout
                future.result(timeout=timeout)
            except Exception:  # cancelled before it started, or timed out: the state says which
                pass
        return job

    def list(self) -> list[JobState]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: -j.created)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.finished]
        for j in sorted(finished, key=lambda j: j.created)[: max(0, len(self._jobs) - self.keep)]:
            del self._jobs[j.id]
            self._futures.pop(j.id, None)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

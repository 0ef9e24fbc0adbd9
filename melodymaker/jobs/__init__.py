"""Generation jobs: one queue interface (base.JobQueue) and its backends.

The embedded thread pool is the default. MELODYMAKER_QUEUE=redis://HOST:PORT/DB puts the jobs on RQ
workers over Redis (redis_queue.py; the workers: melodymaker/worker.py). A new backend is one module
here implementing JobQueue, chosen in `open_queue` from the settings.
"""
from __future__ import annotations

from .base import ACTIVE, STATUSES, Cancelled, JobQueue, JobState, Work
from .embedded import EmbeddedQueue

__all__ = ["ACTIVE", "STATUSES", "Cancelled", "EmbeddedQueue", "JobQueue", "JobState", "Work", "open_queue"]


def open_queue(settings, work: Work) -> JobQueue:
    """The queue the settings ask for: the embedded pool, or RQ over Redis (QueueUnavailable when
    Redis cannot be reached: no silent fallback, which would split job state between processes)."""
    if not settings.queue:
        return EmbeddedQueue(work, workers=settings.workers, max_pending=settings.max_queue)
    if not settings.queue.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"MELODYMAKER_QUEUE={settings.queue!r}: use redis://HOST:PORT/DB "
                         "(or leave it empty for the embedded pool)")
    from .redis_queue import RedisQueue
    return RedisQueue(settings.queue, max_pending=settings.max_queue, job_timeout=settings.job_timeout,
                      routes=settings.queue_routes)

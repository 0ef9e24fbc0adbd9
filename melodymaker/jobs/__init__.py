"""Generation jobs: one queue interface (base.JobQueue) and its backends.

The embedded thread pool is the default. A new backend (such as RQ over Redis) is one module here
implementing JobQueue, chosen in `open_queue` from the settings.
"""
from __future__ import annotations

from .base import ACTIVE, STATUSES, Cancelled, JobQueue, JobState, Work
from .embedded import EmbeddedQueue

__all__ = ["ACTIVE", "STATUSES", "Cancelled", "EmbeddedQueue", "JobQueue", "JobState", "Work", "open_queue"]


def open_queue(settings, work: Work) -> JobQueue:
    """The queue the settings ask for; today the embedded pool."""
    return EmbeddedQueue(work, workers=settings.workers, max_pending=settings.max_queue)

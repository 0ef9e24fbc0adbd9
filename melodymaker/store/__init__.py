"""Where finished tracks live: one interface (base.TrackStore) and its backends.

The directory store is the default; pointed at a shared folder it serves several processes. A new
backend (object storage, say) is one module here implementing TrackStore, chosen in `open_store`.
"""
from __future__ import annotations

from .base import ID_PATTERN, TrackStore, check_id, new_id
from .directory import DirectoryStore

__all__ = ["ID_PATTERN", "DirectoryStore", "TrackStore", "check_id", "new_id", "open_store"]


def open_store(settings) -> TrackStore:
    """The store the settings ask for; today a directory (settings.store_dir)."""
    return DirectoryStore(settings.store_dir, settings.max_tracks, stale_after=settings.job_timeout)

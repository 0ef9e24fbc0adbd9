"""The track store interface: save atomically, metadata, a file per format, list, delete, a size limit.

A track becomes visible only once complete, so a worker in another process writing into a shared
store while web processes read it is an ordinary case.
"""
from __future__ import annotations

import re
import uuid
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from ..errors import NotFound
from ..formats import Format
from ..track import Track

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    return uuid.uuid4().hex


def check_id(track_id) -> str:
    if not isinstance(track_id, str) or not ID_PATTERN.match(track_id):
        raise NotFound(f"no track {track_id!r}", field="id")
    return track_id


class TrackStore(ABC):
    """Finished tracks by id. max_tracks: the newest this many are kept."""
    max_tracks: int

    @abstractmethod
    def save(self, track: Track, meta: dict, track_id: str | None = None, *,
             embedding: np.ndarray | None = None) -> str:
        """Write the track (master audio, score, metadata, embedding) atomically; returns its id."""

    @abstractmethod
    def meta(self, track_id: str) -> dict:
        """The track's metadata; NotFound when there is no finished track with that id."""

    @abstractmethod
    def track(self, track_id: str) -> Track:
        """The stored Track: master audio, sample rate, score (when it has one), metadata."""

    @abstractmethod
    def embedding(self, track_id: str) -> np.ndarray | None:
        """The classifier embedding saved with the track, if any."""

    @abstractmethod
    def file(self, track_id: str, fmt: Format) -> Path:
        """A local file of the track in fmt, encoded once on first request and then reused."""

    @abstractmethod
    def stems(self, track_id: str) -> Path:
        """The track's stems.zip (formats.stems_zip); NotFound when it was stored without stems."""

    @abstractmethod
    def list(self, limit: int = 50) -> list[dict]:
        """Metadata of the newest tracks, newest first."""

    @abstractmethod
    def delete(self, track_id: str) -> None:
        """Remove a track; NotFound when there is none."""

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


def doomed(metas: list[dict], max_tracks: int) -> list[str]:
    """Ids to prune from metas (newest first) so that max_tracks units are left: a unit is a track,
    or a group of variations counted once at its newest member; the parents of kept tracks stay."""
    units: dict[str, list[dict]] = {}
    for meta in metas:
        units.setdefault((meta.get("group") or {}).get("id") or meta["id"], []).append(meta)
    ordered = list(units)               # newest unit first (dicts keep insertion order)
    kept = {m["id"] for unit in ordered[:max_tracks] for m in units[unit]}
    by_id = {m["id"]: m for m in metas}
    for track_id in list(kept):         # a kept track's parents, and theirs
        parent = by_id.get(track_id, {}).get("parent")
        while parent and parent in by_id and parent not in kept:
            kept.add(parent)
            parent = by_id[parent].get("parent")
    return [m["id"] for m in metas if m["id"] not in kept]


def check_id(track_id) -> str:
    if not isinstance(track_id, str) or not ID_PATTERN.match(track_id):
        raise NotFound(f"no track {track_id!r}", field="id")
    return track_id


class TrackStore(ABC):
    """Finished tracks by id. max_tracks: the newest this many are kept, where a group of variations
    (meta["group"]["id"]) counts as one and goes as one, and a track that a kept track extends
    (its meta["parent"]) is kept with it."""
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
    def context(self, track_id: str) -> np.ndarray | None:
        """The raw audio kept for extending the track (Track.context), if any."""

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
    def update_meta(self, track_id: str, **fields) -> dict:
        """Set top-level metadata fields of a finished track atomically; its new metadata."""

    @abstractmethod
    def list(self, limit: int = 50) -> list[dict]:
        """Metadata of the newest tracks, newest first."""

    @abstractmethod
    def delete(self, track_id: str) -> None:
        """Remove a track; NotFound when there is none."""

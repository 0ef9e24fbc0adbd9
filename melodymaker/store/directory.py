"""The directory store: root/<id>/{audio.wav, meta.json, score.mid?, embedding.npy?, other encodings}.

audio.wav is 16-bit PCM at the track's rate, mono or stereo as the track is (Track.audio: (n,) or
(n, 2); soundfile writes and reads both), and reads back in the same shape.

A track is written into root/.tmp-<id>/ and renamed into place when complete (one rename: atomic on
one filesystem, NFS included), so readers never see half a track. Temporary folders left by a
process killed mid-write are removed only once they are older than the longest job can run, since
a younger one may belong to another process writing right now.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from .. import formats
from ..errors import NotFound
from ..formats import Format
from ..track import Track
from .base import ID_PATTERN, TrackStore, check_id, doomed, new_id

TMP_PREFIX = ".tmp-"
CONTEXT_FILE = "context.wav"


class DirectoryStore(TrackStore):
    def __init__(self, root: Path, max_tracks: int = 200, *, stale_after: float = 3600.0):
        self.root = Path(root)
        self.max_tracks = max_tracks
        self.stale_after = stale_after
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self.sweep()

    def sweep(self, now: float | None = None) -> list[str]:
        """Remove temporary folders and files older than stale_after seconds; returns their names."""
        now = time.time() if now is None else now
        removed = []
        for entry in self.root.iterdir():
            if not entry.name.startswith(TMP_PREFIX):
                continue
            try:
                if now - entry.stat().st_mtime < self.stale_after:
                    continue  # perhaps another process is writing it right now
            except FileNotFoundError:
                continue
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed.append(entry.name)
        return removed

    def _folder(self, track_id: str) -> Path:
        folder = self.root / check_id(track_id)
        if not (folder / "meta.json").exists():
            raise NotFound(f"no track {track_id}", field="id")
        return folder

    def save(self, track: Track, meta: dict, track_id: str | None = None, *,
             embedding: np.ndarray | None = None) -> str:
        track_id = check_id(track_id or new_id())
        tmp = self.root / f"{TMP_PREFIX}{track_id}"
        tmp.mkdir(parents=True)
        if meta.get("loop"):  # the master WAV carries the loop points (its smpl chunk)
            (tmp / formats.MASTER.filename({})).write_bytes(formats.MASTER.encode(track))
        else:
            sf.write(tmp / formats.MASTER.filename({}), track.audio, track.sr, subtype="PCM_16")
        if embedding is not None:
            np.save(tmp / "embedding.npy", np.asarray(embedding, dtype=np.float32))
        if track.context is not None:
            sf.write(tmp / CONTEXT_FILE, track.context, track.context_sr or track.sr, subtype="FLOAT")
        if track.midi is not None:
            track.midi.write(str(tmp / "score.mid"))
        if track.stems:
            (tmp / formats.STEMS_FILE).write_bytes(formats.stems_zip(track))
        meta = {**meta, "id": track_id, "created": time.time(), "has_score": track.midi is not None}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.root / track_id)
        self._prune()
        return track_id

    def meta(self, track_id: str) -> dict:
        return json.loads((self._folder(track_id) / "meta.json").read_text())

    def track(self, track_id: str) -> Track:
        folder = self._folder(track_id)
        meta = json.loads((folder / "meta.json").read_text())
        y, sr = sf.read(folder / formats.MASTER.filename(meta), dtype="float32")
        score = None
        if (folder / "score.mid").exists():
            import pretty_midi
            score = pretty_midi.PrettyMIDI(str(folder / "score.mid"))
        return Track(y, sr, score, meta)

    def update_meta(self, track_id: str, **fields) -> dict:
        folder = self._folder(track_id)
        with self._lock:
            meta = {**json.loads((folder / "meta.json").read_text()), **fields}
            tmp = folder / f"{TMP_PREFIX}meta.{uuid.uuid4().hex}"
            tmp.write_text(json.dumps(meta, indent=1))
            os.replace(tmp, folder / "meta.json")   # readers see the old or the new, never half
        return meta

    def context(self, track_id: str) -> np.ndarray | None:
        path = self._folder(track_id) / CONTEXT_FILE
        return sf.read(path, dtype="float32")[0] if path.exists() else None

    def embedding(self, track_id: str) -> np.ndarray | None:
        path = self._folder(track_id) / "embedding.npy"
        return np.load(path, allow_pickle=False) if path.exists() else None

    def file(self, track_id: str, fmt: Format) -> Path:
        folder = self._folder(track_id)
        target = folder / fmt.filename(json.loads((folder / "meta.json").read_text()))
        if target.exists():
            return target
        data = fmt.encode(self.track(track_id))
        tmp = folder / f"{TMP_PREFIX}{target.name}.{uuid.uuid4().hex}"
        tmp.write_bytes(data)
        os.replace(tmp, target)  # concurrent first requests both write; either result is whole
        return target

    def stems(self, track_id: str) -> Path:
        path = self._folder(track_id) / formats.STEMS_FILE
        if not path.exists():
            raise NotFound(f"track {track_id} was stored without stems", field="id")
        return path

    def list(self, limit: int = 50) -> list[dict]:
        metas = []
        for folder in self.root.iterdir():
            if ID_PATTERN.match(folder.name) and (folder / "meta.json").exists():
                try:
                    metas.append(json.loads((folder / "meta.json").read_text()))
                except (OSError, ValueError):
                    continue
        metas.sort(key=lambda m: m.get("created", 0), reverse=True)
        return metas[:limit]

    def delete(self, track_id: str) -> None:
        folder = self._folder(track_id)
        # rename first so a reader sees the whole track or none of it
        doomed = self.root / f"{TMP_PREFIX}deleted-{track_id}-{uuid.uuid4().hex[:8]}"
        os.replace(folder, doomed)
        shutil.rmtree(doomed, ignore_errors=True)

    def _prune(self) -> None:
        with self._lock:
            for track_id in doomed(self.list(limit=10**9), self.max_tracks):
                try:
                    self.delete(track_id)
                except (NotFound, OSError):
                    continue  # another process pruned it first

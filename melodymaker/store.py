"""Generated tracks on disk: one folder per id, written atomically, encodings cached on demand."""
from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import soundfile as sf

from . import audio, midi
from .errors import NotFound
from .options import EXTENSIONS
from .track import Track

ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def new_id() -> str:
    return uuid.uuid4().hex


class Store:
    """root/<id>/{audio.wav, meta.json, score.mid?, audio.mp3?}; a folder appears only when complete."""

    def __init__(self, root: Path, max_tracks: int = 200):
        self.root = Path(root)
        self.max_tracks = max_tracks
        self._lock = threading.Lock()
        self.root.mkdir(parents=True, exist_ok=True)
        self._sweep()

    def _sweep(self) -> None:
        """Remove temporary folders left by a process that was killed mid-write."""
        for entry in self.root.iterdir():
            if entry.name.startswith(".tmp-"):
                shutil.rmtree(entry, ignore_errors=True)

    def path(self, track_id: str) -> Path:
        if not isinstance(track_id, str) or not ID_PATTERN.match(track_id):
            raise NotFound(f"no track {track_id!r}", field="id")
        folder = self.root / track_id
        if not (folder / "meta.json").exists():
            raise NotFound(f"no track {track_id}", field="id")
        return folder

    def save(self, track: Track, meta: dict, track_id: str | None = None, *,
             embedding: np.ndarray | None = None) -> str:
        track_id = track_id or new_id()
        tmp = self.root / f".tmp-{track_id}"
        tmp.mkdir(parents=True)
        sf.write(tmp / "audio.wav", track.audio, track.sr, subtype="PCM_16")
        if embedding is not None:
            np.save(tmp / "embedding.npy", np.asarray(embedding, dtype=np.float32))
        if track.midi is not None:
            track.midi.write(str(tmp / "score.mid"))
        meta = {**meta, "id": track_id, "created": time.time(), "has_score": track.midi is not None}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        os.replace(tmp, self.root / track_id)
        self._prune()
        return track_id

    def meta(self, track_id: str) -> dict:
        return json.loads((self.path(track_id) / "meta.json").read_text())

    def audio(self, track_id: str) -> np.ndarray:
        y, _ = sf.read(self.path(track_id) / "audio.wav", dtype="float32")
        return y

    def embedding(self, track_id: str) -> np.ndarray | None:
        path = self.path(track_id) / "embedding.npy"
        return np.load(path, allow_pickle=False) if path.exists() else None

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

    def file(self, track_id: str, fmt: str) -> Path:
        """The track encoded as wav, mp3 or midi; made once, then served from disk."""
        folder = self.path(track_id)
        if fmt == "wav":
            return folder / "audio.wav"
        target = folder / ("score.mid" if fmt == "midi" else f"audio.{EXTENSIONS[fmt]}")
        if fmt == "midi" and not target.exists():
            target = folder / "transcription.mid"
        if target.exists():
            return target
        y, sr = sf.read(folder / "audio.wav", dtype="float32")
        if fmt == "mp3":
            data = audio.encode(y, sr, "mp3")
        else:
            tempo = self.meta(track_id).get("tempo")
            data = midi.to_bytes(midi.transcribe(y, sr, tempo=tempo))
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)
        return target

    def _prune(self) -> None:
        with self._lock:
            metas = self.list(limit=10**9)
            for meta in metas[self.max_tracks:]:
                shutil.rmtree(self.root / meta["id"], ignore_errors=True)

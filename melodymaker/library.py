"""The genres/ library: scan, validate, analyse (duration, tempo, beats) and cache on disk."""
from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import audio
from .errors import AudioDecodeError, NotFound
from .options import AUDIO_EXTENSIONS, GENRES, SAMPLE_RATE

CACHE_VERSION = 1
MAX_CLIP_SECONDS = 15 * 60  # a longer file is skipped: the library is of songs, not albums


@dataclass
class Clip:
    """One audio file of the library, with its cached analysis (None until analysed)."""
    genre: str
    name: str                      # file name inside genres/<genre folder>/
    path: Path
    size: int
    mtime_ns: int
    duration: float | None = None
    tempo: float | None = None
    beats: list[float] | None = None

    @property
    def key(self) -> str:
        return f"{self.genre}/{self.name}"

    def public(self) -> dict:
        return {"genre": self.genre, "name": self.name, "duration": self.duration,
                "tempo": self.tempo, "url": f"/api/library/{self.genre}/{self.name}"}


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class Library:
    """An index of genres/<genre>/<file>. Nothing outside root is ever opened."""
    root: Path
    cache_dir: Path | None = None
    clips: dict[str, list[Clip]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    def __post_init__(self):
        self.root = Path(self.root)
        self._lock = threading.Lock()

    # -- scanning ---------------------------------------------------------------------------
    def scan(self) -> "Library":
        """Index every audio file; unreadable ones go to `skipped` with the reason."""
        clips: dict[str, list[Clip]] = {g: [] for g in GENRES}
        skipped: list[Skipped] = []
        self._sweep_cache_temps()
        cached = self._read_cache()
        root = self.root.resolve() if self.root.exists() else self.root
        folders = {}
        if self.root.is_dir():
            for entry in sorted(self.root.iterdir()):
                if entry.is_dir() and entry.name.lower() in GENRES and not entry.is_symlink():
                    folders.setdefault(entry.name.lower(), []).append(entry)
        for genre, dirs in folders.items():
            for folder in dirs:
                for path in sorted(folder.iterdir()):
                    clip, reason = self._index_file(genre, path, root)
                    if clip is not None:
                        old = cached.get(clip.key)
                        if old and old.get("size") == clip.size and old.get("mtime_ns") == clip.mtime_ns:
                            clip.duration, clip.tempo = old.get("duration"), old.get("tempo")
                            clip.beats = old.get("beats")
                            if old.get("error"):
                                skipped.append(Skipped(str(path.relative_to(self.root)), old["error"]))
                                continue
                        clips[genre].append(clip)
                    elif reason:
                        skipped.append(Skipped(str(path.relative_to(self.root)), reason))
        with self._lock:
            self.clips, self.skipped = clips, skipped
        return self

    @staticmethod
    def _index_file(genre: str, path: Path, root: Path) -> tuple[Clip | None, str | None]:
        if path.name.startswith(".") or path.suffix.lower() == ".json":
            return None, None  # hidden files and the builder's sidecars are not clips
        if path.suffix.lower() not in AUDIO_EXTENSIONS:
            return None, f"not an audio file extension ({', '.join(AUDIO_EXTENSIONS)})"
        try:
            real = path.resolve(strict=True)
        except (OSError, RuntimeError):
            return None, "broken link"
        if path.is_symlink() and not real.is_relative_to(root):
            return None, "link to a file outside the library (not followed)"
        if not real.is_file():
            return None, "not a regular file"
        st = real.stat()
        if st.st_size == 0:
            return None, "empty file"
        try:
            info = audio.probe(real)
        except AudioDecodeError as e:
            return None, e.message
        if info.frames / info.samplerate > MAX_CLIP_SECONDS:
            return None, f"too long ({info.frames / info.samplerate / 60:.0f} min; limit {MAX_CLIP_SECONDS // 60} min)"
        return Clip(genre, path.name, real, st.st_size, st.st_mtime_ns,
                    duration=info.frames / info.samplerate), None

    # -- queries ------------------------------------------------------------------------------
    def genre_clips(self, genre: str) -> list[Clip]:
        return list(self.clips.get(genre.lower(), []))

    def all_clips(self) -> list[Clip]:
        return [c for g in GENRES for c in self.clips.get(g, [])]

    def __len__(self) -> int:
        return sum(len(v) for v in self.clips.values())

    def genre_tempo(self, genre: str) -> float | None:
        """The median tempo of the genre's analysed clips (None before three are analysed)."""
        tempi = [c.tempo for c in self.genre_clips(genre) if c.tempo]
        return float(np.median(tempi)) if len(tempi) >= 3 else None

    def counts(self) -> dict[str, int]:
        return {g: len(self.clips.get(g, [])) for g in GENRES}

    def find(self, genre: str, name: str) -> Clip:
        """The indexed clip called `name` in `genre`; never builds a path from user input."""
        for clip in self.clips.get(str(genre).lower(), []):
            if clip.name == name:
                return clip
        raise NotFound(f"no library clip {genre}/{name}", field="name")

    # -- audio and analysis -------------------------------------------------------------------
    def load(self, clip: Clip, sr: int = SAMPLE_RATE) -> np.ndarray:
        return audio.load(clip.path, sr)

    def analyse_all(self, save_every: int = 25) -> int:
        """Analyse every clip not analysed yet (a background warm-up); returns how many."""
        todo = [c for c in self.all_clips() if c.tempo is None or c.beats is None]
        for k, clip in enumerate(todo, 1):
            try:
                self.analyse(clip, save=k % save_every == 0 or k == len(todo))
            except AudioDecodeError:
                continue
        return len(todo)

    def analyse(self, clip: Clip, y: np.ndarray | None = None, *, save: bool = True) -> Clip:
        """Duration, tempo and beat times, cached on disk until the file changes."""
        if clip.tempo is not None and clip.beats is not None:
            return clip
        try:
            y = self.load(clip) if y is None else y
        except AudioDecodeError as e:
            self.mark_broken(clip, e.message)
            raise
        clip.duration = len(y) / SAMPLE_RATE
        tempo, beats = audio.estimate_tempo(y, SAMPLE_RATE)
        clip.tempo, clip.beats = round(tempo, 3), [round(float(b), 4) for b in beats]
        if save:
            self._write_cache()
        return clip

    def mark_broken(self, clip: Clip, reason: str) -> None:
        with self._lock:
            if clip in self.clips.get(clip.genre, []):
                self.clips[clip.genre].remove(clip)
            self.skipped.append(Skipped(f"{Path(clip.path).parent.name}/{clip.name}", reason))
        self._write_cache(errors={clip.key: (clip, reason)})

    # -- embeddings for recommendations -------------------------------------------------------
    def embeddings(self, classifier, version: str) -> tuple[list[Clip], np.ndarray]:
        """One L2-normalised classifier embedding per readable clip, cached on disk per version."""
        with self._lock:
            if (getattr(self, "_emb_version", None) == version
                    and [c.key for c in self._emb_clips] == [c.key for c in self.all_clips()]):
                return self._emb_clips, self._emb_matrix
        path = self.cache_dir / f"embeddings-{version}.npz" if self.cache_dir else None
        cached: dict[str, np.ndarray] = {}
        if path and path.exists():
            try:
                with np.load(path, allow_pickle=False) as data:
                    cached = dict(zip(data["keys"].tolist(), data["vectors"]))
            except (OSError, ValueError, KeyError):
                cached = {}  # a damaged cache is recomputed
        clips, vectors = [], []
        for clip in self.all_clips():
            stamp = f"{clip.key}|{clip.size}|{clip.mtime_ns}"
            if stamp not in cached:
                try:
                    cached[stamp] = classifier.embed(self.load(clip), SAMPLE_RATE)
                except AudioDecodeError as e:
                    self.mark_broken(clip, e.message)
                    continue
            clips.append(clip)
            vectors.append(cached[stamp])
        matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, 1), np.float32)
        if path:
            keys = [f"{c.key}|{c.size}|{c.mtime_ns}" for c in clips]
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
            np.savez(tmp, keys=np.array(keys, dtype=str), vectors=matrix)
            os.replace(tmp, path)
        with self._lock:
            self._emb_version, self._emb_clips, self._emb_matrix = version, clips, matrix
        return clips, matrix

    def similar(self, vector: np.ndarray, classifier, version: str, *, k: int = 5,
                exclude: str | None = None) -> list[dict]:
        """The k library clips nearest to `vector` by cosine similarity, best first."""
        clips, matrix = self.embeddings(classifier, version)
        if not clips:
            return []
        scores = matrix @ (vector / (np.linalg.norm(vector) + 1e-9))
        result = []
        for i in np.argsort(-scores, kind="stable"):
            if clips[i].key == exclude:
                continue
            result.append({**clips[i].public(), "score": round(float(scores[i]), 4)})
            if len(result) == k:
                break
        return result

    # -- the on-disk cache -------------------------------------------------------------------
    def _sweep_cache_temps(self, older_than: float = 3600.0) -> None:
        """Temporary cache files a killed process left behind (old enough not to be in use)."""
        if not self.cache_dir or not self.cache_dir.is_dir():
            return
        now = time.time()
        for tmp in self.cache_dir.glob("*.tmp*"):
            try:
                if now - tmp.stat().st_mtime > older_than:
                    tmp.unlink()
            except OSError:
                pass

    @property
    def _cache_path(self) -> Path | None:
        return self.cache_dir / "library.json" if self.cache_dir else None

    def _read_cache(self) -> dict:
        path = self._cache_path
        if not path or not path.exists():
            return {}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}  # a damaged cache is rebuilt, never trusted
        if data.get("version") != CACHE_VERSION or data.get("root") != str(self.root.resolve()):
            return {}
        return data.get("clips", {})

    def _write_cache(self, errors: dict | None = None) -> None:
        path = self._cache_path
        if not path:
            return
        with self._lock:
            entries = self._read_cache()
            for clip in self.all_clips():
                entries[clip.key] = {k: v for k, v in asdict(clip).items()
                                     if k in ("size", "mtime_ns", "duration", "tempo", "beats")}
            for key, (clip, reason) in (errors or {}).items():
                entries[key] = {"size": clip.size, "mtime_ns": clip.mtime_ns, "error": reason}
            data = {"version": CACHE_VERSION, "root": str(self.root.resolve()), "clips": entries}
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, path)


# -- the one split of the library: judges and models hold out the same clips -------------------------
SPLIT_SEED = 0
SPLIT_FRACTION = 0.2
SPLIT_METHOD = ("by clip key: sha256 of '<seed>:<genre>/<name>' read as a number in [0, 1); "
                "below the fraction is held out of every training run (judges and models)")


def heldout(key: str, *, fraction: float = SPLIT_FRACTION, seed: int = SPLIT_SEED) -> bool:
    """Whether the library clip `key` ("genre/name", as Clip.key) is held out of training.

    It depends on the seed, the fraction and the key alone, never on the other clips: clip i is on
    the same side in a 20-per-genre and a 100-per-genre build of one library seed, and in every
    trainer, so no judge trains on a clip that a model is scored against.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"held-out fraction must be within 0-1, got {fraction}")
    digest = hashlib.sha256(f"{int(seed)}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < fraction * 2.0 ** 64


def split_keys(keys, *, fraction: float = SPLIT_FRACTION, seed: int = SPLIT_SEED
               ) -> tuple[list[str], list[str]]:
    """(training keys, held-out keys), each in the order given, by heldout()."""
    train, test = [], []
    for key in keys:
        (test if heldout(key, fraction=fraction, seed=seed) else train).append(key)
    return train, test


def split_facts(keys, *, fraction: float = SPLIT_FRACTION, seed: int = SPLIT_SEED) -> dict:
    """What a model card records of the split: method, seed, fraction, counts and held-out keys."""
    train, test = split_keys(sorted(keys), fraction=fraction, seed=seed)
    return {"method": SPLIT_METHOD, "seed": int(seed), "fraction": float(fraction),
            "train": len(train), "test": len(test), "held_out": test}

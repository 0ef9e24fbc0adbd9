"""generate(): the one data path from a GenerationRequest to a finished, stored Track.

The web routes, the job queue, the CLI and `evaluate` all go through Service.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path

from . import __version__, audio, midi, post
from .engines.base import Engine, Progress, UnavailableEngine, no_progress
from . import options as opt
from .errors import AudioDecodeError, ModeUnavailable, NotFound
from .jobs import JobQueue
from .library import Library
from .request import GenerationRequest
from .settings import Settings
from .store import Store, new_id
from .track import Track

PLANNED = {  # modes whose engines land in later work; listed so the page can show why
    "rave": ("RAVE", "A variational autoencoder decoding genre latents to audio."),
    "ddim": ("Diffusion (DDIM)", "A genre-conditioned diffusion model over the MDCT."),
    "melgan": ("MEL-GAN", "A genre-conditioned mel-spectrogram GAN with a neural vocoder."),
    "compose": ("Composer", "Writes a genre arrangement as MIDI and renders it with a SoundFont."),
}


def build_engines(settings: Settings, library: Library) -> dict[str, Engine]:
    """One engine per mode, in opt.MODES order; a mode that cannot load says why."""
    from .engines.dataset import DatasetEngine
    engines: dict[str, Engine] = {"dataset": DatasetEngine(library)}
    try:
        from .engines.compose import ComposeEngine
        engines["compose"] = ComposeEngine(settings.soundfont)
    except ImportError as e:
        engines["compose"] = UnavailableEngine("compose", *PLANNED["compose"], f"not installed: {e}")
    for name in ("rave", "ddim", "melgan"):
        label, description = PLANNED[name]
        engines[name] = UnavailableEngine(name, label, description,
                                          f"no trained checkpoint in {settings.models_dir / name}")
    return {m: engines[m] for m in opt.MODES}


class Service:
    """Everything a front end needs: the library, the engines, the store and the worker pool."""

    def __init__(self, settings: Settings | None = None, *, with_store: bool = True):
        self.settings = settings or Settings.from_env()
        self.library = Library(self.settings.genres_dir, self.settings.cache_dir).scan()
        self.engines = build_engines(self.settings, self.library)
        self.store = Store(self.settings.store_dir, self.settings.max_tracks) if with_store else None
        self.jobs = JobQueue(self.settings.workers, self.settings.max_queue)
        self.started = time.time()
        self._rescan_lock = threading.Lock()

    def engine(self, mode: str) -> Engine:
        engine = self.engines[mode]
        reason = engine.availability()
        if reason is not None:
            raise ModeUnavailable(f"mode '{mode}' is unavailable: {reason}", field="mode")
        return engine

    def generate(self, request: GenerationRequest, progress: Progress = no_progress) -> tuple[Track, dict]:
        """Engine, then the shared post stage. Returns the finished Track and its metadata."""
        engine = self.engine(request.mode)
        t0 = time.perf_counter()
        progress(0.02, f"starting {engine.label}")
        raw = engine.generate(request, progress)
        t1 = time.perf_counter()
        progress(0.92, "finishing: length, fades, loudness")
        track = post.finish(raw, request, engine.capabilities)
        t2 = time.perf_counter()
        meta = {
            "genre": request.genre, "mode": request.mode, "seed": request.seed,
            "instruments": list(request.instruments), "length": track.meta["length"],
            "tempo": track.meta.get("tempo", request.tempo), "request": request.to_dict(),
            "version": __version__, "capabilities": engine.capabilities.__dict__.copy(),
            "timings": {"generate": round(t1 - t0, 3), "post": round(t2 - t1, 3),
                        "total": round(t2 - t0, 3),
                        "realtime_factor": round(request.length / max(t2 - t0, 1e-6), 2)},
            "details": {k: v for k, v in track.meta.items() if k not in ("length", "tempo")},
        }
        meta.update({k: track.meta[k] for k in ("measured_tempo", "loudness_lufs") if k in track.meta})
        return track, meta

    def generate_and_store(self, request: GenerationRequest, progress: Progress = no_progress,
                           track_id: str | None = None) -> str:
        track, meta = self.generate(request, progress)
        return self.store.save(track, meta, track_id)

    def submit(self, request: GenerationRequest):
        """Queue a generation; the job id is also the id of the track it makes."""
        self.engine(request.mode)  # refuse an unavailable mode now, not inside the job
        return self.jobs.submit(new_id(), lambda job_id, progress:
                                self.generate_and_store(request, progress, job_id))

    def track_status(self, track_id: str) -> dict:
        """A job's state while it runs; the stored metadata once the track exists."""
        try:
            job = self.jobs.get(track_id)
        except Exception:
            job = None
        if job is not None and job.status != "done":
            return job.public()
        meta = self.store.meta(track_id)
        return {"id": track_id, "status": "done", "progress": 1.0, "message": "done",
                "error": None, "meta": meta, "files": {
                    fmt: f"/api/tracks/{track_id}/audio.{ext}" for fmt, ext in opt.EXTENSIONS.items()}}

    def encode(self, track: Track, fmt: str, tempo: float | None = None) -> bytes:
        """Bytes of a Track in wav, mp3 or midi (the score, or a transcription)."""
        if fmt == "midi":
            score = track.midi if track.midi is not None else midi.transcribe(track.audio, track.sr, tempo=tempo)
            return midi.to_bytes(score)
        return audio.encode(track.audio, track.sr, fmt)

    def options(self) -> dict:
        """The vocabulary and what each mode can do here, for the page and for scripts."""
        return {
            "genres": [{"name": g, "label": opt.GENRE_LABELS[g]} for g in opt.GENRES],
            "instruments": [{"name": i.name, "label": i.label, "role": i.role, "program": i.program}
                            for i in opt.INSTRUMENTS.values()],
            "tempo": {"min": opt.TEMPO_MIN, "max": opt.TEMPO_MAX, "presets": [
                {"label": p.label, "low": p.low, "high": p.high} for p in opt.TEMPO_PRESETS]},
            "length": {"min": opt.LENGTH_MIN, "max": opt.LENGTH_MAX, "default": opt.LENGTH_DEFAULT,
                       "presets": [{"label": k, "seconds": v} for k, v in opt.LENGTH_PRESETS.items()]},
            "modes": [e.describe() for e in self.engines.values()],
            "generate_mode": {str(n): m for n, m in opt.MODE_NUMBERS.items()},
            "formats": list(opt.FORMATS),
            "sample_rate": opt.SAMPLE_RATE,
        }

    def library_wav(self, clip) -> bytes:
        """A library clip as browser-playable 16-bit WAV (browsers cannot play .au)."""
        try:
            y = self.library.load(clip)
        except AudioDecodeError as e:
            self.library.mark_broken(clip, e.message)
            raise NotFound(f"library clip {clip.key} is not readable: {e.message}", field="name") from e
        return audio.encode(y, opt.SAMPLE_RATE, "wav")

    def health(self) -> dict:
        return {"status": "ok", "version": __version__, "uptime": round(time.time() - self.started, 1),
                "library": {"root": str(self.library.root), "clips": len(self.library),
                            "per_genre": self.library.counts(),
                            "skipped": [s.__dict__ for s in self.library.skipped]},
                "models": {name: {"available": e.availability() is None, "reason": e.availability()}
                           for name, e in self.engines.items()},
                "jobs": {"workers": self.jobs.workers, "pending": self.jobs.pending()}}

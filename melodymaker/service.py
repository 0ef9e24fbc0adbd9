"""generate(): the one data path from a GenerationRequest to a finished, stored Track.

The web routes, the job queue, the CLI and `evaluate` all go through Service.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time

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

UPLOAD_MAX_SECONDS = 10 * 60

PLANNED = {  # label and description of modes whose engine is not loadable here, so the page can say why
    "rave": ("RAVE", "A RAVE variational autoencoder decoding latents drawn from the genre's library clips."),
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
        engines[name] = load_model_engine(name, settings)
    return {m: engines[m] for m in opt.MODES}


def load_model_engine(name: str, settings: Settings) -> Engine:
    """A trained-model mode: melodymaker.engines.<name>.load(settings) builds its engine (loading
    the checkpoint once). A missing module, a missing checkpoint or a broken one (any exception)
    makes the mode unavailable with the reason; the server keeps serving the other modes."""
    import importlib
    label, description = PLANNED[name]
    try:
        module = importlib.import_module(f".engines.{name}", __package__)
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.engines.{name}":
            return UnavailableEngine(name, label, description, f"not installed: {e}")
        return UnavailableEngine(name, label, description,
                                 f"no trained checkpoint in {settings.models_dir / name}")
    try:
        return module.load(settings)
    except FileNotFoundError as e:
        return UnavailableEngine(name, label, description, f"no trained checkpoint: {e}")
    except Exception as e:  # a corrupt or incompatible checkpoint: a reason, never a crash
        return UnavailableEngine(name, label, description,
                                 f"checkpoint could not be loaded ({type(e).__name__}: {e})")


class Service:
    """Everything a front end needs: the library, the engines, the store and the worker pool."""

    def __init__(self, settings: Settings | None = None, *, with_store: bool = True):
        self.settings = settings or Settings.from_env()
        self.library = Library(self.settings.genres_dir, self.settings.cache_dir).scan()
        self.engines = build_engines(self.settings, self.library)
        self.store = Store(self.settings.store_dir, self.settings.max_tracks) if with_store else None
        self.jobs = JobQueue(self.settings.workers, self.settings.max_queue)
        self.started = time.time()
        self._classifier, self.classifier_reason = None, None
        self._classifier_lock = threading.Lock()

    def engine(self, mode: str) -> Engine:
        engine = self.engines[mode]
        reason = engine.availability()
        if reason is not None:
            raise ModeUnavailable(f"mode '{mode}' is unavailable: {reason}", field="mode")
        return engine

    # -- the classifier: genre fit and recommendations ----------------------------------------
    def classifier(self):
        """The genre classifier, loaded once; None (with classifier_reason) when unavailable."""
        with self._classifier_lock:
            if self._classifier is None and self.classifier_reason is None:
                try:
                    from .classify import load_classifier
                    self._classifier = load_classifier(self.settings.models_dir / "classifier")
                except Exception as e:  # missing or broken checkpoint: a reason, never a crash
                    self.classifier_reason = f"{type(e).__name__}: {e}"
            return self._classifier

    def share_cores(self) -> None:
        """Workers share the cores: a torch thread pool per worker would oversubscribe them."""
        try:
            import torch
        except ImportError:
            return
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.settings.workers))

    def warm_up(self) -> None:
        """Load the classifier, then analyse and embed the library: the server does this in the
        background at start, so the first request does not pay for it."""
        clf = self.classifier()
        self.library.analyse_all()
        if clf is not None:
            self.library.embeddings(clf, self._classifier_version())

    def _need_classifier(self, what: str, field: str | None = None):
        clf = self.classifier()
        if clf is None:
            raise ModeUnavailable(f"{what} needs the genre classifier, which is unavailable: "
                                  f"{self.classifier_reason}", field=field)
        return clf

    def classifier_status(self) -> dict:
        clf = self.classifier()
        return {"available": clf is not None, "reason": self.classifier_reason,
                **({"info": clf.info} if clf is not None else {})}

    def classify(self, y, sr: int) -> dict:
        """Genre probabilities of audio, best first."""
        probs = self._need_classifier("classification").predict(y, sr)
        return genre_fit_summary(probs, None)

    def decode_upload(self, stream):
        """An uploaded file as 22050 Hz mono; AudioDecodeError (400) for non-audio or too long."""
        return audio.load(stream, opt.SAMPLE_RATE, max_seconds=UPLOAD_MAX_SECONDS)

    def similar_to_track(self, track_id: str, k: int) -> list[dict]:
        clf = self._need_classifier("recommendation")
        vector = self.store.embedding(track_id)
        if vector is None:
            vector = clf.embed(self.store.audio(track_id), opt.SAMPLE_RATE)
        return self.library.similar(vector, clf, self._classifier_version(), k=k)

    def similar_to_clip(self, clip, k: int) -> list[dict]:
        clf = self._need_classifier("recommendation")
        clips, matrix = self.library.embeddings(clf, self._classifier_version())
        keys = [c.key for c in clips]
        if clip.key not in keys:
            raise NotFound(f"library clip {clip.key} has no embedding (unreadable?)", field="name")
        return self.library.similar(matrix[keys.index(clip.key)], clf, self._classifier_version(),
                                    k=k, exclude=clip.key)

    def _classifier_version(self) -> str:
        return str(self.classifier().info.get("version", "v"))

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, progress: Progress = no_progress) -> tuple[Track, dict]:
        """Best-of-N over generate_one(): keeps the candidate with the highest genre fit."""
        n = request.candidates
        clf = self.classifier()
        if n > 1 and clf is None:
            self._need_classifier("choosing among candidates", field="candidates")
        tried = []
        for k in range(n):
            seed = candidate_seed(request.seed, k)
            sub = dataclasses.replace(request, seed=seed, candidates=1)
            track, meta = self.generate_one(sub, _scaled(progress, k / n, (k + 1) / n))
            embedding = None
            if clf is not None:
                probs, embedding = clf.predict_and_embed(track.audio, track.sr)
                meta["genre_fit"] = genre_fit_summary(probs, request.genre)
            tried.append((track, meta, embedding))
        scores = [m.get("genre_fit", {}).get("probability") for _, m, _ in tried]
        best = max(range(n), key=lambda i: scores[i] or 0.0)
        track, meta, embedding = tried[best]
        meta["request"] = request.to_dict()
        meta["candidates"] = {"tried": n, "chosen": best, "scores": [
            {"seed": m["seed"], "genre_fit": s} for (_, m, _), s in zip(tried, scores)]}
        meta["timings"]["all_candidates"] = round(sum(m["timings"]["total"] for _, m, _ in tried), 3)
        track.meta["embedding"] = embedding
        return track, meta

    def generate_one(self, request: GenerationRequest, progress: Progress = no_progress) -> tuple[Track, dict]:
        """Engine, then the shared post stage. Returns the finished Track and its metadata."""
        engine = self.engine(request.mode)
        t0 = time.perf_counter()
        progress(0.02, f"starting {engine.label}")
        raw = engine.generate(request, progress)
        t1 = time.perf_counter()
        progress(0.92, "finishing: length, fades, loudness")
        track = post.finish(raw, request, engine.capabilities)
        progress(0.96, "measuring genre fit")  # also where a cancel during post takes effect
        t2 = time.perf_counter()
        meta = {
            "genre": request.genre, "mode": request.mode, "seed": request.seed,
            "instruments": list(request.instruments), "length": track.meta["length"],
            "tempo": track.meta.get("tempo", request.tempo), "request": request.to_dict(),
            "version": __version__, "capabilities": engine.capabilities.__dict__.copy(),
            "timings": {"generate": round(t1 - t0, 3), "post": round(t2 - t1, 3),
                        "total": round(t2 - t0, 3),
                        "realtime_factor": round(request.length / max(t2 - t0, 1e-6), 2)},
            "details": {k: v for k, v in track.meta.items() if k not in ("length", "tempo", "embedding")},
        }
        meta.update({k: track.meta[k] for k in ("measured_tempo", "loudness_lufs") if k in track.meta})
        return track, meta

    def generate_and_store(self, request: GenerationRequest, progress: Progress = no_progress,
                           track_id: str | None = None) -> str:
        track, meta = self.generate(request, progress)
        progress(0.99, "saving")  # a job cancelled by now is not stored
        return self.store.save(track, meta, track_id, embedding=track.meta.get("embedding"))

    def submit(self, request: GenerationRequest):
        """Queue a generation; the job id is also the id of the track it makes."""
        self.engine(request.mode)  # refuse an unavailable mode now, not inside the job
        if request.candidates > 1:
            self._need_classifier("choosing among candidates", field="candidates")
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
            "classifier": self.classifier_status(),
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
        return {"status": "ok", "version": __version__, "classifier": self.classifier_status(), "uptime": round(time.time() - self.started, 1),
                "library": {"root": str(self.library.root), "clips": len(self.library),
                            "per_genre": self.library.counts(),
                            "skipped": [s.__dict__ for s in self.library.skipped]},
                "models": {name: {"available": e.availability() is None, "reason": e.availability()}
                           for name, e in self.engines.items()},
                "jobs": {"workers": self.jobs.workers, "pending": self.jobs.pending()}}


def candidate_seed(seed: int, k: int) -> int:
    """The seed of candidate k: the request's own seed first, then a fixed sequence from it."""
    return seed if k == 0 else (seed * 1_000_003 + k * 7_919) % (opt.SEED_MAX + 1)


def genre_fit_summary(probs: dict[str, float], genre: str | None) -> dict:
    """{"genre", "probability", "top3": [...], "probabilities"} from class probabilities."""
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])
    summary = {"top3": [{"genre": g, "probability": round(float(p), 4)} for g, p in ranked[:3]],
               "probabilities": {g: round(float(p), 4) for g, p in probs.items()}}
    if genre is not None:
        summary.update({"genre": genre, "probability": round(float(probs.get(genre, 0.0)), 4),
                        "rank": [g for g, _ in ranked].index(genre) + 1 if genre in probs else None})
    return summary


def _scaled(progress: Progress, low: float, high: float) -> Progress:
    def inner(fraction: float, message: str = "") -> None:
        progress(low + (high - low) * fraction, message)
    return inner

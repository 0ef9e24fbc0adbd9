"""generate(): the one data path from a GenerationRequest to a finished, stored Track.

The web routes, the job queue's workers, the CLI and `evaluate` all go through Service; app.py talks
to nothing else. The modes come from the registry (melodymaker.engines), the formats from
melodymaker.formats, the queue from melodymaker.jobs and the store from melodymaker.store.
"""
from __future__ import annotations

import dataclasses
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import __version__, audio, engines, formats, keys, post
from . import options as opt
from .engines.base import Engine, Parent, Progress, no_progress
from .errors import (AudioDecodeError, Conflict, InvalidRequest, ModeUnavailable, NoStems, NotFound,
                     QueueUnavailable)
from .jobs import JobState, open_queue
from .library import Library
from .request import GenerationRequest
from .settings import Settings
from .store import TrackStore, new_id, open_store
from .track import Track

UPLOAD_MAX_SECONDS = 10 * 60
TOP_LEVEL = ("length", "tempo", "measured_tempo", "loudness_lufs", "key", "meter", "loop", "stems", "post",
             "quality")
"""What the post stage measured or decided that a track's metadata carries at its top level."""


class Service:
    """Everything a front end needs: the library, the engines, the store and the worker pool."""

    def __init__(self, settings: Settings | None = None, *, with_store: bool = True,
                 modes: list[str] | None = None, worker: bool = False):
        self.settings = settings or Settings.from_env()
        self.library = Library(self.settings.genres_dir, self.settings.cache_dir).scan()
        self.jobs = open_queue(self.settings, self._run_job)
        # with RQ (a remote queue) the engines run on the workers: a web process loads none
        self.remote = getattr(self.jobs, "remote", False) and not worker
        self.engines: dict[str, Engine] = {} if self.remote else engines.load_all(
            self.settings, self.library, modes)
        self.store: TrackStore | None = open_store(self.settings) if with_store else None
        self.started = time.time()
        self._classifier, self.classifier_reason = None, None
        self._classifier_lock = threading.Lock()

    def close(self) -> None:
        """Stop taking generation jobs (tests, shutdown)."""
        self.jobs.close()

    def engine(self, mode: str) -> Engine:
        if mode not in self.engines:
            raise ModeUnavailable(f"mode '{mode}' is not loaded in this process", field="mode")
        engine = self.engines[mode]
        reason = engine.availability()
        if reason is not None:
            raise ModeUnavailable(f"mode '{mode}' is unavailable: {reason}", field="mode")
        return engine

    # -- the classifier: genre fit and recommendations ----------------------------------------
    def classifier(self):
        """The two genre judges (classify.Judges: verdict, and predict / embed on their combined
        judgement), loaded once; None (with classifier_reason) when unavailable."""
        with self._classifier_lock:
            if self._classifier is None and self.classifier_reason is None:
                try:
                    from .classify import load_judges
                    self._classifier = load_judges(self.settings.models_dir / "classifier")
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
        info = None
        if clf is not None:  # the held-out keys are for evaluate and the card, not every page load
            info = dict(clf.info)
            info["split"] = {k: v for k, v in info.get("split", {}).items() if k != "held_out"}
        return {"available": clf is not None, "reason": self.classifier_reason,
                **({"info": info} if info is not None else {})}

    def classify(self, y, sr: int) -> dict:
        """Genre probabilities of audio by the judges combined, best first, and by each judge."""
        return verdict_summary(self._need_classifier("classification").verdict(y, sr), None)

    def decode_upload(self, stream):
        """An uploaded file as 22050 Hz mono; AudioDecodeError (400) for non-audio or too long."""
        return audio.load(stream, opt.SAMPLE_RATE, max_seconds=UPLOAD_MAX_SECONDS)

    def similar_to_track(self, track_id: str, k: int) -> list[dict]:
        clf = self._need_classifier("recommendation")
        vector = self.store.embedding(track_id)
        if vector is None:
            stored = self.store.track(track_id)
            vector = clf.embed(stored.audio, stored.sr)
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
        """What library embeddings are cached under: the version of the CNN that makes them."""
        clf = self.classifier()
        return str(getattr(clf, "embedding_version", None) or clf.info.get("version", "v"))

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, progress: Progress = no_progress) -> tuple[Track, dict]:
        """Best-of-N over generate_one(): the candidate with the highest genre fit. Every candidate
        is kept: the best's meta["variations"] holds the others as (track, meta) pairs, in order,
        for generate_and_store() to keep as tracks of their own (evaluate and the CLI drop them)."""
        n = request.candidates
        clf = self.classifier()
        if n > 1 and clf is None:
            self._need_classifier("choosing among candidates", field="candidates")

        def one(k: int) -> tuple[Track, dict, object]:
            sub = dataclasses.replace(request, seed=candidate_seed(request.seed, k), candidates=1)
            track, meta = self.generate_one(sub, _scaled(progress, k / n, (k + 1) / n))
            embedding = None
            if clf is not None:  # the judges' combined verdict; each judge's is shown beside it
                verdict = clf.verdict(track.audio, track.sr)
                meta["genre_fit"], embedding = verdict_summary(verdict, request.genre), verdict.embedding
            track.meta["embedding"] = embedding
            return track, meta, embedding

        # candidates run side by side where the worker pool has threads for them
        with ThreadPoolExecutor(max_workers=max(1, min(n, self.settings.workers))) as pool:
            tried = list(pool.map(one, range(n)))
        scores = [m.get("genre_fit", {}).get("probability") for _, m, _ in tried]
        best = max(range(n), key=lambda i: scores[i] or 0.0)
        track, meta, embedding = tried[best]
        meta["request"] = request.to_dict()
        meta["candidates"] = {"tried": n, "chosen": best, "scores": [
            {"seed": m["seed"], "genre_fit": s} for (_, m, _), s in zip(tried, scores)]}
        meta["timings"]["all_candidates"] = round(sum(m["timings"]["total"] for _, m, _ in tried), 3)
        track.meta["variations"] = [(t, m) for k, (t, m, _) in enumerate(tried) if k != best]
        return track, meta

    def generate_one(self, request: GenerationRequest, progress: Progress = no_progress) -> tuple[Track, dict]:
        """Engine, then the shared post stage. Returns the finished Track and its metadata."""
        engine = self.engine(request.mode)
        t0 = time.perf_counter()
        progress(0.02, f"starting {engine.label}")
        # a mode that cannot honour tempo makes enough audio for the conform to fill the length
        native = engine.native_tempo(request) or self.library.genre_tempo(request.genre)
        length = post.source_length(request, engine.capabilities, native)
        raw = engine.generate(dataclasses.replace(request, length=length), progress)
        t1 = time.perf_counter()
        progress(0.92, "finishing: length, fades, loudness")
        track = post.finish(raw, request, engine.capabilities, keep_context=keeps_context(engine))
        progress(0.96, "measuring genre fit")  # also where a cancel during post takes effect
        t2 = time.perf_counter()
        return track, self._describe(request, engine, track, t1 - t0, t2 - t1)

    def _describe(self, request: GenerationRequest, engine: Engine, track: Track, generate: float,
                  post_seconds: float) -> dict:
        """The metadata of a finished track: the request, what the mode honours, timings, what the
        post stage measured, and the engine's own details."""
        meta = {
            "genre": request.genre, "mode": request.mode, "seed": request.seed,
            "instruments": list(request.instruments), "length": track.meta["length"],
            "tempo": track.meta.get("tempo", request.tempo), "request": request.to_dict(),
            "version": __version__, "capabilities": engine.capabilities.__dict__.copy(),
            "timings": {"generate": round(generate, 3), "post": round(post_seconds, 3),
                        "total": round(generate + post_seconds, 3),
                        "realtime_factor": round(request.length / max(generate + post_seconds, 1e-6), 2)},
            "details": {k: v for k, v in track.meta.items() if k not in TOP_LEVEL},
            "ignored_fields": list(request.ignored_fields),
        }
        meta.update({k: track.meta[k] for k in TOP_LEVEL if k in track.meta and k not in ("length", "tempo")})
        track.meta.setdefault("tempo", meta["tempo"])  # what a MIDI transcription is quantised to
        return meta

    def generate_and_store(self, request: GenerationRequest, progress: Progress = no_progress,
                           track_id: str | None = None, reference: dict | None = None) -> str:
        """generate(), and every candidate stored: with candidates > 1 they form a group (each
        one's meta["group"]: its id, the chosen track and every member with its seed and fit).
        reference: what was heard in the clip a "more like this" request came from, kept in the
        metadata of every track it made."""
        track, meta = self.generate(request, progress)
        if reference is not None:
            meta["reference"] = reference
            for _, other in track.meta.get("variations", []):
                other["reference"] = reference
        progress(0.99, "saving")  # a job cancelled by now is not stored
        track_id = track_id or new_id()
        variations = track.meta.pop("variations", [])
        if variations:
            others = [(new_id(), t, m) for t, m in variations]
            members = [(track_id, track, meta)] + others
            group = {"id": new_id(), "chosen": track_id,
                     "tracks": sorted(({"id": i, "seed": m["seed"],
                                        "genre_fit": (m.get("genre_fit") or {}).get("probability")}
                                       for i, _, m in members), key=lambda t: -(t["genre_fit"] or 0.0))}
            for other_id, t, m in others:  # the chosen one last: it is the newest of its group
                self.store.save(t, {**m, "group": group}, other_id, embedding=t.meta.get("embedding"))
            meta = {**meta, "group": group}
        return self.store.save(track, meta, track_id, embedding=track.meta.get("embedding"))

    # -- extend: a finished track, continued -------------------------------------------------------
    def extend(self, track_id: str, seconds) -> JobState:
        """Queue the continuation of a finished track by `seconds` more (a new track; the parent is
        unchanged). NotFound (404), Conflict (409) while it is still being made or for a loop,
        InvalidRequest (400, field seconds) past the length limit."""
        try:
            job = self.jobs.status(track_id)
        except (NotFound, QueueUnavailable):
            job = None
        if job is not None and not job.finished:
            raise Conflict(f"track {track_id} is still {job.status}; extend it once it is done", field="id")
        meta = self.store.meta(track_id)
        if meta.get("loop"):
            raise Conflict(f"track {track_id} is a seamless loop: repeat it rather than extend it", field="id")
        if meta.get("transfer"):
            raise Conflict(f"track {track_id} is a timbre transfer: it follows its clip, and there is no "
                           "more of the clip to transfer", field="id")
        room = opt.LENGTH_MAX - meta["length"]
        seconds = parse_extension(seconds, room)
        request = dataclasses.replace(request_of(meta), length=round(meta["length"] + seconds, 6))
        if not self.remote:
            self.engine(request.mode)
        return self.jobs.submit(new_id(), {**request.to_dict(), "extend": {"parent": track_id,
                                                                            "seconds": seconds}})

    def extend_one(self, request: GenerationRequest, parent_id: str,
                   progress: Progress = no_progress) -> tuple[Track, dict]:
        """The parent track followed by the engine's continuation of it, through post.extend."""
        parent_meta = self.store.meta(parent_id)
        parent = self.store.track(parent_id)
        engine = self.engine(request.mode)
        t0 = time.perf_counter()
        progress(0.02, f"continuing with {engine.label}")
        handover = parent_meta.get("post") or {}
        rate = handover.get("tempo_rate", 1.0)
        fade = handover.get("fade_out", min(1.0, 0.08 * parent_meta["length"]))
        at = handover.get("context_end", (parent_meta["length"] - fade) * rate)
        # raw seconds from the take-over point to the new end, with the conform's headroom
        wanted = (request.length - handover.get("context_end_output", at / rate)) * rate * 1.02 + 0.25
        tail = self.store.context(parent_id)
        raw = engine.continue_from(Parent(request_of(parent_meta), parent_meta, at=at, seconds=wanted,
                                          tail=tail, length=request.length), progress)
        t1 = time.perf_counter()
        progress(0.92, "finishing: the seam, loudness")
        track = post.extend(raw, parent, parent_meta, request, engine.capabilities,
                            starts_at=float(raw.meta.get("starts_at", 0.0)), parent_tail=tail,
                            keep_context=keeps_context(engine))
        progress(0.96, "measuring genre fit")
        meta = self._describe(request, engine, track, t1 - t0, time.perf_counter() - t1)
        meta.update({"parent": parent_id, "seam": track.meta["seam"]})
        clf = self.classifier()
        if clf is not None:
            verdict = clf.verdict(track.audio, track.sr)
            meta["genre_fit"], track.meta["embedding"] = verdict_summary(verdict, request.genre), verdict.embedding
        return track, meta

    def _run_job(self, job_id: str, payload: dict, progress: Progress) -> str:
        """What a queue worker runs: the payload is a request's to_dict(), parsed again here (with
        "extend": {"parent", "seconds"} for an extension)."""
        if "transfer" in payload:  # a reference clip through RAVE (melodymaker.reference)
            return self.run_transfer(job_id, payload, progress)
        payload = dict(payload)
        extension = payload.pop("extend", None)
        reference = payload.pop("reference", None)
        request = GenerationRequest.parse(payload)
        if extension is None:
            return self.generate_and_store(request, progress, job_id, reference)
        track, meta = self.extend_one(request, extension["parent"], progress)
        progress(0.99, "saving")
        return self.store.save(track, meta, job_id, embedding=track.meta.get("embedding"))

    # -- jobs: what the web tier calls ----------------------------------------------------------
    def submit(self, request: GenerationRequest, reference: dict | None = None) -> JobState:
        """Queue a generation; the job id is also the id of the track it makes. reference: what
        was heard in the clip of a "more like this" request (the track's meta["reference"])."""
        if not self.remote:  # (RQ: the queue refuses a mode no live worker offers)
            # refuse an unavailable mode, or a request it cannot honour, now, not inside the job
            self.engine(request.mode).check(request)
        if request.candidates > 1:
            self._need_classifier("choosing among candidates", field="candidates")
        payload = request.to_dict() if reference is None else {**request.to_dict(), "reference": reference}
        return self.jobs.submit(new_id(), payload)

    def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        if timeout is None:
            timeout = self.settings.generate_timeout or self.settings.job_timeout
        return self.jobs.wait(job_id, timeout)

    def cancel(self, job_id: str) -> JobState:
        return self.jobs.cancel(job_id)

    def track_status(self, track_id: str) -> dict:
        """A job's state while it runs; the stored metadata once the track exists."""
        try:
            job = self.jobs.status(track_id)
        except NotFound:
            job = None  # finished long ago, or made by another process: the store knows
        except QueueUnavailable as down:  # Redis away: a finished track still answers, others get 503
            try:
                self.store.meta(track_id)
            except NotFound:
                raise down from None
            job = None
        if job is not None and job.status != "done":
            return job.public()
        meta = self.store.meta(track_id)
        notes = {f.name: f.note(meta) for f in formats.FORMATS.values() if f.note(meta)}
        return {"id": track_id, "status": "done", "progress": 1.0, "message": "done",
                "error": None, "meta": meta, "files": formats.links(track_id), "file_notes": notes,
                "stems": f"/api/tracks/{track_id}/{formats.STEMS_FILE}" if meta.get("stems") else None}

    def track_file(self, track_id: str, fmt: str | formats.Format) -> tuple[Path, formats.Format, dict]:
        """A stored track's file in a format (name, extension or alias), its Format and metadata."""
        fmt = fmt if isinstance(fmt, formats.Format) else formats.parse(fmt)
        meta = self.store.meta(track_id)
        return self.store.file(track_id, fmt), fmt, meta

    def track_stems(self, track_id: str) -> tuple[Path, dict]:
        """A stored track's stems.zip and its metadata; NoStems (409) when its mode has none."""
        meta = self.store.meta(track_id)
        if not meta.get("stems"):
            mode = engines.MODES.get(meta.get("mode"))
            why = (f"{mode.label} makes one mixed signal, not parts" if mode and not mode.capabilities.stems
                   else "this track was stored without them")
            raise NoStems(f"track {track_id} has no stems: {why}; only composed tracks (mode compose) "
                          "have them", field="id")
        return self.store.stems(track_id), meta

    def keep(self, track_id: str) -> dict:
        """Mark a variation kept: the page lists it in the history beside its group's chosen one."""
        meta = self.store.meta(track_id)
        if not meta.get("group"):
            raise Conflict(f"track {track_id} is not one of a group of variations; it is kept already",
                           field="id")
        return self.store.update_meta(track_id, kept=True)

    def list_tracks(self, limit: int = 50) -> list[dict]:
        return self.store.list(limit)

    def encode(self, track: Track, fmt: str) -> bytes:
        """Bytes of a Track in one of the formats of the table (melodymaker.formats)."""
        return formats.parse(fmt).encode(track)

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
            # a mode without capabilities.key pitch-shifts its audio by at most max_shift semitones
            "key": {"default": opt.KEY_AUTO, "keys": list(opt.KEYS), "modes": list(opt.KEY_MODES),
                    "max_shift": keys.MAX_SHIFT},
            "meter": meter_options(),
            "modes": self.modes(),
            "default_mode": engines.DEFAULT_MODE,
            "classifier": self.classifier_status(),
            "generate_mode": {str(m.number): name for name, m in engines.MODES.items()},
            "formats": [f.public() for f in formats.FORMATS.values()],
            "default_format": formats.DEFAULT,
            "seed": {"min": 0, "max": opt.SEED_MAX},
            "candidates": {"min": opt.CANDIDATES_MIN, "max": opt.CANDIDATES_MAX},
            # what POST /api/classify and /api/tracks/from-reference take, so a page can say so first
            "upload": {"max_bytes": self.settings.max_upload_bytes, "max_seconds": UPLOAD_MAX_SECONDS},
            "quality": quality_options(),
            "sample_rate": opt.SAMPLE_RATE,
        }

    def library_wav(self, clip) -> bytes:
        """A library clip as browser-playable 16-bit WAV (browsers cannot play .au)."""
        try:
            y = self.library.load(clip)
        except AudioDecodeError as e:
            self.library.mark_broken(clip, e.message)
            raise NotFound(f"library clip {clip.key} is not readable: {e.message}", field="name") from e
        return formats.FORMATS["wav"].encode(Track(y, opt.SAMPLE_RATE))

    def health(self) -> dict:
        return {"status": "ok", "version": __version__, "classifier": self.classifier_status(),
                "uptime": round(time.time() - self.started, 1),
                "library": {"root": str(self.library.root), "clips": len(self.library),
                            "per_genre": self.library.counts(),
                            "skipped": [s.__dict__ for s in self.library.skipped]},
                "models": {m["name"]: {"available": m["available"], "reason": m["reason"]}
                           for m in self.modes(strict=True)},
                # what compose requests render through (the library and evaluate: TimGM6mb)
                "soundfont": getattr(self.engines.get("compose"), "font", lambda: None)(),
                "jobs": {"backend": type(self.jobs).__name__, "workers": self.jobs.workers,
                         "pending": self.jobs.pending(),
                         **({"live_workers": self.jobs.roster().public()} if self.remote else {})}}

    def modes(self, strict: bool = False) -> list[dict]:
        """Each mode and whether it can run: as loaded here, or (RQ) the union of what the live
        workers publish. Redis away: every mode unavailable with that reason (strict: the 503)."""
        if not self.remote:
            return [{**e.describe(), "number": engines.MODES[name].number} for name, e in self.engines.items()]
        try:
            offered = self.jobs.offered_modes()
        except QueueUnavailable as e:
            if strict:
                raise
            offered = {name: {"available": False, "reason": e.message} for name in engines.MODES}
        return [{"name": name, "label": m.label, "description": m.description,
                 "capabilities": m.capabilities.public(), **offered[name], "number": m.number}
                for name, m in engines.MODES.items()]

    # -- more like this (melodymaker.reference) -------------------------------------------------
    def from_reference(self, y, sr: int, overrides: dict, filename: str | None = None) -> tuple[JobState, dict]:
        """Hear a clip (genre, tempo, key, length) and start the generation it asks for, the form's
        fields winning; with transfer, the clip itself through the genre's RAVE. Returns the job and
        {"request", "transfer", "heard"} (reference.start)."""
        from . import reference
        return reference.start(self, y, sr, overrides, filename)

    def reference_request(self, y, sr: int, overrides: dict) -> tuple[GenerationRequest, dict]:
        """The request a clip asks for and what was heard in it, without starting anything (the CLI)."""
        from . import reference
        heard = reference.analyse(self, y, sr)
        request, sources = reference.request_for(heard, overrides)
        return request, {**heard, **sources}

    def run_transfer(self, job_id: str, payload: dict, progress: Progress) -> str:
        """A transfer job: the clip saved by from_reference() through RAVE, stored as job_id."""
        from . import reference
        return reference.run_transfer(self, job_id, payload, progress)


def keeps_context(engine: Engine) -> bool:
    """Whether a mode continues a tail of raw audio, so that its tracks must keep one."""
    return engine.continues_tail


def request_of(meta: dict) -> GenerationRequest:
    """The request that made a stored track by itself: a chosen variation's own seed, one candidate."""
    return dataclasses.replace(GenerationRequest.parse(meta["request"]), seed=meta["seed"], candidates=1)


def parse_extension(seconds, room: float) -> float:
    """The seconds of an extension: a number from 1 to 300 that fits under the length limit."""
    most = min(float(opt.LENGTH_MAX), room)
    try:
        value = float(seconds)
    except (TypeError, ValueError):
        value = None
    if value is None or isinstance(seconds, bool) or not value == value:
        raise InvalidRequest(f"seconds {seconds!r} must be a number from {opt.LENGTH_MIN} to {most:g}",
                             field="seconds")
    if most < opt.LENGTH_MIN:
        raise InvalidRequest(f"the track is already {opt.LENGTH_MAX - room:g} s long; a track may be at "
                             f"most {opt.LENGTH_MAX} s, so it cannot be extended", field="seconds")
    if not opt.LENGTH_MIN <= value <= most:
        raise InvalidRequest(f"seconds {value:g} is out of range: this track can take {opt.LENGTH_MIN} to "
                             f"{most:g} more seconds (at most {opt.LENGTH_MAX} s in all)", field="seconds")
    return value


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


def verdict_summary(verdict, genre: str | None) -> dict:
    """genre_fit_summary of the judges' combined verdict, with how they were combined and what
    each judge says: for a track (genre given) its probability and rank of the genre and its top
    genre; for an upload its top3 and probabilities."""
    from .classify import COMBINATION, JUDGES
    summary = genre_fit_summary(verdict.combined, genre)
    summary["combination"] = COMBINATION
    summary["judges"] = {}
    for name in JUDGES:
        own = genre_fit_summary(getattr(verdict, name), genre)
        if genre is not None:
            top = own["top3"][0]
            own = {"probability": own["probability"], "rank": own["rank"], "top1": top["genre"],
                   "top1_probability": top["probability"]}
        summary["judges"][name] = own
    return summary


def _scaled(progress: Progress, low: float, high: float) -> Progress:
    def inner(fraction: float, message: str = "") -> None:
        progress(low + (high - low) * fraction, message)
    return inner


def quality_options() -> dict:
    """The output qualities a request may ask for, and what studio quality means for each mode:
    true stereo where the mode's module declares STEREO (compose renders it), else its mono
    upsampled and centred by the post stage."""
    import importlib
    native = {name for name, m in engines.MODES.items()
              if getattr(importlib.import_module(m.loader.__module__), "STEREO", False)}
    return {"default": opt.QUALITY_DEFAULT,
            "qualities": [{"name": q.name, "label": q.label, "sample_rate": q.sample_rate,
                           "channels": q.channels, "description": q.description} for q in opt.QUALITIES.values()],
            "studio": {name: opt.STEREO_NATIVE if name in native else opt.STEREO_CENTRED for name in engines.MODES},
            "note": "The genre fit, similar tracks, /api/classify and evaluate hear every track as "
                    f"{opt.SAMPLE_RATE} Hz mono, whatever its quality."}


def meter_options() -> dict:
    """The meters a request may ask for, what the tempo counts in each, and the genres the
    composer writes in each (a genre without a convincing one says why instead of faking it)."""
    from .compose.styles import STYLES
    return {"default": opt.METER_DEFAULT,
            "meters": [{"name": m.name, "beats_per_bar": m.beats, "tempo_counts": m.beat,
                        "compose_genres": [g for g in opt.GENRES if m.name in STYLES[g].meter_names]}
                       for m in opt.METERS.values()],
            "compose_notes": {g: STYLES[g].meter_note for g in opt.GENRES if STYLES[g].meter_note},
            "note": "The tempo counts quarter notes in 4/4 and 3/4 and dotted quarter notes in 6/8. "
                    "Modes without capabilities.meter ignore the meter and say so in the track's "
                    "metadata (meter.applied)."}

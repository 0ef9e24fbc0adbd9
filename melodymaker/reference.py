"""More like this: what a reference clip sounds like (genre, tempo, key, length), the request it
leads to, and RAVE timbre transfer of the clip itself (encoded and decoded by the genre's RAVE).

POST /api/tracks/from-reference and `python -m melodymaker generate --like` both go through here;
the Service's "more like this" methods delegate to this module.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import audio, keys, post
from . import options as opt
from .engines.base import Capabilities, Progress, no_progress
from .errors import InvalidRequest, ModeUnavailable
from .request import FIELDS, LOOP_WORDS, GenerationRequest
from .track import Track

ANALYSE_SECONDS = 120.0
"""Genre, tempo and key are heard in the clip's first two minutes (the length is the whole clip's):
a ten-minute upload would otherwise hold the web request for seconds of chroma and beat tracking."""

HEARD = ("genre", "tempo", "key", "length")
"""The request fields a reference clip can set; a form field of the same name overrides each."""

TRANSFER_MODE = "rave"
TRANSFER_CAPABILITIES = Capabilities(tempo=True, length=True, key=True)
"""A transfer keeps the clip's own timing and pitch: a tempo or key the form asks for is conformed
on the clip before it is encoded (from the tempo and key heard in it), not guessed again after."""

ENCODE_CHUNK, ENCODE_CONTEXT = 1024, 32
"""Latent frames per encoder pass, and frames of context each side (as the decoder's chunks)."""


# -- hearing a clip ----------------------------------------------------------------------------------
def analyse(service, y: np.ndarray, sr: int) -> dict:
    """What a clip sounds like, as request values.

    y: float32 mono audio (n,) at sr.
    Returns {"length": the clip's seconds, "analysed_seconds", "genre": {"name", "probability",
    "top3"} or None, "genre_reason": why there is no genre (None when there is one), "tempo": BPM
    folded into the request's range, or None when no beat was found, "key": {"key", "correlation",
    "margin"} or None for silence}."""
    from .service import genre_fit_summary
    part = y[: int(ANALYSE_SECONDS * sr)]
    heard: dict[str, Any] = {"length": round(len(y) / sr, 3), "analysed_seconds": round(len(part) / sr, 3)}
    clf = service.classifier()
    if clf is None:
        heard["genre"] = None
        heard["genre_reason"] = f"the genre classifier is unavailable: {service.classifier_reason}"
    else:
        summary = genre_fit_summary(clf.verdict(part, sr).combined, None)
        best = summary["top3"][0]
        heard["genre"] = {"name": best["genre"], "probability": best["probability"], "top3": summary["top3"]}
        heard["genre_reason"] = None
    bpm, _ = audio.estimate_tempo(part, sr)
    heard["tempo"] = fold_tempo(bpm)
    found = keys.estimate(part, sr)
    heard["key"] = found.public() if found else None
    return heard


def fold_tempo(bpm: float) -> float | None:
    """A measured tempo in the request's range (TEMPO_MIN-TEMPO_MAX) by octaves, as a beat
    tracker's doubling or halving would; None for no tempo."""
    if not bpm or not math.isfinite(bpm):
        return None
    while bpm > opt.TEMPO_MAX:
        bpm /= 2
    while bpm < opt.TEMPO_MIN:
        bpm *= 2
    return round(min(bpm, opt.TEMPO_MAX), 2)


def clip_length(seconds: float) -> float:
    """A clip's length as a request's length: clamped to LENGTH_MIN-LENGTH_MAX."""
    return round(min(max(seconds, opt.LENGTH_MIN), opt.LENGTH_MAX), 2)


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def form_fields(overrides: Mapping[str, Any]) -> dict:
    """The request fields a form gives: blank ones are not given (what was heard stays)."""
    return {k: v for k, v in overrides.items() if _given(v) and k != "transfer"}


def request_for(heard: dict, overrides: Mapping[str, Any], defaults: Mapping[str, Any] | None = None
                ) -> tuple[GenerationRequest, dict]:
    """The GenerationRequest a clip asks for: what was heard (genre, tempo, key, length), each field
    the form gives instead winning, everything else from the form (mode, seed, instruments, ...),
    then from `defaults`, then the request's own defaults.

    Returns the request and {"from_clip": [...], "from_form": [...]}, the request fields each set.
    InvalidRequest names the field at fault; with no genre heard and none given, it names genre."""
    given = form_fields(overrides)
    from_clip = {"genre": heard["genre"]["name"] if heard.get("genre") else None,
                 "tempo": heard.get("tempo"),
                 "key": heard["key"]["key"] if heard.get("key") else None,
                 "length": clip_length(heard["length"])}
    from_clip = {k: v for k, v in from_clip.items() if v is not None and k not in given}
    if "genre" not in from_clip and "genre" not in given:
        raise InvalidRequest(f"the genre could not be heard in the clip ({heard.get('genre_reason')}); "
                             f"so give the genre, one of: {', '.join(opt.GENRES)}",
                             field="genre")
    request = GenerationRequest.parse({**(defaults or {}), **given, **from_clip})
    return request, {"from_clip": [k for k in HEARD if k in from_clip],
                     "from_form": [k for k in given if k in FIELDS]}


def parse_transfer(value: Any) -> bool:
    """The form's transfer switch: true, false, 1 or 0 (any case); absent means false."""
    if not _given(value):
        return False
    if isinstance(value, bool):
        return value
    word = LOOP_WORDS.get(value.strip().lower()) if isinstance(value, str) else None
    if word is None:
        raise InvalidRequest(f"transfer {value!r} must be true or false (a form may send true, false, "
                             "1 or 0)", field="transfer")
    return word


# -- starting the job ---------------------------------------------------------------------------------
def start(service, y: np.ndarray, sr: int, overrides: Mapping[str, Any],
          filename: str | None = None) -> tuple[Any, dict]:
    """Hear a clip and start the generation it asks for (a RAVE transfer of the clip itself when
    the form says transfer). Returns the job's JobState and {"request": the request made (its
    to_dict()), "transfer": bool, "heard": analyse()'s facts with the clip's "filename" and the
    request fields taken "from_clip" and "from_form"}."""
    transfer = parse_transfer(overrides.get("transfer"))
    # transfer without a mode means RAVE, the mode that can
    defaults = {"mode": TRANSFER_MODE} if transfer and not _given(overrides.get("generate_mode")) else {}
    # the form's own mistakes are answered before the clip is heard (seconds of analysis)
    form = GenerationRequest.parse({"genre": opt.GENRES[0], **defaults, **form_fields(overrides)})
    if transfer:
        check_transfer(form)
    heard = analyse(service, y, sr)
    request, sources = request_for(heard, overrides, defaults)
    heard.update({"filename": filename, **sources})
    if not transfer:
        reference = {**clip_facts(heard, filename), "genre": (heard.get("genre") or {}).get("name"),
                     "from_clip": sources["from_clip"]}
        answer = {"request": request.to_dict(), "transfer": False, "heard": heard}
        return service.submit(request, reference), answer
    request = transfer_request(request, heard, "length" in sources["from_clip"])
    if not service.remote:
        service.engine(TRANSFER_MODE)  # refuse an unavailable RAVE now, not inside the job
    job_id = new_job_id()
    path = clip_path(service.settings, job_id)
    source = transfer_source(y, sr, request, heard.get("tempo"))
    path.parent.mkdir(parents=True, exist_ok=True)
    import soundfile as sf
    sf.write(path, source, sr, subtype="FLOAT")
    payload = {**request.to_dict(), "transfer": clip_facts(heard, filename)}
    try:
        job = service.jobs.submit(job_id, payload)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return job, {"request": request.to_dict(), "transfer": True, "heard": heard}


def clip_facts(heard: dict, filename: str | None) -> dict:
    """What a track made from a clip keeps of it: its name, length, tempo and key as heard."""
    return {"filename": filename, "length": heard["length"], "tempo": heard.get("tempo"),
            "key": heard["key"]["key"] if heard.get("key") else None}


def check_transfer(request: GenerationRequest) -> None:
    """A transfer runs in RAVE mode, once."""
    if request.mode != TRANSFER_MODE:
        raise InvalidRequest(f"transfer re-synthesises the clip through RAVE: it needs mode "
                             f"{TRANSFER_MODE!r}, not {request.mode!r} (leave transfer out to make new "
                             f"music like the clip in {request.mode})", field="transfer")
    if request.candidates > 1:
        raise InvalidRequest("a transfer re-synthesises the clip once: candidates must be 1",
                             field="candidates")


def transfer_request(request: GenerationRequest, heard: dict, length_from_clip: bool) -> GenerationRequest:
    """Check a transfer's request: no more audio than the clip holds at the requested tempo (a
    length taken from the clip is cut to that)."""
    check_transfer(request)
    rate = _tempo_rate(heard.get("tempo"), request.tempo)
    available = heard["length"] / rate  # seconds of the clip at the requested tempo
    if length_from_clip:
        return dataclasses.replace(request, length=clip_length(math.floor(available * 100) / 100))
    if request.length > available + 0.01 and request.length > opt.LENGTH_MIN:
        at = f" at {request.tempo:g} BPM" if rate != 1.0 else ""
        raise InvalidRequest(f"length {request.length:g} s is longer than the clip{at} ({available:.2f} s): "
                             "a transfer re-synthesises the clip itself, so ask for at most that",
                             field="length")
    return request


def _tempo_rate(heard: float | None, requested: float | None) -> float:
    """The stretch that moves the clip from the tempo heard in it to the one requested (1 if either
    is unknown)."""
    if not heard or not requested:
        return 1.0
    rate = audio.stretch_rate(heard, requested)
    return 1.0 if abs(rate - 1.0) < 1e-3 else rate


def transfer_source(y: np.ndarray, sr: int, request: GenerationRequest, heard_tempo: float | None) -> np.ndarray:
    """The part of the clip a transfer needs (what the request's length takes at its tempo, plus a
    second), so the job's file holds no more than that."""
    need = int(math.ceil((request.length * _tempo_rate(heard_tempo, request.tempo) + 1.0) * sr))
    return np.ascontiguousarray(y[:need], dtype=np.float32)


def new_job_id() -> str:
    from .store import new_id
    return new_id()


def clip_path(settings, job_id: str) -> Path:
    """Where a transfer job's clip waits for its worker: in the store's folder, the one every
    process mounts (MELODYMAKER_STORE_DIR), named as a temporary file so that the store sweeps it
    away when a job never ran (store.directory.TMP_PREFIX)."""
    from .store.base import check_id
    from .store.directory import TMP_PREFIX
    return Path(settings.store_dir) / f"{TMP_PREFIX}reference-{check_id(job_id)}.wav"


# -- the transfer itself -------------------------------------------------------------------------------
def run_transfer(service, job_id: str, payload: dict, progress: Progress) -> str:
    """What a queue worker runs for a transfer job: the clip saved by start() through the genre's
    RAVE, stored under the job's id; the clip's file is removed whatever happens."""
    path = clip_path(service.settings, job_id)
    try:
        source = dict(payload["transfer"])
        request = GenerationRequest.parse({k: v for k, v in payload.items() if k != "transfer"})
        y = audio.load(path, opt.SAMPLE_RATE)
        track, meta = transfer(service, request, y, opt.SAMPLE_RATE, source=source, progress=progress)
        progress(0.99, "saving")
        return service.store.save(track, meta, job_id, embedding=track.meta.get("embedding"))
    finally:
        path.unlink(missing_ok=True)


def transfer(service, request: GenerationRequest, y: np.ndarray, sr: int, *, source: dict,
             progress: Progress = no_progress) -> tuple[Track, dict]:
    """Timbre transfer: the clip (y at sr, from its start) conformed to the request's tempo and key
    where they differ from what was heard in it (source: {"filename", "length", "tempo", "key"}),
    encoded and decoded by the request genre's RAVE export, then the shared post stage (length,
    fades, loudness, measurements). Returns the finished Track and its metadata, as
    Service.generate does, with "transfer": true and "reference" (the clip's name, length and
    what was done to it)."""
    engine = service.engine(TRANSFER_MODE)
    t0 = time.perf_counter()
    progress(0.02, "preparing the clip")
    y = np.asarray(y, dtype=np.float32)
    n = int(round(request.length * sr))
    done: dict[str, Any] = {}
    rate = _tempo_rate(source.get("tempo"), request.tempo)
    if rate != 1.0:
        need = min(len(y), int(math.ceil(n * rate)) + sr // 10)
        y = audio.time_stretch(y[:need], rate)
        done["tempo_conform"] = {"heard": source["tempo"], "rate": round(rate, 4)}
    heard_key, requested_key = keys.parse(source.get("key")), request.musical_key
    if heard_key is not None and requested_key is not None:
        semitones = keys.shift_between(heard_key, requested_key)
        if semitones:
            y = audio.pitch_shift(y[: n + sr // 10], sr, semitones)
        done["key_shift"] = {"heard": heard_key.name, "semitones": semitones}
    if 0 < len(y) < n:  # a clip shorter than the shortest track: played again
        y = np.tile(y, int(np.ceil(n / len(y))))
    y = audio.fit_length(y, n)
    try:
        key, model = engine.rave.model_for(request.genre)
    except LookupError as e:
        raise ModeUnavailable(f"RAVE cannot transfer to {request.genre} here: {e.args[0]}", field="genre") from e
    progress(0.1, "encoding the clip")
    z = encode(model, audio.resample(y, sr, model.sr))
    progress(0.4, "decoding through RAVE")
    out = model.decode(z, seed=request.seed, progress=lambda f: progress(0.4 + 0.5 * f, "decoding through RAVE"))
    out = audio.fit_length(audio.resample(out, model.sr, sr), n)
    raw = Track(out, sr, None, {"engine": TRANSFER_MODE, "seed": request.seed, "model": model.describe(),
                                "export": key})
    t1 = time.perf_counter()
    progress(0.92, "finishing: length, fades, loudness")
    track = post.finish(raw, request, TRANSFER_CAPABILITIES)
    progress(0.96, "measuring genre fit")
    t2 = time.perf_counter()
    meta = service._describe(request, engine, track, t1 - t0, t2 - t1)  # as every track's
    meta.update({"transfer": True, "reference": {
        "filename": source.get("filename"), "length": source.get("length"), "tempo": source.get("tempo"),
        "key": source.get("key"), **done}})
    clf = service.classifier()
    if clf is not None:
        from .service import verdict_summary
        verdict = clf.verdict(track.audio, track.sr)
        meta["genre_fit"] = verdict_summary(verdict, request.genre)
        track.meta["embedding"] = verdict.embedding
    return track, meta


def encode(model, y: np.ndarray) -> np.ndarray:
    """A RAVE export's latents (latent_size, frames) of mono audio at model.sr, ENCODE_CHUNK frames
    per pass with ENCODE_CONTEXT frames of context each side, so a five-minute clip does not hold
    the whole encoder's activations at once."""
    frames = int(math.ceil(len(y) / model.ratio))
    y = np.pad(y, (0, frames * model.ratio - len(y)))
    out = []
    for start in range(0, frames, ENCODE_CHUNK):
        stop = min(frames, start + ENCODE_CHUNK)
        lo, hi = max(0, start - ENCODE_CONTEXT), min(frames, stop + ENCODE_CONTEXT)
        z = model.encode(y[lo * model.ratio: hi * model.ratio])
        out.append(z[:, start - lo: stop - lo])
    return np.concatenate(out, axis=1)

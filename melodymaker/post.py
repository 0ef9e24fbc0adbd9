"""The shared post stage: key and tempo conform (when the engine cannot), exact length, fades,
loudness, the request's output quality, and what the user will check measured on the result
(tempo, key, loudness).

Audio may be mono (n,) or stereo (n, 2) (Track.audio). A mode that makes mono at 22050 Hz is
finished as it always was, and only then, for studio quality, upsampled and centred
(audio.centred); compose renders studio quality in stereo itself and is finished in stereo."""
from __future__ import annotations

import dataclasses

import numpy as np

from . import audio, keys
from . import options as opt
from .audio import conform_tempo
from .engines.base import CONTEXT_SECONDS, Capabilities
from .request import GenerationRequest
from .track import Track


STRETCH_BOUND = 2 ** 0.5
"""A tempo conform never stretches by more than this either way (audio.stretch_rate folds octaves)."""


def source_length(request: GenerationRequest, capabilities: Capabilities,
                  native_tempo: float | None = None) -> float:
    """Seconds of audio to ask the engine for, so that after the tempo conform the track still fills
    the requested length with music, not padded silence. native_tempo: the tempo the engine is
    expected to play the genre at (the library's median), when known; else the worst case."""
    if request.loop and not capabilities.loop:
        # the loop's whole bars (4/4: the mode ignores the meter) and what is crossfaded into its
        # start; without a tempo, the longest bars, the slowest tempo's, rounded up
        meter = opt.METERS[opt.METER_DEFAULT]
        if request.tempo:
            need = meter.loop_bars(request.length, request.tempo) * meter.bar_seconds(request.tempo)
        else:
            bar = meter.bar_seconds(opt.TEMPO_MIN)
            need = max(bar, request.length + 0.5 * bar)
        request = dataclasses.replace(request, loop=False, length=need + opt.LOOP_CROSSFADE + 0.1)
    if not request.tempo or capabilities.tempo:
        return request.length
    if native_tempo:
        # the engine's own tempo wanders around the genre's: 10 % headroom over the expected rate
        headroom = min(STRETCH_BOUND, max(1.0, audio.stretch_rate(native_tempo, request.tempo))) * 1.1
    else:
        headroom = STRETCH_BOUND * 1.02
    return request.length * headroom + 0.25


def finish(track: Track, request: GenerationRequest, capabilities: Capabilities,
           keep_context: bool = False) -> Track:
    """Conform a Track to the request; measure what the user will check (tempo, key, loudness).

    meta["post"] records what an extension must do again to its continuation (the loudness gain,
    the fade-out, where the new audio takes over on the raw timeline); keep_context: also keep the
    raw audio before that point (Track.context), for a mode that continues a tail."""
    sr = track.sr
    raw = np.asarray(track.audio, dtype=np.float32)
    y = raw
    meta = dict(track.meta)
    requested_key, key_shift = request.musical_key, None
    if requested_key is not None and not capabilities.key:
        y, key_shift = shift_key(y, sr, requested_key)
    knots = None  # where an aligned conform laid the raw beats on the output timeline
    if request.tempo and not capabilities.tempo:
        y, meta["tempo_conform"] = conform_tempo(y, sr, request.tempo)
        knots = meta["tempo_conform"].pop("map", None)
    stems = track.stems
    if stems and (requested_key is not None and not capabilities.key
                  or request.tempo and not capabilities.tempo):
        stems = None  # a conform would have to treat each part as the whole: none rather than a mismatch
    if request.loop:  # no fades: a whole number of bars whose end flows into its start
        y, meta["loop"] = make_loop(y, sr, request, capabilities, meta.get("tempo"))
        gain = np.ones(len(y), dtype=np.float32)
    else:
        fade_out = min(1.0, 0.08 * request.length)
        n = int(round(request.length * sr))
        if not capabilities.length and 0 < len(y) < n:
            y = _repeat(y, int(np.ceil(n / len(y))))  # loop rather than leave silence
        elif 0 < len(y) < n:
            # the conform sped it up by more than source_length() allowed for: a slight extra
            # stretch (reported) rather than zeros at the end
            meta["length_fit_rate"] = round(len(y) / n, 4)
            y = audio.each_channel(audio.time_stretch, y, len(y) / n, n, sr=sr)
        y = audio.fit_length(y, n)
        y = audio.fades(y, sr, fade_in=0.01, fade_out=fade_out)
        gain = audio.fades(np.ones(n, dtype=np.float32), sr, fade_in=0.01, fade_out=fade_out)
    # a loop is limited round its seam (its end runs on into its start)
    y, level = audio.normalize_with_gain(y, sr, loop=request.loop)
    # the loudness gain as applied (after normalize's top-up): the curve wherever the limiter
    # left the audio alone, its largest value
    loudness_gain = float(np.max(level)) if len(level) else None
    handover, context = None, None
    if not request.loop:
        handover, context = takeover(raw, 0.0, len(y), sr, fade_out=fade_out, gain=loudness_gain,
                                      rate=meta.get("tempo_conform", {}).get("rate", 1.0),
                                      key_shift=(key_shift or {}).get("semitones", 0),
                                      keep_context=keep_context, knots=knots)
        meta["post"] = handover
    if stems:  # each part gets the mix's gains, so that the parts still sum to the mix
        stems = {role: audio.fit_length(part, len(y)) * audio.per_sample(gain, part)
                 * audio.per_sample(level, part)
                 for role, part in stems.items()}
    source, raw_sr, native = (y, sr), sr, np.ndim(y) == 2
    if np.ndim(y) == 1 and request.output.channels == 2:
        y, stems, sr = studio(y, stems, sr, request, meta)
    meta.update(measure(y, sr, request, capabilities, requested_key, key_shift, meta.get("written_key"),
                        source=source))
    meta["quality"] = quality_report(request.output, native)
    meta["stems"] = sorted(stems, key=opt.ROLES.index) if stems else []
    return Track(y, sr, track.midi, meta, stems, context, context_sr=raw_sr if raw_sr != sr else None)


def studio(y: np.ndarray, stems: dict | None, sr: int, request: GenerationRequest, meta: dict
           ) -> tuple[np.ndarray, dict | None, int]:
    """A finished mono track at the request's output quality: upsampled and centred (the same
    signal in both channels, audio.centred), its stems too, and a loop's points in the new samples.
    Exactly round(length * rate) samples, as a track made at that rate has (a loop: the same bars,
    twice the samples). Returns (audio, stems, sample rate)."""
    rate = request.output.sample_rate

    def up(part: np.ndarray) -> np.ndarray:
        part = audio.centred(part, sr, rate, loop=request.loop)
        return part if request.loop else audio.fit_length(part, int(round(request.length * rate)))
    out = up(y)
    if stems:
        stems = {role: up(part) for role, part in stems.items()}
    if meta.get("loop"):
        meta["loop"] = {**meta["loop"], "end": len(out)}
    return out, stems, rate


def quality_report(quality: opt.Quality, native: bool) -> dict:
    """What a track's metadata says of its output format (its "quality"): the request's quality, its
    rate and channels, and for stereo whether the mode rendered it (true stereo) or its mono was
    upsampled and centred."""
    report = {"name": quality.name, "label": quality.label, "sample_rate": quality.sample_rate,
              "channels": quality.channels}
    if quality.channels == 2:
        report["stereo"] = opt.STEREO_NATIVE if native else opt.STEREO_CENTRED
        report["note"] = ("rendered in stereo: each part at its pan, with its reverb send" if native else
                          f"this mode makes {opt.SAMPLE_RATE} Hz mono: upsampled to {quality.sample_rate} Hz "
                          "and centred, the same signal in both channels (no widening)")
    return report


def shift_key(y: np.ndarray, sr: int, requested: keys.Key) -> tuple[np.ndarray, dict]:
    """keys.shift_to for mono or stereo: the key is heard on the channels' mean, and both channels
    are shifted together."""
    if np.ndim(y) == 1:
        return keys.shift_to(y, sr, requested)
    before = keys.estimate(audio.to_mono(y), sr)
    if before is None:
        return y, {"estimated_before": None, "semitones": 0}
    semitones = keys.shift_between(before.key, requested)
    return (audio.pitch_shift(y, sr, semitones) if semitones else y,
            {"estimated_before": before.key.name, "semitones": semitones})


def _repeat(y: np.ndarray, times: int) -> np.ndarray:
    """y played `times` times end to end (mono or stereo)."""
    return np.tile(y, (times,) + (1,) * (np.ndim(y) - 1))


def measure(y: np.ndarray, sr: int, request: GenerationRequest, capabilities: Capabilities,
            requested_key: keys.Key | None, key_shift: dict | None, written_key: str | None, *,
            source: tuple[np.ndarray, int] | None = None) -> dict:
    """What the user will check, measured on the finished audio: length, tempo, loudness, peak,
    key; and the meter as asked and as applied. Tempo and key are heard in mono at 22050 Hz
    (audio.analysis); source: the same music already mono (a studio track's mono before it was
    upsampled), to hear them in instead."""
    heard, heard_sr = audio.analysis(*(source if source is not None and np.ndim(source[0]) == 1 else (y, sr)))
    tempo, _ = audio.estimate_tempo(heard, heard_sr)
    return {"length": round(len(y) / sr, 6), "samples": len(y), "sample_rate": sr,
            "channels": 1 if np.ndim(y) == 1 else int(np.shape(y)[1]),
            "measured_tempo": round(tempo, 2) if tempo else None,
            "loudness_lufs": round(audio.loudness(y, sr), 2),
            "peak_dbfs": round(20 * float(np.log10(np.max(np.abs(y)) + 1e-9)), 2),
            "key": key_report(heard, heard_sr, requested_key, key_shift, written_key),
            # a mode that cannot write a meter plays its own (ignored, as it ignores instruments)
            "meter": {"requested": request.meter, "applied": "written" if capabilities.meter else "ignored"}}


def takeover(raw: np.ndarray, raw_start: float, n: int, sr: int, *, fade_out: float, gain: float | None,
              rate: float, key_shift: int, keep_context: bool, raw_sr: int | None = None,
              knots: list | None = None) -> tuple[dict, np.ndarray | None]:
    """What an extension of a finished track of n samples must know (its meta["post"]): the
    loudness gain, the fade-out, the tempo-conform rate and key shift to apply again, and where on
    the raw timeline the new audio takes over (context_end: the fade-out's start); with
    keep_context, also the raw audio before that point (raw: the raw timeline from raw_start s,
    at raw_sr, default sr). knots: [[raw s, output s], ...] where the raw timeline does not map to
    the output at one rate from 0 (a conform that aligned beats, audio.warp_time); then the
    output time of context_end is kept too (context_end_output)."""
    raw_sr = raw_sr or sr
    fade = audio.fades_length(n, sr, fade_out)
    at = audio.warp_time(n / sr - fade, knots, rate, inverse=True)
    handover = {"gain": gain, "fade_out": round(fade, 6), "tempo_rate": rate, "key_shift": key_shift,
                "context_end": round(at, 6)}
    if knots:
        handover["context_end_output"] = round(n / sr - fade, 6)
    context = None
    if keep_context:
        end = int(round((at - raw_start) * raw_sr))
        context = np.asarray(raw[max(0, end - int(CONTEXT_SECONDS * raw_sr)):max(0, end)], dtype=np.float32).copy()
    return handover, context


def make_loop(y: np.ndarray, sr: int, request: GenerationRequest, capabilities: Capabilities,
              tempo: float | None) -> tuple[np.ndarray, dict]:
    """A whole number of bars (the requested length to the nearest bar count, at least one) that
    repeats without a click or a gap, and its loop points for the metadata.

    The bars are counted at the request's tempo, else the one the engine reports, else the one
    measured here, in the requested meter where the mode writes it (4/4 where it ignores it). A mode
    that writes loops (capabilities.loop: compose) made exactly those samples already; the others'
    audio past the loop's end is crossfaded (equal power) into its start, so the end flows on
    into the start as it did into what followed it."""
    bpm = request.tempo or tempo or audio.estimate_tempo(y, sr)[0] or 120.0
    meter = request.time_signature if capabilities.meter else opt.METERS[opt.METER_DEFAULT]
    bars = meter.loop_bars(request.length, bpm)
    n = int(round(bars * meter.bar_seconds(bpm) * sr))
    if not capabilities.loop:
        fade = min(int(opt.LOOP_CROSSFADE * sr), n // 4)
        if len(y) < n + fade:
            y = _repeat(y, int(np.ceil((n + fade) / max(1, len(y)))))
        y = audio.loop_crossfade(y, n, fade)
    return audio.fit_length(y, n), {"start": 0, "end": n, "bars": bars, "tempo": round(float(bpm), 3),
                                    "meter": meter.name, "seconds": round(n / sr, 6),
                                    "crossfade": None if capabilities.loop else round(fade / sr, 4)}


def key_report(y: np.ndarray, sr: int, requested: keys.Key | None, shift: dict | None = None,
               written: str | None = None) -> dict:
    """What a track's metadata says of its key: the key asked for ('auto' or a name), the key
    estimated from the audio (None for silence) with its profile correlation, how the two relate
    (keys.relation) when a key was asked for, the pitch shift that conformed it (modes that cannot
    write in a key) and the key of the score (modes that write one)."""
    found = keys.estimate(y, sr)
    report = {"requested": keys.name(requested), "estimated": found.key.name if found else None,
              "correlation": round(found.correlation, 3) if found else None}
    if requested is not None:
        report["relation"] = keys.relation(requested, found.key) if found else None
    if shift is not None:
        report["shift"] = shift
    if written is not None:
        report["written"] = written
    return report


def extend(continuation: Track, parent: Track, parent_meta: dict, request: GenerationRequest,
           capabilities: Capabilities, *, starts_at: float, parent_tail: np.ndarray | None = None,
           keep_context: bool = False) -> Track:
    """The parent track followed by its continuation: the post stage of an extension.

    continuation: raw audio from the engine (Engine.continue_from) whose first sample lies at
    `starts_at` on the parent's raw timeline. It is conformed as the parent was (the same key
    shift and tempo-conform rate, not measured again, so the beat grid and the key carry on),
    scaled by the parent's loudness gain, and faded out at the new end. The new track is the
    parent's samples up to the seam (its fade-out start, or the engine's meta["seam"]) and from
    there the parent's fade-out crossfaded with the continuation's complement of it (or the
    engine's meta["crossfade"] seconds: 0 for a hard cut where both already play the same audio).
    Only the continuation is limited, so everything before the seam is the parent bit for bit.
    parent_tail: the parent's raw audio before starts_at (its Track.context), which the new track
    keeps as its own context when its continuation is shorter than that.
    A studio parent (stereo) of a mode that makes mono has its continuation conformed in mono, then
    upsampled and centred as finish() made the parent; compose continues a stereo one in stereo."""
    sr, raw_sr = parent.sr, continuation.sr
    post = parent_meta.get("post") or _post_of_older(parent, parent_meta)
    rate = float(post["tempo_rate"])
    y = np.asarray(continuation.audio, dtype=np.float32)
    if post["key_shift"]:
        y = audio.pitch_shift(y, raw_sr, post["key_shift"])
    aligned = None  # (the continuation's own rate, its map) when its beats are laid on the grid too
    if "context_end_output" in post and request.tempo:
        # the parent's beats were aligned to the grid: the continuation's are, by its own beats
        conformed, info = audio.conform_tempo(y, raw_sr, request.tempo)
        if info.get("map"):
            y, aligned = conformed, (float(info["rate"]), info["map"])
    if aligned is None and rate != 1.0:
        y = audio.each_channel(audio.time_stretch, y, rate, int(round(len(y) / rate)), sr=raw_sr)
    native = np.ndim(y) == 2
    if np.ndim(y) == 1 and np.ndim(parent.audio) == 2:
        y = audio.centred(y, raw_sr, sr)
    elif raw_sr != sr:
        raise ValueError(f"the continuation is at {raw_sr} Hz, its parent at {sr} Hz")
    n, n_parent = int(round(request.length * sr)), len(parent.audio)
    fade_n = int(round(post["fade_out"] * sr))
    seam = int(round(continuation.meta.get("seam", (n_parent - fade_n) / sr) * sr))
    # the continuation's first sample on the output timeline (where the parent's aligned conform
    # put its take-over point, or at the conform's one rate)
    mapped = "context_end_output" in post and abs(starts_at - post["context_end"]) < 1e-6
    first = int(round((post["context_end_output"] if mapped else starts_at / rate) * sr))
    # a continuation of the raw tail starts on the very sample the parent's audio was at, unless a
    # key shift or stretch (made apart from the parent's) moved it: then a short hand-over does;
    # else the parent's whole fade-out, which also hides the conform's own edge
    exact = first == seam and rate == 1.0 and not post["key_shift"]
    xfade = int(round(continuation.meta.get("crossfade", EXACT_CROSSFADE if exact else fade_n / sr) * sr))
    xfade = min(xfade, n_parent - seam)
    new = y[max(0, seam - first):]
    if seam < first:
        raise ValueError(f"the continuation starts at {first / sr:.3f} s, after the seam at {seam / sr:.3f} s")
    want = n - seam
    if 0 < len(new) < want:  # a little short after the conform: stretch slightly, never pad silence
        new = audio.each_channel(audio.time_stretch, new, len(new) / want, want, sr=sr)
    new = audio.fit_length(new, want)
    new = audio.fades(new, sr, fade_in=0.0, fade_out=min(1.0, 0.08 * request.length))
    gain = matched_gain(parent.audio, y, seam, first, sr) or post["gain"]
    if gain is None:  # a parent stored before its gain was: match its measured loudness instead
        gain = audio.loudness_gain(new, sr, target_lufs=parent_meta.get("loudness_lufs", audio.TARGET_LUFS)) or 1.0
    _, new = audio.limit_scaled(new, gain, sr)
    out = np.empty((n,) + np.shape(parent.audio)[1:], dtype=np.float32)
    out[:seam] = parent.audio[:seam]
    out[seam:] = new
    if xfade > 0:
        # the parent's own gain over the crossfade (its fade-out, where it has begun) and the share
        # it keeps: out = keep * unfaded parent + (1 - keep) * continuation
        own = np.ones(xfade, dtype=np.float32)
        faded = np.arange(seam, seam + xfade) >= n_parent - fade_n
        own[faded] = audio.fade_out_curve(fade_n)[np.arange(seam, seam + xfade)[faded] - (n_parent - fade_n)]
        keep = audio.fade_out_curve(xfade)   # over the parent's whole fade-out: its own curve
        ratio = np.divide(keep, own, out=np.zeros_like(keep), where=own > 1e-6)
        out[seam:seam + xfade] = (audio.per_sample(ratio, out) * parent.audio[seam:seam + xfade]
                                  + audio.per_sample(1 - keep, out) * new[:xfade])
    np.clip(out, -1.0, 1.0, out=out)
    stems = None
    if continuation.stems and first == 0 and rate == 1.0 and not post["key_shift"]:
        # parts of the whole new timeline (compose): each gets the mix's gain sample by sample,
        # so that they still sum to it
        mix = audio.fit_length(np.asarray(continuation.audio, dtype=np.float32), n)
        curve = np.divide(out, mix, out=np.zeros(out.shape, dtype=np.float32), where=np.abs(mix) > 1e-7)
        stems = {role: audio.fit_length(part, n) * curve for role, part in continuation.stems.items()}
    raw, raw_start = np.asarray(continuation.audio, dtype=np.float32), starts_at
    if parent_tail is not None and starts_at > 0:
        raw, raw_start = np.concatenate([parent_tail, raw]), starts_at - len(parent_tail) / raw_sr
    handover, context = takeover(raw, raw_start, n, sr, fade_out=min(1.0, 0.08 * request.length),
                                  gain=gain, rate=aligned[0] if aligned else rate, key_shift=post["key_shift"],
                                  keep_context=keep_context,
                                  raw_sr=raw_sr, knots=continuation_map(starts_at, first / sr, aligned, mapped))
    parent_key = parent_meta.get("key") or {}
    meta = {**continuation.meta, "post": handover,
            "seam": {"at": round(seam / sr, 6), "crossfade": round(xfade / sr, 6),
                     "parent_length": round(n_parent / sr, 6)},
            **measure(out, sr, request, capabilities, request.musical_key, parent_key.get("shift"),
                      parent_key.get("written"))}
    meta["quality"] = quality_report(request.output, native)  # the parent's request: its quality
    meta["stems"] = sorted(stems, key=opt.ROLES.index) if stems else []
    return Track(out, sr, continuation.midi, meta, stems, context, context_sr=raw_sr if raw_sr != sr else None)


def matched_gain(parent: np.ndarray, continuation: np.ndarray, seam: int, first: int, sr: int,
                 seconds: float = 5.0) -> float | None:
    """The gain that fits a continuation that plays the parent again before the seam (a mode that
    makes the whole longer timeline) onto the parent there, by least squares over the last
    `seconds` before the seam (the samples the limiter did not touch); None when it does not play
    it again (too little overlap, or not the same audio: correlation under 0.9)."""
    lo = max(int(0.05 * sr), seam - int(seconds * sr), first)
    if seam - lo < int(0.5 * sr):
        return None
    p = np.asarray(parent[lo:seam], dtype=np.float64)
    c = np.asarray(continuation[lo - first:seam - first], dtype=np.float64)
    linear = np.abs(p) < 0.5 * audio.PEAK_CEILING      # (mostly) where the parent's limiter left it alone
    p, c = p[linear], c[linear]
    cc, pp, pc = float(c @ c), float(p @ p), float(p @ c)
    if cc <= 0 or pp <= 0 or pc / np.sqrt(cc * pp) < 0.9:
        return None
    return pc / cc


EXACT_CROSSFADE = 0.04
"""Seconds over which an extension hands over from the parent to a continuation that starts on
the parent's own sample (the neural modes, with no key shift or tempo conform to redo)."""


def continuation_map(starts_at: float, first: float, aligned: tuple | None, mapped: bool) -> list | None:
    """The raw -> output time map of an extension after its seam (for its own take-over point): the
    continuation's aligned beats placed from its first sample (raw starts_at, output first), or
    that one point at the parent's rate; None where the parent mapped one rate from 0."""
    if aligned:
        return [[round(starts_at + a, 6), round(first + b, 6)] for a, b in aligned[1]]
    return [[starts_at, first]] if mapped else None


def _post_of_older(parent: Track, meta: dict) -> dict:
    """meta["post"] for a track stored before it was recorded: the key shift and tempo rate from
    its metadata, the fade-out from its length, and a gain that brings a continuation to its loudness."""
    details = meta.get("details", {})
    length = len(parent.audio) / parent.sr
    return {"gain": None, "fade_out": audio.fades_length(len(parent.audio), parent.sr, min(1.0, 0.08 * length)),
            "tempo_rate": details.get("tempo_conform", {}).get("rate", 1.0),
            "key_shift": ((meta.get("key") or {}).get("shift") or {}).get("semitones", 0)}

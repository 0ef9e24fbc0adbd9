"""The shared post stage: key and tempo conform (when the engine cannot), exact length, fades,
loudness, and what the user will check measured on the result (tempo, key, loudness)."""
from __future__ import annotations

import dataclasses

import numpy as np

from . import audio, keys
from . import options as opt
from .audio import conform_tempo
from .engines.base import Capabilities
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


def finish(track: Track, request: GenerationRequest, capabilities: Capabilities) -> Track:
    """Conform a Track to the request; measure what the user will check (tempo, key, loudness)."""
    sr = track.sr
    y = np.asarray(track.audio, dtype=np.float32)
    meta = dict(track.meta)
    requested_key, key_shift = request.musical_key, None
    if requested_key is not None and not capabilities.key:
        y, key_shift = keys.shift_to(y, sr, requested_key)
    if request.tempo and not capabilities.tempo:
        y, meta["tempo_conform"] = conform_tempo(y, sr, request.tempo)
    stems = track.stems
    if stems and (requested_key is not None and not capabilities.key
                  or request.tempo and not capabilities.tempo):
        stems = None  # a conform would have to treat each part as the whole: none rather than a mismatch
    if request.loop:  # no fades: a whole number of bars whose end flows into its start
        y, meta["loop"] = make_loop(y, sr, request, capabilities, meta.get("tempo"))
        gain = np.ones(len(y), dtype=np.float32)
    else:
        n = int(round(request.length * sr))
        if not capabilities.length and 0 < len(y) < n:
            y = np.tile(y, int(np.ceil(n / len(y))))  # loop rather than leave silence
        elif 0 < len(y) < n:
            # the conform sped it up by more than source_length() allowed for: a slight extra
            # stretch (reported) rather than zeros at the end
            meta["length_fit_rate"] = round(len(y) / n, 4)
            y = audio.time_stretch(y, len(y) / n, n)
        y = audio.fit_length(y, n)
        y = audio.fades(y, sr, fade_in=0.01, fade_out=min(1.0, 0.08 * request.length))
        gain = audio.fades(np.ones(n, dtype=np.float32), sr, fade_in=0.01,
                           fade_out=min(1.0, 0.08 * request.length))
    # the limiter is memoryless: it treats a loop's seam as any other sample
    y, level = audio.normalize_with_gain(y, sr)
    if stems:  # each part gets the mix's gains, so that the parts still sum to the mix
        stems = {role: audio.fit_length(part, len(y)) * gain * level for role, part in stems.items()}
    tempo, _ = audio.estimate_tempo(y, sr)
    meta.update({"length": round(len(y) / sr, 6), "samples": len(y), "sample_rate": sr,
                 "measured_tempo": round(tempo, 2) if tempo else None,
                 "loudness_lufs": round(audio.loudness(y, sr), 2),
                 "peak_dbfs": round(20 * float(np.log10(np.max(np.abs(y)) + 1e-9)), 2),
                 "key": key_report(y, sr, requested_key, key_shift, meta.get("written_key")),
                 # a mode that cannot write a meter plays its own (ignored, as it ignores instruments)
                 "meter": {"requested": request.meter,
                           "applied": "written" if capabilities.meter else "ignored"}})
    meta["stems"] = sorted(stems, key=opt.ROLES.index) if stems else []
    return Track(y, sr, track.midi, meta, stems)


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
            y = np.tile(y, int(np.ceil((n + fade) / max(1, len(y)))))
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

"""Pure (y, sr) audio functions: load, resample, tempo, stretch, pitch, length, fades, loudness, encode.

Audio is float32 mono, shape (n,), range [-1, 1], unless a docstring says otherwise; the
functions that also take stereo, shape (n, 2) (soundfile's layout, as Track.audio has it), say so.
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .errors import AudioDecodeError
from .options import SAMPLE_RATE, STUDIO_SAMPLE_RATE

TARGET_LUFS = -16.0
PEAK_CEILING = 10 ** (-1.0 / 20)  # -1 dBFS, so MP3 encoding does not clip


def load(source: str | Path | io.IOBase, sr: int = SAMPLE_RATE, *,
         max_seconds: float | None = None) -> np.ndarray:
    """Read any format libsndfile knows (WAV, AU, FLAC, OGG, MP3) as float32 mono at `sr`.

    max_seconds: refuse (AudioDecodeError) audio longer than this, before decoding it all.
    """
    try:
        with sf.SoundFile(source) as f:
            _check_header(f)
            native_sr = f.samplerate
            if max_seconds is not None and f.frames > max_seconds * native_sr:
                raise AudioDecodeError(f"audio is {f.frames / native_sr:.0f} s long; "
                                       f"the limit is {max_seconds:.0f} s")
            y = f.read(dtype="float32", always_2d=True)
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as e:
        raise AudioDecodeError(f"not readable audio ({_short(e)})") from e
    if y.size == 0:
        raise AudioDecodeError("the file holds no audio samples")
    y = y.mean(axis=1)
    if not np.all(np.isfinite(y)):
        raise AudioDecodeError("the audio holds non-finite samples")
    return resample(y, native_sr, sr)


def probe(path: str | Path) -> sf._SoundFileInfo:
    """Header facts of an audio file (format, rate, frames), or AudioDecodeError saying why not."""
    try:
        with sf.SoundFile(str(path)) as f:
            _check_header(f)
        return sf.info(str(path))
    except AudioDecodeError:
        raise
    except (sf.LibsndfileError, RuntimeError, ValueError, TypeError, OSError) as e:
        raise AudioDecodeError(f"not readable audio ({_short(e)})") from e


def _check_header(f: sf.SoundFile) -> None:
    # libsndfile falls back to header-less RAW for unknown bytes in a .au; that is not audio to us
    if f.format == "RAW":
        raise AudioDecodeError("not readable audio (no audio header found)")
    if f.frames <= 0 or f.samplerate <= 0:
        raise AudioDecodeError("the file holds no audio samples")


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]


def resample(y: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """y at sr_out (soxr, high quality); mono (n,) or stereo (n, 2)."""
    if sr_in == sr_out:
        return np.ascontiguousarray(y, dtype=np.float32)
    import soxr  # librosa's default resampler; imported here to keep module import light
    return soxr.resample(np.asarray(y, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(np.float32)


def estimate_tempo(y: np.ndarray, sr: int) -> tuple[float, np.ndarray]:
    """(BPM, beat times in seconds) by librosa's dynamic-programming beat tracker; stereo is folded."""
    import librosa
    y = to_mono(y)
    if len(y) < sr // 2:
        return 0.0, np.zeros(0)
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    tempo, beats = float(np.atleast_1d(tempo)[0]), np.asarray(beats, dtype=float)
    if len(beats) >= 8:
        # the slope of beat time against beat number is finer than the tempogram's bins
        slope = np.polyfit(np.arange(len(beats)), beats, 1)[0]
        if slope > 0 and abs(60.0 / slope - tempo) < 0.08 * tempo:
            tempo = 60.0 / slope
    return tempo, beats


WIDE_TEMPI = (60.0, 110.0, 180.0)
"""[low, median, high] BPM a tempo-steered network plays a genre at when its checkpoint has none for it."""


def tempo_to_draw(requested: float, tempi=WIDE_TEMPI) -> float:
    """The tempo a network that learned a genre at `tempi` ([low, median, high] BPM) is asked to
    draw for a request of `requested` BPM: the octave of it (x1/2, x1, x2; the post stage's
    conform folds octaves the same way) nearest the median among those inside [low, high], else
    the nearest edge. The post stage conforms the rest."""
    low, median, high = tempi or WIDE_TEMPI
    candidates = [requested * k for k in (0.5, 1.0, 2.0)]
    inside = [c for c in candidates if low <= c <= high]
    if inside:
        return float(min(inside, key=lambda c: abs(math.log(c / median))))
    nearest = min(candidates, key=lambda c: min(abs(math.log(c / low)), abs(math.log(c / high))))
    return float(min(max(nearest, low), high))


def warm_up() -> None:
    """Run the analysis once so numba compiles librosa's kernels into its on-disk cache
    (about half a minute on a new install; run.sh does it right after installing)."""
    y = np.random.default_rng(0).standard_normal(SAMPLE_RATE * 4).astype(np.float32) * 0.1
    estimate_tempo(y, SAMPLE_RATE)
    time_stretch(y, 1.1)


STRETCHERS = ("phase-vocoder", "rubberband")
STRETCHER = os.environ.get("MELODYMAKER_STRETCHER", "rubberband")
"""How time_stretch() stretches: Rubber Band (pedalboard's offline stretcher, high-quality mode,
the default) or librosa's phase vocoder. Measured on the same requests (evaluate --keys auto
--per-genre 3, 30 tracks a mode, MELODYMAKER_STRETCHER set to each), Rubber Band keeps transients
(onset sharpness: dataset 3.93 -> 8.09, DDIM 2.57 -> 3.03, MEL-GAN 4.52 -> 7.07) and the judges'
genre fit (lower judge: dataset 0.933 -> 0.967, DDIM 0.567 -> 0.633, MEL-GAN 0.5 -> 0.467, within
the +-0.09 of 30 tracks), at about three times the stretching time (0.35 s against 0.12 s for 30 s)."""


def time_stretch(y: np.ndarray, rate: float, n_out: int | None = None, *, sr: int = SAMPLE_RATE,
                 method: str | None = None, rubberband: dict | None = None) -> np.ndarray:
    """Audio stretched by `rate` (>1 = faster) at the same pitch; exactly n_out samples when given.
    rubberband: options for pedalboard's stretcher (default: its high-quality mode as it comes)."""
    method = method or STRETCHER
    if abs(rate - 1.0) < 1e-4 or len(y) < 2048:
        out = y
    elif method == "rubberband":
        import pedalboard
        out = pedalboard.time_stretch(np.ascontiguousarray(y, dtype=np.float32)[None, :], sr, float(rate),
                                      **(rubberband or {"high_quality": True}))[0]
    elif method == "phase-vocoder":
        import librosa
        out = librosa.effects.time_stretch(y, rate=rate)
    else:
        raise ValueError(f"unknown stretcher {method!r}; one of {', '.join(STRETCHERS)}")
    return fit_length(np.asarray(out, dtype=np.float32), n_out if n_out is not None else len(out))


def pitch_shift(y: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Audio transposed by `semitones` at the same tempo and length (Rubber Band, through
    pedalboard's offline stretcher in its high-quality mode, formants kept); mono or stereo
    (the channels shifted together)."""
    import pedalboard
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not semitones or len(y) < 2048:
        return y
    if y.ndim == 2:
        out = pedalboard.time_stretch(np.ascontiguousarray(y.T), sr, 1.0,
                                      pitch_shift_in_semitones=float(semitones), high_quality=True).T
        return fit_length(out, len(y))
    out = pedalboard.time_stretch(y[None, :], sr, 1.0, pitch_shift_in_semitones=float(semitones),
                                  high_quality=True)[0]
    return fit_length(out, len(y))


def fit_length(y: np.ndarray, n: int) -> np.ndarray:
    """Trim or zero-pad to exactly n samples (frames, for stereo)."""
    if len(y) >= n:
        return np.ascontiguousarray(y[:n], dtype=np.float32)
    return np.concatenate([y, np.zeros((n - len(y),) + np.shape(y)[1:], dtype=np.float32)]).astype(np.float32)


# -- stereo: studio quality (options.QUALITIES) ------------------------------------------------------
CENTRE_GAIN = np.float32(2 ** -0.5)
"""What a centred pan pot sends to each side (-3 dB, equal power): centred mono measures as loud in
stereo (ITU-R BS.1770 sums the channels' power) as it did alone."""


def to_mono(y: np.ndarray) -> np.ndarray:
    """Stereo (n, 2) folded to mono (n,) by the channels' mean; mono is returned as it is."""
    y = np.asarray(y)
    return y if y.ndim == 1 else np.asarray(y.mean(axis=1), dtype=np.float32)


def analysis(y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    """(mono audio at SAMPLE_RATE, SAMPLE_RATE): what tempo, key and genre analysis take, whatever
    quality a track has. Mono 22050 Hz audio is returned as it is."""
    return resample(to_mono(y), sr, SAMPLE_RATE), SAMPLE_RATE


def centred(y: np.ndarray, sr: int, sr_out: int = STUDIO_SAMPLE_RATE, *, loop: bool = False) -> np.ndarray:
    """Mono (n,) at sr as stereo (m, 2) at sr_out, m = round(n * sr_out / sr): resampled, and the
    same signal in both channels at CENTRE_GAIN (no widening). loop: y plays round, so the
    resampler's filter runs over its seam from its end into its start (no click there)."""
    y = np.asarray(y, dtype=np.float32)
    m = int(round(len(y) * sr_out / sr))
    if loop and len(y) > 0:
        pad = min(len(y), sr // 10)  # soxr HQ's filter is a few ms long
        ring = resample(np.concatenate([y[-pad:], y, y[:pad]]), sr, sr_out)
        up = ring[int(round(pad * sr_out / sr)):][:m]
    else:
        up = resample(y, sr, sr_out)
    up = fit_length(up, m) * CENTRE_GAIN
    return np.ascontiguousarray(np.stack([up, up], axis=1), dtype=np.float32)


def each_channel(fn, y: np.ndarray, *args, **kwargs) -> np.ndarray:
    """fn(channel, *args, **kwargs) for each channel of stereo y, stacked as (n, 2); fn(y) for mono.
    For the functions that take mono only (time_stretch)."""
    if np.ndim(y) == 1:
        return fn(y, *args, **kwargs)
    parts = [fn(np.ascontiguousarray(y[:, c]), *args, **kwargs) for c in range(y.shape[1])]
    return np.ascontiguousarray(np.stack(parts, axis=1), dtype=np.float32)


def per_sample(curve: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A gain curve of shape (n,) shaped to multiply y: itself for mono, (n, 1) for stereo."""
    return curve if np.ndim(y) == 1 else np.asarray(curve)[:, None]


def fades(y: np.ndarray, sr: int, *, fade_in: float = 0.02, fade_out: float = 1.0) -> np.ndarray:
    """Raised-cosine fade in and out; fades shrink on short audio so they never overlap. Mono or stereo."""
    y = np.array(y, dtype=np.float32, copy=True)
    n_in = min(int(fade_in * sr), len(y) // 4)
    n_out = int(round(fades_length(len(y), sr, fade_out) * sr))
    if n_in > 0:
        y[:n_in] *= per_sample(0.5 - 0.5 * np.cos(np.linspace(0, np.pi, n_in, dtype=np.float32)), y)
    if n_out > 0:
        y[-n_out:] *= per_sample(fade_out_curve(n_out), y)
    return y


def fades_length(n: int, sr: int, fade_out: float) -> float:
    """Seconds that fades() fades out over on n samples (it shrinks on short audio)."""
    return min(int(fade_out * sr), n // 4) / sr


def fade_out_curve(n: int) -> np.ndarray:
    """The gain of fades()' fade-out over its n samples (1 down to 0, raised cosine)."""
    return 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, n, dtype=np.float32))


def overlap_add(segments: list[np.ndarray], offsets: list[int], n: int, xfade: int) -> np.ndarray:
    """Place segments at sample offsets with equal-power crossfades of `xfade` samples."""
    out = np.zeros(n, dtype=np.float32)
    ramp = np.sin(np.linspace(0, np.pi / 2, xfade, dtype=np.float32)) if xfade > 0 else None
    for k, (seg, at) in enumerate(zip(segments, offsets)):
        seg = np.array(seg[: max(0, n - at)], dtype=np.float32, copy=True)
        if ramp is not None and k > 0:
            m = min(xfade, len(seg))
            seg[:m] *= ramp[:m]
        if ramp is not None and k < len(segments) - 1 and len(seg) > xfade:
            seg[-xfade:] *= ramp[::-1]
        out[at: at + len(seg)] += seg
    return out


def loop_crossfade(y: np.ndarray, n: int, fade: int) -> np.ndarray:
    """The first n samples made to loop: the `fade` samples after n are mixed into the start with an
    equal-power crossfade, so sample n-1 is followed, as in y, by (nearly) sample n. len(y) >= n + fade.
    Mono or stereo."""
    out = np.array(y[:n], dtype=np.float32, copy=True)
    if fade > 0:
        theta = np.linspace(0, np.pi / 2, fade, dtype=np.float32)
        out[:fade] = (out[:fade] * per_sample(np.sin(theta), out)
                      + np.asarray(y[n:n + fade], dtype=np.float32) * per_sample(np.cos(theta), out))
    return out


def loudness(y: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS (ITU-R BS.1770 via pyloudnorm: stereo sums its channels' power);
    RMS dBFS for short audio."""
    if len(y) < int(0.5 * sr):
        power = np.mean(np.square(y)) if np.ndim(y) == 1 else np.sum(np.mean(np.square(y), axis=0))
        rms = float(np.sqrt(power + 1e-12))
        return 20 * np.log10(rms) - 0.7
    import pyloudnorm
    value = pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64))
    return float(value) if np.isfinite(value) else -120.0


def normalize(y: np.ndarray, sr: int, *, target_lufs: float = TARGET_LUFS) -> np.ndarray:
    """Bring integrated loudness to target_lufs, then keep the peak under -1 dBFS."""
    return normalize_with_gain(y, sr, target_lufs=target_lufs)[0]


def normalize_with_gain(y: np.ndarray, sr: int, *, target_lufs: float = TARGET_LUFS, loop: bool = False
                        ) -> tuple[np.ndarray, np.ndarray]:
    """normalize(), and the gain it applied to each sample (the loudness gain times the limiter's
    gain curve), shape (n,): multiplying a part of y by it treats the part as the whole was.
    loop: y plays round (its end runs on into its start), and so does the limiter. Mono or stereo
    (one curve for both channels: see limiter_gain)."""
    y = np.asarray(y, dtype=np.float32)
    gain = loudness_gain(y, sr, target_lufs=target_lufs)
    if gain is None:  # silence: nothing to normalise
        return y.copy(), np.ones(len(y), dtype=np.float32)
    curve = gain * limiter_gain(y * np.float32(gain), sr, loop=loop)
    out = y * per_sample(curve, y)
    # limiting takes a little loudness off peaky audio: give it back once, and limit again
    short = target_lufs - loudness(out, sr)
    if short > 0.2:
        gain *= 10 ** (short / 20)
        curve = gain * limiter_gain(y * np.float32(gain), sr, loop=loop)
        out = y * per_sample(curve, y)
    return out.astype(np.float32), curve.astype(np.float32)


def loudness_gain(y: np.ndarray, sr: int, *, target_lufs: float = TARGET_LUFS) -> float | None:
    """The gain that brings y's integrated loudness to target_lufs; None for silence."""
    current = loudness(np.asarray(y, dtype=np.float32), sr)
    return None if current <= -70 else float(np.float32(10 ** ((target_lufs - current) / 20)))


def limit_scaled(y: np.ndarray, gain: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(y * gain, the same with its true peak held at the ceiling by the look-ahead limiter); mono or stereo."""
    scaled = np.asarray(y, dtype=np.float32) * np.float32(gain)
    return scaled, scaled * per_sample(limiter_gain(scaled, sr), scaled)


def limiter_gain(y: np.ndarray, sr: int, *, loop: bool = False) -> np.ndarray:
    """The mastering limiter's gain per sample (melodymaker.mastering): 1 where the true peak is
    under -1 dBTP, a smooth dip ahead of and after each peak that would pass it. loop: y plays
    round, so the limiter sees its end run on into its start (the gain is continuous there too).
    Stereo (n, 2): one curve for both channels, the lower of the two channels' curves at each
    sample (the louder channel's), so the image does not move and neither channel passes the ceiling."""
    from .mastering import LOOKAHEAD, RELEASE, limit_gain
    if np.ndim(y) == 2:
        return np.minimum.reduce([limiter_gain(np.ascontiguousarray(y[:, c]), sr, loop=loop)
                                  for c in range(y.shape[1])])
    if not loop or len(y) == 0:
        return limit_gain(y, sr)
    pad = min(len(y), int((LOOKAHEAD + RELEASE) * sr) + 8)
    ring = np.concatenate([y[-pad:], y, y[:pad]])
    return limit_gain(ring, sr)[pad:pad + len(y)]


def encode(y: np.ndarray, sr: int, fmt: str, *, loop: tuple[int, int] | None = None) -> bytes:
    """Mono or stereo audio as WAV (16-bit PCM) or MP3 (MPEG layer III through libsndfile's LAME) bytes. loop: (start, end)
    sample offsets, end exclusive, written into a WAV's smpl chunk (samplers and DAWs loop on it)."""
    y = np.clip(np.asarray(y, dtype=np.float32), -1.0, 1.0)
    buf = io.BytesIO()
    if fmt == "wav":
        sf.write(buf, y, sr, format="WAV", subtype="PCM_16")
        if loop is not None:
            return with_loop_chunk(buf.getvalue(), sr, *loop)
    elif fmt == "mp3":
        sf.write(buf, y, sr, format="MP3", subtype="MPEG_LAYER_III",
                 bitrate_mode="CONSTANT", compression_level=0.25)
    else:
        raise ValueError(f"cannot encode audio as {fmt!r}")
    return buf.getvalue()


def with_loop_chunk(wav: bytes, sr: int, start: int, end: int) -> bytes:
    """A RIFF WAV with a 'smpl' chunk appended: one forward loop from `start` to `end` (exclusive;
    the chunk names the last sample played, end - 1), repeated forever."""
    import struct
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("not a RIFF WAV")
    body = struct.pack("<9I", 0, 0, int(round(1e9 / sr)), 60, 0, 0, 0, 1, 0)
    body += struct.pack("<6I", 0, 0, int(start), int(end) - 1, 0, 0)
    chunk = b"smpl" + struct.pack("<I", len(body)) + body
    out = bytearray(wav + chunk)
    out[4:8] = struct.pack("<I", len(out) - 8)
    return bytes(out)


def wav_loop(wav: bytes) -> tuple[int, int] | None:
    """The first loop of a WAV's smpl chunk as (start, end exclusive), or None."""
    import struct
    pos = 12
    while pos + 8 <= len(wav):
        tag, size = wav[pos:pos + 4], struct.unpack("<I", wav[pos + 4:pos + 8])[0]
        if tag == b"smpl" and size >= 60 and struct.unpack("<I", wav[pos + 36:pos + 40])[0] >= 1:
            start, end = struct.unpack("<2I", wav[pos + 52:pos + 60])
            return start, end + 1
        pos += 8 + size + (size & 1)
    return None


CONFORM_STRETCH = {"high_quality": True, "use_long_fft_window": False}
"""Rubber Band's options for the tempo conform: its high-quality mode with the shorter FFT window
(crisper timing). Against the long window it chooses by itself, on the same engine output (tuning
seeds, 10 per genre, tempi 70-160, 10 s, each raw track finished both ways): DDIM lower judge 0.61 ->
0.60 (CNN 0.74 -> 0.72), median tempo error 0.54 -> 0.28 %, post stage 0.35 -> 0.28 s; MEL-GAN
0.41 -> 0.40 (CNN 0.77 -> 0.75), 0.64 -> 0.46 %, 0.37 -> 0.31 s. (Its faster R2 engine,
high_quality False, was as quick but cost DDIM 0.08 of the CNN judge's fit.)"""

BEAT_RATE_SPREAD = 0.15
"""How far a beat's own stretch rate may stray from the track's (either way) when the conform lays
the beats on the grid: a beat the tracker placed badly is not dragged far out of time."""


def conform_tempo(y: np.ndarray, sr: int, target: float, *, align_beats: bool = True) -> tuple[np.ndarray, dict]:
    """Audio time-stretched from its measured tempo to `target` BPM, and what was done
    ({"measured_before": BPM or None, "rate": the track's stretch rate, ...}); unchanged when no
    tempo is found. Stereo: the tempo is measured on the channels' mean and both are stretched alike.

    With align_beats (and the Rubber Band stretcher), each beat the tracker found (refine_beats: on
    a 5.8 ms onset grid) is stretched by its own rate, within BEAT_RATE_SPREAD of the track's, so
    that every beat lasts one beat of `target`: audio whose own tempo drifts or wobbles (the neural
    modes') comes out on the grid, not merely right on average. Through the service, 30 tracks a
    mode on tuning seeds (tempi 70-160, 10 s; one stretch -> beats aligned): DDIM median tempo error
    3.8 -> 0.5 % by the beat tracker (within 2 %: 11 -> 26 of 30), 4.5 -> 2.1 % by librosa's
    tempogram estimate (whose lag grid is about 4.6 % wide at 120 BPM); MEL-GAN 14.9 -> 0.95 %
    (6 -> 23 of 30), 9.2 -> 2.1 %. Genre fit by the lower judge moved within the noise of 30 tracks
    (DDIM 0.633 -> 0.667, MEL-GAN 0.433 -> 0.40). The result then has "beats_aligned", the rates'
    range and "map": [[raw s, output s], ...] at each aligned beat (the post stage takes it out of
    the metadata and finds raw times from output times with it: warp_time)."""
    measured, beats = estimate_tempo(y, sr)
    if not measured:
        return y, {"measured_before": None, "rate": 1.0}
    rate = stretch_rate(measured, target)
    info = {"measured_before": round(measured, 2), "rate": round(rate, 4)}
    rates = beat_rates(refine_beats(y, sr, beats), measured, rate, len(y), sr) \
        if align_beats and STRETCHER == "rubberband" and len(beats) >= 4 else None
    if rates is None:
        return each_channel(time_stretch, y, rate, int(round(len(y) / rate)), sr=sr,
                            rubberband=CONFORM_STRETCH), info
    per_sample_rate, knots, low, high = rates
    import pedalboard
    channels = np.ascontiguousarray((y.T if np.ndim(y) == 2 else y[None, :]), dtype=np.float32)
    out = pedalboard.time_stretch(channels, sr, per_sample_rate, **CONFORM_STRETCH)
    out = np.ascontiguousarray(out.T if np.ndim(y) == 2 else out[0], dtype=np.float32)
    return out, {**info, "beats_aligned": len(knots) - 1, "rate_range": [round(low, 4), round(high, 4)],
                 "map": knots}


def beat_rates(beats: np.ndarray, measured: float, rate: float, n: int, sr: int
               ) -> tuple[np.ndarray, list, float, float] | None:
    """(stretch rate per input sample, [[raw s, output s] at each beat], lowest, highest rate) that
    make each beat interval last 60 / (measured * rate) seconds, each interval's rate kept within
    BEAT_RATE_SPREAD of `rate`; outside the beats, `rate`. None with fewer than four beats."""
    beats = np.asarray(beats, dtype=float)
    beats = beats[(beats > 0) & (beats < n / sr)]
    if len(beats) < 4:
        return None
    period = 60.0 / measured                     # the tracker's beat, in raw seconds
    rates = np.clip(rate * np.diff(beats) / period, rate * (1 - BEAT_RATE_SPREAD), rate * (1 + BEAT_RATE_SPREAD))
    per = np.full(n, rate, dtype=np.float64)
    edges = np.round(beats * sr).astype(int)
    for a, b, r in zip(edges[:-1], edges[1:], rates):
        per[a:b] = r
    out_times = beats[0] / rate + np.concatenate([[0.0], np.cumsum(np.diff(beats) / rates)])
    knots = [[round(float(a), 6), round(float(b), 6)] for a, b in zip(beats, out_times)]
    return per, knots, float(rates.min()), float(rates.max())


def refine_beats(y: np.ndarray, sr: int, beats: np.ndarray, *, hop: int = 128) -> np.ndarray:
    """Beat times moved onto the peak of a fine onset envelope (hop 128: 5.8 ms at 22050 Hz) within
    one tracker frame (512 samples) of each, the peak placed between envelope frames by a parabola
    (its vertex kept within half a frame of the peak): the tracker's own times sit on its 23 ms
    frame grid (a steady beat's intervals read 0.58 and 0.60 s by turns), which would be stretched
    into the groove as wobble. The envelope is computed only around the beats (onset_near)."""
    reach = 512 // hop
    beats = np.asarray(beats, dtype=float)
    if len(beats) == 0:
        return beats
    y = to_mono(np.asarray(y, dtype=np.float32))
    frames = 1 + len(y) // hop                       # the whole track's envelope frames
    centre = np.round(beats * sr / hop).astype(int)
    near = onset_near(y, sr, centre, reach + 1, hop=hop)   # row i: frames centre[i] - reach - 1 ...
    out = beats.copy()
    for i, k in enumerate(centre):
        lo, hi = max(1, k - reach), min(frames - 1, k + reach + 1)
        if hi - lo < 1:
            continue
        env = dict(zip(range(k - reach - 1, k + reach + 2), near[i]))
        j = max(range(lo, hi), key=env.get)
        a, c, e = env[j - 1], env[j], env[j + 1]
        d = a - 2 * c + e
        # a neighbour outside the search window may be higher: the vertex then lies beyond it
        offset = float(np.clip(0.5 * (a - e) / d, -0.5, 0.5)) if d < 0 else 0.0
        out[i] = (j + offset) * hop / sr
    return out if np.all(np.diff(out) > 0) else beats


def onset_near(y: np.ndarray, sr: int, centre: np.ndarray, reach: int, *, hop: int = 128,
               n_fft: int = 2048) -> np.ndarray:
    """librosa's onset strength envelope (hop `hop`) at frames centre - reach ... centre + reach,
    shape (len(centre), 2 * reach + 1), computed on a short excerpt round each centre (one batched
    call) instead of the whole track: about a third of the time for a beat every half second. The
    excerpts start on the hop grid and carry the lead-in the envelope's frames look back over, so
    the values are the whole track's (but for the -80 dB floor of the decibel scale, which is set
    by the loudest frame of the excerpts rather than of the track)."""
    # envelope frame j is the flux between spectrum frames j - lag - n_fft/2/hop and the one before,
    # each centred on its frame and n_fft wide: it sees samples from (j - lead) * hop on
    lead = 2 * (n_fft // (2 * hop)) + 1 + 1
    width = lead + 2 * reach + 1
    margin = (lead + reach + 1) * hop
    padded = np.concatenate([np.zeros(margin, np.float32), y, np.zeros(margin, np.float32)])
    starts = (np.asarray(centre, dtype=int) - reach - lead) * hop + margin
    excerpts = np.stack([padded[s:s + width * hop] for s in starts])
    import librosa
    env = librosa.onset.onset_strength(y=excerpts, sr=sr, hop_length=hop, n_fft=n_fft)[:, lead:lead + 2 * reach + 1]
    # librosa's envelope is zero for its first lag + n_fft/2/hop frames (it shifts the flux by them)
    frames = np.asarray(centre, dtype=int)[:, None] + np.arange(-reach, reach + 1)[None, :]
    return np.where(frames < 1 + n_fft // (2 * hop), 0.0, env)


def warp_time(t: float, knots: list | None, rate: float, *, inverse: bool = False) -> float:
    """Output seconds of raw second t under a conform (inverse: the raw second of output second t):
    linear at `rate` outside the knots' span, piecewise linear between them."""
    if not knots:
        return t * rate if inverse else t / rate
    raw, out = np.asarray(knots, dtype=float).T
    src, dst = (out, raw) if inverse else (raw, out)
    scale = rate if inverse else 1.0 / rate
    if t <= src[0]:
        return float(dst[0] - (src[0] - t) * scale)
    if t >= src[-1]:
        return float(dst[-1] + (t - src[-1]) * scale)
    return float(np.interp(t, src, dst))


def stretch_rate(measured: float, target: float) -> float:
    """The gentlest of target/measured, twice or half that: a 70 BPM groove is also a 140 BPM one,
    so a conform never stretches by more than a factor of sqrt(2) either way."""
    return min((target / measured * k for k in (0.5, 1.0, 2.0)), key=lambda r: abs(np.log(r)))


def silent_edges(y: np.ndarray, sr: int, *, threshold_db: float = -60.0, window: float = 0.01) -> tuple[float, float]:
    """Seconds of (leading, trailing) audio whose short-window RMS stays below threshold_db dBFS
    (stereo: of the channels' mean)."""
    y = to_mono(y)
    hop = max(1, int(window * sr))
    n = len(y) // hop
    if n == 0:
        return 0.0, 0.0
    frames = np.asarray(y[: n * hop], dtype=np.float64).reshape(n, hop)
    loud = np.flatnonzero(10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-20) >= threshold_db)
    if len(loud) == 0:
        return len(y) / sr, len(y) / sr
    return loud[0] * hop / sr, (len(y) - (loud[-1] + 1) * hop) / sr


def seam_report(y: np.ndarray, sr: int, at: int) -> dict:
    """How audible a joint at sample `at` is, each measure at the joint beside its own 99th
    percentile over the whole of y (one value against the distribution of single values, so a
    seamless joint passes 99 times in 100): the sample jump |y[at] - y[at - 1]|; the loudness step
    (dB) between the 50 ms frames that meet at the joint, on a grid of such frames laid so that a
    boundary falls on it; the spectral flux (half-wave rectified magnitude rise over the total
    magnitude, 1024-point frames, hop 256) into the frame centred nearest the joint. Stereo is folded."""
    import librosa
    y = np.asarray(to_mono(y), dtype=np.float64)
    jump = np.abs(np.diff(y))
    hop = int(0.05 * sr)
    first = at % hop                                    # frame boundaries fall on the joint
    frames = y[first: first + (len(y) - first) // hop * hop].reshape(-1, hop)
    step = np.abs(np.diff(10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-10)))
    mag = np.abs(librosa.stft(y.astype(np.float32), n_fft=1024, hop_length=256, center=True))
    flux = np.maximum(0.0, np.diff(mag, axis=1)).sum(axis=0) / (mag[:, 1:].sum(axis=0) + 1e-9)
    k = min(len(step) - 1, max(0, (at - first) // hop - 1))
    f = min(len(flux) - 1, max(0, round(at / 256) - 1))
    return {"jump": float(jump[max(0, at - 1)]), "jump_p99": float(np.percentile(jump, 99)),
            "loudness_step": float(step[k]), "loudness_step_p99": float(np.percentile(step, 99)),
            "flux": float(flux[f]), "flux_p99": float(np.percentile(flux, 99))}

"""Generic degradations the genre judges are trained and tested under: pure (y, sr, rng) -> y.

Each takes float32 mono audio `y` of shape (n,) at `sr` Hz and a numpy Generator, and returns
new float32 audio of the same length; the generator draws whatever the keyword arguments leave
open, so a caller that seeds it gets the same audio every time. None of them knows anything of
music, genres or any generation mode: they are what a recording, a codec or a room does.
"""
from __future__ import annotations

import io

import numpy as np

SNR_DB = (0.0, 30.0)
TILT_DB_PER_OCTAVE = (-4.0, 4.0)
MP3_LEVELS = (0.2, 0.9)          # soundfile's compression_level: about 130 down to 24 kbit/s at 22.05 kHz
RESAMPLE_HZ = (8000, 16000)
LOWPASS_HZ = (2000.0, 8000.0)
GAIN_DB = (-18.0, 12.0)
RT60_S = (0.2, 1.5)


def _out(y: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(y, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def _power(y: np.ndarray) -> float:
    return float(np.mean(np.asarray(y, dtype=np.float64) ** 2)) if len(y) else 0.0


def noise(y: np.ndarray, sr: int, rng: np.random.Generator, *, snr_db: float | None = None,
          colour: str | None = None) -> np.ndarray:
    """Additive white or pink noise at `snr_db` (drawn from 0-30 dB) below the signal's power."""
    snr_db = rng.uniform(*SNR_DB) if snr_db is None else float(snr_db)
    colour = colour or ("white", "pink")[int(rng.integers(2))]
    n = rng.standard_normal(len(y))
    if colour == "pink":  # 1/f power: amplitude 1/sqrt(f) above 20 Hz
        spec = np.fft.rfft(n)
        f = np.fft.rfftfreq(len(n), 1.0 / sr)
        spec /= np.sqrt(np.maximum(f, 20.0))
        n = np.fft.irfft(spec, len(n))
    signal = _power(y)
    if signal == 0.0 or _power(n) == 0.0:
        return _out(y)
    n *= np.sqrt(signal / (_power(n) * 10.0 ** (snr_db / 10.0)))
    return _out(y + n)


def eq_tilt(y: np.ndarray, sr: int, rng: np.random.Generator, *,
            db_per_octave: float | None = None) -> np.ndarray:
    """A spectral tilt of `db_per_octave` (drawn from ±4) around 1 kHz, at the input's RMS level."""
    slope = rng.uniform(*TILT_DB_PER_OCTAVE) if db_per_octave is None else float(db_per_octave)
    spec = np.fft.rfft(np.asarray(y, dtype=np.float64))
    f = np.fft.rfftfreq(len(y), 1.0 / sr)
    gain_db = np.clip(slope * np.log2(np.maximum(f, 30.0) / 1000.0), -30.0, 30.0)
    z = np.fft.irfft(spec * 10.0 ** (gain_db / 20.0), len(y))
    before, after = _power(y), _power(z)
    return _out(z * np.sqrt(before / after) if after > 0 else z)


def mp3(y: np.ndarray, sr: int, rng: np.random.Generator, *, level: float | None = None) -> np.ndarray:
    """An MP3 round trip through libsndfile's LAME at compression `level` (0.2-0.9: about 130 to
    24 kbit/s at 22.05 kHz), aligned and cut back to the input's length."""
    level = rng.uniform(*MP3_LEVELS) if level is None else float(level)
    import soundfile as sf
    buf = io.BytesIO()
    sf.write(buf, np.clip(y, -1.0, 1.0).astype(np.float32), sr, format="MP3", subtype="MPEG_LAYER_III",
             bitrate_mode="CONSTANT", compression_level=level)
    buf.seek(0)
    z, _ = sf.read(buf, dtype="float32")
    z = z.mean(axis=1) if z.ndim == 2 else z
    extra = len(z) - len(y)
    if extra > 0:  # low bit rates resample inside the codec and add a delay: find it and drop it
        probe = min(len(y), 4 * sr)
        scores = np.correlate(z[: probe + extra], y[:probe], mode="valid")
        start = int(np.argmax(scores)) if np.any(scores) else 0
        z = z[start: start + len(y)]
    return _out(np.pad(z, (0, max(0, len(y) - len(z))))[: len(y)])


def resample(y: np.ndarray, sr: int, rng: np.random.Generator, *, low_sr: int | None = None) -> np.ndarray:
    """Down to `low_sr` (drawn from 8-16 kHz) and back: the band above low_sr / 2 is gone."""
    from ..audio import fit_length
    from ..audio import resample as _resample
    low_sr = int(rng.integers(RESAMPLE_HZ[0] // 1000, RESAMPLE_HZ[1] // 1000 + 1) * 1000
                 if low_sr is None else low_sr)
    return _out(fit_length(_resample(_resample(y, sr, low_sr), low_sr, sr), len(y)))


def lowpass(y: np.ndarray, sr: int, rng: np.random.Generator, *, cutoff: float | None = None) -> np.ndarray:
    """An 8th-order Butterworth low-pass at `cutoff` Hz (drawn from 2-8 kHz), run forward and back."""
    from scipy import signal
    cutoff = rng.uniform(*LOWPASS_HZ) if cutoff is None else float(cutoff)
    if cutoff >= sr / 2:
        return _out(y)
    sos = signal.butter(8, cutoff, btype="low", fs=sr, output="sos")
    return _out(signal.sosfiltfilt(sos, np.asarray(y, dtype=np.float64)))


def gain(y: np.ndarray, sr: int, rng: np.random.Generator, *, db: float | None = None) -> np.ndarray:
    """Louder or quieter by `db` (drawn from -18 to +12 dB); nothing is clipped."""
    db = rng.uniform(*GAIN_DB) if db is None else float(db)
    return _out(np.asarray(y, dtype=np.float64) * 10.0 ** (db / 20.0))


def reverb(y: np.ndarray, sr: int, rng: np.random.Generator, *, rt60: float | None = None,
           wet: float | None = None) -> np.ndarray:
    """A synthetic room: convolution with exponentially decaying noise (60 dB down after `rt60`
    seconds, drawn from 0.2-1.5 s), mixed `wet` (drawn from 0.2-0.7) with the dry signal at its RMS."""
    from scipy import signal
    rt60 = rng.uniform(*RT60_S) if rt60 is None else float(rt60)
    wet = rng.uniform(0.2, 0.7) if wet is None else float(wet)
    t = np.arange(int(rt60 * sr)) / sr
    ir = rng.standard_normal(len(t)) * np.exp(-6.9078 * t / rt60)   # ln(1000): -60 dB at rt60
    ir /= np.sqrt(np.sum(ir ** 2)) + 1e-12
    x = np.asarray(y, dtype=np.float64)
    tail = signal.fftconvolve(x, ir)[: len(x)]
    scale = np.sqrt(_power(x) / _power(tail)) if _power(tail) > 0 else 0.0
    return _out((1.0 - wet) * x + wet * tail * scale)


DEGRADATIONS = {"noise": noise, "eq_tilt": eq_tilt, "mp3": mp3, "resample": resample,
                "lowpass": lowpass, "gain": gain, "reverb": reverb}
"""Every degradation by name, in the order the cards list them."""


def chain(y: np.ndarray, sr: int, rng: np.random.Generator, *, low: int = 2, high: int = 3
          ) -> np.ndarray:
    """Between `low` and `high` different degradations, drawn and ordered by rng, one after another."""
    names = list(DEGRADATIONS)
    k = int(rng.integers(low, high + 1))
    for i in rng.permutation(len(names))[:k]:
        y = DEGRADATIONS[names[i]](y, sr, rng)
    return _out(y)


CONDITIONS = ("clean", *DEGRADATIONS, "mix")
"""What the cards report accuracy under: untouched, each degradation alone, and a chain of 2-3."""


def apply(condition: str, y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """`y` under one of CONDITIONS."""
    if condition == "clean":
        return _out(y)
    if condition == "mix":
        return chain(y, sr, rng)
    if condition not in DEGRADATIONS:
        raise ValueError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    return DEGRADATIONS[condition](y, sr, rng)


def augment(y: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    """A training copy: a chain of 1-3 degradations (what both judges are trained on)."""
    return chain(y, sr, rng, low=1, high=3)


DESCRIPTIONS = {
    "clean": "untouched",
    "noise": f"white or pink noise at {SNR_DB[0]:g}-{SNR_DB[1]:g} dB SNR",
    "eq_tilt": f"spectral tilt of {TILT_DB_PER_OCTAVE[0]:+g} to {TILT_DB_PER_OCTAVE[1]:+g} dB/octave around 1 kHz",
    "mp3": "MP3 round trip (libsndfile's LAME, about 130 down to 24 kbit/s)",
    "resample": f"resampled to {RESAMPLE_HZ[0] // 1000}-{RESAMPLE_HZ[1] // 1000} kHz and back",
    "lowpass": f"8th-order Butterworth low-pass at {LOWPASS_HZ[0] / 1000:g}-{LOWPASS_HZ[1] / 1000:g} kHz",
    "gain": f"gain of {GAIN_DB[0]:+g} to {GAIN_DB[1]:+g} dB",
    "reverb": f"synthetic room: exponentially decaying noise, RT60 {RT60_S[0]:g}-{RT60_S[1]:g} s, 20-70 % wet",
    "mix": "2-3 of the degradations above, drawn and ordered at random",
}
"""What each condition does, for the cards."""

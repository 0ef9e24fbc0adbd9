"""The feature judge's front end: MFCC, chroma, spectral-contrast and rhythm statistics of a clip.

It shares nothing with the CNN's input pipeline (features.py): its own loudness normalisation,
its own STFT (Hamming window, hop 1024 where the CNN's is Hann, hop 512), its own 40-band HTK mel
bank for the MFCCs (the CNN's is a 64-band Slaney bank), and an energy-novelty rhythm envelope
taken from the waveform with no STFT at all. Computed with librosa.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ..options import SAMPLE_RATE


@dataclass(frozen=True)
class DescriptorParams:
    """How audio becomes the feature judge's vector; stored in its checkpoint."""
    sr: int = SAMPLE_RATE
    n_fft: int = 2048
    hop: int = 1024
    n_mfcc: int = 20
    mfcc_mels: int = 40
    rhythm_hop: int = 256      # samples per frame of the energy-novelty envelope
    target_rms: float = 0.1    # every clip is brought to this RMS first: the judge ignores level

    def asdict(self) -> dict:
        return asdict(self)


_TIMBRE = ("centroid", "bandwidth", "rolloff", "flatness", "zcr", "rms_db")
RHYTHM_LAGS = (0.25, 0.333, 0.5, 0.667, 0.75, 1.0, 1.5, 2.0)
"""Seconds at which the envelope's autocorrelation is read (beat-level periodicities)."""


def names(p: DescriptorParams = DescriptorParams()) -> list[str]:
    """The name of every entry of descriptors(), in order."""
    out = [f"mfcc{i}_{s}" for s in ("mean", "std") for i in range(p.n_mfcc)]
    out += [f"dmfcc{i}_std" for i in range(p.n_mfcc)]
    out += [f"chroma{i}_{s}" for s in ("mean", "std") for i in range(12)]
    out += [f"contrast{i}_{s}" for s in ("mean", "std") for i in range(7)]
    out += [f"{f}_{s}" for f in _TIMBRE for s in ("mean", "std")]
    out += ["novelty_mean", "novelty_std", "log2_tempo", "pulse_peak"]
    out += [f"pulse_{lag:g}s" for lag in RHYTHM_LAGS]
    return out


def descriptors(y: np.ndarray, p: DescriptorParams = DescriptorParams()) -> np.ndarray:
    """The feature vector of float32 mono audio `y` at p.sr, shape (len(names(p)),), float32."""
    import librosa
    y = np.asarray(y, dtype=np.float32)
    if len(y) < p.n_fft:
        y = np.pad(y, (0, p.n_fft - len(y)))
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    if rms > 1e-6:
        y = y * np.float32(p.target_rms / rms)
    S = np.abs(librosa.stft(y, n_fft=p.n_fft, hop_length=p.hop, window="hamming"))
    power = S ** 2
    mel_fb, chroma_fb = _filters(p.sr, p.n_fft, p.mfcc_mels)
    mel = np.asarray(mel_fb @ power)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=80.0), n_mfcc=p.n_mfcc)
    delta = np.diff(mfcc, axis=1) if mfcc.shape[1] > 1 else np.zeros_like(mfcc)
    chroma = librosa.util.normalize(chroma_fb @ power, norm=np.inf, axis=0)  # as chroma_stft(tuning=0)
    contrast = librosa.feature.spectral_contrast(S=S, sr=p.sr)
    timbre = [
        librosa.feature.spectral_centroid(S=S, sr=p.sr)[0] / 1000.0,
        librosa.feature.spectral_bandwidth(S=S, sr=p.sr)[0] / 1000.0,
        librosa.feature.spectral_rolloff(S=S, sr=p.sr)[0] / 1000.0,
        librosa.feature.spectral_flatness(S=S)[0],
        librosa.feature.zero_crossing_rate(y, frame_length=p.n_fft, hop_length=p.hop)[0],
        10.0 * np.log10(np.mean(power, axis=0) * 2.0 / p.n_fft + 1e-10),
    ]
    parts = [mfcc.mean(axis=1), mfcc.std(axis=1), delta.std(axis=1),
             chroma.mean(axis=1), chroma.std(axis=1), contrast.mean(axis=1), contrast.std(axis=1),
             np.array([f(t) for t in timbre for f in (np.mean, np.std)]),
             _rhythm(y, p)]
    out = np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in parts]).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@lru_cache(maxsize=4)
def _filters(sr: int, n_fft: int, n_mels: int):
    """(40-band HTK mel bank as a sparse matrix, chroma filter bank), built once: librosa's
    feature functions rebuild them on every call."""
    import librosa
    from scipy import sparse
    mel = sparse.csr_matrix(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, htk=True))
    chroma = librosa.filters.chroma(sr=sr, n_fft=n_fft, tuning=0.0)
    chroma.setflags(write=False)
    return mel, chroma


def _rhythm(y: np.ndarray, p: DescriptorParams) -> np.ndarray:
    """Energy novelty (half-wave rectified rise of log frame energy): its level, the tempo of its
    strongest periodicity between 60 and 200 BPM, that periodicity's strength, and its
    autocorrelation at RHYTHM_LAGS."""
    n = len(y) // p.rhythm_hop
    if n < 4:
        return np.zeros(4 + len(RHYTHM_LAGS))
    energy = np.log(np.mean(y[: n * p.rhythm_hop].astype(np.float64).reshape(n, -1) ** 2, axis=1) + 1e-8)
    novelty = np.maximum(np.diff(energy), 0.0)
    fps = p.sr / p.rhythm_hop
    x = novelty - novelty.mean()
    spec = np.fft.rfft(x, 2 * len(x))
    ac = np.fft.irfft(np.abs(spec) ** 2)[: len(x)]
    ac = ac / ac[0] if ac[0] > 1e-12 else np.zeros_like(ac)
    lo, hi = int(fps * 60 / 200), int(fps * 60 / 60)
    window = ac[lo: hi + 1]
    if len(window):
        lag = lo + int(np.argmax(window))
        tempo, peak = 60.0 * fps / max(lag, 1), float(window.max())
    else:
        tempo, peak = 1.0, 0.0
    pulses = [ac[int(round(t * fps))] if int(round(t * fps)) < len(ac) else 0.0 for t in RHYTHM_LAGS]
    return np.array([novelty.mean(), novelty.std(), np.log2(tempo), peak, *pulses])

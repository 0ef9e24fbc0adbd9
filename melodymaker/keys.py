"""Musical keys: how a request spells one, which key audio is in, and how far to shift it onto another.

The estimate is Krumhansl–Schmuckler's method: the track's chroma (librosa's constant-Q chroma,
averaged over the track, its start and end weighted up) correlated with a major and a minor key
profile rotated to each of the 12 tonics; the best of the 24 correlations names the key. The
profiles are Albrecht & Shanahan's, which named the key more often than Krumhansl & Kessler's or
Temperley's on 480 8-second composer renders in all 24 keys (86 % exact against 61 % and 69 %).
request.py, the post stage, the service and `evaluate` all use this one module.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import options as opt
from .errors import InvalidRequest

PROFILES = {
    # Krumhansl & Kessler (1982): listeners' ratings of how well each pitch class fits a key
    "krumhansl": {"major": (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
                  "minor": (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)},
    # Temperley (2001), from the Kostka-Payne corpus
    "temperley": {"major": (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0),
                  "minor": (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)},
    # Albrecht & Shanahan (2013): pitch-class distributions of a corpus of classical pieces
    "albrecht": {"major": (0.238, 0.006, 0.111, 0.006, 0.137, 0.094, 0.016, 0.214, 0.009, 0.080, 0.008, 0.081),
                 "minor": (0.220, 0.006, 0.104, 0.123, 0.019, 0.103, 0.012, 0.214, 0.062, 0.022, 0.061, 0.052)},
}
PROFILE = "albrecht"

MAX_SHIFT = 6
"""Semitones: the largest pitch shift onto a requested key (a tritone; any pitch set is that close)."""

_LETTERS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}
_SPELLING = re.compile(
    r"(?P<letter>[a-g])\s*(?P<accidentals>(?:#|♯|b|♭|-?\s*sharp|-?\s*flat)*)"
    r"\s*[-_]?\s*(?P<mode>major|maj|minor|min|m)?", re.IGNORECASE)
_MINOR_WORDS = ("minor", "min")


@dataclass(frozen=True)
class Key:
    """A key: tonic pitch class (0-11, C = 0) and mode ('major' or 'minor')."""
    tonic: int
    mode: str

    @property
    def name(self) -> str:
        """As the server spells it: 'A minor', 'F# major', 'Bb minor' (options.KEY_TONICS)."""
        return f"{opt.KEY_TONICS[self.mode][self.tonic]} {self.mode}"

    @property
    def major_tonic(self) -> int:
        """The tonic of the major key with the same pitch set (A minor -> C)."""
        return self.tonic if self.mode == "major" else (self.tonic + 3) % 12

    def __str__(self) -> str:
        return self.name


def parse(value: Any) -> Key | None:
    """A request's key: None for 'auto' (or nothing), else the Key; InvalidRequest otherwise.

    Accepts a tonic letter with sharps or flats (#, b, ♯, ♭, 'sharp', 'flat'; enharmonics such as
    'Gb' = 'F#', 'Cb' = 'B', 'E#' = 'F') and a mode ('major', 'maj', 'M', 'minor', 'min', 'm';
    a tonic alone is major), in any case and spacing: 'A minor', 'am', 'F# major', 'Bb minor',
    'B-flat minor', 'c_sharp_minor'."""
    if value is None or (isinstance(value, str) and (not value.strip() or value.strip().lower() == opt.KEY_AUTO)):
        return None
    m = _SPELLING.fullmatch(value.strip().replace("_", " ")) if isinstance(value, str) else None
    if m is None:
        raise InvalidRequest(f"key {value!r} is not understood; {allowed()}", field="key")
    tonic = _LETTERS[m["letter"].lower()]
    accidentals = m["accidentals"].lower()
    tonic += accidentals.count("#") + accidentals.count("♯") + accidentals.count("sharp")
    flats = accidentals.replace("flat", "")  # 'flat' itself holds no 'b'; count the rest
    tonic -= flats.count("b") + flats.count("♭") + accidentals.count("flat")
    word = m["mode"] or "major"
    minor = word.lower() in _MINOR_WORDS or word == "m"
    return Key(tonic % 12, "minor" if minor else "major")


def allowed() -> str:
    """What a request's key may be, for error messages."""
    sharps = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    flats = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")
    tonics = ", ".join(s if s == f else f"{s}/{f}" for s, f in zip(sharps, flats))
    return (f"use {opt.KEY_AUTO!r} (the default) or a tonic ({tonics}) and a mode "
            f"({', '.join(opt.KEY_MODES)}), e.g. 'A minor', 'F# major', 'Bb minor'")


def name(key: Key | None) -> str:
    """A request's key as text: its name, or 'auto'."""
    return opt.KEY_AUTO if key is None else key.name


ALL = tuple(Key(tonic, mode) for mode in opt.KEY_MODES for tonic in range(12))
"""The 24 keys, in options.KEYS order."""


# -- estimating the key of audio ---------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """The key of a piece of audio: the best key and its correlation with its profile (-1..1),
    and the runner-up's correlation (how clear the decision was)."""
    key: Key
    correlation: float
    runner_up: float

    def public(self) -> dict:
        return {"key": self.key.name, "correlation": round(self.correlation, 3),
                "margin": round(self.correlation - self.runner_up, 3)}


EDGE, EDGE_WEIGHT = 1 / 8, 5.0
"""The first and last eighth of a track weigh five times as much in its chroma: music states its
key where it starts and where it ends (chosen on composer renders of seeds the tests do not use:
the tonic found in 91 % of 20-second renders instead of 79 %)."""


def chroma(y: np.ndarray, sr: int) -> np.ndarray:
    """The track's pitch-class distribution: its constant-Q chroma averaged over time with the
    edges weighted (EDGE), shape (12,), pitch class 0 = C, summing to 1 (zeros for silence)."""
    import warnings

    import librosa
    y = np.asarray(y, dtype=np.float32)
    if len(y) < sr // 4 or not np.any(y):
        return np.zeros(12)
    with warnings.catch_warnings():  # a second of audio is short for the lowest octaves' filters
        warnings.simplefilter("ignore", UserWarning)
        # each frame scaled to its strongest pitch class (librosa's default), so that loud
        # passages do not outvote quiet ones
        c = librosa.feature.chroma_cqt(y=y, sr=sr, hop_length=2048)
    n = max(1, int(round(c.shape[1] * EDGE)))
    weight = np.ones(c.shape[1])
    weight[:n] = weight[-n:] = EDGE_WEIGHT
    mean = c @ weight
    total = mean.sum()
    return mean / total if total > 0 else np.zeros(12)


def correlations(profile_of_piece: np.ndarray, profile: str = PROFILE) -> np.ndarray:
    """Pearson correlation of a 12-bin pitch-class distribution with each key's profile:
    shape (24,), in ALL's order (12 major keys from C, then 12 minor)."""
    x = np.asarray(profile_of_piece, dtype=np.float64)
    out = np.zeros(24)
    if np.ptp(x) == 0:
        return out
    for i, key in enumerate(ALL):
        template = np.roll(PROFILES[profile][key.mode], key.tonic)
        out[i] = np.corrcoef(x, template)[0, 1]
    return out


def estimate(y: np.ndarray, sr: int, *, profile: str = PROFILE) -> Estimate | None:
    """The key of audio by Krumhansl–Schmuckler; None for silence or audio too short to tell."""
    c = chroma(y, sr)
    if not c.any():
        return None
    r = correlations(c, profile)
    order = np.argsort(r)[::-1]
    return Estimate(ALL[order[0]], float(r[order[0]]), float(r[order[1]]))


def relation(requested: Key, estimated: Key) -> str:
    """How an estimate relates to the key asked for, as key-finding benchmarks (MIREX) count it:
    'exact', 'fifth' (same mode, tonic a fifth above or below), 'relative' (same pitch set,
    other mode), 'parallel' (same tonic, other mode) or 'other'."""
    if requested == estimated:
        return "exact"
    if requested.mode == estimated.mode and (estimated.tonic - requested.tonic) % 12 in (5, 7):
        return "fifth"
    if requested.mode != estimated.mode and requested.major_tonic == estimated.major_tonic:
        return "relative"
    if requested.tonic == estimated.tonic:
        return "parallel"
    return "other"


RELATION_SCORE = {"exact": 1.0, "fifth": 0.5, "relative": 0.3, "parallel": 0.2, "other": 0.0}
"""MIREX's weighted key score per relation."""


def shift_between(estimated: Key, requested: Key) -> int:
    """The smallest shift in semitones (-5..6) that moves the estimated key's pitch set onto the
    requested key's (a relative major or minor is the same set: C major to A minor is 0)."""
    up = (requested.major_tonic - estimated.major_tonic) % 12
    return up if up <= MAX_SHIFT else up - 12


def shift_to(y: np.ndarray, sr: int, requested: Key) -> tuple[np.ndarray, dict]:
    """Pitch-shift audio onto a requested key's pitch set: the audio (same length) and what was
    done ({"estimated_before", "semitones"}); unchanged when the key cannot be told (silence)."""
    from .audio import pitch_shift
    before = estimate(y, sr)
    if before is None:
        return y, {"estimated_before": None, "semitones": 0}
    semitones = shift_between(before.key, requested)
    out = pitch_shift(y, sr, semitones) if semitones else y
    return out, {"estimated_before": before.key.name, "semitones": semitones}

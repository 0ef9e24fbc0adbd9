"""The benchmark's fixed request set, drawn from seeds reserved for evaluation alone.

No trainer, tuning run, model selection or earlier benchmark uses a seed in RESERVED_SEEDS (they
used small numbers such as 1000 * i + genre index); keep it that way, so that `evaluate` scores
tracks no decision was ever made on.
"""
from __future__ import annotations

from .. import options as opt

RESERVED_SEEDS = range(900_000_000, 900_000_000 + 1_000 * len(opt.GENRES))
"""Seed of track i of genre g: RESERVED_SEEDS.start + 1000 * g + i (i < 1000): a smaller run's
requests are the first ones of a larger run's, and every mode gets the same seeds."""
TEMPI = tuple(range(70, 161, 10))
"""70, 80, ..., 160 BPM, cycled through each genre's requests, starting one step later per genre."""
PER_GENRE_MAX = 1_000


def request_set(mode: str, per_genre: int = 10, length: float = 10.0, *, keys: bool = True) -> list[dict]:
    """The requests of one mode: `per_genre` for each genre in options.GENRES, in genre order;
    each a GenerationRequest body (genre, mode, length, seed, tempo, key). Keys cycle through
    options.KEYS, three steps later per genre: ten per genre visit all 24, both modes. keys=False
    leaves the key out (auto): the request set of the figures measured before keys existed."""
    if not 1 <= per_genre <= PER_GENRE_MAX:
        raise ValueError(f"per_genre must be within 1-{PER_GENRE_MAX}, got {per_genre}")
    return [{"genre": genre, "mode": mode, "length": length,
             "seed": RESERVED_SEEDS.start + 1_000 * gi + i,
             "tempo": TEMPI[(gi + i) % len(TEMPI)],
             **({"key": opt.KEYS[(3 * gi + i) % len(opt.KEYS)]} if keys else {})}
            for gi, genre in enumerate(opt.GENRES) for i in range(per_genre)]


def tempo_error(requested: float, measured: float | None) -> float | None:
    """Relative error in %, octave-folded: a beat tracker's half or double tempo is no miss."""
    if not measured:
        return None
    return min(abs(measured * k - requested) / requested * 100 for k in (0.5, 1.0, 2.0))

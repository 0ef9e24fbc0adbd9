"""Track: what every engine returns and the post stage, the store and the encoders consume."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Track:
    """Generated audio plus what we know about it.

    audio: float32 samples, range [-1, 1]: shape (n,) for mono, or (n, 2) for stereo (left,
        right; soundfile's layout). Engines make mono at options.SAMPLE_RATE (22050 Hz, what the
        library, the judges and the models work in), except compose asked for studio quality,
        which renders stereo at options.STUDIO_SAMPLE_RATE; the post stage gives every track the
        rate and channels its request's quality names (options.QUALITIES). Whatever analyses a
        track (tempo and key: audio.analysis; the genre judges: classify.Judges.hear) folds it to
        mono at 22050 Hz itself.
    sr: sample rate in Hz of `audio` (and of `stems`).
    midi: a pretty_midi.PrettyMIDI score when the engine wrote one (compose), else None.
    meta: JSON-serialisable facts (engine, seed, clips used, timings, measured tempo, ...).
    stems: role (drums, bass, harmony, lead) -> float32 audio of that role alone, each the shape
        of `audio` and summing to it, when the engine made the parts apart (compose), else None.
    context: the engine's raw audio (before the post stage) just before the point where an
        extension of this track takes over (meta["post"]["context_end"]), kept for modes that
        continue a tail (engines.base.Parent.tail); None for the others. Shape (n,) or (n, 2).
    context_sr: the sample rate of `context` where it is not `sr` (a mode's raw mono at 22050 Hz
        under a studio track at 44100 Hz); None: `sr`.
    """
    audio: np.ndarray
    sr: int
    midi: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    stems: dict[str, np.ndarray] | None = None
    context: np.ndarray | None = None
    context_sr: int | None = None

"""Track: what every engine returns and the post stage, the store and the encoders consume."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Track:
    """Generated audio plus what we know about it.

    audio: float32 mono samples, shape (n,), range [-1, 1].
    sr: sample rate in Hz.
    midi: a pretty_midi.PrettyMIDI score when the engine wrote one (compose), else None.
    meta: JSON-serialisable facts (engine, seed, clips used, timings, measured tempo, ...).
    stems: role (drums, bass, harmony, lead) -> float32 audio of that role alone, each the shape
        of `audio` and summing to it, when the engine made the parts apart (compose), else None.
    context: the engine's raw audio (before the post stage) just before the point where an
        extension of this track takes over (meta["post"]["context_end"]), kept for modes that
        continue a tail (engines.base.Parent.tail); None for the others.
    """
    audio: np.ndarray
    sr: int
    midi: Any = None
    meta: dict[str, Any] = field(default_factory=dict)
    stems: dict[str, np.ndarray] | None = None
    context: np.ndarray | None = None

"""The padded-silence measure of `evaluate`: leading and trailing near-silence of a track, in ms.

The measure itself is melodymaker.audio.silent_edges (one implementation, shared with the post
stage's tests); this module fixes evaluate's settings and the limit a track is held to."""
from __future__ import annotations

import numpy as np

from .. import audio

THRESHOLD_DBFS = -60.0   # below this short-window RMS a stretch counts as silent
WINDOW_SECONDS = 0.010   # the RMS window
TAIL_LIMIT_MS = 250.0    # a track may end with at most this much silence (issue 16)


def silent_edges(y: np.ndarray, sr: int) -> tuple[float, float]:
    """(leading, trailing) milliseconds of mono audio y, shape (n,), whose RMS over consecutive
    WINDOW_SECONDS windows stays below THRESHOLD_DBFS; precision one window. Audio silent
    throughout is all lead and all tail."""
    lead, tail = audio.silent_edges(np.asarray(y, dtype=np.float32), sr, threshold_db=THRESHOLD_DBFS,
                                    window=WINDOW_SECONDS)
    return lead * 1000.0, tail * 1000.0

"""The dataset mode: rearranges real library clips of the genre on a beat grid at the requested tempo."""
from __future__ import annotations

import numpy as np

from .. import audio
from ..errors import AudioDecodeError, ModeUnavailable
from ..library import Clip, Library
from ..options import GENRES, SAMPLE_RATE
from ..track import Track
from .base import Capabilities, Engine, Progress, no_progress

NAME = "dataset"
LABEL = "Library remix"
DESCRIPTION = "Rearranges beat-aligned phrases of real library clips of the genre at your tempo."
CAPABILITIES = Capabilities(instruments=False, tempo=True, length=True, midi=False)
NUMBER = 0

XFADE_SECONDS = 0.03
PHRASE_BEATS = (8, 16)       # a segment is two or four bars of 4/4
MAX_CLIPS = 3
MAX_STRETCH = 1.75  # beyond this, count the clip in half or double time instead


class DatasetEngine(Engine):
    name, label, description, capabilities = NAME, LABEL, DESCRIPTION, CAPABILITIES

    def __init__(self, library: Library):
        self.library = library

    def availability(self) -> str | None:
        if len(self.library) == 0:
            return f"the library ({self.library.root}) holds no readable audio"
        return None

    def generate(self, request, progress: Progress = no_progress) -> Track:
        sr = SAMPLE_RATE
        rng = np.random.default_rng([request.seed, GENRES.index(request.genre)])
        pool = sorted(self.library.genre_clips(request.genre), key=lambda c: c.name)
        if not pool:
            raise ModeUnavailable(f"the library has no {request.genre} clips", field="genre")
        order = rng.permutation(len(pool))
        sources: list[tuple[Clip, np.ndarray]] = []
        for i in order:  # the first readable clips of a seeded shuffle
            try:
                y = self.library.load(pool[i])
                self.library.analyse(pool[i], y)
            except AudioDecodeError:
                continue
            sources.append((pool[i], y))
            progress(0.1 + 0.3 * len(sources) / MAX_CLIPS, f"loaded {pool[i].name}")
            if len(sources) == MAX_CLIPS:
                break
        if not sources:
            raise ModeUnavailable(f"no {request.genre} clip of the library could be read", field="genre")

        tempo = request.tempo or _native_tempo(sources[0][0])
        beat = 60.0 / tempo * sr          # samples per beat at the target tempo (fractional)
        n_total = int(round(request.length * sr))
        xfade = int(XFADE_SECONDS * sr)

        segments, offsets, used = [], [], []
        placed_beats = 0
        while placed_beats * beat < n_total:
            clip, y = sources[int(rng.integers(len(sources)))]
            grid = _beat_grid(clip, len(y))
            n_beats = int(rng.choice(PHRASE_BEATS))
            # count a 70 BPM clip in eighths for a 140 BPM request: stretch as little as possible
            k = _octave(_native_tempo(clip), tempo)
            src_beats = max(1, min(int(round(n_beats / k)), len(grid) - 1))
            n_beats = max(1, int(round(src_beats * k)))
            start = int(rng.integers(0, len(grid) - src_beats))
            a, b = int(grid[start] * sr), int(grid[start + src_beats] * sr)
            out_len = int(round((placed_beats + n_beats) * beat)) - int(round(placed_beats * beat))
            rate = (b - a) / out_len
            # take a little more than the phrase so the crossfade tail is real audio
            tail = int(xfade * rate) + 1
            piece = y[a: min(len(y), b + tail)]
            segments.append(audio.time_stretch(piece, rate, out_len + xfade))
            offsets.append(int(round(placed_beats * beat)))
            used.append({"clip": clip.key, "start": round(a / sr, 3), "beats": n_beats})
            placed_beats += n_beats
            progress(0.4 + 0.5 * min(1.0, placed_beats * beat / n_total), "arranging")

        y = audio.overlap_add(segments, offsets, n_total, xfade)
        meta = {"engine": self.name, "tempo": round(tempo, 3),
                "source_clips": sorted({s[0].key for s in sources}), "segments": used}
        return Track(y, sr, None, meta)


def load(settings, library: Library) -> DatasetEngine:
    """The engine over the scanned library (it has no checkpoint)."""
    return DatasetEngine(library)


def _native_tempo(clip: Clip) -> float:
    tempo = clip.tempo or 120.0
    return float(min(max(tempo, 40.0), 240.0))


def _octave(source_bpm: float, target_bpm: float) -> float:
    """Target beats per source beat: 1, or 2 / 0.5 when the stretch would be extreme (> 1.75x)."""
    ratio = target_bpm / source_bpm
    if ratio > MAX_STRETCH:
        return 2.0
    if ratio < 1 / MAX_STRETCH:
        return 0.5
    return 1.0


def _beat_grid(clip: Clip, n_samples: int) -> np.ndarray:
    """Beat times (s) of the clip, at least two; a steady grid when tracking found too few."""
    duration = n_samples / SAMPLE_RATE
    beats = np.asarray(clip.beats or [], dtype=float)
    beats = beats[beats < duration]
    if len(beats) >= 5:
        return beats
    period = 60.0 / _native_tempo(clip)
    grid = np.arange(0.0, duration - 1e-3, period)
    return grid if len(grid) >= 2 else np.array([0.0, duration])

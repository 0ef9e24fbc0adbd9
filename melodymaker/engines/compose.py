"""The compose mode: the symbolic genre composer rendered through a General MIDI SoundFont."""
from __future__ import annotations

import time
from pathlib import Path

from ..errors import GenerationFailed, InvalidRequest
from ..options import QUALITIES, QUALITY_DEFAULT
from ..track import Track
from .base import Capabilities, Engine, Progress, no_progress

NAME = "compose"
LABEL = "Composer"
DESCRIPTION = ("Writes a genre arrangement (drums, bass, harmony, lead) as MIDI and renders it with a "
               "SoundFont; the only mode that plays exactly the chosen instruments.")
CAPABILITIES = Capabilities(instruments=True, tempo=True, length=True, midi=True, key=True,
                            meter=True, loop=True, stems=True)
NUMBER = 2  # the original page's "API" slot
STEREO = True
"""Renders studio quality (options.QUALITIES) itself: a true stereo mix at 44.1 kHz, each part at
its style's pan with its reverb send; the other modes' mono is upsampled and centred by the post stage."""


class ComposeEngine(Engine):
    """Honours genre, instruments, tempo and length exactly, and returns the score as MIDI."""
    name, label, description, capabilities = NAME, LABEL, DESCRIPTION, CAPABILITIES

    def __init__(self, soundfont: Path | None = None):
        self.soundfont = soundfont

    def availability(self) -> str | None:
        try:
            import tinysoundfont  # noqa: F401
        except ImportError:
            return "the tinysoundfont package is not installed"
        from ..midi import soundfont_path
        try:
            soundfont_path(self.soundfont)
        except GenerationFailed as e:
            return e.message
        return None

    def check(self, request) -> None:
        """A genre is written only in the meters its style has (styles.Style.meters)."""
        from ..compose.styles import style_of
        style = style_of(request.genre)
        if request.meter not in style.meter_names:
            raise InvalidRequest(f"meter {request.meter} is not one the composer writes {request.genre} "
                                 f"in ({style.meter_note}); for {request.genre}: "
                                 f"{', '.join(style.meter_names)}", field="meter")

    def describe(self) -> dict:
        """The capability table's entry, with the SoundFont compose requests render through."""
        return {**super().describe(), "soundfont": self.font()}

    def font(self) -> dict | None:
        from ..midi import soundfont_info, soundfont_path
        try:
            return soundfont_info(soundfont_path(self.soundfont))
        except GenerationFailed:
            return None

    def generate(self, request, progress: Progress = no_progress) -> Track:
        from ..compose.composer import perform_parts
        from ..midi import soundfont_path
        self.check(request)
        started = time.perf_counter()
        progress(0.05, "composing")
        sr, stereo = _output(request)
        y, stems, score, facts = perform_parts(
            request.genre, tempo=request.tempo, length=request.length, instruments=request.instruments,
            seed=request.seed, key=request.musical_key, meter=request.meter, loop=request.loop,
            sr=sr, soundfont=self.soundfont, on_composed=lambda: progress(0.1, "rendering"), stereo=stereo)
        y, stems = _bus(request.genre, facts["style_version"], y, stems, sr, loop=request.loop)
        progress(0.9, "rendered")
        written = facts.pop("key")  # the track's "key" is the post stage's report of its audio
        meta = {**facts, "written_key": written, "engine": self.name, "seed": request.seed,
                "soundfont": soundfont_path(self.soundfont).name,
                "seconds": round(time.perf_counter() - started, 3)}
        return Track(audio=y, sr=sr, midi=score, meta=meta, stems=stems)

    def continue_from(self, parent, progress: Progress = no_progress) -> Track:
        """The parent's score continued from the bar line where its final chord began (the seam:
        every note before it is the parent's, so the render up to there is the parent's too), to
        the new length; the whole timeline, for a hard cut at that bar line."""
        from ..compose.composer import perform_parts
        from ..midi import soundfont_path
        request = parent.request
        started = time.perf_counter()
        progress(0.05, "continuing the score")
        sr, stereo = _output(request)  # the parent's request: a studio track continues in studio
        y, stems, score, facts = perform_parts(
            request.genre, tempo=request.tempo, length=parent.length, instruments=request.instruments,
            seed=request.seed, key=request.musical_key, meter=request.meter, sr=sr,
            soundfont=self.soundfont, extend_from=request.length, stereo=stereo,
            style_version=parent.meta.get("details", {}).get("style_version", 1),   # the parent's styles
            on_composed=lambda: progress(0.1, "rendering"))
        y, stems = _bus(request.genre, facts["style_version"], y, stems, sr)
        progress(0.9, "rendered")
        written = facts.pop("key")
        continued = facts.pop("continued")
        meta = {**facts, "written_key": written, "engine": self.name, "seed": request.seed,
                "soundfont": soundfont_path(self.soundfont).name, "starts_at": 0.0,
                "seam": continued["seam"], "crossfade": 0.0,
                "continued_by": f"the score, from bar {continued['from_bars'] + 1}",
                "seconds": round(time.perf_counter() - started, 3)}
        return Track(audio=y, sr=sr, midi=score, meta=meta, stems=stems)


def _bus(genre: str, version: int, y, stems, sr: int, loop: bool = False):
    """The mix (and stems) through the style's bus EQ and compression, where it has one."""
    from ..compose.styles import style_of
    bus = style_of(genre, version).bus
    if bus is None:
        return y, stems
    from ..mastering import bus as process
    return process(y, stems, sr, threshold_db=bus.threshold_db, ratio=bus.ratio, shelf_db=bus.shelf_db,
                   loop=loop)


def _output(request) -> tuple[int, bool]:
    """The sample rate and whether to render in stereo, as the request's quality asks."""
    quality = QUALITIES[getattr(request, "quality", None) or QUALITY_DEFAULT]
    return quality.sample_rate, quality.channels == 2


def load(settings, library=None) -> ComposeEngine:
    """The composer with the configured SoundFont (MELODYMAKER_SOUNDFONT), else the best General
    MIDI font on the machine (midi.request_soundfont)."""
    from ..midi import request_soundfont
    return ComposeEngine(settings.soundfont or request_soundfont(settings.models_dir))

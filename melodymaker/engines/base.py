"""The engine interface: what a generation mode declares, and what it does per request."""
from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..errors import ModeUnavailable
from ..track import Track

if TYPE_CHECKING:  # engines are imported by request.py's validation, so no runtime import back
    from ..request import GenerationRequest


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> None: ...


def no_progress(fraction: float, message: str = "") -> None:
    pass


@dataclass(frozen=True)
class Capabilities:
    """What a mode honours natively; the post stage conforms the rest (a key by pitch shift)."""
    instruments: bool = False
    tempo: bool = False
    length: bool = False
    midi: bool = False
    key: bool = False
    meter: bool = False   # writes the requested time signature (the others ignore it and say so)
    loop: bool = False    # writes a seamless loop itself (the others crossfade their tail into their head)
    stems: bool = False   # gives each role (drums, bass, harmony, lead) apart: /api/tracks/{id}/stems.zip

    def public(self) -> dict[str, bool]:
        return asdict(self)

    def conformed(self) -> dict[str, list[str]]:
        """What the service does with a control this mode does not honour: "approximated" (the post
        stage conforms it: tempo by time stretch, key by pitch shift, a loop by crossfading the tail
        into the head, MIDI by transcription) or "ignored" (accepted, said so in the metadata)."""
        return {"approximated": [k for k in ("tempo", "key", "loop", "midi") if not getattr(self, k)],
                "ignored": [k for k in ("instruments", "meter") if not getattr(self, k)]}


@dataclass(frozen=True)
class Parent:
    """What an engine knows of a track it is asked to continue (POST /api/tracks/{id}/extend).

    Times are on the parent's *raw* timeline: the engine's own output before the post stage's tempo
    conform (for a mode that honours tempo the two timelines are the same).
    request: the parent's GenerationRequest (its seed, genre, tempo, key, ...).
    meta: the parent's stored metadata.
    at: raw seconds where the continuation takes over (the parent's fade-out began there).
    seconds: raw seconds of new audio wanted after `at` (what the new track's tail needs, with headroom).
    tail: the parent's raw audio just before `at` (its last sample is the one at `at`), up to
        CONTEXT_SECONDS of it, float32 at the app's sample rate; None for a parent stored without it.
    length: the new track's length in (output) seconds; None: the parent's length plus what
        `seconds` adds.
    """
    request: Any
    meta: dict
    at: float
    seconds: float
    tail: np.ndarray | None = None
    length: float | None = None


CONTEXT_SECONDS = 10.0
"""How much of its raw audio, before the point an extension takes over, a track keeps for it."""


class Engine(ABC):
    """One generation mode, loaded. Stateless per request: settings arrive with the request.

    A subclass sets name, label, description and capabilities from its module's declarations
    (see melodymaker/engines/__init__.py)."""
    name: str = ""
    label: str = ""
    description: str = ""
    capabilities = Capabilities()
    continues_tail = False  # continue_from() uses Parent.tail: its tracks keep one (Track.context)

    def availability(self) -> str | None:
        """None when the engine can run, else the reason it cannot (shown to the user)."""
        return None

    def native_tempo(self, request: GenerationRequest) -> float | None:
        """The tempo this mode will play `request` at, for a mode that does not honour tempo exactly
        but knows where it will land (the post stage conforms from there, and the service asks for
        just the audio that conform needs); None: unknown (the library's median for the genre is
        assumed)."""
        return None

    def check(self, request: GenerationRequest) -> None:
        """Raise InvalidRequest for a request this mode cannot honour (checked before queueing)."""

    @abstractmethod
    def generate(self, request: GenerationRequest, progress: Progress = no_progress) -> Track:
        ...

    def continue_from(self, parent: Parent, progress: Progress = no_progress) -> Track:
        """Raw audio (before the post stage) that continues `parent`, a track this mode made.

        The returned Track's meta["starts_at"] says where on the parent's raw timeline its first
        sample lies: `parent.at` for a mode that continues the tail it is given (it returns at
        least `parent.seconds` of audio), or 0.0 for one that makes the whole longer timeline again
        in the same seed lineage, so that up to `at` it plays what the parent played (it returns at
        least `at + seconds`). This default does the latter: the parent's request again, longer. A
        mode may also set meta["seam"] (output seconds where the new audio takes over, default the
        parent's fade-out start) and meta["crossfade"] (seconds, default that fade's length)."""
        longer = dataclasses.replace(parent.request, length=parent.at + parent.seconds, candidates=1,
                                     loop=False)
        track = self.generate(longer, progress)
        track.meta["starts_at"] = 0.0
        track.meta["continued_by"] = "the same seed's longer timeline"
        return track

    def describe(self) -> dict:
        reason = self.availability()
        return {"name": self.name, "label": self.label, "description": self.description,
                "capabilities": self.capabilities.public(), **self.capabilities.conformed(),
                "available": reason is None, "reason": reason}


class UnavailableEngine(Engine):
    """A placeholder for a mode that is not loadable here; it carries the reason."""

    def __init__(self, name: str, label: str, description: str, capabilities: Capabilities, reason: str):
        self.name, self.label, self.description = name, label, description
        self.capabilities, self.reason = capabilities, reason

    def availability(self) -> str | None:
        return self.reason

    def generate(self, request, progress=no_progress) -> Track:
        raise ModeUnavailable(f"mode '{self.name}' is unavailable: {self.reason}", field="mode")

"""The engine interface: what a generation mode declares, and what it does per request."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

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


class Engine(ABC):
    """One generation mode, loaded. Stateless per request: settings arrive with the request.

    A subclass sets name, label, description and capabilities from its module's declarations
    (see melodymaker/engines/__init__.py)."""
    name: str = ""
    label: str = ""
    description: str = ""
    capabilities = Capabilities()

    def availability(self) -> str | None:
        """None when the engine can run, else the reason it cannot (shown to the user)."""
        return None

    def check(self, request: GenerationRequest) -> None:
        """Raise InvalidRequest for a request this mode cannot honour (checked before queueing)."""

    @abstractmethod
    def generate(self, request: GenerationRequest, progress: Progress = no_progress) -> Track:
        ...

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

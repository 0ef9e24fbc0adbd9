"""The engine interface and the registry of generation modes."""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable, Protocol

from ..errors import ModeUnavailable
from ..request import GenerationRequest
from ..track import Track


class Progress(Protocol):
    def __call__(self, fraction: float, message: str = "") -> None: ...


def no_progress(fraction: float, message: str = "") -> None:
    pass


@dataclass(frozen=True)
class Capabilities:
    """What a mode honours natively; the post stage conforms the rest."""
    instruments: bool = False
    tempo: bool = False
    length: bool = False
    midi: bool = False


class Engine(ABC):
    """One generation mode. Stateless per request: settings arrive with the request."""
    name: str = ""
    label: str = ""
    description: str = ""
    capabilities = Capabilities()

    def availability(self) -> str | None:
        """None when the engine can run, else the reason it cannot (shown to the user)."""
        return None

    @abstractmethod
    def generate(self, request: GenerationRequest, progress: Progress = no_progress) -> Track:
        ...

    def describe(self) -> dict:
        reason = self.availability()
        return {"name": self.name, "label": self.label, "description": self.description,
                "capabilities": self.capabilities.__dict__.copy(),
                "available": reason is None, "reason": reason}


class UnavailableEngine(Engine):
    """A placeholder for a mode that is not built or not loadable here."""

    def __init__(self, name: str, label: str, description: str, reason: str):
        self.name, self.label, self.description, self.reason = name, label, description, reason

    def availability(self) -> str | None:
        return self.reason

    def generate(self, request, progress=no_progress) -> Track:
        raise ModeUnavailable(f"mode '{self.name}' is unavailable: {self.reason}", field="mode")


EngineFactory = Callable[..., Engine]

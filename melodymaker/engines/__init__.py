"""The registry of generation modes: one module per mode, listed here in the order the page shows them.

Each mode module declares NAME, LABEL, DESCRIPTION, CAPABILITIES, NUMBER (the original page's
`generate_mode` number), optionally QUEUES (the RQ queues its jobs may go to, in order of
preference: the first one a live worker serves; ("cpu",) when left out) and
`load(settings, library) -> Engine`, which loads its checkpoint once and raises when it cannot
(FileNotFoundError for a missing checkpoint, anything else for a broken one).
Options, health, OpenAPI, the page, the CLI, request validation and `evaluate` all read MODES.

Adding a mode: write melodymaker/engines/<name>.py (and its model folder), then add it to _MODULES.
Module imports here must stay light (numpy at most): heavy libraries are imported inside load().
"""
from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from . import compose, dataset, ddim, melgan, rave
from .base import Capabilities, Engine, UnavailableEngine

_MODULES = (dataset, rave, compose, ddim, melgan)
DEFAULT_MODE = "dataset"


@dataclass(frozen=True)
class Mode:
    """A mode as the registry knows it before anything is loaded."""
    name: str
    label: str
    description: str
    capabilities: Capabilities
    number: int
    loader: Callable[..., Engine]
    queues: tuple[str, ...] = ("cpu",)

    @classmethod
    def of(cls, module: ModuleType) -> "Mode":
        return cls(module.NAME, module.LABEL, module.DESCRIPTION, module.CAPABILITIES, module.NUMBER,
                   module.load, tuple(getattr(module, "QUEUES", ("cpu",))))

    def load(self, settings, library) -> Engine:
        """The engine, or an UnavailableEngine that says why: a missing or broken checkpoint, or a
        missing package, never crashes the caller."""
        try:
            return self.loader(settings, library)
        except FileNotFoundError as e:
            reason = f"no trained checkpoint: {e}"
        except ImportError as e:
            reason = f"not installed: {e}"
        except Exception as e:  # a corrupt or incompatible checkpoint: a reason, never a crash
            reason = f"checkpoint could not be loaded ({type(e).__name__}: {e})"
        return UnavailableEngine(self.name, self.label, self.description, self.capabilities, reason)


MODES: dict[str, Mode] = {m.name: m for m in map(Mode.of, _MODULES)}
MODE_NUMBERS: dict[int, str] = {m.number: m.name for m in MODES.values()}
assert DEFAULT_MODE in MODES and len(MODE_NUMBERS) == len(MODES), "mode names and numbers must be unique"


def load_all(settings, library, names=None) -> dict[str, Engine]:
    """One engine per mode (all, or the names given), in registry order."""
    return {name: mode.load(settings, library) for name, mode in MODES.items()
            if names is None or name in names}

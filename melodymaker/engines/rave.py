"""The rave mode: RAVE TorchScript exports (official `rave export` files or train_rave's own)
decode latent trajectories drawn from the requested genre's library clips. models/rave/ ships our
`rave.pt` (its export is made by this machine's torch on first start and cached in
var/cache/rave/) and may hold `rave.ts` (an official multi-genre export) and/or `<genre>.ts` (per
genre), each with an optional `<stem>.latents.pt` bank beside it; latents missing from a bank are
encoded from genres/ on a genre's first request (and cached). A per-genre export with no library
clips of its genre generates from its prior, N(0, 1) latents; `describe()` says per genre."""
from __future__ import annotations

import os
import time
from pathlib import Path

from ..errors import ModeUnavailable
from ..options import SAMPLE_RATE
from ..track import Track
from .base import Capabilities, Engine, Progress, no_progress

NAME = "rave"
LABEL = "RAVE"
DESCRIPTION = ("A RAVE variational autoencoder decodes a latent trajectory spliced and varied from "
               "the genre's own library clips.")
CAPABILITIES = Capabilities(tempo=True, length=True)
NUMBER = 1
QUEUES = ("gpu", "cpu")  # RQ workers: a GPU worker when one is live, else a CPU one


class RaveEngine(Engine):
    """Honours genre, seed, tempo (latent segments on the beat grid, stretched in latent space)
    and exact length."""
    name, label, description, capabilities = NAME, LABEL, DESCRIPTION, CAPABILITIES

    def __init__(self, rave, folder: Path, *, variation: float):
        self.rave, self.folder, self.variation = rave, folder, variation

    def describe(self) -> dict:
        """The capability table's entry, with where each genre's latents come from."""
        from ..options import GENRES
        return {**super().describe(), "genre_from": {g: self.rave.genre_source(g) for g in GENRES}}

    def generate(self, request, progress: Progress = no_progress) -> Track:
        started = time.perf_counter()
        n = round(request.length * SAMPLE_RATE)
        try:
            y, info = self.rave.generate(request.genre, n, sr=SAMPLE_RATE, seed=request.seed,
                                         variation=self.variation, tempo=request.tempo,
                                         progress=lambda f, m="": progress(0.05 + 0.85 * f, m))
        except LookupError as e:  # no export or no library material for this genre
            raise ModeUnavailable(f"RAVE cannot make {request.genre} here: {e.args[0]}", field="genre") from e
        meta = {"engine": self.name, "seed": request.seed, **info,
                "seconds": round(time.perf_counter() - started, 3)}
        return Track(audio=y, sr=SAMPLE_RATE, midi=None, meta=meta)


def load(settings, library=None, *, variation: float | None = None) -> RaveEngine:
    """The engine with every model in models/rave loaded once (rave.pt exported on first start);
    FileNotFoundError when there is none.

    variation: latent noise in units of the genre's spread (default 0.15; the environment
    variable MELODYMAKER_RAVE_VARIATION sets it for a server)."""
    folder = Path(settings.models_dir) / "rave"
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    if variation is None:
        raw = os.environ.get("MELODYMAKER_RAVE_VARIATION", "0.15")
        try:
            variation = float(raw)
        except ValueError:
            raise ValueError(f"MELODYMAKER_RAVE_VARIATION is {raw!r}; give a number within 0-2") from None
    if not 0 <= variation <= 2:
        raise ValueError(f"RAVE variation must be within 0-2, got {variation}")
    # torch is imported only when the mode is loaded
    from train_rave.sample import load as load_rave
    rave = load_rave(folder, genres_dir=Path(settings.genres_dir), cache_dir=Path(settings.cache_dir))
    return RaveEngine(rave, folder, variation=variation)

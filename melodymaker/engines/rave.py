"""The rave mode: RAVE TorchScript exports (official `rave export` files or train_rave's own)
decode latent trajectories drawn from the requested genre's library clips. models/rave/ ships our
`rave.pt` (its export is made by this machine's torch on first start and cached in
var/cache/rave/) and may hold `rave.ts` (an official multi-genre export) and/or `<genre>.ts` (per
genre), each with an optional `<stem>.latents.pt` bank beside it; latents missing from a bank are
encoded from genres/ on a genre's first request (and cached). A per-genre export with no library
clips of its genre generates from its prior, N(0, 1) latents; `describe()` says per genre."""
from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import ModeUnavailable
from ..options import SAMPLE_RATE
from ..track import Track
from .base import Capabilities, Engine, Parent, Progress, no_progress
from .continuation import HANDOVER, continuation_seed, hand_over

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
    continues_tail = True

    def __init__(self, rave, folder: Path, *, variation: float):
        self.rave, self.folder, self.variation = rave, folder, variation

    def describe(self) -> dict:
        """The capability table's entry, with where each genre's latents come from."""
        from ..options import GENRES
        return {**super().describe(), "genre_from": {g: self.rave.genre_source(g) for g in GENRES}}

    def generate(self, request, progress: Progress = no_progress) -> Track:
        started = time.perf_counter()
        n = round(request.length * SAMPLE_RATE)
        with self._genre_available(request.genre):
            y, info = self.rave.generate(request.genre, n, sr=SAMPLE_RATE, seed=request.seed,
                                         variation=self.variation, tempo=request.tempo,
                                         progress=lambda f, m="": progress(0.05 + 0.85 * f, m))
        meta = {"engine": self.name, "seed": request.seed, **info,
                "seconds": round(time.perf_counter() - started, 3)}
        return Track(audio=y, sr=SAMPLE_RATE, midi=None, meta=meta)

    def continue_from(self, parent: Parent, progress: Progress = no_progress) -> Track:
        """The tail encoded and its latent trajectory continued by the genre passage nearest its
        last latents, on the track's bar grid, decoded with the tail's latents as the decoder's
        run-up (GenreRave.continue_audio), then handed over from the tail. Without a tail: the
        base class's longer draw."""
        if parent.tail is None:
            return super().continue_from(parent, progress)
        started = time.perf_counter()
        request, seed = parent.request, continuation_seed(parent.request.seed, parent.at)
        n = math.ceil(parent.seconds * SAMPLE_RATE)
        with self._genre_available(request.genre):
            y, info = self.rave.continue_audio(parent.tail, request.genre, n, sr=SAMPLE_RATE, seed=seed,
                                               at=parent.at, variation=self.variation, tempo=request.tempo,
                                               progress=lambda f, m="": progress(0.05 + 0.85 * f, m))
        known = info.get("context_frames", 0)
        how = "a fresh RAVE draw (the tail is too short to encode)"
        if known:
            y = hand_over(parent.tail, y, SAMPLE_RATE)
            matched = next((s for s in info["segments"] if s.get("matched")), None)
            source = (f"{matched['clip']} from {matched['start_s']} s, the library passage nearest them"
                      if matched else "latents of the genre's prior")
            how = (f"RAVE: the tail's {known} latent frames continued by {source}; "
                   f"handed over in {HANDOVER * 1000:.0f} ms")
        meta = {"engine": self.name, "seed": request.seed, "continuation_seed": seed, **info,
                "starts_at": parent.at, "continued_by": how, "seconds": round(time.perf_counter() - started, 3)}
        return Track(audio=y, sr=SAMPLE_RATE, midi=None, meta=meta)

    @contextmanager
    def _genre_available(self, genre: str):
        """LookupError (no export or no library material for the genre) as ModeUnavailable."""
        try:
            yield
        except LookupError as e:
            raise ModeUnavailable(f"RAVE cannot make {genre} here: {e.args[0]}", field="genre") from e


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

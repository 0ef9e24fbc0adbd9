"""The ddim mode: a genre-conditioned diffusion model over the MDCT (diffusion_model/), sampled by
DDIM in windows that continue from each other. The checkpoint lives in models/ddim/ddim.pt."""
from __future__ import annotations

import time
from pathlib import Path

from ..options import SAMPLE_RATE
from ..track import Track
from .base import Capabilities, Engine, Parent, Progress, no_progress
from .continuation import continuation_seed

NAME = "ddim"
LABEL = "Diffusion (DDIM)"
DESCRIPTION = ("A genre-conditioned diffusion model draws the MDCT of the track window by window, "
               "each continuing from the last.")
CAPABILITIES = Capabilities(length=True)
NUMBER = 3
QUEUES = ("gpu", "cpu")  # RQ workers: a GPU worker when one is live, else a CPU one

CHECKPOINT = "ddim.pt"


class DDIMEngine(Engine):
    """Honours genre, seed and exact length. A checkpoint with a tempo embedding draws the track
    near the tempo asked for (the octave of it inside the tempi the genre trained on,
    DDIM.play_tempo), and the shared post stage conforms what is left; without one the post stage
    does it all."""
    name, label, description, capabilities = NAME, LABEL, DESCRIPTION, CAPABILITIES
    continues_tail = True

    def __init__(self, model, checkpoint: Path):
        self.model, self.checkpoint = model, checkpoint

    def generate(self, request, progress: Progress = no_progress) -> Track:
        started = time.perf_counter()
        progress(0.02, "denoising")
        tempo = self.native_tempo(request)
        y = self.model.sample(request.genre, request.length, request.seed, tempo=tempo,
                              progress=lambda f: progress(0.02 + 0.88 * f, "denoising"))
        return Track(audio=y, sr=SAMPLE_RATE, midi=None, meta=self._meta(request.seed, started, tempo))

    def native_tempo(self, request) -> float | None:
        return self.model.play_tempo(request.genre, request.tempo)

    def continue_from(self, parent: Parent, progress: Progress = no_progress) -> Track:
        """The tail's last MDCT frames are the known first frames of the first window, as one
        window's last frames are for the next when a track is made (DDIM.continue_audio): the
        audio starts exactly where the tail ends. Without a tail: the base class's longer draw."""
        if parent.tail is None:
            return super().continue_from(parent, progress)
        started = time.perf_counter()
        seed = continuation_seed(parent.request.seed, parent.at)
        progress(0.02, "denoising")
        tempo = self.native_tempo(parent.request)  # the parent's, so the groove carries on
        y, known = self.model.continue_audio(parent.tail, parent.request.genre, parent.seconds, seed, tempo=tempo,
                                             progress=lambda f: progress(0.02 + 0.88 * f, "denoising"))
        how = (f"DDIM from the tail's last {known} MDCT frames ({known * self.model.hop / SAMPLE_RATE:.2f} s)"
               if known else "a fresh DDIM draw (the tail is too short to continue)")
        meta = {**self._meta(parent.request.seed, started, tempo), "continuation_seed": seed,
                "starts_at": parent.at, "continued_by": how}
        return Track(audio=y, sr=SAMPLE_RATE, midi=None, meta=meta)

    def _meta(self, seed: int, started: float, tempo: float | None = None) -> dict:
        return {"engine": self.name, "seed": seed, "checkpoint": self.checkpoint.name,
                "checkpoint_step": self.model.step, **{f"ddim_{k}": v for k, v in self.model.defaults.items()},
                **({"drawn_at_tempo": round(tempo, 2)} if tempo else {}),
                "seconds": round(time.perf_counter() - started, 3)}


def load(settings, library=None) -> DDIMEngine:
    """The engine with its checkpoint loaded once; FileNotFoundError when there is none."""
    path = Path(settings.models_dir) / "ddim" / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT} in {path.parent}")
    from diffusion_model.sample import load as load_ddim  # torch is imported only when the mode is loaded
    model = load_ddim(path)
    if model.sr != SAMPLE_RATE:
        raise ValueError(f"checkpoint makes {model.sr} Hz audio, the app needs {SAMPLE_RATE} Hz")
    return DDIMEngine(model, path)

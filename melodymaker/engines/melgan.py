"""The melgan mode: a genre-conditioned mel-spectrogram GAN, inverted by the checkpoint's neural
vocoder (Vocos, or MelGAN in older checkpoints; Griffin-Lim as the fallback). The checkpoint
lives in models/melgan/melgan.pt."""
from __future__ import annotations

import math
import os
import time
from pathlib import Path

from ..options import SAMPLE_RATE
from ..track import Track
from .base import Capabilities, Engine, Parent, Progress, no_progress
from .continuation import HANDOVER, continuation_seed, hand_over

NAME = "melgan"
LABEL = "MEL-GAN"
DESCRIPTION = ("A genre-conditioned GAN draws a mel-spectrogram of the whole track at once and a "
               "neural vocoder (Vocos) turns it into audio.")
CAPABILITIES = Capabilities(length=True)
NUMBER = 4
QUEUES = ("gpu", "cpu")  # RQ workers: a GPU worker when one is live, else a CPU one

CHECKPOINT = "melgan.pt"


class MelGANEngine(Engine):
    """Honours genre, seed and exact length. A generator with a beat clock is given a clock at
    (the octave of) the tempo asked for inside the tempi the genre trained on (MelGAN.play_tempo);
    its beat follows that clock only loosely (models/melgan/card.json, clock_following), so the
    shared post stage conforms the tempo, as it does for a generator without one."""
    name, label, description, capabilities = NAME, LABEL, DESCRIPTION, CAPABILITIES
    continues_tail = True

    def __init__(self, model, checkpoint: Path, *, inversion: str = "vocoder"):
        self.model, self.checkpoint, self.inversion = model, checkpoint, inversion

    def generate(self, request, progress: Progress = no_progress) -> Track:
        started = time.perf_counter()
        n = round(request.length * SAMPLE_RATE)
        tempo = self.native_tempo(request)
        y = self.model.generate(request.genre, n, seed=request.seed, inversion=self.inversion, tempo=tempo,
                                progress=lambda f, m="": progress(0.05 + 0.85 * f, m))
        return Track(audio=y, sr=SAMPLE_RATE, midi=None, meta=self._meta(request.seed, started, tempo))

    def native_tempo(self, request) -> float | None:
        return self.model.play_tempo(request.genre, request.tempo)

    def continue_from(self, parent: Parent, progress: Progress = no_progress) -> Track:
        """The generator's noise fitted to the tail's mel, new noise after it, the tail's mel and
        the drawn one inverted together (MelGAN.continue_audio), then handed over from the tail.
        Without a tail: the base class's longer draw."""
        if parent.tail is None:
            return super().continue_from(parent, progress)
        started = time.perf_counter()
        seed = continuation_seed(parent.request.seed, parent.at)
        n = math.ceil(parent.seconds * SAMPLE_RATE)
        tempo = self.native_tempo(parent.request)  # for a tail too short to follow
        y, info = self.model.continue_audio(parent.tail, parent.request.genre, n, seed=seed,
                                            inversion=self.inversion, tempo=tempo,
                                            progress=lambda f, m="": progress(0.05 + 0.85 * f, m))
        known = info["context_frames"]
        how = "a fresh MEL-GAN draw (the tail is too short to continue)"
        if known:
            y = hand_over(parent.tail, y, SAMPLE_RATE)
            how = (f"MEL-GAN: noise fitted to the tail's last {known} mel frames "
                   f"({known * self.model.mel.hop / SAMPLE_RATE:.2f} s), new noise after; "
                   f"handed over in {HANDOVER * 1000:.0f} ms")
        meta = {**self._meta(parent.request.seed, started, tempo), "continuation_seed": seed, **info,
                "starts_at": parent.at, "continued_by": how}
        return Track(audio=y, sr=SAMPLE_RATE, midi=None, meta=meta)

    def _meta(self, seed: int, started: float, tempo: float | None = None) -> dict:
        return {"engine": self.name, "seed": seed, "inversion": self.inversion,
                "checkpoint": self.checkpoint.name, **self.model.checkpoint_info,
                **({"drawn_at_tempo": round(tempo, 2)} if tempo else {}),
                "seconds": round(time.perf_counter() - started, 3)}


def load(settings, library=None, *, inversion: str | None = None) -> MelGANEngine:
    """The engine with its checkpoint loaded once; FileNotFoundError when there is none.

    inversion: "vocoder" (default: the checkpoint's vocoder; a MelGAN vocoder gets one
    mel-envelope correction pass, a Vocos none), "vocoder-raw" (the vocoder alone) or
    "griffinlim" (the fallback); the environment variable MELODYMAKER_MELGAN_INVERSION sets it
    for a server.
    """
    path = Path(settings.models_dir) / "melgan" / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"no {CHECKPOINT} in {path.parent}")
    # torch is imported only when the mode is loaded
    from melgan_model.sample import INVERSIONS
    from melgan_model.sample import load as load_melgan
    inversion = inversion or os.environ.get("MELODYMAKER_MELGAN_INVERSION") or "vocoder"
    if inversion not in INVERSIONS:
        raise ValueError(f"MELODYMAKER_MELGAN_INVERSION is {inversion!r}; choose from {', '.join(INVERSIONS)}")
    model = load_melgan(path)
    if model.mel.sr != SAMPLE_RATE:
        raise ValueError(f"checkpoint makes {model.mel.sr} Hz audio, the app needs {SAMPLE_RATE} Hz")
    return MelGANEngine(model, path, inversion=inversion)

"""Load a DDIM checkpoint and make audio of any length.

    python -m diffusion_model.sample --checkpoint models/ddim/ddim.pt --genre jazz --length 30 \
        --seed 1 --out jazz.wav [--steps 25] [--eta 0] [--guidance 2]

Long tracks are made in windows: each window after the first is conditioned on the last
`overlap` frames of the one before (the network was trained to continue from known frames), so
the track flows on without a seam and no window repeats another. The MDCT is inverted once over
the whole track, so its overlap-add also crosses every window boundary smoothly.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from melodymaker.audio import tempo_to_draw
from melodymaker.trainkit import float_weights, read_checkpoint

from .data import denormalise, normalise
from .mdct import MDCT
from .model import UNet1D, UNetConfig, alpha_sigma

FORMAT, FORMAT_VERSION = "melodymaker-ddim", 1
"""ddim.pt: trainkit's header, then config (UNetConfig), model (EMA weights in float16), audio
(sr, hop, alpha, bin_std), genres and sampling (the defaults it was trained for)."""
SOLVERS = ("ddim", "dpm++2m")


@dataclass
class DDIM:
    """A loaded checkpoint (see `load`): the (EMA) network and what it needs to turn its output
    into audio."""
    net: UNet1D
    genres: list[str]
    sr: int
    hop: int
    alpha: float
    bin_std: torch.Tensor
    defaults: dict
    step: int
    path: str = ""
    tempi: dict = field(default_factory=dict)   # {genre: [low, median, high] BPM} of a tempo_cond network

    @property
    def takes_tempo(self) -> bool:
        return bool(self.net.cfg.tempo_cond)

    def play_tempo(self, genre: str, requested: float | None) -> float | None:
        """The tempo to draw `genre` at for a request of `requested` BPM (None: the network's choice,
        or a network without a tempo embedding): the octave of `requested` (x1/2, x1, x2; the post
        stage's conform folds octaves the same way) nearest the genre's median among those inside
        the tempi it trained on, else the nearest edge of them. The post stage conforms the rest."""
        if not requested or not self.takes_tempo:
            return None
        return tempo_to_draw(requested, self.tempi.get(genre))

    def sample(self, genre: str, seconds: float, seed: int, *, steps: int | None = None,
               eta: float | None = None, guidance: float | None = None, window: int | None = None,
               overlap: int | None = None, solver: str | None = None, tempo: float | None = None,
               progress: Callable[[float], None] | None = None) -> np.ndarray:
        """float32 mono audio of exactly round(seconds * sr) samples; `tempo` (BPM) steers a
        tempo_cond network (see play_tempo) and is ignored by others."""
        samples = int(round(seconds * self.sr))
        settings = self._settings(steps, eta, guidance, window, overlap, solver)
        frames = self._draw(genre, MDCT(self.hop).frames_for(samples), seed, None, settings, progress, tempo)
        return self._audio(frames, samples)

    def continue_audio(self, tail: np.ndarray, genre: str, seconds: float, seed: int, *,
                       progress: Callable[[float], None] | None = None, tempo: float | None = None,
                       **options) -> tuple[np.ndarray, int]:
        """(float32 audio of exactly round(seconds * sr) samples whose first sample follows the
        last of `tail`, the number of MDCT frames of the tail it continued from).

        The tail's last MDCT frames, on a grid whose frame boundary is the tail's end, are the
        known first frames of the first window, as the end of one window is for the next in
        `sample` (the network was trained to continue them): `overlap` frames by default, fewer of
        a shorter tail. The last of them straddles the end; its second half is the tail mirrored
        there. An inverse MDCT frame's half depends only on the same half of its input, so the
        known frames rebuild the tail exactly up to its end, and from there the mirrored half
        fades into the new frames: the audio starts at the tail's last value, with no click. A
        tail under two hops gives no context: a fresh draw, as `sample` makes. Options are
        `sample`'s."""
        samples = int(round(seconds * self.sr))
        settings = self._settings(**options)
        hop, mdct = self.hop, MDCT(self.hop)
        whole = len(tail) // hop  # hops of tail on a grid ending at its last sample
        known = min(settings["overlap"], settings["window"] // 2, whole)
        if known < 2:
            return self.sample(genre, seconds, seed, progress=progress, tempo=tempo, **options), 0
        end = torch.from_numpy(np.asarray(tail[len(tail) - whole * hop:], np.float32))
        with torch.no_grad():
            coeffs = mdct(torch.cat([end, end.flip(0)[:hop]]))
        # frame j covers samples (j - 1) * hop ... (j + 1) * hop: frame `whole` straddles the end
        context = normalise(coeffs[:, whole + 1 - known: whole + 1], self.alpha, self.bin_std)
        lead = (known - 1) * hop  # the part of the inverse that rebuilds the tail
        frames = self._draw(genre, mdct.frames_for(lead + samples), seed, context, settings, progress, tempo)
        return self._audio(frames, lead + samples)[lead:], known

    def _settings(self, steps=None, eta=None, guidance=None, window=None, overlap=None, solver=None) -> dict:
        """The sampling settings: those given, else the checkpoint's defaults."""
        d = self.defaults
        solver = solver or d.get("solver", "ddim")
        if solver not in SOLVERS:
            raise ValueError(f"solver {solver!r} is not one of {SOLVERS}")
        return {"steps": int(steps or d.get("steps", 25)),
                "eta": float(d.get("eta", 0.0) if eta is None else eta),
                "guidance": float(d.get("guidance", 2.0) if guidance is None else guidance),
                "window": int(window or d.get("window", 512)),
                "overlap": int(d.get("overlap", 64) if overlap is None else overlap), "solver": solver}

    def _draw(self, genre: str, total: int, seed: int, context: torch.Tensor | None, settings: dict,
              progress: Callable[[float], None] | None, tempo: float | None = None) -> torch.Tensor:
        """Normalised frames (bins, total) drawn window by window, each window conditioned on the
        last `overlap` frames before it; `context` (bins, k <= overlap), when given, are known
        frames before the first (they begin the result, and `total` counts them)."""
        if genre not in self.genres:
            raise ValueError(f"genre {genre!r} is not one of {self.genres}")
        windows, window, overlap = plan_windows(total, settings["window"], settings["overlap"],
                                                self.net.multiple)
        gen = torch.Generator().manual_seed(int(seed))
        label = self.genres.index(genre)
        frames = context
        for w in range(windows):
            given = frames[:, -overlap:] if frames is not None and overlap else None
            done = lambda f, w=w: progress((w + f) / windows) if progress else None
            x = sample_window(self.net, label, window, gen, steps=settings["steps"], eta=settings["eta"],
                              guidance=settings["guidance"], context=given, classes=len(self.genres),
                              solver=settings["solver"], progress=done,
                              tempo=tempo if self.takes_tempo else None)
            new = x if given is None else x[:, given.shape[1]:]
            frames = new if frames is None else torch.cat([frames, new], dim=1)
        return frames[:, :total]

    def _audio(self, frames: torch.Tensor, samples: int) -> np.ndarray:
        """Normalised frames -> float32 audio of `samples` samples (one inverse over them all)."""
        with torch.no_grad():
            y = MDCT(self.hop).inverse(denormalise(frames, self.alpha, self.bin_std), samples)
        return y.numpy().astype(np.float32)


def plan_windows(total: int, window: int, overlap: int, multiple: int) -> tuple[int, int, int]:
    """(windows, frames per window, overlap) covering `total` frames with windows of at most
    `window` frames (a multiple of the network's `multiple`), each overlapping the one before by
    `overlap`: as few windows as that allows, all of one size, the smallest that covers the
    track. (A fixed window size made a 5 s track pay for 512 frames where it needs 431.)"""
    window = max(multiple, window // multiple * multiple)
    overlap = min(max(0, overlap), window // 2)
    n = 1 if total <= window else 1 + math.ceil((total - window) / (window - overlap))
    size = math.ceil((total + (n - 1) * overlap) / n / multiple) * multiple
    return n, min(window, max(multiple, size)), overlap


def load(path: str | Path) -> DDIM:
    """The sampler of a ddim.pt: FileNotFoundError when there is none, ValueError when it is not a
    DDIM checkpoint of the version this code reads."""
    ckpt = read_checkpoint(path, FORMAT, FORMAT_VERSION, name="DDIM")
    net = UNet1D(UNetConfig.from_dict(ckpt["config"]))
    net.load_state_dict(float_weights(ckpt["model"]))
    net.eval().requires_grad_(False)
    a = ckpt["audio"]
    return DDIM(net, list(ckpt["genres"]), int(a["sr"]), int(a["hop"]), float(a["alpha"]),
                a["bin_std"].float(), dict(ckpt.get("sampling", {})), int(ckpt["step"]), str(path),
                dict(ckpt.get("tempi", {})))


@torch.inference_mode()
def sample_window(net: UNet1D, label: int, frames: int, gen: torch.Generator, *, steps: int = 25,
                  eta: float = 0.0, guidance: float = 2.0, context: torch.Tensor | None = None,
                  classes: int = 10, solver: str = "ddim",
                  progress: Callable[[float], None] | None = None, tempo: float | None = None) -> torch.Tensor:
    """One window (bins, frames) with v-prediction and classifier-free guidance; `context`
    (bins, k) are known first frames the window continues from.

    solver "ddim": DDIM (Song et al. 2021), eta 0 deterministic, eta 1 DDPM-like.
    solver "dpm++2m": DPM-Solver++(2M) (Lu et al. 2022), a second-order multistep solver of the
    same probability-flow ODE that reuses the previous step's prediction, so it costs one network
    call per step like DDIM but needs fewer steps; eta is ignored.

    tempo (BPM, a tempo_cond network): given with the genre, and guided with it (the unguided
    branch has neither)."""
    bins = net.cfg.bins
    ctx = torch.zeros(1, bins, frames)
    mask = torch.zeros(1, 1, frames)
    if context is not None and context.shape[1]:
        k = context.shape[1]
        ctx[0, :, :k], mask[0, :, :k] = context, 1.0
    x = torch.randn(1, bins, frames, generator=gen)
    guided = guidance != 1.0
    labels = torch.tensor([label, classes] if guided else [label])
    bpm = None if not tempo else torch.tensor([float(tempo), 0.0] if guided else [float(tempo)])

    def denoise(x, t):
        """(x0, eps) predicted at time t, guided, with the known frames put back."""
        a_t, s_t = alpha_sigma(t)
        # one x under each label; the branches mixed inside the network, before its head
        v = net(x, ctx, mask, t.repeat(len(labels)), labels, bpm, guidance=guidance if guided else None)
        x0 = a_t * x - s_t * v
        x0 = mask * ctx + (1 - mask) * x0  # the known frames are known
        return x0, s_t * x + a_t * v

    ts = torch.linspace(1.0, 0.0, steps + 1)
    prev = None  # (x0, h) of the step before, for the multistep solver
    for i in range(steps):
        t, s = ts[i], ts[i + 1]
        x0, eps = denoise(x, t)
        a_s, s_s = alpha_sigma(s)
        if s <= 0:
            x = x0
        elif solver == "dpm++2m":
            a_t, s_t = alpha_sigma(t)
            lam_t = torch.log(a_t.clamp_min(1e-8) / s_t)
            h = torch.log(a_s / s_s) - lam_t
            d = x0
            if prev is not None:
                r = prev[1] / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev[0]
            x = (s_s / s_t) * x - a_s * torch.expm1(-h) * d
            prev = (x0, h)
        else:
            a_t, s_t = alpha_sigma(t)
            sig = eta * torch.sqrt((s_s ** 2 / s_t ** 2) * (1 - a_t ** 2 / a_s ** 2)) if eta else 0.0
            x = a_s * x0 + torch.sqrt(torch.clamp(s_s ** 2 - sig ** 2, min=0.0)) * eps
            if eta:
                x = x + sig * torch.randn(x.shape, generator=gen)
        if progress:
            progress((i + 1) / steps)
    return x[0]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m diffusion_model.sample",
                                description="Generate audio from a DDIM checkpoint.")
    p.add_argument("--checkpoint", default="models/ddim/ddim.pt")
    p.add_argument("--genre", required=True)
    p.add_argument("--length", type=float, default=10.0, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output .wav (or .flac/.ogg) file")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (checkpoint default: 25)")
    p.add_argument("--eta", type=float, default=None, help="0 = deterministic DDIM, 1 = DDPM-like")
    p.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale")
    p.add_argument("--solver", choices=SOLVERS, default=None, help="sampler (checkpoint default)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.length <= 0 or args.length > 600:
        p.error("--length must be between 0 and 600 seconds")
    try:
        model = load(args.checkpoint)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: cannot load {args.checkpoint}: {e}", file=sys.stderr)
        return 2
    if args.genre not in model.genres:
        p.error(f"--genre must be one of: {', '.join(model.genres)}")
    import soundfile as sf
    start = time.perf_counter()
    y = model.sample(args.genre, args.length, args.seed, steps=args.steps, eta=args.eta,
                     guidance=args.guidance, solver=args.solver)
    seconds = time.perf_counter() - start
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0.99:
        y = y * (0.99 / peak)
    sf.write(args.out, y, model.sr)
    print(f"wrote {args.out}: {len(y) / model.sr:.2f} s of {args.genre} in {seconds:.1f} s "
          f"({args.length / seconds:.1f}x real time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

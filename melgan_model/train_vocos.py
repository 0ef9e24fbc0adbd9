"""Train a Vocos vocoder (melgan_model/vocos.py) for a MEL-GAN checkpoint, resumable, and install it.

    python -m melgan_model.train_vocos --genres genres --melgan models/melgan/melgan.pt \
        --out runs/vocos --max-minutes 90
    python -m melgan_model.train_vocos --out runs/vocos --install models/melgan/melgan.pt

The vocoder learns the mel settings and normalisation of the given melgan.pt, so it inverts that
generator's mels. Losses: L1 between log-mels and the multi-resolution STFT loss (spectral
convergence + log-magnitude L1), nothing adversarial. Writes out/train_state.pt (networks,
optimiser, RNG, step: run again to continue), out/vocos.pt (the inference weights), out/losses.csv
and out/card.json (the run and its held-out figures). --install replaces the vocoder inside a
melgan.pt with this one (the generator stays) and records the run in the checkpoint's info.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from melodymaker.trainkit import (Clock, LossLog, RunningMeans, atomic_save, checkpoint_header, half_weights,
                                  load_clips, load_resume, random_windows, read_checkpoint, restore, run_info,
                                  split_args, trainer_parser, training_state)

from .model import LogMel, MelConfig, MelNorm, MultiResolutionSTFTLoss, count_params
from .sample import FORMAT as MELGAN_FORMAT
from .sample import FORMAT_VERSION as MELGAN_VERSION
from .sample import compare_inversions, load
from .vocos import KIND, Vocos, VocosConfig

STATE, CHECKPOINT, LOSSES, CARD = "train_state.pt", "vocos.pt", "losses.csv", "card.json"
FORMAT, FORMAT_VERSION = "melodymaker-vocos", 1
COLUMNS = ["step", "wall_min", "mel_l1", "mrstft", "lr"]
RUN_KEYS = ("genres", "melgan", "out", "steps", "max_minutes", "threads", "device", "log_every", "save_every",
            "compare_clips", "lr")


@dataclass
class TrainConfig:
    genres: str = "genres"
    melgan: str = "models/melgan/melgan.pt"   # whose mel settings and normalisation to learn
    out: str = "runs/vocos"
    seed: int = 0
    steps: int = 20000
    max_minutes: float = 0.0
    threads: int = 1
    device: str = "cpu"
    holdout: int = 2
    per_genre: int = 0
    samples: int = 16384          # training window (64 frames)
    batch: int = 8
    lr: float = 5e-4
    lr_final: float = 5e-5        # cosine decay to this by `steps`
    mel_weight: float = 1.0
    stft_weight: float = 1.0
    dim: int = 256
    intermediate: int = 768
    layers: int = 6
    compare_clips: int = 10
    log_every: int = 50
    save_every: int = 250


def parse_args(argv):
    p = trainer_parser("melgan_model.train_vocos", __doc__, TrainConfig, mode="melgan")
    p.add_argument("--install", type=Path, help="write this run's vocoder into this melgan.pt and stop")
    return split_args(p.parse_args(argv), TrainConfig)


def learning_rate(cfg: TrainConfig, step: int) -> float:
    t = min(1.0, step / max(1, cfg.steps))
    return cfg.lr_final + 0.5 * (cfg.lr - cfg.lr_final) * (1 + math.cos(math.pi * t))


def inference_checkpoint(s: dict) -> dict:
    return {**checkpoint_header(FORMAT, FORMAT_VERSION, s["step"]), "version": f"vocos-step{s['step']}",
            "mel": s["mel"], "norm": s["norm"], "vocoder_kind": KIND, "vocoder_args": s["vocoder_args"],
            "vocoder": half_weights(s["vocoder"]), "info": s["info"]}


def main(argv: list[str] | None = None) -> int:
    (cfg, opts) = parse_args(argv)
    out = Path(cfg.out)
    if opts.install:
        return install(out, opts.install)
    torch.set_num_threads(max(1, cfg.threads))
    out.mkdir(parents=True, exist_ok=True)
    resume = load_resume(out / STATE, cfg, RUN_KEYS, fresh=opts.fresh)
    if resume:
        mel, norm = MelConfig(**resume["mel"]), MelNorm.from_state(resume["norm"])
    else:
        source = read_checkpoint(cfg.melgan, MELGAN_FORMAT, MELGAN_VERSION, name="MEL-GAN")
        mel, norm = MelConfig(**source["mel"]), MelNorm.from_state(source["norm"])
    vcfg = VocosConfig(**resume["vocoder_args"]) if resume else VocosConfig(
        n_mels=mel.n_mels, dim=cfg.dim, intermediate=cfg.intermediate, layers=cfg.layers, n_fft=mel.n_fft,
        hop=mel.hop)
    torch.manual_seed(cfg.seed)
    train, held, library = load_clips(cfg.genres, mel.sr, holdout=cfg.holdout, per_genre=cfg.per_genre,
                                      min_samples=cfg.samples)
    clips = [audio for _, audio in train]
    V = Vocos(vcfg)
    opt = torch.optim.AdamW(V.parameters(), cfg.lr, betas=(0.8, 0.9))
    rng = torch.Generator().manual_seed(cfg.seed)
    step, wall = restore(resume, {"vocoder": V, "opt": opt}, rng) if resume else (0, 0.0)
    to_mel, stft = LogMel(mel), MultiResolutionSTFTLoss()
    info = run_info("melgan_model.train_vocos", argv, resume and resume["info"], config=asdict(cfg),
                    library=library, device=cfg.device, threads=cfg.threads, params={"vocoder": count_params(V)})
    log = LossLog(out / LOSSES, COLUMNS, append=bool(resume))
    means = RunningMeans(COLUMNS[2:4], ndigits=4)
    clock = Clock(cfg, step, wall, desc="vocos")
    last: dict = {}

    def checkpoint() -> None:
        state = training_state({"vocoder": V, "opt": opt}, rng, config=asdict(cfg), step=clock.step,
                               wall_seconds=clock.wall, mel=mel.asdict(), norm=norm.state(),
                               vocoder_args=asdict(vcfg),
                               info={**info, "step": clock.step, "wall_seconds": round(clock.wall, 1),
                                     "final_losses": last})
        atomic_save(out / STATE, state)
        atomic_save(out / CHECKPOINT, inference_checkpoint(state))

    while clock.running:
        lr = learning_rate(cfg, clock.step)
        for group in opt.param_groups:
            group["lr"] = lr
        y = random_windows(clips, cfg.batch, cfg.samples, rng)
        with torch.no_grad():
            target = to_mel(y)
        y_hat = V(norm.normalise(target), y.shape[1])
        mel_l1 = F.l1_loss(to_mel(y_hat), target)
        mrstft = stft(y_hat, y)
        opt.zero_grad(set_to_none=True)
        (cfg.mel_weight * mel_l1 + cfg.stft_weight * mrstft).backward()
        torch.nn.utils.clip_grad_norm_(V.parameters(), 10.0)
        opt.step()
        clock.tick()
        means.add({"mel_l1": mel_l1, "mrstft": mrstft})
        if clock.log_due:
            last = means.take()
            log.write({"step": clock.step, "wall_min": round(clock.wall / 60, 2), **last, "lr": f"{lr:.2e}"})
            clock.bar.set_postfix(**last)
        if clock.save_due:
            checkpoint()
        if clock.time_is_up():
            break
    clock.close()
    if means.pending:
        last = means.take()
    checkpoint()
    write_card(out, held, cfg)
    return 0


def held_out_figures(model, held: list, clips: int) -> dict:
    """compare_inversions on the middle 10 s of up to `clips` held-out clips, one per genre first."""
    import numpy as np
    n = min([int(10.0 * model.mel.sr)] + [len(y) for _, y in held])
    picked = [y[len(y) // 2 - n // 2: len(y) // 2 - n // 2 + n] for _, y in held]
    picked = picked[:: max(1, len(picked) // max(1, clips))][:clips]
    return compare_inversions(model, [np.asarray(y) for y in picked])


def write_card(out: Path, held: list, cfg: TrainConfig) -> dict:
    """card.json: the run, and the held-out inversion figures of the generator's checkpoint with
    this vocoder in it (written to a temporary melgan.pt beside the run)."""
    trial = out / "melgan-with-vocos.pt"
    merge(out / CHECKPOINT, Path(cfg.melgan), trial)
    model = load(trial)
    ck = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    card = {"model": "MelodyMaker MEL-GAN vocoder (Vocos)", "checkpoint": CHECKPOINT,
            "command": ck["info"].get("command"), "resumed_with": ck["info"].get("resumed_with", []),
            "library": ck["info"].get("library"), "steps": ck["step"],
            "wall_minutes": round(ck["info"].get("wall_seconds", 0) / 60, 1), "device": ck["info"].get("device"),
            "threads": ck["info"].get("threads"), "params": ck["info"].get("params"),
            "config": ck["info"].get("config"), "final_losses": ck["info"].get("final_losses"),
            "inversion_on_held_out_real_mels": held_out_figures(model, held, cfg.compare_clips)}
    (out / CARD).write_text(json.dumps(card, indent=1))
    return card


def merge(vocos_path: Path, melgan_path: Path, dest: Path) -> None:
    """dest = the melgan.pt at melgan_path with its vocoder replaced by the Vocos at vocos_path."""
    vocos = read_checkpoint(vocos_path, FORMAT, FORMAT_VERSION, name="Vocos")
    melgan = read_checkpoint(melgan_path, MELGAN_FORMAT, MELGAN_VERSION, name="MEL-GAN")
    if MelConfig(**vocos["mel"]) != MelConfig(**melgan["mel"]):
        raise SystemExit(f"{vocos_path} learned other mel settings than {melgan_path} makes")
    if not all(torch.equal(vocos["norm"][k], melgan["norm"][k]) for k in ("lo", "hi")):
        raise SystemExit(f"{vocos_path} learned another mel normalisation than {melgan_path}'s")
    info = dict(melgan.get("info", {}))
    info["vocoder"] = {k: vocos["info"].get(k) for k in ("command", "resumed_with", "library", "step",
                                                         "wall_seconds", "device", "threads", "params",
                                                         "final_losses")}
    merged = {**melgan, "generator": half_weights(melgan["generator"]), "vocoder_kind": KIND, "vocoder_args": vocos["vocoder_args"], "vocoder": vocos["vocoder"],
              "version": f"{melgan.get('version', 'step?')}+{vocos['version']}", "info": info}
    atomic_save(dest, merged)


def install(out: Path, melgan_path: Path) -> int:
    merge(out / CHECKPOINT, melgan_path, melgan_path)
    load(melgan_path)  # it loads, or this says why
    print(f"{melgan_path}: vocoder replaced by {out / CHECKPOINT} ({melgan_path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

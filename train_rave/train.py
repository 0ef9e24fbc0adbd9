"""Train RAVE from a genres/ folder: a long multi-scale spectral phase (encoder + decoder + KL, the
spectral distance weighted toward the low bands, with --chroma-weight a chroma term), then, once
it has converged, an adversarial phase (encoder frozen, decoder against multi-scale waveform and,
with --d-stft, STFT discriminators with feature matching, the discriminator at a lower learning
rate), resumable from the last checkpoint; --keep-every keeps snapshots to choose from.

    python -m train_rave.train --genres genres --out runs/rave --max-minutes 60

Writes out/train_state.pt (everything to resume: networks, EMA, optimisers, RNG, step),
out/rave.pt (the self-describing checkpoint: EMA weights, architecture, audio, genres, step: the
one file models/rave ships), out/losses.csv, and out/card.json + README.md with the resynthesis
ceiling on held-out clips. --export also writes out/rave.ts (the TorchScript export with the
official interface) and --bank out/rave.latents.pt (every library clip encoded); the app derives
both on first use. Run it again to continue where it stopped.
"""
from __future__ import annotations

import copy
import inspect
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from melodymaker import distributed
from melodymaker.trainkit import (Clock, LossLog, RunningMeans, adopt_config, atomic_save, checkpoint_header,
                                  ema_update, feature_matching, float_weights, half_weights, ints, load_clips,
                                  load_resume, random_windows, restore, run_info, set_lr, split_args,
                                  trainer_parser, training_device, training_state)

from .card import BANK, CHECKPOINT, EXPORT, LOSSES, write_card
from .losses import LowBandSpectralLoss, MultiScaleDiscriminator, MultiScaleSpectralLoss
from .model import (
    FORMAT,
    FORMAT_VERSION,
    RAVE,
    RaveConfig,
    adapt_weights,
    config_dict,
    count_params,
    export,
    metadata_json,
    model_from_checkpoint,
    rave_config,
    read,
    reparametrize,
)

STATE = "train_state.pt"
COLUMNS = ["step", "wall_min", "phase", "spectral", "kl", "beta", "g_adv", "g_fm", "d_hinge"]
RUN_KEYS = ("genres", "out", "steps", "max_minutes", "threads", "device", "log_every", "save_every",
            "adv_start", "adv_plateau", "plateau_steps", "lr", "lr_adv", "lr_d", "bank_per_genre", "batch", "holdout",
            "keep_every")
"""What a resumed run may change (the schedule); the rest comes from the checkpoint's config."""


@dataclass
class TrainConfig:
    genres: str = "genres"
    out: str = "models/rave"
    seed: int = 0
    steps: int = 4000
    adv_start: int = 3000         # the adversarial phase (encoder frozen) begins at this step at the earliest
    adv_plateau: float = 0.01     # and once the spectral loss improves by less than this fraction (0: at adv_start)
    plateau_steps: int = 2000     # over this many steps (the mean of their second half against their first's)
    max_minutes: float = 0.0      # stop (and save) after this much wall time in this run; 0 = no limit
    threads: int = 1
    device: str = "cpu"
    holdout: int = 10             # held-out clips per genre measured for the card (the split is the library's)
    per_genre: int = 0            # use at most this many clips per genre; 0 = all
    window: int = 16384           # training window in samples (a multiple of the ratio)
    batch: int = 8
    lr: float = 1e-3
    lr_adv: float = 1e-4          # the decoder's learning rate in the adversarial phase
    lr_d: float = 5e-5            # the discriminator's: lower than the decoder's, so it cannot run away
    beta: float = 0.01            # KL weight after warm-up
    beta_warmup: int = 500
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    ema: float = 0.999
    loss: str = "lowband"         # lowband: the spectral distance weighted toward low frequencies; plain: RAVE's
    mel_weight: float = 1.0       # lowband: weight of the log-mel terms
    chroma_weight: float = 0.0    # lowband: weight of the chroma terms (the pitch classes' balance per frame)
    # architecture
    n_bands: int = 16
    channels: str = "96,192,288,384"
    strides: str = "4,4,2"
    latent_size: int = 32
    noise_bands: int = 5          # the decoder's filtered-noise branch: magnitudes per PQMF band; 0 = none
    d_width: int = 32
    d_scales: int = 3
    d_stft: str = ""              # FFT sizes of STFT discriminators beside the waveform ones, e.g. 2048,1024,512
    # bookkeeping
    bank_per_genre: int = 0       # clips per genre encoded into the latent bank; 0 = all
    log_every: int = 25
    save_every: int = 250
    keep_every: int = 0           # also keep out/rave-step<N>.pt at each save whose step is a multiple of this


def parse_args(argv: list[str] | None) -> tuple:
    p = trainer_parser("train_rave.train", __doc__, TrainConfig, mode="rave")
    p.add_argument("--init-from", type=Path, help="start from the weights and step of this rave.pt (a fresh "
                   "optimizer and discriminator), e.g. one trained on another machine; the architecture is this "
                   "command's: weights load where shapes allow (a wider latent keeps the old dimensions first)")
    p.add_argument("--baseline", type=Path,
                   help="a rave.pt or .ts whose resynthesis ceiling the card shows beside this one")
    p.add_argument("--models", type=Path, default=Path("models"), help="where the genre judges are (the ceiling)")
    p.add_argument("--no-judges", action="store_true", help="the ceiling by spectral distance only (fast: "
                   "a GPU run's card; `python -m train_rave.ceiling` adds the judges later)")
    p.add_argument("--export", action="store_true", help="also write out/rave.ts (the app derives it on first use)")
    p.add_argument("--bank", action="store_true", help="also write out/rave.latents.pt (the app encodes it on first use)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--speed-json", type=Path, help="with --card-only: decode speed figures to record")
    p.add_argument("--fit-json", type=Path, help="with --card-only: `sample.py --fit-check` figures to record")
    p.add_argument("--what-helped-json", type=Path, help="with --card-only: the table of what each change did to "
                   "the ceiling ({\"what\": ..., \"rows\": [{column: value}]}, see trainkit.markdown_rows) to record")
    return split_args(p.parse_args(argv), TrainConfig)


# -- data --------------------------------------------------------------------------------------
def load_library(cfg: TrainConfig, sr: int):
    """Audio of every readable clip at least one window long, split as trainkit.load_clips splits
    the library: (train audio, held-out (genre, audio), library facts)."""
    from melodymaker.options import GENRES
    split = {"holdout": cfg.holdout} if "holdout" in inspect.signature(load_clips).parameters else {}
    train, held, facts = load_clips(cfg.genres, sr, per_genre=cfg.per_genre, min_samples=cfg.window, **split)
    return [y for _, y in train], [(GENRES[g], y) for g, y in held], facts


# -- checkpoints --------------------------------------------------------------------------------
def inference_checkpoint(s: dict) -> dict:
    """What sampling and export need (EMA weights in float16: half the size); a few MB."""
    return {**checkpoint_header(FORMAT, FORMAT_VERSION, s["step"]), "version": f"step{s['step']}",
            "model_args": s["model_args"], "audio": s["audio"], "genres": s["genres"],
            "model": half_weights(s["model_ema"]), "info": s["info"]}


def save(out: Path, state: dict, keep_every: int = 0) -> None:
    """train_state.pt and rave.pt, each written whole or not at all; with keep_every, a step that is
    a multiple of it also stays as rave-step<N>.pt (snapshots to choose from after a run)."""
    atomic_save(out / STATE, state)
    ckpt = inference_checkpoint(state)
    atomic_save(out / CHECKPOINT, ckpt)
    if keep_every and state["step"] and state["step"] % keep_every == 0:
        atomic_save(out / f"rave-step{state['step']}.pt", ckpt)


def converged(history: list[tuple[int, float]], step: int, cfg: TrainConfig) -> bool:
    """The adversarial phase may begin: at or past adv_start, and (with adv_plateau) the logged
    spectral loss's mean over the last plateau_steps / 2 improved on the half before by less than
    adv_plateau (relative). A run resumed or started from weights judges from its own log lines."""
    if step < cfg.adv_start:
        return False
    if cfg.adv_plateau <= 0:
        return True
    half = cfg.plateau_steps / 2
    older = [v for s, v in history if step - 2 * half < s <= step - half]
    recent = [v for s, v in history if s > step - half]
    if not older or not recent or history[0][0] > step - 2 * half + cfg.log_every:
        return False
    before, now = float(np.mean(older)), float(np.mean(recent))
    return (before - now) < cfg.adv_plateau * abs(before)


# -- one update ---------------------------------------------------------------------------------
def train_step(model: RAVE, disc: MultiScaleDiscriminator, opt, opt_d, spectral, x: torch.Tensor,
               cfg: TrainConfig, step: int, adversarial: bool, rank=distributed.Rank()) -> dict:
    """Spectral phase: encoder and decoder on the multi-scale spectral distance + beta * KL.
    Adversarial phase (RAVE's second): the encoder is frozen, the discriminators take a hinge
    step, then the decoder learns to fool them (+ feature matching). The losses, for the log."""
    beta = cfg.beta * min(1.0, (step + 1) / max(1, cfg.beta_warmup))
    if adversarial:
        with torch.no_grad():
            z, kl = reparametrize(*model.encode(x))
    else:
        z, kl = reparametrize(*model.encode(x))
    y = model.decode(z)
    dist = spectral(y, x)
    g_adv = g_fm = d_hinge = torch.zeros(())
    if adversarial:
        fake, real = disc(y.detach()), disc(x)
        d_hinge = sum(F.relu(1 - r[-1]).mean() + F.relu(1 + f[-1]).mean() for r, f in zip(real, fake))
        opt_d.zero_grad(set_to_none=True)
        d_hinge.backward()
        distributed.average_gradients(disc, rank)  # RAVE trains through encode/decode, not forward
        opt_d.step()
        fake = disc(y)
        g_adv = sum(-f[-1].mean() for f in fake)
        g_fm = feature_matching(real, fake)
        loss = dist + cfg.adv_weight * g_adv + cfg.fm_weight * g_fm
    else:
        loss = dist + beta * kl
    opt.zero_grad(set_to_none=True)
    loss.backward()
    distributed.average_gradients(model, rank)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    opt.step()
    return {"spectral": dist, "kl": kl, "beta": beta, "g_adv": g_adv, "g_fm": g_fm, "d_hinge": d_hinge}


# -- the recipe ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    cfg, opts = parse_args(argv)
    torch.set_num_threads(max(1, cfg.threads))
    rank = distributed.setup(cfg.device)  # one process, or this rank of torchrun's
    device = rank.device
    if device.type == "cuda":  # fixed shapes: let cuDNN pick its fastest kernels once
        torch.backends.cudnn.benchmark = True
    from melodymaker.options import GENRES, SAMPLE_RATE
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if opts.card_only:
        return card_only(out, cfg, opts) if rank.main else 0
    resume = load_resume(out / STATE, cfg, RUN_KEYS, fresh=opts.fresh)
    init = None if resume or not opts.init_from else read(opts.init_from)
    mcfg = rave_config(resume["model_args"]) if resume else RaveConfig(
        sr=SAMPLE_RATE, n_bands=cfg.n_bands, channels=ints(cfg.channels), strides=ints(cfg.strides),
        latent_size=cfg.latent_size, noise_bands=cfg.noise_bands)
    if cfg.window % mcfg.ratio:
        raise SystemExit(f"--window {cfg.window} must be a multiple of the ratio {mcfg.ratio}")
    if cfg.loss not in ("lowband", "plain"):
        raise SystemExit(f"--loss must be lowband or plain, got {cfg.loss!r}")

    torch.manual_seed(cfg.seed)
    train, held, library = load_library(cfg, mcfg.sr)
    train = distributed.shard(train, rank)  # each rank its own clips
    model = RAVE(mcfg).to(device)
    model_ema = copy.deepcopy(model).eval().requires_grad_(False)
    disc = MultiScaleDiscriminator(cfg.d_scales, cfg.d_width, ints(cfg.d_stft) if cfg.d_stft else ()).to(device)
    opt = torch.optim.Adam(model.parameters(), cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), cfg.lr_d, betas=(0.5, 0.9))
    parts = {"model": model, "model_ema": model_ema, "discriminator": disc, "opt": opt, "opt_d": opt_d}
    rng = distributed.rank_generator(cfg.seed, rank)
    step, wall, adv_began, started_from = 0, 0.0, None, None
    if resume:
        step, wall = restore(resume, parts, rng)
        if not rank.main:
            rng = distributed.rank_generator(cfg.seed, rank, step)
        adv_began = resume.get("adv_began")
        set_lr(opt_d, cfg.lr_d)  # the schedule may change on resume
    elif init:
        loaded = adapt_weights(model, float_weights(init["model"]), rave_config(init["model_args"]))
        model_ema.load_state_dict(model.state_dict())
        step, wall = init["step"], init["info"]["wall_seconds"]
        started_from = {"checkpoint": str(opts.init_from), "step": step, "version": init["version"],
                        **{k: len(v) for k, v in loaded.items()},
                        "widened_or_new": sorted({n.split(".parametrizations")[0].removesuffix(".bias")
                                                  for n in loaded["widened"] + loaded["new"]})}
        print(f"starting from {opts.init_from} at step {step}: {len(loaded['copied'])} tensors copied, "
              f"{len(loaded['widened'])} widened, {len(loaded['new'])} new", file=sys.stderr)
    if adv_began is None and converged([], step, cfg):
        adv_began = step  # no plateau to wait for (--adv-plateau 0) and already past --adv-start
    for m in (model, model_ema, disc):  # every rank starts from rank 0's weights
        distributed.broadcast_weights(m, rank)
    info = run_info("train_rave.train", argv, (resume or init or {}).get("info"), config=asdict(cfg),
                    library=library, device=str(device), threads=cfg.threads,
                    params={"encoder": count_params(model.encoder), "decoder": count_params(model.decoder),
                            "discriminator": count_params(disc)})
    if started_from or (resume and resume["info"].get("started_from")):
        info["started_from"] = started_from or resume["info"]["started_from"]
    audio = {"sr": mcfg.sr, "n_bands": mcfg.n_bands, "ratio": mcfg.ratio, "latent_size": mcfg.latent_size}
    last: dict = resume["info"].get("final_losses", {}) if resume else {}

    def checkpoint() -> None:
        if not rank.main:
            return
        save(out, training_state(
            parts, rng, config=asdict(cfg), step=clock.step, wall_seconds=clock.wall, adv_began=adv_began,
            model_args=config_dict(mcfg), audio=audio, genres=list(GENRES),
            info={**info, "step": clock.step, "wall_seconds": round(clock.wall, 1), "final_losses": last,
                  "adv_began": adv_began}), cfg.keep_every)

    spectral = (LowBandSpectralLoss(mcfg.sr, mel_weight=cfg.mel_weight, chroma_weight=cfg.chroma_weight)
                if cfg.loss == "lowband" else MultiScaleSpectralLoss()).to(device)
    log = (LossLog(out / LOSSES, COLUMNS, append=bool(resume or init), tensorboard=out / "tb", scalars=COLUMNS[3:])
           if rank.main else distributed.NoLog())
    means, history = RunningMeans(COLUMNS[3:], ndigits=5), []
    clock = Clock(cfg, step, wall, desc="rave", progress=not opts.no_progress and rank.main)
    said = (time.perf_counter(), clock.step)   # without a progress bar: a line every 30 s
    while clock.running:
        adversarial = adv_began is not None and clock.step >= adv_began
        set_lr(opt, cfg.lr_adv if adversarial else cfg.lr)
        x = random_windows(train, cfg.batch, cfg.window, rng)[:, None].to(device, non_blocking=True)
        means.add(train_step(model, disc, opt, opt_d, spectral, x, cfg, clock.step, adversarial, rank))
        ema_update(model_ema, model, clock.step, cfg.ema)
        clock.tick()
        if clock.log_due:
            last = {k: round(v, 5) for k, v in rank.mean(means.take()).items()}  # the same on every rank
            log.write({"step": clock.step, "wall_min": round(clock.wall / 60, 2),
                       "phase": "adversarial" if adversarial else "spectral", **last})
            clock.bar.set_postfix(spec=last["spectral"], kl=last["kl"], adv=last["g_adv"])
            history.append((clock.step, last["spectral"]))
            if opts.no_progress and rank.main and time.perf_counter() - said[0] > 30:
                rate = (clock.step - said[1]) / (time.perf_counter() - said[0])
                print(f"step {clock.step} ({clock.wall / 60:.1f} min, {rate:.1f} steps/s): spectral "
                      f"{last['spectral']}, kl {last['kl']}", file=sys.stderr)
                said = (time.perf_counter(), clock.step)
            if adv_began is None and converged(history, clock.step, cfg):
                adv_began = clock.step
                print(f"\nstep {clock.step}: the spectral phase has converged; the adversarial phase begins",
                      file=sys.stderr)
        if clock.save_due:
            checkpoint()
        if rank.any(clock.time_is_up()):
            break
    clock.close()
    checkpoint()
    if rank.main:
        finish(out, cfg, opts, held=held)
    distributed.finish(rank, model, model_ema, disc)  # every rank holds the same weights, or it says so
    return 0


def finish(out: Path, cfg: TrainConfig, opts, *, held: list | None) -> None:
    """What a run leaves beside rave.pt: the optional export and bank, and the card."""
    if opts.export:
        ckpt = read(out / CHECKPOINT)
        atomic_save(out / EXPORT, export(model_from_checkpoint(ckpt), metadata_json(ckpt)))
    if opts.bank:
        write_bank(out, cfg)
    card = write_card(out, cfg, held=held, baseline=opts.baseline, models=None if opts.no_judges else opts.models,
                      device=training_device(cfg.device),
                      evaluate_json=getattr(opts, "evaluate_json", None), speed_json=opts.speed_json,
                      fit_json=opts.fit_json, what_helped_json=opts.what_helped_json)
    if card.get("resynthesis_ceiling"):
        from .ceiling import render
        print("resynthesis ceiling (held-out clips, encode -> decode):\n" + render(card["resynthesis_ceiling"]),
              file=sys.stderr)


def card_only(out: Path, cfg: TrainConfig, opts) -> int:
    """--card-only: the card of the saved checkpoint (and, with --export / --bank, the export and
    latent bank), e.g. of a checkpoint trained elsewhere (a GPU machine), made by this machine."""
    if not (out / CHECKPOINT).exists():
        raise SystemExit(f"--card-only needs a trained {out / CHECKPOINT}")
    ckpt = read(out / CHECKPOINT)
    resume = load_resume(out / STATE, cfg, RUN_KEYS)
    if resume is None:  # a checkpoint trained elsewhere comes without its state
        adopt_config(cfg, ckpt["info"]["config"], RUN_KEYS)
    held = load_library(cfg, rave_config(ckpt["model_args"]).sr)[1] if Path(cfg.genres).is_dir() else None
    finish(out, cfg, opts, held=held)
    return 0


def write_bank(out: Path, cfg: TrainConfig) -> None:
    """Encode every library clip with rave.pt's export: the genre material for generation (the bank
    names rave.pt's digest, so it fits the export the app derives from it)."""
    from .latents import build_bank, save_bank
    from .sample import export_of
    t = time.perf_counter()
    model = export_of(out / CHECKPOINT)
    save_bank(build_bank(model, cfg.genres, max_per_genre=cfg.bank_per_genre), out / BANK)
    print(f"latent bank: {out / BANK} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())

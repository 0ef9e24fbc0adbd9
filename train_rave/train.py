"""Train RAVE from a genres/ folder: a multi-scale spectral phase (encoder + decoder + KL), then an
adversarial phase (encoder frozen, decoder against multi-scale discriminators with feature
matching), resumable from the last checkpoint.

    python -m train_rave.train --genres genres --out models/rave --max-minutes 60

Writes out/train_state.pt (everything to resume: networks, EMA, optimisers, RNG, step),
out/rave.pt (the self-describing checkpoint: EMA weights, architecture, audio, genres, step),
out/rave.ts (the TorchScript export with the official interface), out/rave.latents.pt (every
library clip encoded: the genre material the engine draws from), out/losses.csv and out/card.json.
Run it again to continue where it stopped.
"""
from __future__ import annotations

import copy
import csv
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from melodymaker.trainkit import (Clock, LossLog, RunningMeans, adopt_config, atomic_save, carry_figures,
                                  checkpoint_header, ema_update, evaluate_section, feature_matching,
                                  float_weights, half_weights, ints, load_clips, load_resume,
                                  markdown_benchmark, markdown_losses, markdown_notes, markdown_training,
                                  read_card, read_checkpoint, read_json, restore, run_info, save_card, set_lr,
                                  split_args, trainer_parser, training_device, training_state)

from .model import (
    FORMAT,
    FORMAT_VERSION,
    RAVE,
    MultiScaleDiscriminator,
    MultiScaleSpectralLoss,
    RaveConfig,
    config_dict,
    count_params,
    export,
    from_dict,
    metadata_json,
    model_from_checkpoint,
    reparametrize,
)

STATE, CHECKPOINT, EXPORT, BANK = "train_state.pt", "rave.pt", "rave.ts", "rave.latents.pt"
LOSSES, CARD = "losses.csv", "card.json"
COLUMNS = ["step", "wall_min", "phase", "spectral", "kl", "beta", "g_adv", "g_fm", "d_hinge"]
RUN_KEYS = ("genres", "out", "steps", "max_minutes", "threads", "device", "log_every", "save_every",
            "adv_start", "lr", "lr_adv", "lr_d", "bank_per_genre")
"""What a resumed run may change (the schedule); the rest comes from the checkpoint's config."""


@dataclass
class TrainConfig:
    genres: str = "genres"
    out: str = "models/rave"
    seed: int = 0
    steps: int = 4000
    adv_start: int = 3000         # step at which the adversarial phase begins (encoder frozen)
    max_minutes: float = 0.0      # stop (and save) after this much wall time in this run; 0 = no limit
    threads: int = 1
    device: str = "cpu"
    holdout: int = 1              # clips per genre kept out of training (reconstruction figures)
    per_genre: int = 0            # use at most this many clips per genre; 0 = all
    window: int = 16384           # training window in samples (a multiple of the ratio)
    batch: int = 8
    lr: float = 1e-3
    lr_adv: float = 1e-4          # the decoder's learning rate in the adversarial phase
    lr_d: float = 1e-4
    beta: float = 0.01            # KL weight after warm-up
    beta_warmup: int = 500
    adv_weight: float = 1.0
    fm_weight: float = 2.0
    ema: float = 0.999
    # architecture
    n_bands: int = 16
    channels: str = "64,128,192,256"
    strides: str = "4,4,2"
    latent_size: int = 16
    d_width: int = 16
    d_scales: int = 2
    # bookkeeping
    bank_per_genre: int = 0       # clips per genre encoded into the latent bank; 0 = all
    log_every: int = 25
    save_every: int = 250


def parse_args(argv: list[str] | None) -> tuple:
    p = trainer_parser("train_rave.train", __doc__, TrainConfig, mode="rave")
    p.add_argument("--init-from", type=Path, help="start from the weights of this rave.pt (its architecture "
                   "and step; a fresh optimizer and discriminator), e.g. one trained on another machine")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--speed-json", type=Path, help="with --card-only: decode speed figures to record")
    p.add_argument("--fit-json", type=Path, help="with --card-only: `sample.py --fit-check` figures to record")
    return split_args(p.parse_args(argv), TrainConfig)


# -- data --------------------------------------------------------------------------------------
def load_library(cfg: TrainConfig, sr: int):
    """Audio of every readable clip at least one window long, per genre split into train and
    held-out: (train audio, held-out audio, library facts)."""
    train, held, facts = load_clips(cfg.genres, sr, holdout=cfg.holdout, per_genre=cfg.per_genre,
                                    min_samples=cfg.window)
    return [y for _, y in train], [y for _, y in held], facts


def windows(clips: list[np.ndarray], n: int, size: int, rng: torch.Generator) -> torch.Tensor:
    """n random windows (n, 1, size) from random clips, each with a random gain in [0.5, 1]."""
    out = []
    for _ in range(n):
        y = clips[int(torch.randint(len(clips), (1,), generator=rng))]
        start = int(torch.randint(len(y) - size + 1, (1,), generator=rng))
        gain = 0.5 + 0.5 * float(torch.rand((), generator=rng))
        out.append(torch.from_numpy(y[start: start + size]) * gain)
    return torch.stack(out)[:, None]


# -- checkpoints --------------------------------------------------------------------------------
def inference_checkpoint(s: dict) -> dict:
    """What sampling and export need (EMA weights in float16: half the size); a few MB."""
    return {**checkpoint_header(FORMAT, FORMAT_VERSION, s["step"]), "version": f"step{s['step']}",
            "model_args": s["model_args"], "audio": s["audio"], "genres": s["genres"],
            "model": half_weights(s["model_ema"]), "info": s["info"]}


def save(out: Path, state: dict) -> None:
    """train_state.pt, rave.pt and rave.ts, each written whole or not at all."""
    atomic_save(out / STATE, state)
    ckpt = inference_checkpoint(state)
    atomic_save(out / CHECKPOINT, ckpt)
    atomic_save(out / EXPORT, export(model_from_checkpoint(ckpt), metadata_json(ckpt)))


# -- one update ---------------------------------------------------------------------------------
def train_step(model: RAVE, disc: MultiScaleDiscriminator, opt, opt_d, spectral, x: torch.Tensor,
               cfg: TrainConfig, step: int, adversarial: bool) -> dict:
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
        opt_d.step()
        fake = disc(y)
        g_adv = sum(-f[-1].mean() for f in fake)
        g_fm = feature_matching(real, fake)
        loss = dist + cfg.adv_weight * g_adv + cfg.fm_weight * g_fm
    else:
        loss = dist + beta * kl
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    opt.step()
    return {"spectral": dist, "kl": kl, "beta": beta, "g_adv": g_adv, "g_fm": g_fm, "d_hinge": d_hinge}


# -- the recipe ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    cfg, opts = parse_args(argv)
    torch.set_num_threads(max(1, cfg.threads))
    device = training_device(cfg.device)
    from melodymaker.options import GENRES, SAMPLE_RATE
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    resume = load_resume(out / STATE, cfg, RUN_KEYS, fresh=opts.fresh)
    init = None if resume or not opts.init_from else read_checkpoint(
        opts.init_from, FORMAT, FORMAT_VERSION, name="RAVE")
    mcfg = from_dict(RaveConfig, (resume or init)["model_args"]) if resume or init else RaveConfig(
        sr=SAMPLE_RATE, n_bands=cfg.n_bands, channels=ints(cfg.channels), strides=ints(cfg.strides),
        latent_size=cfg.latent_size)
    if cfg.window % mcfg.ratio:
        raise SystemExit(f"--window {cfg.window} must be a multiple of the ratio {mcfg.ratio}")
    if opts.card_only:
        return card_only(out, cfg, mcfg, resume, opts)

    torch.manual_seed(cfg.seed)
    train, held, library = load_library(cfg, mcfg.sr)
    model = RAVE(mcfg).to(device)
    model_ema = copy.deepcopy(model).eval().requires_grad_(False)
    disc = MultiScaleDiscriminator(cfg.d_scales, cfg.d_width).to(device)
    opt = torch.optim.Adam(model.parameters(), cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), cfg.lr_d, betas=(0.5, 0.9))
    parts = {"model": model, "model_ema": model_ema, "discriminator": disc, "opt": opt, "opt_d": opt_d}
    rng = torch.Generator().manual_seed(cfg.seed)
    step, wall = 0, 0.0
    if resume:
        step, wall = restore(resume, parts, rng)
        set_lr(opt_d, cfg.lr_d)  # the schedule may change on resume
    elif init:
        weights = float_weights(init["model"])
        model.load_state_dict(weights)
        model_ema.load_state_dict(weights)
        step, wall = init["step"], init["info"]["wall_seconds"]
        print(f"starting from {opts.init_from} at step {step}", file=sys.stderr)
    info = run_info("train_rave.train", argv, (resume or init or {}).get("info"), config=asdict(cfg),
                    library=library, device=str(device), threads=cfg.threads,
                    params={"encoder": count_params(model.encoder), "decoder": count_params(model.decoder),
                            "discriminator": count_params(disc)})
    audio = {"sr": mcfg.sr, "n_bands": mcfg.n_bands, "ratio": mcfg.ratio, "latent_size": mcfg.latent_size}
    last: dict = resume["info"].get("final_losses", {}) if resume else {}

    def checkpoint() -> None:
        save(out, training_state(
            parts, rng, config=asdict(cfg), step=clock.step, wall_seconds=clock.wall,
            model_args=config_dict(mcfg), audio=audio, genres=list(GENRES),
            info={**info, "step": clock.step, "wall_seconds": round(clock.wall, 1), "final_losses": last}))

    spectral = MultiScaleSpectralLoss().to(device)
    log = LossLog(out / LOSSES, COLUMNS, append=bool(resume or init), tensorboard=out / "tb", scalars=COLUMNS[3:])
    means = RunningMeans(COLUMNS[3:], ndigits=5)
    clock = Clock(cfg, step, wall, desc="rave", progress=not opts.no_progress)
    while clock.running:
        adversarial = clock.step >= cfg.adv_start
        set_lr(opt, cfg.lr_adv if adversarial else cfg.lr)
        x = windows(train, cfg.batch, cfg.window, rng).to(device)
        means.add(train_step(model, disc, opt, opt_d, spectral, x, cfg, clock.step, adversarial))
        ema_update(model_ema, model, clock.step, cfg.ema)
        clock.tick()
        if clock.log_due:
            last = means.take()
            log.write({"step": clock.step, "wall_min": round(clock.wall / 60, 2),
                       "phase": "adversarial" if adversarial else "spectral", **last})
            clock.bar.set_postfix(spec=last["spectral"], kl=last["kl"], adv=last["g_adv"])
        if clock.save_due:
            checkpoint()
        if clock.time_is_up():
            break
    clock.close()
    checkpoint()
    write_bank(out, cfg)
    write_card(out, cfg, held=held)
    return 0


def card_only(out: Path, cfg: TrainConfig, mcfg: RaveConfig, resume: dict | None, opts) -> int:
    """--card-only: the card of the saved checkpoint; the export and latent bank too when a run
    stopped before writing them, or the checkpoint was trained elsewhere (a GPU machine)."""
    if not (out / CHECKPOINT).exists():
        raise SystemExit(f"--card-only needs a trained {out / CHECKPOINT}")
    ckpt = read_checkpoint(out / CHECKPOINT, FORMAT, FORMAT_VERSION, name="RAVE")
    if resume is None:  # a checkpoint trained elsewhere comes without its state
        adopt_config(cfg, ckpt["info"]["config"], RUN_KEYS)
    if not (out / EXPORT).exists():  # export here, by this machine's torch
        atomic_save(out / EXPORT, export(model_from_checkpoint(ckpt), metadata_json(ckpt)))
    if not (out / BANK).exists():
        write_bank(out, cfg)
    held = load_library(cfg, mcfg.sr)[1] if Path(cfg.genres).is_dir() else None
    write_card(out, cfg, held=held, evaluate_json=opts.evaluate_json, speed_json=opts.speed_json,
               fit_json=opts.fit_json)
    return 0


def write_bank(out: Path, cfg: TrainConfig) -> None:
    """Encode every library clip with the export: the genre material for generation."""
    from .latents import RaveExport, build_bank, save_bank
    t = time.perf_counter()
    model = RaveExport.from_file(out / EXPORT)
    save_bank(build_bank(model, cfg.genres, max_per_genre=cfg.bank_per_genre), out / BANK)
    print(f"latent bank: {out / BANK} ({time.perf_counter() - t:.0f} s)", file=sys.stderr)


def reconstruction(model_path: Path, clips: list[np.ndarray]) -> dict | None:
    """Held-out clips through the export's encode then decode: spectral distance and speed."""
    from .latents import RaveExport
    if not clips:
        return None
    model = RaveExport.from_file(model_path)
    loss, dists, t_enc, t_dec, seconds = MultiScaleSpectralLoss(), [], 0.0, 0.0, 0.0
    for y in clips:
        y = y[: 10 * model.sr]
        t = time.perf_counter()
        z = model.encode(y)
        t_enc += time.perf_counter() - t
        t = time.perf_counter()
        y_hat = model.decode(z)[: len(y)]
        t_dec += time.perf_counter() - t
        seconds += len(y) / model.sr
        dists.append(float(loss(torch.from_numpy(y_hat)[None], torch.from_numpy(y)[None])))
    return {"clips": len(clips), "seconds_each": round(seconds / len(clips), 2),
            "spectral_distance": round(float(np.mean(dists)), 4),
            "encode_realtime_factor": round(seconds / max(t_enc, 1e-9), 1),
            "decode_realtime_factor": round(seconds / max(t_dec, 1e-9), 1), "threads": torch.get_num_threads()}


def phases_from_log(path: Path) -> list[dict]:
    """The training phases as logged: [{"phase", "from_step", "to_step"}], in order."""
    if not path.exists():
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    phases, prev = [], 0
    for r in rows:
        step = int(r["step"])
        if phases and phases[-1]["phase"] == r["phase"]:
            phases[-1]["to_step"] = step
        else:
            phases.append({"phase": r["phase"], "from_step": prev, "to_step": step})
        prev = step
    return phases


def write_card(out: Path, cfg: TrainConfig, *, held: list | None = None, evaluate_json: Path | None = None,
               speed_json: Path | None = None, fit_json: Path | None = None) -> dict:
    """card.json and README.md beside the checkpoint: what was trained, how, and its figures."""
    ckpt = read_checkpoint(out / CHECKPOINT, FORMAT, FORMAT_VERSION, name="RAVE")
    info, old = ckpt["info"], read_card(out)
    phases = phases_from_log(out / LOSSES)
    if phases:  # a run stopped by --max-minutes logs its last steps only in the checkpoint
        phases[-1]["to_step"] = max(phases[-1]["to_step"], ckpt["step"])
    card = {"model": "MelodyMaker RAVE", "checkpoint": CHECKPOINT, "export": EXPORT, "latent_bank": BANK,
            "format": FORMAT, "format_version": FORMAT_VERSION, "version": ckpt["version"],
            "bytes": {name: (out / name).stat().st_size for name in (CHECKPOINT, EXPORT, BANK) if (out / name).exists()},
            "command": info.get("command"), "resumed_with": info.get("resumed_with", []),
            "library": info.get("library"), "steps": ckpt["step"],
            "phases": phases,
            "wall_minutes": round(info.get("wall_seconds", 0) / 60, 1), "device": info.get("device"),
            "threads": info.get("threads"), "params": info.get("params"), "model_args": ckpt["model_args"],
            "audio": ckpt["audio"], "config": info.get("config"), "final_losses": info.get("final_losses")}
    carry_figures(card, old, {
        "reconstruction_on_held_out_clips": reconstruction(out / EXPORT, held) if held else None,
        "evaluate": evaluate_section(evaluate_json, "rave") if evaluate_json else None,
        "decode_speed": read_json(speed_json), "genre_fit_library_vs_random_latents": read_json(fit_json),
        "notes": None})
    card.setdefault("reconstruction_on_held_out_clips", None)
    save_card(out, card, render_markdown(card))
    return card


def render_markdown(card: dict) -> str:
    """The model card as a page, made from card.json."""
    lib, rec, ev = card.get("library") or {}, card.get("reconstruction_on_held_out_clips"), card.get("evaluate")
    params, audio = card.get("params") or {}, card["audio"]
    mb = {k: round(v / 1e6, 1) for k, v in card["bytes"].items()}
    lines = [
        "# RAVE", "",
        (f"Our RAVE (code and method: `train_rave/README.md`): PQMF {audio['n_bands']} bands, encoder "
         f"{params.get('encoder', 0) / 1e6:.2f} M and decoder {params.get('decoder', 0) / 1e6:.2f} M parameters, "
         f"{audio['latent_size']} latent dimensions at {audio['sr'] / audio['ratio']:.1f} Hz "
         f"({audio['ratio']} samples per frame, {audio['sr']} Hz audio). Version `{card['version']}`; "
         f"files: " + ", ".join(f"`{k}` {v} MB" for k, v in mb.items()) + "."), "",
        *markdown_training(card, "then resumed (only the schedule may change) with:"),
        (f"- library: `{lib.get('path')}`, {lib.get('note') or 'audio clips'}; built by "
         f"`{lib.get('builder', '?')}`; {lib.get('train_clips')} clips trained on, "
         f"{lib.get('held_out_clips')} held out (the last of each genre)"),
        (f"- {card['steps']} steps of {card['config']['batch']} × {card['config']['window']} samples, "
         f"{card['wall_minutes']} min on {card['device']} with {card['threads']} thread(s), in phases: "
         + "; ".join(f"{p['phase']} (steps {p['from_step']}–{p['to_step']})" for p in card.get("phases") or [])
         + " (spectral: multi-scale STFT + KL; adversarial: encoder frozen, hinge loss + feature matching)"),
        markdown_losses(card),
        "- the loss curve is `losses.csv`", ""]
    if rec:
        lines += ["## Reconstruction of held-out clips", "",
                  (f"{rec['clips']} clips × {rec['seconds_each']} s through `rave.ts` encode → decode on "
                   f"{rec['threads']} thread(s): multi-scale spectral distance {rec['spectral_distance']} "
                   f"(the training loss's measure), encode {rec['encode_realtime_factor']}× and decode "
                   f"{rec['decode_realtime_factor']}× real time."), ""]
    if card.get("decode_speed"):
        s = card["decode_speed"]
        lines += ["## Decode speed", "", "| threads | × real time |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in s.get("realtime_factor_by_threads", {}).items()]
        lines += ["", s.get("note", ""), ""]
    fit = card.get("genre_fit_library_vs_random_latents")
    if fit:
        lines += ["## Genre from the latents", "",
                  (f"The shipped classifier on {fit['library_latents']['requests']} tracks of {fit['seconds']} s "
                   f"({fit['per_genre']} seeds per genre, before the post stage), decoded by `rave.ts` from:"), "",
                  "| latents | genre fit top-1 | mean p(genre) |", "|---|---|---|",
                  (f"| the genre's library clips, spliced and varied (served) | "
                   f"{fit['library_latents']['genre_top1_accuracy']} | {fit['library_latents']['genre_fit_mean_probability']} |"),
                  (f"| N(0, 1) noise (the seed's way) | {fit['random_latents']['genre_top1_accuracy']} | "
                   f"{fit['random_latents']['genre_fit_mean_probability']} |"), ""]
    lines += markdown_benchmark(ev) if ev else []
    return "\n".join(lines + markdown_notes(card))


if __name__ == "__main__":
    raise SystemExit(main())

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

import argparse
import copy
import csv
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from melodymaker.trainkit import (add_dataclass_arguments, atomic_save, config_from_args, ema_update,
                                  feature_matching, ints, load_clips, load_resume, tensorboard_writer,
                                  training_device)

from .model import (
    RAVE,
    MultiScaleDiscriminator,
    MultiScaleSpectralLoss,
    RaveConfig,
    config_dict,
    count_params,
    export,
    from_dict,
    reparametrize,
)

FORMAT = "melodymaker-rave/1"
STATE, CHECKPOINT, EXPORT, BANK = "train_state.pt", "rave.pt", "rave.ts", "rave.latents.pt"
LOSSES, CARD = "losses.csv", "card.json"
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


def parse_args(argv: list[str] | None) -> TrainConfig:
    p = argparse.ArgumentParser(prog="python -m train_rave.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(p, TrainConfig)
    p.add_argument("--fresh", action="store_true", help="ignore an existing train_state.pt")
    p.add_argument("--init-from", type=Path, help="start from the weights of this rave.pt (its architecture "
                   "and step; a fresh optimizer and discriminator), e.g. one trained on another machine")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--card-only", action="store_true",
                   help="train nothing: rewrite card.json and README.md from the saved checkpoint")
    p.add_argument("--evaluate-json", type=Path,
                   help="with --card-only: the JSON of `python -m melodymaker evaluate --modes rave`")
    p.add_argument("--speed-json", type=Path, help="with --card-only: decode speed figures to record")
    p.add_argument("--fit-json", type=Path, help="with --card-only: `sample.py --fit-check` figures to record")
    args = p.parse_args(argv)
    cfg = config_from_args(args, TrainConfig)
    extra = {k: getattr(args, k) for k in ("fresh", "init_from", "no_progress", "card_only", "evaluate_json", "speed_json", "fit_json")}
    return cfg, extra


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
    weights = {k: v.half() if torch.is_floating_point(v) else v for k, v in s["model_ema"].items()}
    return {"format": FORMAT, "version": f"step{s['step']}", "step": s["step"],
            "model_args": s["model_args"], "audio": s["audio"], "genres": s["genres"],
            "model": weights, "info": s["info"]}


def model_from_checkpoint(ckpt: dict) -> RAVE:
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"not a RAVE checkpoint (format {ckpt.get('format') if isinstance(ckpt, dict) else None!r}, "
                         f"expected {FORMAT!r})")
    model = RAVE(from_dict(RaveConfig, ckpt["model_args"]))
    model.load_state_dict({k: v.float() if torch.is_floating_point(v) else v for k, v in ckpt["model"].items()})
    return model.eval()


def metadata_json(ckpt: dict) -> str:
    """The checkpoint's self-description, carried inside the export as `metadata`."""
    return json.dumps({"format": ckpt["format"], "version": ckpt["version"], "step": ckpt["step"],
                       "model_args": ckpt["model_args"], "audio": ckpt["audio"], "genres": ckpt["genres"]})


# -- the loop -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    cfg, extra = parse_args(argv)
    torch.set_num_threads(max(1, cfg.threads))
    device = training_device(cfg.device)
    from melodymaker.options import GENRES, SAMPLE_RATE
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE
    resume = load_resume(state_path, cfg, RUN_KEYS, fresh=extra["fresh"])
    init = None if resume or not extra["init_from"] else torch.load(
        extra["init_from"], map_location="cpu", weights_only=True)
    mcfg = from_dict(RaveConfig, (resume or init)["model_args"]) if resume or init else RaveConfig(
        sr=SAMPLE_RATE, n_bands=cfg.n_bands, channels=ints(cfg.channels), strides=ints(cfg.strides),
        latent_size=cfg.latent_size)
    if cfg.window % mcfg.ratio:
        raise SystemExit(f"--window {cfg.window} must be a multiple of the ratio {mcfg.ratio}")
    if extra["card_only"]:
        if not (out / CHECKPOINT).exists():
            raise SystemExit(f"--card-only needs a trained {out / CHECKPOINT}")
        ckpt = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
        if resume is None:  # a checkpoint trained elsewhere (a GPU machine) comes without its state
            for k, v in ckpt["info"]["config"].items():
                if k not in RUN_KEYS:
                    setattr(cfg, k, v)
        if not (out / EXPORT).exists():  # export here, by this machine's torch
            atomic_save(out / EXPORT, export(model_from_checkpoint(ckpt), metadata_json(ckpt)))
        if not (out / BANK).exists():  # a run stopped before its end: finish what it writes last
            write_bank(out, cfg)
        held = load_library(cfg, mcfg.sr)[1] if Path(cfg.genres).is_dir() else None
        write_card(out, cfg, held=held, evaluate_json=extra["evaluate_json"],
                   speed_json=extra["speed_json"], fit_json=extra["fit_json"])
        return 0
    torch.manual_seed(cfg.seed)
    t_load = time.perf_counter()
    train, held, library = load_library(cfg, mcfg.sr)
    print(f"library: {library['train_clips']} training clips, {library['held_out_clips']} held out "
          f"({time.perf_counter() - t_load:.0f} s to load)", file=sys.stderr)

    model = RAVE(mcfg).to(device)
    model_ema = copy.deepcopy(model).eval().requires_grad_(False)
    disc = MultiScaleDiscriminator(cfg.d_scales, cfg.d_width).to(device)
    opt = torch.optim.Adam(model.parameters(), cfg.lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), cfg.lr_d, betas=(0.5, 0.9))
    rng = torch.Generator().manual_seed(cfg.seed)
    step, wall = 0, 0.0
    if resume:
        for net, key in ((model, "model"), (model_ema, "model_ema"), (disc, "discriminator"),
                         (opt, "opt"), (opt_d, "opt_d")):
            net.load_state_dict(resume[key])
        for group in opt_d.param_groups:  # the schedule may change on resume
            group["lr"] = cfg.lr_d
        rng.set_state(resume["rng"])
        torch.set_rng_state(resume["torch_rng"])
        step, wall = resume["step"], resume["wall_seconds"]
        print(f"resuming at step {step} ({wall / 60:.1f} min trained)", file=sys.stderr)
    elif init:
        weights = {k: v.float() if torch.is_floating_point(v) else v for k, v in init["model"].items()}
        model.load_state_dict(weights)
        model_ema.load_state_dict(weights)
        step, wall = init["step"], init["info"]["wall_seconds"]
        print(f"starting from {extra['init_from']} at step {step}", file=sys.stderr)
    spectral = MultiScaleSpectralLoss().to(device)
    writer = tensorboard_writer(out / "tb")
    log_path = out / LOSSES
    columns = ["step", "wall_min", "phase", "spectral", "kl", "beta", "g_adv", "g_fm", "d_hinge"]
    if not log_path.exists() or not (resume or init):
        with open(log_path, "w", newline="") as f:
            csv.writer(f).writerow(columns)
    command = "python -m train_rave.train " + " ".join(argv if argv is not None else sys.argv[1:])
    info = {"command": command, "config": asdict(cfg), "library": library, "device": str(device),
            "threads": cfg.threads,
            "params": {"encoder": count_params(model.encoder), "decoder": count_params(model.decoder),
                       "discriminator": count_params(disc)}}
    if resume or init:  # the card names the command that started the run, and each resume after it
        info["command"] = (resume or init)["info"]["command"]
        info["resumed_with"] = (resume or init)["info"].get("resumed_with", []) + [command]
    audio = {"sr": mcfg.sr, "n_bands": mcfg.n_bands, "ratio": mcfg.ratio, "latent_size": mcfg.latent_size}
    last: dict = resume["info"].get("final_losses", {}) if resume else {}

    def snapshot() -> dict:
        return {"config": asdict(cfg), "step": step, "wall_seconds": wall, "model_args": config_dict(mcfg),
                "audio": audio, "genres": list(GENRES), "model": model.state_dict(),
                "model_ema": model_ema.state_dict(), "discriminator": disc.state_dict(),
                "opt": opt.state_dict(), "opt_d": opt_d.state_dict(), "rng": rng.get_state(),
                "torch_rng": torch.get_rng_state(),
                "info": {**info, "step": step, "wall_seconds": round(wall, 1), "final_losses": last}}

    def checkpoint() -> dict:
        s = snapshot()
        atomic_save(state_path, s)
        ckpt = inference_checkpoint(s)
        atomic_save(out / CHECKPOINT, ckpt)
        atomic_save(out / EXPORT, export(model_from_checkpoint(ckpt), metadata_json(ckpt)))
        return ckpt

    from tqdm import tqdm
    sums = {c: 0.0 for c in columns[3:]}
    count = 0
    started, wall0 = time.perf_counter(), wall
    bar = tqdm(total=cfg.steps, initial=step, desc="rave", file=sys.stderr, mininterval=5,
               disable=extra["no_progress"])
    while step < cfg.steps:
        adversarial = step >= cfg.adv_start
        for group in opt.param_groups:
            group["lr"] = cfg.lr_adv if adversarial else cfg.lr
        x = windows(train, cfg.batch, cfg.window, rng).to(device)
        beta = cfg.beta * min(1.0, (step + 1) / max(1, cfg.beta_warmup))
        if adversarial:  # RAVE's second phase: the encoder is frozen, the decoder learns to fool D
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
        ema_update(model_ema, model, step, cfg.ema)

        step += 1
        bar.update(1)
        wall = wall0 + time.perf_counter() - started
        for k, v in zip(columns[3:], (dist, kl, beta, g_adv, g_fm, d_hinge)):
            sums[k] += float(v.detach()) if torch.is_tensor(v) else float(v)
        count += 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            last = {k: round(v / count, 5) for k, v in sums.items()}
            phase = "adversarial" if adversarial else "spectral"
            with open(log_path, "a", newline="") as f:
                csv.writer(f).writerow([step, round(wall / 60, 2), phase] + [last[k] for k in columns[3:]])
            if writer is not None:
                for k, v in last.items():
                    writer.add_scalar(k, v, step)
            bar.set_postfix(spec=last["spectral"], kl=last["kl"], adv=last["g_adv"])
            sums, count = {c: 0.0 for c in columns[3:]}, 0
        out_of_time = cfg.max_minutes and time.perf_counter() - started > cfg.max_minutes * 60
        if step % cfg.save_every == 0 or out_of_time:
            checkpoint()
        if out_of_time:
            print(f"\nstopping at step {step}: --max-minutes {cfg.max_minutes} reached", file=sys.stderr)
            break
    bar.close()
    checkpoint()
    write_bank(out, cfg)
    write_card(out, cfg, held=held)
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
    ckpt = torch.load(out / CHECKPOINT, map_location="cpu", weights_only=True)
    info = ckpt["info"]
    old = json.loads((out / CARD).read_text()) if (out / CARD).exists() else {}
    same = old.get("version") == ckpt["version"]
    phases = phases_from_log(out / LOSSES)
    if phases:  # a run stopped by --max-minutes logs its last steps only in the checkpoint
        phases[-1]["to_step"] = max(phases[-1]["to_step"], ckpt["step"])
    card = {"model": "MelodyMaker RAVE", "checkpoint": CHECKPOINT, "export": EXPORT, "latent_bank": BANK,
            "format": FORMAT, "version": ckpt["version"],
            "bytes": {name: (out / name).stat().st_size for name in (CHECKPOINT, EXPORT, BANK) if (out / name).exists()},
            "command": info.get("command"), "resumed_with": info.get("resumed_with", []),
            "library": info.get("library"), "steps": ckpt["step"],
            "phases": phases,
            "wall_minutes": round(info.get("wall_seconds", 0) / 60, 1), "device": info.get("device"),
            "threads": info.get("threads"), "params": info.get("params"), "model_args": ckpt["model_args"],
            "audio": ckpt["audio"], "config": info.get("config"), "final_losses": info.get("final_losses"),
            "reconstruction_on_held_out_clips": (reconstruction(out / EXPORT, held) if held
                                                 else old.get("reconstruction_on_held_out_clips") if same else None)}
    if evaluate_json:
        report = json.loads(Path(evaluate_json).read_text())
        card["evaluate"] = {"command": report["command"], "machine": report["machine"],
                            "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
                            "summary": next(s for s in report["summary"] if s["mode"] == "rave"),
                            "markdown": report["markdown"]}
    elif same and "evaluate" in old:
        card["evaluate"] = old["evaluate"]
    if speed_json:
        card["decode_speed"] = json.loads(Path(speed_json).read_text())
    elif same and "decode_speed" in old:
        card["decode_speed"] = old["decode_speed"]
    if fit_json:
        card["genre_fit_library_vs_random_latents"] = json.loads(Path(fit_json).read_text())
    elif same and "genre_fit_library_vs_random_latents" in old:
        card["genre_fit_library_vs_random_latents"] = old["genre_fit_library_vs_random_latents"]
    if same and "notes" in old:
        card["notes"] = old["notes"]
    (out / CARD).write_text(json.dumps(card, indent=1))
    (out / "README.md").write_text(render_markdown(card))
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
        "## Training", "", f"    {card['command']}", "",
        *(["then resumed (only the schedule may change) with:", ""]
          + [f"    {c}" for c in card["resumed_with"]] + [""] if card.get("resumed_with") else []),
        (f"- library: `{lib.get('path')}`, {lib.get('note') or 'audio clips'}; built by "
         f"`{lib.get('builder', '?')}`; {lib.get('train_clips')} clips trained on, "
         f"{lib.get('held_out_clips')} held out (the last of each genre)"),
        (f"- {card['steps']} steps of {card['config']['batch']} × {card['config']['window']} samples, "
         f"{card['wall_minutes']} min on {card['device']} with {card['threads']} thread(s), in phases: "
         + "; ".join(f"{p['phase']} (steps {p['from_step']}–{p['to_step']})" for p in card.get("phases") or [])
         + " (spectral: multi-scale STFT + KL; adversarial: encoder frozen, hinge loss + feature matching)"),
        "- final losses (mean of the last logged steps): "
        + ", ".join(f"{k} {v}" for k, v in (card.get("final_losses") or {}).items()),
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
    if ev:
        lines += ["## Benchmark", "", f"    {ev['command']}", "",
                  (f"on {ev['machine']['cpus']} CPU cores ({ev['machine']['platform']}), torch threads: "
                   f"{ev.get('torch_threads', 'default')} (OMP_NUM_THREADS):"), "", ev["markdown"], ""]
    if card.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in card["notes"]] + [""]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())

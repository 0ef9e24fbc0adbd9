"""Train the class-conditional DDIM on the MDCT of a genres/ folder.

    python -m diffusion_model.train --genres genres --out models/ddim            # CPU, small config
    python -m diffusion_model.train --genres genres --out models/ddim --device cuda \
        --channels 256,384,512 --blocks 2 --batch-size 32 --steps 200000           # a GPU, large

    torchrun --standalone --nproc_per_node 2 -m diffusion_model.train --genres genres --out models/ddim

Writes <out>/ddim.pt (EMA weights in half precision: what the app serves), <out>/card.json and
<out>/train_state.pt (everything needed to resume; not shipped). Run the same command again to
continue from train_state.pt up to --steps; --init-from models/ddim/ddim.pt starts a new run from the
shipped weights (their network shape and per-bin scale; the optimiser starts afresh), which is how
training goes on across sessions when train_state.pt was not kept. Losses go to <out>/log.csv and, when the tensorboard
package is installed, to <out>/tb/. Under torchrun (DistributedDataParallel: gloo on the CPU, nccl
on GPUs) each rank reads its shard of the library, --batch-size is per rank, and rank 0 alone
writes; melodymaker/distributed.py says how.
"""
from __future__ import annotations

import argparse
import platform
import signal
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from melodymaker import distributed
from melodymaker.options import GENRES, SAMPLE_RATE
from melodymaker.trainkit import (Clock, LossLog, add_dataclass_arguments, adopt_config, atomic_save,
                                  checkpoint_header, config_from_args, ema_update, float_weights, half_weights,
                                  read_card, read_checkpoint, run_command, save_card, set_lr)
from melodymaker.weights import int8_weights

from .data import MDCTDataset, clip_seconds
from .model import UNet1D, UNetConfig, alpha_sigma, add_taps, count_parameters, widen
from .sample import FORMAT, FORMAT_VERSION, SOLVERS

CHECKPOINT, STATE, LOG = "ddim.pt", "train_state.pt", "log.csv"


@dataclass
class TrainConfig:
    genres: str = field(default="genres", metadata={"help": "library folder in GTZAN layout"})
    out: str = field(default="models/ddim", metadata={"help": "checkpoint, card and log folder"})
    seed: int = 0
    steps: int = field(default=6000, metadata={"help": "total optimiser steps (resuming counts on)"})
    batch_size: int = 8
    frames: int = field(default=512, metadata={"help": "training window in MDCT frames (512 = 5.9 s)"})
    lr: float = 3e-4
    warmup: int = 200
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    ema: float = field(default=0.999, metadata={"help": "EMA decay of the shipped weights"})
    cond_drop: float = field(default=0.1, metadata={"help": "share of genre labels dropped (guidance)"})
    context_prob: float = field(default=0.5, metadata={"help": "share of windows given known first frames"})
    tempo_cond: bool = field(default=False, metadata={"help": "learn a tempo (BPM) embedding beside the genre's, "
                                                               "so the mode can play near the tempo asked for"})
    tempo_drop: float = field(default=0.2, metadata={"help": "share of tempi dropped (tracks without one)"})
    hop: int = field(default=256, metadata={"help": "MDCT bins (frame hop in samples)"})
    alpha: float = field(default=0.5, metadata={"help": "power-law compression of MDCT coefficients"})
    channels: list[int] = field(default_factory=lambda: [160, 224, 320])
    blocks: int = 1
    patch: int = 4
    attention_heads: int = 8
    emb_dim: int = 256
    dropout: float = 0.0
    guidance: float = field(default=2.0, metadata={"help": "default guidance scale stored for sampling"})
    sample_steps: int = field(default=15, metadata={"help": "default sampler steps stored for sampling"})
    solver: str = field(default="ddim", metadata={"help": "default sampler stored for sampling: ddim or dpm++2m"})
    weights: str = field(default="int8", metadata={"help": "how ddim.pt stores the weights: int8 (per-channel "
                                                           "scales, a quarter of float32) or float16"})
    init_from: str = field(default="", metadata={"help": "a ddim.pt to start from (its shape and per-bin "
                                                          "scale; ignored when train_state.pt exists)"})
    taps: int = field(default=1, metadata={"help": "frames of x_t each bin's gain reaches (odd; 1: an "
                                                   "elementwise gain). With --init-from, more taps than "
                                                   "its network has are added at zero (the same network)"})
    widen: bool = field(default=False, metadata={"help": "with --init-from: widen its network to --channels "
                                                         "(each level as wide or twice; see model.widen)"})
    workers: int = field(default=1, metadata={"help": "processes that beat-track the library's clips "
                                                      "(their tempi) before training"})
    max_per_genre: int = field(default=0, metadata={"help": "use at most this many clips per genre (0: all)"})
    stretch: float = field(default=0.0, metadata={"help": "also train on each clip time-stretched by a rate "
                                                          "within 1/(1+s)..1+s, its tempo scaled alike (0: off)"})
    save_every: int = 250
    log_every: int = 25
    max_minutes: float = field(default=0.0, metadata={"help": "stop (and save) after this long; 0: no limit"})
    device: str = field(default="auto", metadata={"help": "auto, cpu or cuda"})
    threads: int = field(default=0, metadata={"help": "torch CPU threads (0: all cores)"})
    progress: bool = True


def model_config(cfg: TrainConfig, source: dict | None = None) -> UNetConfig:
    """The network's shape: the flags', or that of the state or checkpoint a run goes on from."""
    if source is not None and source.get("model_config"):
        shape = UNetConfig.from_dict(source["model_config"])
        # a checkpoint without a tempo embedding gains one (it starts at zero: the same network)
        return replace(shape, tempo_cond=shape.tempo_cond or cfg.tempo_cond)
    return UNetConfig(bins=cfg.hop, patch=cfg.patch, channels=tuple(cfg.channels), blocks=cfg.blocks,
                      attention_heads=cfg.attention_heads, classes=len(GENRES), emb_dim=cfg.emb_dim,
                      dropout=cfg.dropout, tempo_cond=cfg.tempo_cond, taps=cfg.taps)


def diffusion_loss(net: UNet1D, x0: torch.Tensor, labels: torch.Tensor, gen: torch.Generator, *,
                   cond_drop: float, context_prob: float, t: torch.Tensor | None = None,
                   noise: torch.Tensor | None = None, tempo: torch.Tensor | None = None,
                   tempo_drop: float = 0.0) -> torch.Tensor:
    """v-prediction MSE over the frames the model must make (known context frames excluded).
    tempo (B,) BPM, for a tempo_cond network: a share tempo_drop of them is dropped to 0 ("none")."""
    b, bins, frames = x0.shape
    if t is None:
        t = torch.rand(b, generator=gen)
    if noise is None:
        noise = torch.randn(x0.shape, generator=gen)
    t, noise = t.to(x0.device), noise.to(x0.device)
    a, s = alpha_sigma(t)
    a, s = a[:, None, None], s[:, None, None]
    xt = a * x0 + s * noise
    v = a * noise - s * x0
    mask = torch.zeros(b, 1, frames)
    with_context = torch.rand(b, generator=gen) < context_prob
    known = torch.randint(frames // 16, frames // 4 + 1, (b,), generator=gen)
    for i in range(b):
        if with_context[i]:
            mask[i, :, :known[i]] = 1.0
    mask = mask.to(x0.device)
    drop = torch.rand(b, generator=gen) < cond_drop
    labels = torch.where(drop.to(labels.device), torch.full_like(labels, len(GENRES)), labels)
    if tempo is not None and tempo_drop:
        tempo = torch.where(torch.rand(b, generator=gen) < tempo_drop, torch.zeros_like(tempo), tempo)
    pred = net(xt, x0, mask, t, labels, None if tempo is None else tempo.to(x0.device))
    weight = (1 - mask).expand_as(pred)
    return ((pred - v) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)


def shipped_checkpoint(cfg: TrainConfig, ema: UNet1D, ds: MDCTDataset, step: int,
                       sampling: dict | None = None) -> dict:
    """What the app serves: the EMA weights (int8 or float16, cfg.weights) and how to turn their
    output into audio; sampling: the defaults to keep (a run started --init-from keeps its
    checkpoint's, which a grid adopted), else the flags'."""
    weights = int8_weights(ema.state_dict()) if cfg.weights == "int8" else half_weights(ema.state_dict())
    return {**checkpoint_header(FORMAT, FORMAT_VERSION, step), "config": ema.cfg.to_dict(),
            "model": weights, "weights": {"storage": {"model": cfg.weights}},
            "audio": {"sr": SAMPLE_RATE, "hop": ds.hop, "alpha": ds.alpha,
                      "bin_std": ds.bin_std.clone(), "normalisation": "sign(X)|X|^alpha / bin_std"},
            "genres": list(GENRES),
            **({"tempi": genre_tempi(ds)} if ema.cfg.tempo_cond else {}),
            "sampling": dict(sampling) if sampling else
                        {"steps": cfg.sample_steps, "eta": 0.0, "guidance": cfg.guidance, "solver": cfg.solver,
                         "window": cfg.frames, "overlap": cfg.frames // 8}}


def genre_tempi(ds: MDCTDataset) -> dict:
    """{genre: [low, median, high]} BPM of the clips it trained on (5th, 50th, 95th percentiles;
    under torchrun, this rank's shard): the tempi the network knows for each genre."""
    out = {}
    for i, g in enumerate(GENRES):
        tempi = [t for t, label in zip(ds.tempi, ds.labels) if label == i and t > 0]
        if tempi:
            out[g] = [round(float(q), 2) for q in np.percentile(tempi, [5, 50, 95])]
    return out


def write_card(cfg: TrainConfig, out: Path, ds: MDCTDataset, net: UNet1D, step: int,
               wall: float, device: str, losses: dict, argv: list[str], *, used: dict | None = None,
               init_from: dict | None = None) -> None:
    from melodymaker.classify.card import library_facts
    card = read_card(out)
    clips = {g: [c for c in ds.library.genre_clips(g)] for g in GENRES}
    card.update({
        "model": "class-conditional 1D U-Net DDIM over the MDCT (v-prediction, cosine schedule, "
                 "classifier-free guidance, trained continuation from known frames)",
        "command": run_command("diffusion_model.train", argv),
        "checkpoint": CHECKPOINT,
        "checkpoint_bytes": (out / CHECKPOINT).stat().st_size if (out / CHECKPOINT).exists() else None,
        "parameters": count_parameters(net),
        "library": {**library_facts(Path(cfg.genres), clips, ds.library, []),
                    **(used or {"used": len(ds.frames), "seconds": round(clip_seconds(ds), 1)})},
        "training": {"steps": step, "batch_size": cfg.batch_size, "window_frames": cfg.frames,
                     "window_seconds": round(cfg.frames * cfg.hop / SAMPLE_RATE, 3),
                     "wall_seconds": round(wall, 1), "device": device,
                     "torch_threads": torch.get_num_threads() if device == "cpu" else None,
                     "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
                     "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "final_losses": losses},
        "config": asdict(cfg),
    })
    if init_from:
        card["init_from"] = init_from
    save_card(out, card)


def adopt_representation(cfg: TrainConfig, state: dict | None, init: dict | None, say: bool = True) -> None:
    """A run that goes on (its train_state.pt, or --init-from) reads the library as its network
    learned it: with that run's --hop and --alpha, whatever the flags say (as with its shape)."""
    source = state["config"] if state is not None else init["audio"] if init is not None else None
    if source is None:
        return
    saved = {"hop": int(source["hop"]), "alpha": float(source["alpha"])}
    if say and saved != {"hop": cfg.hop, "alpha": cfg.alpha}:
        print(f"going on from a network trained with --hop {saved['hop']} --alpha {saved['alpha']}: reading the library so")
    adopt_config(cfg, saved, run_keys=())


def grown(net: UNet1D, cfg: TrainConfig, started_from: dict) -> UNet1D:
    """The checkpoint's network grown as the flags ask: --widen to --channels' widths, then a gain
    filter of --taps frames if it has fewer; what was done goes into the card's init_from."""
    if cfg.widen:
        try:
            wide = UNet1D(replace(net.cfg, channels=tuple(cfg.channels)))
            widen(net, wide, seed=cfg.seed)
        except ValueError as e:
            raise SystemExit(f"--widen: {e}") from None
        started_from["widened"] = {"from": list(net.cfg.channels), "to": list(wide.cfg.channels)}
        net = wide
    if cfg.taps > net.cfg.taps:
        tapped = UNet1D(replace(net.cfg, taps=cfg.taps))
        add_taps(net, tapped)
        started_from["taps"] = {"from": net.cfg.taps, "to": cfg.taps}
        net = tapped
    return net


def train(cfg: TrainConfig, argv: list[str] | None = None) -> dict:
    argv = list(argv or [])
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank = distributed.setup(cfg.device)           # one process, or this rank of torchrun's
    device = str(rank.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)                    # the same initial weights on every rank
    state_path = out / STATE
    state = torch.load(state_path, map_location=device, weights_only=True) if state_path.exists() else None
    init = (read_checkpoint(cfg.init_from, FORMAT, FORMAT_VERSION, name="DDIM")
            if state is None and cfg.init_from else None)
    adopt_representation(cfg, state, init, rank.main)
    ds = MDCTDataset.build(cfg.genres, hop=cfg.hop, alpha=cfg.alpha, max_per_genre=cfg.max_per_genre,
                           progress=cfg.progress and rank.main, rank=rank, workers=cfg.workers,
                           stretch=cfg.stretch, seed=cfg.seed)
    used = {"used": int(rank.sum(len(ds.frames))), "seconds": round(rank.sum(clip_seconds(ds)), 1),
            **({"ranks": rank.world} if rank.distributed else {})}
    started_from, shape = None, None
    if state is not None:
        shape = state                              # its "model_config" (states before it: the flags')
    elif init is not None:
        shape = {"model_config": init["config"]}
        ds.rescale(init["audio"]["bin_std"].float())  # the scale the network learned, not this library's
        prior = read_card(Path(cfg.init_from).parent)
        started_from = {"path": cfg.init_from, "step": int(init["step"]), "sampling": dict(init.get("sampling") or {}),
                        **{k: prior.get(k) for k in ("command", "init_from") if prior.get(k)},
                        "library": {k: (prior.get("library") or {}).get(k) for k in ("path", "clips", "builder")},
                        "wall_seconds": (prior.get("training") or {}).get("wall_seconds")}
    net = UNet1D(model_config(cfg, shape))
    if init is not None:
        missing, unexpected = net.load_state_dict(float_weights(init["model"]), strict=False)
        if unexpected or any(not k.startswith("tempo_mlp.") for k in missing):  # it may gain a tempo embedding
            raise SystemExit(f"--init-from {cfg.init_from} does not fit this network "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
        net = grown(net, cfg, started_from)
        shape = {"model_config": net.cfg.to_dict()}
    net.to(device)
    for name in ("patch", "blocks", "attention_heads", "emb_dim", "dropout", "tempo_cond", "taps"):  # the shape run
        setattr(cfg, name, getattr(net.cfg, name))
    cfg.channels = list(net.cfg.channels)
    if cfg.frames % net.multiple:
        raise SystemExit(f"--frames must be a multiple of {net.multiple}")
    ema = UNet1D(model_config(cfg, shape)).to(device)
    ema.load_state_dict(net.state_dict())
    ema.requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = distributed.rank_generator(cfg.seed, rank)
    step, wall = 0, 0.0
    if state is not None:
        net.load_state_dict(state["net"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, wall = state["step"], state["wall"]
        if rank.main:                              # the saved generator is rank 0's
            gen.set_state(state["gen"])
        else:
            gen = distributed.rank_generator(cfg.seed, rank, step)
        ds.rescale(state["bin_std"])               # the statistics the run started with
        started_from = state.get("init_from")
        if rank.main:
            print(f"resuming from {state_path} at step {step}")
    trained = distributed.wrap(net, rank)          # the forward passes that learn go through DDP
    # a fixed probe batch: the same windows, times and noise at every check, so its loss is comparable
    pgen = torch.Generator().manual_seed(12345)
    probe_x, probe_y, probe_bpm = ds.batch(16, cfg.frames, pgen)
    with_tempo = net.cfg.tempo_cond
    probe_t, probe_noise = torch.linspace(0.05, 0.95, 16), torch.randn(probe_x.shape, generator=pgen)

    def probe() -> float:
        net.eval()
        with torch.no_grad():
            loss = diffusion_loss(net, probe_x.to(device), probe_y.to(device),
                                  torch.Generator().manual_seed(0), cond_drop=0.0, context_prob=0.0,
                                  t=probe_t, noise=probe_noise, tempo=probe_bpm if with_tempo else None)
        net.train()
        return float(loss)

    log = LossLog(out / LOG, ["step", "loss", "probe_loss", "lr", "seconds"], append=True,
                  tensorboard=out / "tb", scalars=("loss", "probe_loss", "lr")) if rank.main else distributed.NoLog()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def save(losses: dict) -> None:
        if not rank.main:
            return
        atomic_save(state_path, {"net": net.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                                 "gen": gen.get_state(), "step": step, "wall": wall, "bin_std": ds.bin_std,
                                 "config": asdict(cfg), "model_config": net.cfg.to_dict(),
                                 "init_from": started_from})
        atomic_save(out / CHECKPOINT, shipped_checkpoint(cfg, ema, ds, step, (started_from or {}).get("sampling")))
        write_card(cfg, out, ds, net, step, wall, device, losses, argv, used=used, init_from=started_from)

    losses = {"probe_loss_start": probe()} if step == 0 else {}
    if step == 0:
        log.write({"step": 0, "probe_loss": losses["probe_loss_start"], "lr": 0.0, "seconds": 0.0})
    clock, recent = Clock(cfg, step, wall, desc="ddim", progress=cfg.progress and rank.main), []
    net.train()
    try:
        while clock.running and not rank.any(stop["now"]):
            lr = cfg.lr * min(1.0, (clock.step + 1) / max(1, cfg.warmup))
            set_lr(opt, lr)
            x0, labels, bpm = ds.batch(cfg.batch_size, cfg.frames, gen)
            loss = diffusion_loss(trained, x0.to(device), labels.to(device), gen,
                                  cond_drop=cfg.cond_drop, context_prob=cfg.context_prob,
                                  tempo=bpm if with_tempo else None, tempo_drop=cfg.tempo_drop)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            clock.tick()
            step, wall = clock.step, clock.wall
            ema_update(ema, net, step, cfg.ema)
            recent.append(loss.item())
            if clock.log_due:
                row = {"step": step, "loss": rank.mean({"loss": sum(recent) / len(recent)})["loss"], "lr": lr,
                       "seconds": round(wall, 1)}
                if step % cfg.save_every == 0 or step == cfg.steps:
                    row["probe_loss"] = probe()
                log.write(row)
                clock.bar.set_postfix(loss=f"{row['loss']:.4f}")
                losses.update({"loss": round(row["loss"], 5)})
                if "probe_loss" in row:
                    losses["probe_loss"] = round(row["probe_loss"], 5)
                recent = []
            if step % cfg.save_every == 0:
                save(losses)
            if rank.any(clock.time_is_up()):
                break
    except KeyboardInterrupt:
        print("interrupted: saving")
    clock.close()
    losses["probe_loss"] = round(probe(), 5)
    save(losses)
    if rank.main:
        print(f"step {step}: probe loss {losses['probe_loss']:.4f}; wrote {out / CHECKPOINT}")
    distributed.finish(rank, net, ema)             # every rank holds the same weights, or it says so
    return {"step": step, "losses": losses, "out": str(out)}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m diffusion_model.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(p, TrainConfig)
    args = p.parse_args(argv)
    cfg = config_from_args(args, TrainConfig)
    if not Path(cfg.genres).is_dir():
        p.error(f"--genres {cfg.genres}: no such folder")
    if cfg.solver not in SOLVERS:
        p.error(f"--solver must be one of: {', '.join(SOLVERS)}")
    if cfg.weights not in ("int8", "float16"):
        p.error("--weights must be int8 or float16")
    if cfg.taps < 1 or cfg.taps % 2 == 0:
        p.error(f"--taps must be an odd number of frames (1, 3, 5, ...), got {cfg.taps}")
    if cfg.widen and not cfg.init_from:
        p.error("--widen needs --init-from (the network to widen)")
    if not 0.0 <= cfg.stretch <= 1.0:
        p.error(f"--stretch must be within 0-1 (rates 1/(1+s)..1+s), got {cfg.stretch}")
    train(cfg, argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

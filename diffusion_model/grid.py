"""The sampler grid: genre fit by both judges and speed, per sampler setting, on seeds kept apart
from the benchmark's.

    python -m diffusion_model.grid --checkpoint models/ddim/ddim.pt --per-genre 3 --length 10 \
        --grid "ddim:15:256:32:2" "dpm++2m:10:512:32:2" --json grid.json

    python -m diffusion_model.grid --checkpoint models/ddim/ddim.pt --adopt "dpm++2m:8:256:32:2"

Each setting is solver:steps:window:overlap:guidance. --adopt writes one setting into the
checkpoint as its sampling defaults (what the app and sample.py use), recording the command. Seeds start at TUNING_SEEDS (800,000,000),
away from evaluate's reserved 900,000,000 range, so settings chosen here are not chosen on the
benchmark's own requests. Timing is DDIM.sample alone (the engine; the post stage is the same
for every setting), on this process's torch threads.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from melodymaker.trainkit import atomic_save, read_checkpoint, run_command

from .sample import FORMAT, FORMAT_VERSION, SOLVERS, load

TUNING_SEEDS = 800_000_000


def parse_setting(text: str) -> dict:
    parts = text.split(":")
    if len(parts) != 5 or parts[0] not in SOLVERS:
        raise argparse.ArgumentTypeError(f"{text!r}: expected solver:steps:window:overlap:guidance, "
                                         f"solver one of {', '.join(SOLVERS)}")
    solver, steps, window, overlap, guidance = parts
    return {"solver": solver, "steps": int(steps), "window": int(window), "overlap": int(overlap),
            "guidance": float(guidance)}


def run(model, judges, setting: dict, genres: list[str], per_genre: int, seconds: float) -> dict:
    from melodymaker.evaluate.scoring import fit_summary, judge
    rows, speeds = [], []
    for gi, genre in enumerate(genres):
        for i in range(per_genre):
            seed = TUNING_SEEDS + 1000 * gi + i
            t = time.perf_counter()
            y = model.sample(genre, seconds, seed, **setting)
            speeds.append(seconds / (time.perf_counter() - t))
            row, _ = judge(judges, y, model.sr, genre)
            rows.append({**row, "genre": genre})
    return {**setting, **fit_summary(rows), "x_realtime_median": round(float(np.median(speeds)), 2),
            "tracks": len(rows)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m diffusion_model.grid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", default="models/ddim/ddim.pt")
    p.add_argument("--judges", default="models/classifier")
    p.add_argument("--per-genre", type=int, default=3)
    p.add_argument("--length", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--grid", nargs="+", type=parse_setting, default=[])
    p.add_argument("--json", type=Path)
    p.add_argument("--adopt", type=parse_setting, help="write this setting into the checkpoint as its defaults")
    args = p.parse_args(argv)
    if args.adopt:
        return adopt(Path(args.checkpoint), args.adopt, argv)
    if not args.grid:
        p.error("give --grid settings to measure, or --adopt one")
    if args.threads:
        torch.set_num_threads(args.threads)
    from melodymaker.classify import load_judges
    model, judges = load(args.checkpoint), load_judges(args.judges)
    model.sample(model.genres[0], 1.0, 0)  # warm
    rows = []
    for setting in args.grid:
        rows.append(run(model, judges, setting, model.genres, args.per_genre, args.length))
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    report = {"checkpoint": str(args.checkpoint), "step": model.step, "per_genre": args.per_genre,
              "seconds": args.length, "threads": torch.get_num_threads(), "seeds_from": TUNING_SEEDS,
              "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    print("| solver | steps | window | overlap | guidance | fit: CNN | fit: features | genre fit | "
          "× real time |\n|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['solver']} | {r['steps']} | {r['window']} | {r['overlap']} | {r['guidance']} | "
              f"{r['fit_cnn']} | {r['fit_features']} | {r['genre_fit']} | {r['x_realtime_median']} |")
    return 0


def adopt(path: Path, setting: dict, argv: list[str] | None) -> int:
    """The checkpoint's sampling defaults become `setting` (eta 0), the rest of it unchanged."""
    ckpt = read_checkpoint(path, FORMAT, FORMAT_VERSION, name="DDIM")  # another model's file is refused
    before = dict(ckpt.get("sampling", {}))
    ckpt["sampling"] = {**before, **setting, "eta": 0.0}
    ckpt["sampling_history"] = list(ckpt.get("sampling_history", [])) + [
        {"was": before, "command": run_command("diffusion_model.grid", argv)}]
    atomic_save(path, ckpt)
    load(path)  # still loads
    print(f"{path}: sampling defaults {before} -> {ckpt['sampling']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

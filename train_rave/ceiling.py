"""The resynthesis ceiling of a RAVE model: held-out library clips through encode -> decode and
nothing else, scored by the multi-resolution STFT distance to the original and by the project's
genre judges (the ceiling of what any latent trajectory can reach in genre fit).

    python -m train_rave.ceiling --checkpoint models/rave/rave.pt --genres lib100 \
        [--baseline old/rave.pt] [--per-genre 10] [--json ceiling.json]

The held-out clips are the library's held-out split, as every trainer takes it (trainkit.load_clips).
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

SECONDS = 10.0       # the first seconds of each clip
PER_GENRE = 10       # held-out clips per genre at most


def load_judges(models_dir: str | Path = "models") -> dict | None:
    """{name: judge} (each with predict(y, sr) -> {genre: probability}): the project's judges
    (`melodymaker.classify.load_judges`: the CNN and the feature judge) when they load, else the
    shipped classifier alone; None, with a message on stderr, when none can be loaded."""
    models_dir = Path(models_dir)
    try:
        from melodymaker.classify import load_judges as project_judges
    except ImportError:
        project_judges = None
    try:
        if project_judges is not None:
            judges = project_judges(models_dir)
            try:
                from melodymaker.classify import JUDGES as names
            except ImportError:
                names = ("cnn", "features")
            found = {n: getattr(judges, n) for n in names if hasattr(getattr(judges, n, None), "predict")}
            return found or {"judges": judges}
        from melodymaker.classify import load_classifier
        return {"cnn": load_classifier(models_dir)}
    except Exception as e:  # judges being retrained or absent must not cost a training run its card
        print(f"genre judges: none loaded from {models_dir} ({type(e).__name__}: {e}); the ceiling is measured by "
              "spectral distance only", file=sys.stderr)
        return None


def held_out_clips(genres_dir: str | Path, sr: int, *, per_genre: int = PER_GENRE,
                   **split) -> list[tuple[str, np.ndarray]]:
    """(genre, audio) of the library's held-out clips (trainkit.load_clips's split), at most
    `per_genre` of each genre. `split`: load_clips's split options (e.g. holdout=10), passed where
    load_clips takes them."""
    from melodymaker.options import GENRES
    from melodymaker.trainkit import load_clips
    accepted = inspect.signature(load_clips).parameters
    _, held, _ = load_clips(genres_dir, sr, **{k: v for k, v in split.items() if k in accepted})
    return cap_per_genre([(GENRES[gi], y) for gi, y in held], per_genre)


def cap_per_genre(clips: list[tuple[str, np.ndarray]], per_genre: int) -> list[tuple[str, np.ndarray]]:
    """The first `per_genre` (genre, audio) pairs of each genre, in order."""
    counts: dict[str, int] = {}
    out = []
    for genre, y in clips:
        counts[genre] = counts.get(genre, 0) + 1
        if counts[genre] <= per_genre:
            out.append((genre, y))
    return out


def resynthesis_ceiling(resynthesise: Callable[[np.ndarray], np.ndarray], clips: list[tuple[str, np.ndarray]],
                        *, sr: int, judges: dict | None = None, seconds: float = SECONDS, device="cpu") -> dict:
    """Every clip's first `seconds` through `resynthesise` (mono float32 at `sr` -> the same):
    mean multi-resolution STFT distance to the original (RAVE's plain distance, the cards'
    `spectral_distance`, and the low-band-weighted one; computed on `device`) and, per judge,
    genre top-1 of the resynthesised clips and of the originals, and the lower judge's figures."""
    from .losses import LowBandSpectralLoss, MultiScaleSpectralLoss
    if not clips:
        raise ValueError("no held-out clips to measure the ceiling on")
    plain, low = MultiScaleSpectralLoss().to(device), LowBandSpectralLoss(sr).to(device)
    dist, low_dist, hits, started, total = [], [], {}, time.perf_counter(), 0.0
    for genre, y in clips:
        y = np.asarray(y[: round(seconds * sr)], dtype=np.float32)
        y_hat = np.asarray(resynthesise(y), dtype=np.float32)[: len(y)]
        y_hat = np.pad(y_hat, (0, len(y) - len(y_hat)))
        a, b = torch.from_numpy(y_hat)[None].to(device), torch.from_numpy(y)[None].to(device)
        with torch.no_grad():
            dist.append(float(plain(a, b)))
            low_dist.append(float(low(a, b)))
        total += len(y) / sr
        for name, judge in (judges or {}).items():
            for kind, audio in (("resynthesised", y_hat), ("original", y)):
                probs = judge.predict(audio, sr)
                hits.setdefault(name, {}).setdefault(kind, []).append(max(probs, key=probs.get) == genre)
    report = {"clips": len(clips), "seconds_each": round(total / len(clips), 2),
              "spectral_distance": round(float(np.mean(dist)), 4),
              "low_band_distance": round(float(np.mean(low_dist)), 4),
              "seconds_taken": round(time.perf_counter() - started, 1)}
    if hits:
        report["judges"] = {name: {kind: round(float(np.mean(v)), 3) for kind, v in h.items()}
                            for name, h in hits.items()}
        report["lower_judge_top1"] = min(j["resynthesised"] for j in report["judges"].values())
        report["lower_judge_top1_original"] = min(j["original"] for j in report["judges"].values())
    else:
        report["judges"] = None
    return report


def export_resynthesiser(model, sr: int = 22050) -> Callable[[np.ndarray], np.ndarray]:
    """encode -> decode through a latents.RaveExport (what the app serves), resampled from `sr` to
    the export's own rate and back; its noise seeded."""
    from melodymaker.audio import resample

    def resynthesise(y: np.ndarray) -> np.ndarray:
        z = model.encode(resample(y, sr, model.sr))
        return resample(model.decode(z, seed=0), model.sr, sr)[: len(y)]
    return resynthesise


def model_resynthesiser(model, device) -> Callable[[np.ndarray], np.ndarray]:
    """encode (the posterior mean) -> decode through our network on `device` (a GPU measures a
    hundred clips in seconds; the same arithmetic as its export, weight norm folded); noise seeded."""
    from .model import fold_weight_norm
    model = fold_weight_norm(model).to(device).eval()
    devices = [torch.device(device).index or 0] if torch.device(device).type == "cuda" else []

    @torch.no_grad()
    def resynthesise(y: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.pad(y, (0, (-len(y)) % model.cfg.ratio)))[None, None].to(device)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(0)
            return model.decode(model.encode(x)[0])[0, 0, : len(y)].float().cpu().numpy()
    return resynthesise


def measure(checkpoint: Path, clips: list, *, judges: dict | None, sr: int = 22050, device="cpu") -> dict:
    """The ceiling of a rave.pt (on `device`: on the CPU through the export the app derives) or of
    a .ts export (on the CPU) on `clips`."""
    from .latents import RaveExport
    from .model import model_from_checkpoint, read
    from .sample import export_of
    checkpoint = Path(checkpoint)
    if checkpoint.suffix == ".pt" and torch.device(device).type != "cpu":
        resynthesise = model_resynthesiser(model_from_checkpoint(read(checkpoint)), device)
    else:
        model = export_of(checkpoint) if checkpoint.suffix == ".pt" else RaveExport.from_file(checkpoint)
        resynthesise, device = export_resynthesiser(model, sr), "cpu"
    return {"checkpoint": str(checkpoint), "device": str(device),
            **resynthesis_ceiling(resynthesise, clips, sr=sr, judges=judges, device=device)}


def render(report: dict) -> str:
    """The ceiling as a markdown table (one row per measured model)."""
    rows = [("this model", report)] + ([("baseline", report["baseline"])] if report.get("baseline") else [])
    names = sorted({n for _, r in rows for n in (r.get("judges") or {})})
    columns = ["model", "clips", "MR-STFT distance", "low-band distance"]
    columns += [f"top-1 by {n} (originals)" for n in names] + (["lower judge"] if names else [])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for label, r in rows:
        where = Path(r.get("checkpoint", "?"))
        cells = [f"{label} (`{where.parent.name}/{where.name}`)", str(r["clips"]), str(r["spectral_distance"]),
                 str(r["low_band_distance"])]
        judged = r.get("judges") or {}
        cells += [f"{judged[n]['resynthesised']} ({judged[n]['original']})" if n in judged else "–" for n in names]
        cells += [str(r.get("lower_judge_top1", "–"))] if names else []
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train_rave.ceiling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("models/rave/rave.pt"), help="rave.pt or a .ts export")
    p.add_argument("--baseline", type=Path, help="another rave.pt or .ts, measured on the same clips")
    p.add_argument("--genres", type=Path, default=Path("genres"))
    p.add_argument("--models", type=Path, default=Path("models"), help="where the judges are")
    p.add_argument("--per-genre", type=int, default=PER_GENRE)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cuda: rave.pt measured on the GPU")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    clips = held_out_clips(args.genres, 22050, per_genre=args.per_genre, holdout=args.per_genre,
                           min_samples=22050)
    judges = load_judges(args.models)
    report = measure(args.checkpoint, clips, judges=judges, device=args.device)
    if args.baseline:
        report["baseline"] = measure(args.baseline, clips, judges=judges, device=args.device)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

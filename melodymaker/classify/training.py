"""Train both genre judges on a genres/ folder; write classifier.pt, features.pt, card.json, README.md.

    python -m melodymaker library build --out lib100 --per-genre 100 --seed 0
    python -m melodymaker.classify train --genres lib100 --out models/classifier --seed 0 --copies 6

The held-out clips are the library's one split (library.heldout: a hash of each clip's key, the
same clips every trainer of the project holds out), chosen before any audio is cut into windows.
Both judges train on the same clips with generic degradations only (degrade.py) and are tested on
the held-out clips clean and under each degradation.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from ..library import SPLIT_FRACTION, SPLIT_SEED, split_facts, split_keys
from ..options import GENRES, SAMPLE_RATE
from . import degrade
from .card import library_facts, render_markdown
from .classifier import CHECKPOINT_NAME, FORMAT, FORMAT_VERSION, GenreClassifier
from .descriptors import DescriptorParams, names
from .feature_judge import CHECKPOINT_NAME as FEATURES_NAME
from .feature_judge import FeatureJudge
from .feature_judge import checkpoint as feature_checkpoint
from .features import MelParams
from .fit import accuracy, fit_features, scores, train_cnn
from .judges import COMBINATION, load_judges
from .prepare import Plan, compute_all

CARD_NAME = "card.json"


@dataclass
class TrainConfig:
    """Every knob of a training run; stored in the checkpoints and the card."""
    genres: str = field(default="genres", metadata={"help": "library folder in GTZAN layout"})
    out: str = field(default="models/classifier", metadata={"help": "where the checkpoints and card go"})
    seed: int = field(default=0, metadata={"help": "initialisation and augmentation seed"})
    split_seed: int = field(default=SPLIT_SEED, metadata={"help": "seed of the library's held-out split"})
    test_fraction: float = field(default=SPLIT_FRACTION, metadata={"help": "share of clips held out"})
    copies: int = field(default=3, metadata={"help": "augmented excerpts per training clip"})
    crop_seconds: float = field(default=10.0, metadata={"help": "length of each augmented excerpt"})
    clean_share: float = field(default=0.5, metadata={"help": "share of CNN windows from the clean clip"})
    test_seconds: float = field(default=10.0, metadata={"help": "held-out excerpt tested under each "
                                                        "degradation (0: whole clip)"})
    epochs: int = field(default=6, metadata={"help": "CNN passes over the training clips"})
    min_steps: int = field(default=200, metadata={"help": "at least this many CNN steps (more epochs "
                                                   "on a small library)"})
    crops_per_clip: int = field(default=6, metadata={"help": "random CNN windows per clip per epoch"})
    batch_size: int = 64
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate (one-cycle schedule)"})
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    segment: float = field(default=3.0, metadata={"help": "CNN window length in seconds"})
    n_mels: int = 64
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128],
                                metadata={"help": "conv block widths, comma-separated"})
    embed_dim: int = 128
    dropout: float = 0.3
    gain_db: float = field(default=6.0, metadata={"help": "random log-mel gain, +- dB"})
    time_mask: int = field(default=16, metadata={"help": "longest masked run of frames"})
    freq_mask: int = field(default=8, metadata={"help": "widest masked band of mel bins"})
    eval_every: int = field(default=4, metadata={"help": "epochs between held-out checks in the log"})
    max_per_genre: int = field(default=0, metadata={"help": "use at most this many clips per genre (0: all)"})
    workers: int = field(default=2, metadata={"help": "processes for feature extraction"})
    threads: int = field(default=1, metadata={"help": "torch threads for the CNN (0: all cores; on a "
                                               "shared 2-core machine one thread was 2.5x faster than two)"})
    cache_dir: str = field(default="", metadata={"help": "keep per-clip features here for reruns"})
    library_builder: str = field(default="", metadata={"help": "how the library was made, for the card"})


def train(cfg: TrainConfig, *, command: str | None = None, log=print) -> dict:
    """Prepare, fit both judges, test them clean and degraded, write checkpoints and card."""
    from ..library import Library
    t_start = time.time()
    torch.set_num_threads(cfg.threads or os.cpu_count() or 1)
    root, out = Path(cfg.genres), Path(cfg.out)
    library = Library(root).scan()
    clips = {g: library.genre_clips(g) for g in GENRES}
    if cfg.max_per_genre > 0:
        clips = {g: c[: cfg.max_per_genre] for g, c in clips.items()}
    by_key = {c.key: c for cs in clips.values() for c in cs}
    for s in library.skipped:
        log(f"skipped {s.path}: {s.reason}")
    log(f"{len(by_key)} clips in {root}: " + ", ".join(f"{g} {len(c)}" for g, c in clips.items() if c))
    train_keys, test_keys = split_keys(list(by_key), fraction=cfg.test_fraction, seed=cfg.split_seed)
    mel = MelParams(n_mels=cfg.n_mels, segment=cfg.segment)
    dp = DescriptorParams()
    plan = Plan(mel.asdict(), dp.asdict(), copies=cfg.copies, crop_seconds=cfg.crop_seconds,
                test_seconds=cfg.test_seconds, seed=cfg.seed)
    jobs = [(str(by_key[k].path), k, "train") for k in train_keys] + \
           [(str(by_key[k].path), k, "test") for k in test_keys]
    results = compute_all(jobs, plan, workers=cfg.workers, cache=cfg.cache_dir or None, log=log)
    data, unreadable = {}, []
    for (_, key, _), r in zip(jobs, results):
        if isinstance(r, str):
            unreadable.append({"path": key, "reason": r})
            log(f"skipped {key}: {r}")
        else:
            data[key] = r
    t_features = time.time() - t_start
    train_keys = [k for k in train_keys if k in data]
    genres = [g for g in GENRES if any(by_key[k].genre == g for k in train_keys)]
    test_keys = [k for k in test_keys if k in data and by_key[k].genre in genres]
    if len(genres) < 2 or not test_keys:
        raise SystemExit(f"need at least two genres with training clips and some held-out clips in "
                         f"{root}; found {len(train_keys)} training and {len(test_keys)} held-out clips")
    label = {g: i for i, g in enumerate(genres)}
    y_train = [label[by_key[k].genre] for k in train_keys]
    y_test = [label[by_key[k].genre] for k in test_keys]
    split = split_facts(data, fraction=cfg.test_fraction, seed=cfg.split_seed)
    log(f"split: {len(train_keys)} train clips, {len(test_keys)} held-out clips, {len(genres)} genres")

    base_ck = {"format": FORMAT, "format_version": FORMAT_VERSION, "genres": genres, "mel": mel.asdict(),
               "config": _plain(asdict(cfg)), "split": split}

    def cnn_judge(model, mean, std) -> GenreClassifier:
        return GenreClassifier({**base_ck, "model_args": model.args.asdict(), "state_dict": model.state_dict(),
                                "norm_mean": torch.from_numpy(np.array(mean).reshape(-1)),
                                "norm_std": torch.from_numpy(np.array(std).reshape(-1))}, warm_up=False)

    def evaluate(model, mean, std) -> dict:
        model.eval()
        clf = cnn_judge(model, mean, std)
        probs = [clf.from_logmel(data[k]["logmel"][0].astype(np.float32))[0] for k in test_keys]
        loss = float(np.mean([-np.log(max(p[t], 1e-9)) for p, t in zip(probs, y_test)]))
        model.train()
        return {"test_loss": round(loss, 4), "test_accuracy": accuracy(y_test, probs)}

    t0 = time.time()
    model, norm, history = train_cnn(cfg, mel.frames, [data[k]["logmel"] for k in train_keys], y_train,
                                     len(genres), evaluate, log)
    t_cnn = time.time() - t0
    t0 = time.time()
    X = np.concatenate([data[k]["desc"] for k in train_keys])
    rows_y = np.concatenate([[label[by_key[k].genre]] * len(data[k]["desc"]) for k in train_keys])
    groups = np.concatenate([[i] * len(data[k]["desc"]) for i, k in enumerate(train_keys)])
    fitted = fit_features(X, rows_y, groups, cfg.seed, log)
    t_lin = time.time() - t0

    cnn = cnn_judge(model, norm["mean"], norm["std"])
    feats = FeatureJudge(feature_checkpoint(genres, dp, fitted), warm_up=False)
    table, clean = robustness(cnn, feats, data, test_keys, y_test, genres)
    log("held-out accuracy (clean whole clip / each condition on the excerpt):")
    for judge, row in table.items():
        log(f"  {judge:9s} " + "  ".join(f"{c} {a:.3f}" for c, a in row.items()))
    degraded = {j: {c: a for c, a in row.items() if c != "clean_whole_clip"} for j, row in table.items()}
    ck = {**base_ck, "model_args": model.args.asdict(), "state_dict": model.state_dict(),
          "norm_mean": torch.from_numpy(norm["mean"].copy()), "norm_std": torch.from_numpy(norm["std"].copy()),
          "epoch": history[-1]["epoch"], "step": history[-1]["step"],
          "metrics": {"accuracy": table["cnn"]["clean_whole_clip"], "accuracy_degraded": degraded["cnn"],
                      "test_clips": len(test_keys)}}
    fck = feature_checkpoint(genres, dp, fitted, split=split, config=_plain(asdict(cfg)),
                             metrics={"accuracy": table["features"]["clean_whole_clip"],
                                      "accuracy_degraded": degraded["features"], "test_clips": len(test_keys)})
    out.mkdir(parents=True, exist_ok=True)
    _atomic(out / CHECKPOINT_NAME, lambda p: torch.save(ck, p))
    _atomic(out / FEATURES_NAME, lambda p: torch.save(fck, p))
    judges = load_judges(out)  # prove both files reload with weights_only=True
    wall = time.time() - t_start
    card = {
        "model": "MelodyMaker genre judges", "version": judges.version, "combination": COMBINATION,
        "command": command or "python -m melodymaker.classify train " + " ".join(_argv(cfg)),
        "library": library_facts(root, clips, library, unreadable, builder=cfg.library_builder),
        "split": split,
        "augmentation": {"copies_per_training_clip": cfg.copies, "excerpt_seconds": cfg.crop_seconds,
                         "cnn_clean_share": cfg.clean_share,
                         "chain": "1-3 degradations drawn and ordered at random (degrade.augment)",
                         "degradations": {k: v for k, v in degrade.DESCRIPTIONS.items() if k in degrade.DEGRADATIONS},
                         "cnn_also": f"random log-mel gain ±{cfg.gain_db:g} dB, time and frequency masking",
                         "never": "the output of any generation mode"},
        "judges": {
            "cnn": {"checkpoint": CHECKPOINT_NAME, "version": judges.cnn.version,
                    "bytes": (out / CHECKPOINT_NAME).stat().st_size, "features": judges.cnn.info["features"],
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "model_args": model.args.asdict(), "mel": mel.asdict()},
            "features": {"checkpoint": FEATURES_NAME, "version": judges.features.version,
                         "bytes": (out / FEATURES_NAME).stat().st_size, "features": judges.features.info["features"],
                         "n_features": len(names(dp)), "C": fitted["C"], "cv_accuracy": fitted["cv_accuracy"],
                         "cv": fitted["cv"], "descriptors": dp.asdict()}},
        "training": {"epochs": ck["epoch"], "steps": ck["step"], "batch_size": cfg.batch_size,
                     "windows_per_epoch": len(train_keys) * cfg.crops_per_clip,
                     "feature_rows": int(len(X)), "wall_time_s": round(wall, 1),
                     "feature_time_s": round(t_features, 1), "cnn_time_s": round(t_cnn, 1),
                     "feature_judge_time_s": round(t_lin, 1), "device": _device(),
                     "final_train_loss": history[-1]["train_loss"],
                     "final_test_loss": history[-1].get("test_loss"),
                     "history": history},
        "results": {"test_clips": len(test_keys), "excerpt_seconds": cfg.test_seconds,
                    "conditions": {c: degrade.DESCRIPTIONS[c] for c in degrade.CONDITIONS},
                    "accuracy": table, **clean},
        "genres": genres, "config": _plain(asdict(cfg)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _atomic(out / CARD_NAME, lambda p: Path(p).write_text(json.dumps(card, indent=2) + "\n"))
    _atomic(out / "README.md", lambda p: Path(p).write_text(render_markdown(card)))
    log(f"wrote {out / CHECKPOINT_NAME} ({card['judges']['cnn']['bytes'] / 1e6:.2f} MB), "
        f"{out / FEATURES_NAME} ({card['judges']['features']['bytes'] / 1e3:.0f} kB) and {out / CARD_NAME} "
        f"in {wall:.0f} s")
    return card


def robustness(cnn: GenreClassifier, feats: FeatureJudge, data: dict, keys: list[str], y: list[int],
               genres: list[str]) -> tuple[dict, dict]:
    """({judge: {condition: accuracy}} for cnn, features and combined, with "clean_whole_clip"
    first; {judge: scores on the clean whole clips}) over the held-out clips."""
    from .judges import combine
    table, clean = {"cnn": {}, "features": {}, "combined": {}}, {}
    conditions = ["clean_whole_clip", *degrade.CONDITIONS]
    per = {j: {c: [] for c in conditions} for j in table}
    for k in keys:
        p_feat = feats.from_descriptors(data[k]["desc"])
        for i, c in enumerate(conditions):
            p_cnn = cnn.from_logmel(data[k]["logmel"][i].astype(np.float32))[0]
            both = combine(dict(enumerate(p_cnn)), dict(enumerate(p_feat[i])))
            per["cnn"][c].append(p_cnn)
            per["features"][c].append(p_feat[i])
            per["combined"][c].append(np.array([both[j] for j in range(len(genres))]))
    for j in table:
        table[j] = {c: accuracy(y, per[j][c]) for c in conditions}
        if j != "combined":
            clean[j] = scores(y, [int(np.argmax(p)) for p in per[j]["clean_whole_clip"]], genres)
    return table, clean


def _device() -> str:
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads), " \
           f"torch {torch.__version__}"


def _atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _plain(d: dict) -> dict:
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


def _argv(cfg: TrainConfig) -> list[str]:
    import shlex
    default = TrainConfig()
    args = []
    for k, v in asdict(cfg).items():
        if v != getattr(default, k) or k in ("genres", "out", "seed"):
            v = ",".join(map(str, v)) if isinstance(v, list) else str(v)
            args += [f"--{k.replace('_', '-')}", shlex.quote(v)]
    return args


# -- the command line ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import argparse
    import shlex

    from ..trainkit import add_dataclass_arguments, config_from_args
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m melodymaker.classify",
                                description="The genre judges: train them, or judge audio files.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train both judges on a genres/ folder")
    add_dataclass_arguments(t, TrainConfig)
    pr = sub.add_parser("predict", help="genre probabilities of audio files, by each judge and combined")
    pr.add_argument("files", nargs="+")
    pr.add_argument("--models", default="models", help="models folder (default: models)")
    args = p.parse_args(argv)
    if args.command == "train":
        cfg = config_from_args(args, TrainConfig)
        train(cfg, command="python -m melodymaker.classify " + " ".join(shlex.quote(a) for a in argv),
              log=lambda m: print(m, flush=True))
        return 0
    from .. import audio
    judges = load_judges(Path(args.models))
    for f in args.files:
        v = judges.verdict(audio.load(f), SAMPLE_RATE)
        print(f"{f}: " + "; ".join(
            f"{name} " + ", ".join(f"{g} {p:.2f}" for g, p in sorted(getattr(v, name).items(),
                                                                      key=lambda kv: -kv[1])[:3])
            for name in ("combined", "cnn", "features")))
    return 0

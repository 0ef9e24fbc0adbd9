"""Train the genre classifier on a genres/ folder; write classifier.pt and its card.json.

    python -m melodymaker.classify train --genres genres --out models/classifier --seed 0

Held-out clips are chosen per genre, seeded, before any audio is cut into windows, so no clip
has windows on both sides. A log-mel CNN and a scikit-learn baseline (logistic regression over
MFCC/chroma/contrast statistics) are trained on the same split; the CNN ships unless the
baseline is strictly more accurate (--backend overrides).
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..options import GENRES, SAMPLE_RATE
from .card import library_facts, render_markdown
from .classifier import CHECKPOINT_NAME, FORMAT, FORMAT_VERSION, GenreClassifier
from .features import SUMMARY_NAMES, MelParams, clip_features
from .model import GenreCNN, ModelArgs

CARD_NAME = "card.json"


@dataclass
class TrainConfig:
    """Every knob of a training run; stored in the checkpoint and the card."""
    genres: str = field(default="genres", metadata={"help": "library folder in GTZAN layout"})
    out: str = field(default="models/classifier", metadata={"help": "where classifier.pt and card.json go"})
    seed: int = field(default=0, metadata={"help": "split, initialisation and augmentation seed"})
    test_fraction: float = field(default=0.2, metadata={"help": "share of each genre's clips held out"})
    epochs: int = field(default=8, metadata={"help": "passes over the training clips"})
    crops_per_clip: int = field(default=6, metadata={"help": "random windows per clip per epoch"})
    batch_size: int = 64
    lr: float = field(default=3e-3, metadata={"help": "peak learning rate (one-cycle schedule)"})
    weight_decay: float = 1e-2
    label_smoothing: float = 0.05
    segment: float = field(default=3.0, metadata={"help": "window length in seconds"})
    n_mels: int = 64
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128],
                                metadata={"help": "conv block widths, comma-separated"})
    embed_dim: int = 128
    dropout: float = 0.3
    gain_db: float = field(default=6.0, metadata={"help": "random gain, +- dB"})
    time_mask: int = field(default=16, metadata={"help": "longest masked run of frames"})
    freq_mask: int = field(default=8, metadata={"help": "widest masked band of mel bins"})
    eval_every: int = field(default=5, metadata={"help": "epochs between held-out checks in the log"})
    max_per_genre: int = field(default=0, metadata={"help": "use at most this many clips per genre (0: all)"})
    workers: int = field(default=2, metadata={"help": "processes for feature extraction"})
    threads: int = field(default=0, metadata={"help": "torch threads (0: all cores)"})
    backend: str = field(default="auto", metadata={"help": "auto | cnn | linear: what the checkpoint serves"})
    library_builder: str = field(default="", metadata={"help": "how the library was made, for the card"})


# -- the split ----------------------------------------------------------------------------------
def split_clips(keys_by_genre: dict[str, list[str]], *, test_fraction: float, seed: int
                ) -> tuple[list[str], list[str]]:
    """(train keys, test keys): per genre, a seeded shuffle of the sorted clip keys, the first
    round(n * test_fraction) held out (at least one when the genre has two or more clips)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for genre in sorted(keys_by_genre):
        keys = sorted(keys_by_genre[genre])
        order = rng.permutation(len(keys))
        n_test = 0 if len(keys) < 2 else min(len(keys) - 1, max(1, round(len(keys) * test_fraction)))
        test += [keys[i] for i in order[:n_test]]
        train += [keys[i] for i in order[n_test:]]
    return train, test


# -- features -----------------------------------------------------------------------------------
def _extract(path: str, mel: dict) -> tuple[np.ndarray, np.ndarray] | str:
    """(log-mel float16, summary float32) of one file, or the reason it cannot be read."""
    from .. import audio
    from ..errors import AudioDecodeError
    try:
        y = audio.load(path)
    except AudioDecodeError as e:
        return e.message
    logmel, summ = clip_features(y, MelParams(**mel))
    return logmel.astype(np.float16), summ


def extract_all(paths: list[str], mel: MelParams, workers: int, log) -> list:
    results = []
    t0 = time.time()
    if workers <= 1:
        iterator = (_extract(p, mel.asdict()) for p in paths)
        pool = None
    else:
        import multiprocessing as mp
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        iterator = pool.map(_extract, paths, [mel.asdict()] * len(paths), chunksize=4)
    try:
        for k, r in enumerate(iterator, 1):
            results.append(r)
            if k % 100 == 0 or k == len(paths):
                log(f"features {k}/{len(paths)} ({time.time() - t0:.0f} s)")
    finally:
        if pool is not None:
            pool.shutdown()
    return results


# -- the CNN ------------------------------------------------------------------------------------
def _batch(mels, starts, width, mean, std, cfg: TrainConfig, rng) -> np.ndarray:
    """Random crops with gain, time and frequency masking, normalised; (B, n_mels, width)."""
    x = np.stack([m[:, s: s + width] for m, s in zip(mels, starts)]).astype(np.float32)
    gain = rng.uniform(-cfg.gain_db, cfg.gain_db, size=(len(x), 1, 1)) * np.log(10) / 10
    x = ((x + gain - mean) / std).astype(np.float32)
    for b in range(len(x)):  # masked regions are set to the mean (0 after normalisation)
        if cfg.time_mask > 0:
            w = rng.integers(0, cfg.time_mask + 1)
            t = rng.integers(0, max(1, width - w))
            x[b, :, t: t + w] = 0.0
        if cfg.freq_mask > 0:
            w = rng.integers(0, cfg.freq_mask + 1)
            f = rng.integers(0, max(1, x.shape[1] - w))
            x[b, f: f + w, :] = 0.0
    return x


def train_cnn(cfg: TrainConfig, mel: MelParams, train_mels, train_labels, n_genres: int,
              evaluate, log) -> tuple[GenreCNN, dict, list[dict]]:
    """Fit the CNN; returns (model, normalisation stats, per-epoch history)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    width = mel.frames
    frames = np.concatenate([m.astype(np.float32) for m in train_mels], axis=1)
    mean = frames.mean(axis=1, keepdims=True).astype(np.float32)
    std = (frames.std(axis=1, keepdims=True) + 1e-3).astype(np.float32)
    del frames
    model = GenreCNN(ModelArgs(n_mels=mel.n_mels, n_genres=n_genres, channels=list(cfg.channels),
                               embed_dim=cfg.embed_dim, dropout=cfg.dropout))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = int(np.ceil(len(train_mels) * cfg.crops_per_clip / cfg.batch_size))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * per_epoch,
                                                pct_start=0.2)
    labels = np.asarray(train_labels)
    history, step = [], 0
    for epoch in range(1, cfg.epochs + 1):
        model.train()
        t0 = time.time()
        order = rng.permutation(np.repeat(np.arange(len(train_mels)), cfg.crops_per_clip))
        loss_sum = correct = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i: i + cfg.batch_size]
            mels = [train_mels[j] for j in idx]
            starts = [rng.integers(0, m.shape[1] - width + 1) for m in mels]
            x = torch.from_numpy(_batch(mels, starts, width, mean, std, cfg, rng))
            y = torch.from_numpy(labels[idx])
            logits, _ = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            loss_sum += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == y).sum())
        row = {"epoch": epoch, "step": step, "train_loss": round(loss_sum / len(order), 4),
               "train_window_accuracy": round(correct / len(order), 4),
               "seconds": round(time.time() - t0, 1)}
        if epoch % cfg.eval_every == 0 or epoch == cfg.epochs:
            row.update(evaluate(model, mean, std))
        history.append(row)
        log(" ".join(f"{k} {v}" for k, v in row.items()))
    model.eval()
    return model, {"mean": mean[:, 0], "std": std[:, 0]}, history


# -- the baseline -------------------------------------------------------------------------------
def train_baseline(X: np.ndarray, y: np.ndarray, seed: int) -> dict:
    """StandardScaler + multinomial LogisticRegression; C picked by stratified CV on train only."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    folds = int(min(5, np.bincount(y)[np.bincount(y) > 0].min()))
    best_c, best = 1.0, -1.0
    if folds >= 2:
        cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for c in (0.01, 0.1, 1.0, 10.0):
            pipe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
            score = cross_val_score(pipe, X, y, cv=cv).mean()
            if score > best:
                best_c, best = c, score
    scaler = StandardScaler().fit(X)
    lr = LogisticRegression(C=best_c, max_iter=5000).fit(scaler.transform(X), y)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    return {"mean": torch.tensor(scaler.mean_, dtype=torch.float64),
            "scale": torch.tensor(scale, dtype=torch.float64),
            "coef": torch.tensor(lr.coef_, dtype=torch.float64),
            "intercept": torch.tensor(lr.intercept_, dtype=torch.float64),
            "C": float(best_c), "cv_accuracy": round(float(best), 4),
            "features": list(SUMMARY_NAMES)}


def scores(true: list[int], pred: list[int], genres: list[str]) -> dict:
    """Accuracy, per-genre accuracy (recall) and the confusion matrix (rows: true genre)."""
    k = len(genres)
    conf = np.zeros((k, k), dtype=int)
    for t, p in zip(true, pred):
        conf[t, p] += 1
    per = {g: (round(float(conf[i, i] / conf[i].sum()), 4) if conf[i].sum() else None)
           for i, g in enumerate(genres)}
    return {"accuracy": round(float(np.trace(conf) / max(1, conf.sum())), 4), "per_genre": per,
            "confusion": {"labels": genres, "matrix": conf.tolist()}}


# -- the run ------------------------------------------------------------------------------------
def train(cfg: TrainConfig, *, command: str | None = None, log=print) -> dict:
    """Train, evaluate, write the checkpoint and card; returns the card."""
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
    mel = MelParams(n_mels=cfg.n_mels, segment=cfg.segment)

    log(f"{len(by_key)} clips in {root}: " + ", ".join(f"{g} {len(c)}" for g, c in clips.items() if c))
    results = extract_all([str(by_key[k].path) for k in by_key], mel, cfg.workers, log)
    feats, unreadable = {}, []
    for key, r in zip(by_key, results):
        if isinstance(r, str):
            unreadable.append({"path": key, "reason": r})
            log(f"skipped {key}: {r}")
        else:
            feats[key] = r
    t_features = time.time() - t_start

    keys_by_genre = {g: [c.key for c in cs if c.key in feats] for g, cs in clips.items()}
    keys_by_genre = {g: ks for g, ks in keys_by_genre.items() if ks}
    train_keys, test_keys = split_clips(keys_by_genre, test_fraction=cfg.test_fraction, seed=cfg.seed)
    genres = [g for g in GENRES if any(by_key[k].genre == g for k in train_keys)]
    if len(genres) < 2 or not test_keys:
        raise SystemExit(f"need at least two genres with two readable clips each in {root}; "
                         f"found {({g: len(k) for g, k in keys_by_genre.items()})}")
    label = {g: i for i, g in enumerate(genres)}
    y_train = [label[by_key[k].genre] for k in train_keys]
    y_test = [label[by_key[k].genre] for k in test_keys]
    log(f"split: {len(train_keys)} train clips, {len(test_keys)} held-out clips, {len(genres)} genres")

    base_ck = {"format": FORMAT, "format_version": FORMAT_VERSION, "genres": genres,
               "mel": mel.asdict(), "config": _plain(asdict(cfg))}

    def evaluate(model, mean, std) -> dict:
        model.eval()
        clf = GenreClassifier({**base_ck, "backend": "cnn", "model_args": model.args.asdict(),
                               "state_dict": model.state_dict(), "norm_mean": torch.from_numpy(mean[:, 0]),
                               "norm_std": torch.from_numpy(std[:, 0])}, warm_up=False)
        probs = [clf.from_logmel(feats[k][0].astype(np.float32))[0] for k in test_keys]
        loss = float(np.mean([-np.log(max(p[t], 1e-9)) for p, t in zip(probs, y_test)]))
        acc = float(np.mean([int(np.argmax(p)) == t for p, t in zip(probs, y_test)]))
        model.train()
        return {"test_loss": round(loss, 4), "test_accuracy": round(acc, 4)}

    t0 = time.time()
    model, norm, history = train_cnn(cfg, mel, [feats[k][0] for k in train_keys], y_train,
                                     len(genres), evaluate, log)
    t_cnn = time.time() - t0
    linear = train_baseline(np.stack([feats[k][1] for k in train_keys]), np.asarray(y_train), cfg.seed)

    ck = {**base_ck, "model_args": model.args.asdict(), "state_dict": model.state_dict(),
          "norm_mean": torch.from_numpy(norm["mean"].copy()), "norm_std": torch.from_numpy(norm["std"].copy()),
          "linear": linear, "epoch": cfg.epochs, "step": history[-1]["step"] if history else 0}
    clf = GenreClassifier({**ck, "backend": "cnn"}, warm_up=False)
    cnn = scores(y_test, [int(np.argmax(clf.from_logmel(feats[k][0].astype(np.float32))[0]))
                          for k in test_keys], genres)
    base = scores(y_test, [int(np.argmax(clf.from_summary(feats[k][1])[0])) for k in test_keys], genres)
    backend = cfg.backend if cfg.backend in ("cnn", "linear") else (
        "linear" if base["accuracy"] > cnn["accuracy"] else "cnn")
    shipped = cnn if backend == "cnn" else base
    ck["backend"] = backend
    ck["metrics"] = {"accuracy": shipped["accuracy"], "cnn_accuracy": cnn["accuracy"],
                     "baseline_accuracy": base["accuracy"], "test_clips": len(test_keys)}
    log(f"held-out accuracy: cnn {cnn['accuracy']:.3f}, baseline {base['accuracy']:.3f}; shipping {backend}")

    out.mkdir(parents=True, exist_ok=True)
    ck_path = out / CHECKPOINT_NAME
    _atomic(ck_path, lambda p: torch.save(ck, p))
    loaded = GenreClassifier.from_file(ck_path)  # prove the file reloads with weights_only=True
    wall = time.time() - t_start
    card = {
        "model": "MelodyMaker genre classifier",
        "checkpoint": CHECKPOINT_NAME, "version": loaded.version, "backend": backend,
        "ship_rule": "the CNN unless the baseline is strictly more accurate on the held-out clips"
                     if cfg.backend == "auto" else f"--backend {cfg.backend}",
        "command": command or "python -m melodymaker.classify train " + " ".join(_argv(cfg)),
        "library": library_facts(root, clips, library, unreadable, builder=cfg.library_builder),
        "split": {"method": "stratified by clip (per genre, seeded); every window of a clip stays "
                            "on its clip's side", "seed": cfg.seed, "test_fraction": cfg.test_fraction,
                  "train": len(train_keys), "test": len(test_keys),
                  "train_clips": train_keys, "test_clips": test_keys},
        "training": {"epochs": cfg.epochs, "steps": ck["step"], "batch_size": cfg.batch_size,
                     "windows_per_epoch": len(train_keys) * cfg.crops_per_clip,
                     "wall_time_s": round(wall, 1), "feature_time_s": round(t_features, 1),
                     "cnn_time_s": round(t_cnn, 1), "device": _device(),
                     "final_train_loss": history[-1]["train_loss"] if history else None,
                     "final_test_loss": history[-1].get("test_loss") if history else None,
                     "history": history},
        "results": {"cnn": {"name": "log-mel CNN, windows averaged per clip", **cnn},
                    "baseline": {"name": "StandardScaler + LogisticRegression over 93 MFCC, chroma, "
                                         "spectral-contrast, spectral-shape, ZCR, RMS, onset and tempo "
                                         "statistics", "C": linear["C"],
                                 "cv_accuracy": linear["cv_accuracy"], **base},
                    "shipped": backend},
        "model_args": model.args.asdict(), "mel": mel.asdict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "checkpoint_bytes": ck_path.stat().st_size,
        "genres": genres, "config": _plain(asdict(cfg)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    _atomic(out / CARD_NAME, lambda p: Path(p).write_text(json.dumps(card, indent=2) + "\n"))
    _atomic(out / "README.md", lambda p: Path(p).write_text(render_markdown(card)))
    log(f"wrote {ck_path} ({card['checkpoint_bytes'] / 1e6:.2f} MB) and {out / CARD_NAME} "
        f"in {wall:.0f} s")
    return card


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
def add_arguments(p) -> None:
    """One --option per TrainConfig field, typed and defaulted from the dataclass."""
    from ..trainkit import add_dataclass_arguments
    add_dataclass_arguments(p, TrainConfig)


def main(argv: list[str] | None = None) -> int:
    import argparse
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog="python -m melodymaker.classify",
                                description="The genre classifier: train it, or classify files.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train on a genres/ folder; write classifier.pt and card.json")
    add_arguments(t)
    pr = sub.add_parser("predict", help="genre probabilities of audio files")
    pr.add_argument("files", nargs="+")
    pr.add_argument("--models", default="models", help="models folder (default: models)")
    args = p.parse_args(argv)
    if args.command == "train":
        from ..trainkit import config_from_args
        cfg = config_from_args(args, TrainConfig)
        import shlex
        train(cfg, command="python -m melodymaker.classify " + " ".join(shlex.quote(a) for a in argv),
              log=lambda m: print(m, flush=True))
        return 0
    from .. import audio
    from .classifier import load_classifier
    clf = load_classifier(Path(args.models))
    for f in args.files:
        probs = clf.predict(audio.load(f), SAMPLE_RATE)
        top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
        print(f"{f}: " + ", ".join(f"{g} {p:.2f}" for g, p in top))
    return 0

"""Fitting the two judges on prepared clips: the CNN by SGD over random windows, the feature judge
by logistic regression with its regularisation picked by clip-grouped cross-validation."""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F

from .model import GenreCNN, ModelArgs


# -- the CNN ------------------------------------------------------------------------------------
def _batch(mels, starts, width, mean, std, cfg, rng) -> np.ndarray:
    """Crops with a random gain, time and frequency masking, normalised; (B, n_mels, width)."""
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


def _pad(m: np.ndarray, width: int) -> np.ndarray:
    if m.shape[1] >= width:
        return m
    return np.concatenate([m, np.full((m.shape[0], width - m.shape[1]), m.min(), m.dtype)], axis=1)


def train_cnn(cfg, width: int, versions: list[list[np.ndarray]], labels: list[int], n_genres: int,
              evaluate, log) -> tuple[GenreCNN, dict, list[dict]]:
    """Fit the CNN on windows of `width` frames; versions[i] holds clip i's clean log-mel first and
    its augmented copies after it; a window is clean with probability cfg.clean_share, else from
    one of the copies.
    Returns (model, normalisation stats from the clean log-mels, per-epoch history)."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed + 1)
    versions = [[_pad(m, width) for m in vs] for vs in versions]
    frames = np.concatenate([vs[0].astype(np.float32) for vs in versions], axis=1)
    mean = frames.mean(axis=1, keepdims=True).astype(np.float32)
    std = (frames.std(axis=1, keepdims=True) + 1e-3).astype(np.float32)
    del frames
    model = GenreCNN(ModelArgs(n_mels=cfg.n_mels, n_genres=n_genres, channels=list(cfg.channels),
                               embed_dim=cfg.embed_dim, dropout=cfg.dropout))
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = int(np.ceil(len(versions) * cfg.crops_per_clip / cfg.batch_size))
    epochs = max(cfg.epochs, -(-cfg.min_steps // per_epoch))  # a tiny library needs more passes
    total = epochs * per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=max(total, 10),
                                                pct_start=0.2)  # at least 10: a tiny run still warms up
    labels = np.asarray(labels)
    history, step = [], 0
    for epoch in range(1, epochs + 1):
        model.train()
        t0 = time.time()
        order = rng.permutation(np.repeat(np.arange(len(versions)), cfg.crops_per_clip))
        loss_sum = correct = 0.0
        for i in range(0, len(order), cfg.batch_size):
            idx = order[i: i + cfg.batch_size]
            pick = [0 if len(versions[j]) == 1 or rng.random() < cfg.clean_share
                    else rng.integers(1, len(versions[j])) for j in idx]
            mels = [versions[j][v] for j, v in zip(idx, pick)]
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
        if epoch % cfg.eval_every == 0 or epoch == epochs:
            row.update(evaluate(model, mean, std))
        history.append(row)
        log("cnn " + " ".join(f"{k} {v}" for k, v in row.items()))
    model.eval()
    return model, {"mean": mean[:, 0], "std": std[:, 0]}, history


# -- the feature judge --------------------------------------------------------------------------
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)


def fit_features(X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, log=print) -> dict:
    """StandardScaler + multinomial LogisticRegression; C picked by cross-validation on the
    training rows only, folds grouped by clip (a clip's augmented copies never straddle a fold).
    Returns mean, scale, coef, intercept (arrays), C, cv_accuracy and the per-C scores."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1):  # small problems: BLAS threads only fight over the cores (10x slower)
        return _fit_features(X, y, groups, seed, log)


def _fit_features(X: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int, log) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.preprocessing import StandardScaler
    t0 = time.time()
    per_class = np.array([len(set(groups[y == c])) for c in np.unique(y)])
    folds = int(min(5, per_class.min()))
    grid, best_c, best = {}, 0.1, -1.0
    if folds >= 2:
        cv = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
        for c in C_GRID:
            accs = []
            for tr, te in cv.split(X, y, groups):
                sc = StandardScaler().fit(X[tr])
                lr = LogisticRegression(C=c, max_iter=3000).fit(sc.transform(X[tr]), y[tr])
                accs.append(float(np.mean(lr.predict(sc.transform(X[te])) == y[te])))
            grid[str(c)] = round(float(np.mean(accs)), 4)
            if grid[str(c)] > best:
                best_c, best = c, grid[str(c)]
    scaler = StandardScaler().fit(X)
    scale = np.where(scaler.scale_ > 0, scaler.scale_, 1.0)
    lr = LogisticRegression(C=best_c, max_iter=5000).fit((X - scaler.mean_) / scale, y)
    log(f"features: C={best_c} (cv {grid}) in {time.time() - t0:.0f} s")
    return {"mean": scaler.mean_, "scale": scale, "coef": lr.coef_, "intercept": lr.intercept_,
            "C": float(best_c), "cv_accuracy": round(float(best), 4) if grid else None, "cv": grid}


# -- scores -------------------------------------------------------------------------------------
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


def accuracy(true: list[int], probs: list[np.ndarray]) -> float:
    return round(float(np.mean([int(np.argmax(p)) == t for p, t in zip(probs, true)])), 4)

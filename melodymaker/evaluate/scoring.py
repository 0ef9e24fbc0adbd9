"""Scoring audio by the two genre judges (the CNN and the feature baseline): per track, then per set."""
from __future__ import annotations

from pathlib import Path

import numpy as np

JUDGES = ("cnn", "features")


def load_judges(models_dir: str | Path):
    """(judges, None), or (None, the reason they cannot be loaded): evaluate reports the reason in
    every column that needs them instead of failing."""
    try:
        from ..classify import load_judges as load
    except ImportError as e:
        return None, f"this version has no genre judges (melodymaker.classify.load_judges: {e})"
    try:
        return load(Path(models_dir) / "classifier"), None
    except Exception as e:  # missing or broken checkpoints: a reason, never a crash
        return None, f"{type(e).__name__}: {e}"


def judge(judges, y: np.ndarray, sr: int, genre: str) -> tuple[dict, np.ndarray]:
    """What both judges say of one track meant to be `genre`: for each judge its top genre and its
    probability of `genre`, the combined probability (the judges' renormalised geometric mean),
    and the CNN embedding (for the Fréchet distance)."""
    v = judges.verdict(y, sr)
    row = {}
    for name in JUDGES:
        probs = getattr(v, name)
        row[f"{name}_top1"] = max(probs, key=probs.get)
        row[f"{name}_p"] = round(float(probs.get(genre, 0.0)), 4)
    row["combined_p"] = round(float(v.combined.get(genre, 0.0)), 4)
    return row, np.asarray(v.embedding, dtype=np.float32)


def fit_summary(rows: list[dict], genre_key: str = "genre") -> dict:
    """Top-1 accuracy and mean probability of each judge over scored rows, and the genre fit:
    the lower of the two accuracies. Rows without judgements are left out; all None when none."""
    scored = [r for r in rows if "cnn_top1" in r]
    out: dict = {"scored": len(scored)}
    for name in JUDGES:
        out[f"fit_{name}"] = (round(float(np.mean([r[f"{name}_top1"] == r[genre_key] for r in scored])), 3)
                              if scored else None)
        out[f"mean_p_{name}"] = round(float(np.mean([r[f"{name}_p"] for r in scored])), 3) if scored else None
    out["mean_p_combined"] = round(float(np.mean([r["combined_p"] for r in scored])), 3) if scored else None
    fits = [out[f"fit_{name}"] for name in JUDGES]
    out["genre_fit"] = min(fits) if scored else None
    return out

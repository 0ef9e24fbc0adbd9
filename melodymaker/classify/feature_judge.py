"""The feature judge: logistic regression over MFCC, chroma, spectral-contrast and rhythm statistics.

Its checkpoint holds no pickled objects: the scaler's mean and scale and the regression's
coefficients and intercepts are tensors in a dict, read with torch.load(weights_only=True).
Pure numpy at inference, so it may run from several threads at once.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..options import GENRES
from .classifier import build_from_file, full_probabilities, prepare_audio
from .descriptors import DescriptorParams, descriptors, names

CHECKPOINT_NAME = "features.pt"
FORMAT = "melodymaker-genre-features"
FORMAT_VERSION = 1


class FeatureJudge:
    """Genre probabilities from the clip's descriptor statistics (descriptors.py)."""

    def __init__(self, checkpoint: dict, *, name: str = CHECKPOINT_NAME, version: str = "unsaved",
                 warm_up: bool = True):
        ck = _validate(checkpoint)
        self.checkpoint_name, self.version = name, version
        self.genres: tuple[str, ...] = tuple(ck["genres"])
        self.params = DescriptorParams(**ck["descriptors"])
        self.metrics: dict = dict(ck.get("metrics", {}))
        self.split: dict = dict(ck.get("split", {}))
        self.C = float(ck.get("C", 0.0))
        self._index = np.array([GENRES.index(g) for g in self.genres])
        self._mean = ck["mean"].double().numpy()
        self._scale = ck["scale"].double().numpy()
        self._coef = ck["coef"].double().numpy()
        self._intercept = ck["intercept"].double().numpy()
        if warm_up:  # librosa's filters are built and cached on first use: pay that here, once
            self.predict(np.zeros(self.params.sr // 2, dtype=np.float32), self.params.sr)

    @classmethod
    def from_file(cls, path: str | Path) -> "FeatureJudge":
        return build_from_file(cls, path, "feature judge")

    def predict(self, y: np.ndarray, sr: int) -> dict[str, float]:
        """Probability of each of options.GENRES (summing to 1) for the whole track."""
        y = prepare_audio(y, sr, self.params.sr)
        return full_probabilities(self.from_descriptors(descriptors(y, self.params)), self._index)

    def from_descriptors(self, features: np.ndarray) -> np.ndarray:
        """Probabilities over self.genres from descriptors of shape (d,) or (n, d) -> (k,) or (n, k)."""
        z = (np.asarray(features, dtype=np.float64) - self._mean) / self._scale
        logits = z @ self._coef.T + self._intercept
        if logits.shape[-1] == 1:  # scikit-learn's binary case: one logit for the second class
            logits = np.concatenate([np.zeros_like(logits), logits], axis=-1)
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        return p / p.sum(axis=-1, keepdims=True)

    @property
    def info(self) -> dict:
        m = self.metrics
        return {"name": self.checkpoint_name, "version": self.version, "judge": "features",
                "features": f"{len(self._mean)} MFCC, chroma, spectral-contrast, timbre and rhythm "
                            "statistics (Hamming STFT 2048/1024, 40 HTK mel bands)",
                "model": f"standardise + multinomial logistic regression (C={self.C:g})",
                "accuracy": m.get("accuracy"), "accuracy_degraded": m.get("accuracy_degraded"),
                "genres": list(self.genres)}


def checkpoint(genres: list[str], params: DescriptorParams, fitted: dict, **extra) -> dict:
    """The self-describing dict a FeatureJudge is built from (fitted: mean, scale, coef, intercept
    as arrays, and C)."""
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "genres": list(genres),
            "descriptors": params.asdict(), "feature_names": names(params),
            **{k: torch.as_tensor(np.asarray(fitted[k], dtype=np.float64))
               for k in ("mean", "scale", "coef", "intercept")},
            "C": float(fitted["C"]), **extra}


def _validate(ck) -> dict:
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError("not a MelodyMaker feature-judge checkpoint")
    if ck.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint format version {ck.get('format_version')} is not "
                         f"{FORMAT_VERSION}; retrain with python -m melodymaker.classify train")
    unknown = [g for g in ck.get("genres", []) if g not in GENRES]
    if not ck.get("genres") or unknown:
        raise ValueError(f"checkpoint genres {ck.get('genres')} are not a subset of {list(GENRES)}")
    for key in ("mean", "scale", "coef", "intercept"):
        if not isinstance(ck.get(key), torch.Tensor):
            raise ValueError(f"feature-judge checkpoint has no {key}")
    d = len(names(DescriptorParams(**ck["descriptors"])))
    if ck["mean"].shape != (d,) or ck["coef"].shape[-1] != d:
        raise ValueError(f"feature-judge checkpoint expects {tuple(ck['mean'].shape)} features; "
                         f"this code makes {d}")
    return ck

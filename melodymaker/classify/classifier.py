"""GenreClassifier: load a checkpoint, then genre probabilities and embeddings for any audio.

Stateless per call: the network is read-only after loading, so predict/embed may run from
several threads at once.
"""
from __future__ import annotations

import hashlib
import io
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import audio
from ..options import GENRES
from .features import MelParams, clip_features, log_mel, spectrum, windows
from .model import GenreCNN, ModelArgs

CHECKPOINT_NAME = "classifier.pt"
FORMAT = "melodymaker-genre-classifier"
FORMAT_VERSION = 1
BACKENDS = ("cnn", "linear")
BATCH_WINDOWS = 32  # windows per forward pass: bounds memory on long uploads


class GenreClassifier:
    """Genre probabilities and a similarity embedding from a self-describing checkpoint dict.

    backend "cnn": a log-mel CNN averaged over overlapping windows; embedding = its penultimate
    layer averaged over windows. backend "linear": logistic regression over clip summary
    features; embedding = the standardised features. Either way embeddings are L2-normalised.
    """

    def __init__(self, checkpoint: dict, *, name: str = CHECKPOINT_NAME, version: str = "unsaved",
                 warm_up: bool = True):
        ck = _validate(checkpoint)
        self.checkpoint_name, self.version = name, version
        self.backend: str = ck["backend"]
        self.genres: tuple[str, ...] = tuple(ck["genres"])
        self.mel = MelParams(**ck["mel"])
        self.metrics: dict = dict(ck.get("metrics", {}))
        self._index = np.array([GENRES.index(g) for g in self.genres])
        self.model = None
        if ck.get("state_dict") is not None:
            self.model = GenreCNN(ModelArgs(**ck["model_args"]))
            self.model.load_state_dict(ck["state_dict"])
            self.model.eval()
            self._mean = ck["norm_mean"].float().numpy()[:, None]
            self._std = ck["norm_std"].float().numpy()[:, None]
        lin = ck.get("linear")
        if lin is not None:
            self._lin_mean = lin["mean"].double().numpy()
            self._lin_scale = lin["scale"].double().numpy()
            self._lin_coef = lin["coef"].double().numpy()
            self._lin_intercept = lin["intercept"].double().numpy()
        if warm_up:  # librosa's filters and features compile on first use: pay that here, once
            self.predict_and_embed(np.zeros(self.mel.sr // 2, dtype=np.float32), self.mel.sr)

    @classmethod
    def from_file(cls, path: str | Path) -> "GenreClassifier":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no classifier checkpoint at {path} "
                                    "(train one: python -m melodymaker.classify train)")
        data = path.read_bytes()
        try:
            ck = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for damaged files; all mean "broken"
            raise ValueError(f"classifier checkpoint {path.name} is not readable "
                             f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})") from e
        try:
            return cls(ck, name=path.name, version=hashlib.sha256(data).hexdigest()[:12])
        except ValueError as e:
            raise ValueError(f"classifier checkpoint {path.name}: {e}") from e
        except (KeyError, TypeError, RuntimeError, AttributeError) as e:
            raise ValueError(f"classifier checkpoint {path.name} does not match this code "
                             f"({type(e).__name__}: {str(e)[:160]})") from e

    # -- the API ------------------------------------------------------------------------------
    def predict(self, y: np.ndarray, sr: int) -> dict[str, float]:
        """Probability of each of options.GENRES (summing to 1) for the whole track."""
        return self.predict_and_embed(y, sr)[0]

    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        """A fixed-size, L2-normalised float32 vector; similar music has a high dot product."""
        return self.predict_and_embed(y, sr)[1]

    def predict_and_embed(self, y: np.ndarray, sr: int) -> tuple[dict[str, float], np.ndarray]:
        """Both in one pass over the audio."""
        y = _prepare(y, sr, self.mel.sr)
        if self.backend == "cnn":
            probs, emb = self.from_logmel(log_mel(spectrum(y, self.mel), self.mel))
        else:
            probs, emb = self.from_summary(clip_features(y, self.mel)[1])
        return self._full(probs), emb

    @property
    def info(self) -> dict:
        m = self.metrics
        return {"name": self.checkpoint_name, "version": self.version, "backend": self.backend,
                "accuracy": m.get("accuracy"), "cnn_accuracy": m.get("cnn_accuracy"),
                "baseline_accuracy": m.get("baseline_accuracy"), "genres": list(self.genres),
                "embedding_size": self.embedding_size}

    @property
    def embedding_size(self) -> int:
        if self.backend == "cnn":
            return int(self.model.args.embed_dim)
        return int(self._lin_mean.shape[0])

    # -- the two backends on precomputed features (training evaluates through these) ----------
    def from_logmel(self, logmel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities over self.genres, embedding) from a log-mel of shape (n_mels, frames)."""
        x = (windows(np.asarray(logmel, dtype=np.float32), self.mel) - self._mean) / self._std
        probs, embs = [], []
        with torch.inference_mode():
            for i in range(0, len(x), BATCH_WINDOWS):
                logits, e = self.model(torch.from_numpy(np.ascontiguousarray(x[i: i + BATCH_WINDOWS])))
                probs.append(torch.softmax(logits.double(), dim=1).sum(dim=0))
                embs.append(e.double().sum(dim=0))
        p = (torch.stack(probs).sum(dim=0) / len(x)).numpy()
        return p / p.sum(), _unit(torch.stack(embs).sum(dim=0).numpy())

    def from_summary(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities over self.genres, embedding) from summary features of shape (93,)."""
        z = (np.asarray(features, dtype=np.float64) - self._lin_mean) / self._lin_scale
        logits = self._lin_coef @ z + self._lin_intercept
        if len(logits) == 1:  # scikit-learn's binary case: one logit for the second class
            logits = np.array([0.0, logits[0]])
        p = np.exp(logits - logits.max())
        return p / p.sum(), _unit(z)

    def _full(self, probs: np.ndarray) -> dict[str, float]:
        full = np.zeros(len(GENRES))
        full[self._index] = probs
        full /= full.sum()
        return {g: float(v) for g, v in zip(GENRES, full)}


def load_classifier(models_dir: str | Path) -> GenreClassifier:
    """The classifier in models_dir (models/ or models/classifier/).

    Raises FileNotFoundError when there is no checkpoint, ValueError when it is damaged or
    from an incompatible version; the message says which and what to do.
    """
    models_dir = Path(models_dir)
    for candidate in (models_dir / "classifier" / CHECKPOINT_NAME, models_dir / CHECKPOINT_NAME):
        if candidate.is_file():
            return GenreClassifier.from_file(candidate)
    return GenreClassifier.from_file(models_dir / "classifier" / CHECKPOINT_NAME)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two sets of embeddings, shapes (n, d), (m, d)."""
    from scipy import linalg
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least two embeddings on each side")
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    with warnings.catch_warnings():  # few samples in many dimensions: singular, and that is fine
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(covmean)):  # near-singular: regularise, as the FID reference does
        eps = 1e-6 * np.eye(len(mu_a))
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    value = np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


# -- helpers ------------------------------------------------------------------------------------
def _prepare(y: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:  # (channels, n) as librosa has it, or (n, channels) as soundfile does
        y = y.mean(axis=0 if y.shape[0] < y.shape[1] else 1)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"audio must be a non-empty mono array, got shape {np.shape(y)}")
    if not np.all(np.isfinite(y)):
        raise ValueError("audio holds non-finite samples")
    if int(sr) <= 0:
        raise ValueError(f"sample rate must be positive, got {sr}")
    return audio.resample(y, int(sr), target_sr)


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v)
    if norm < 1e-12:  # an all-zero embedding (e.g. silence through dead units): pick a fixed unit
        v = np.ones_like(v)
        norm = np.linalg.norm(v)
    return (v / norm).astype(np.float32)


def _validate(ck) -> dict:
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        raise ValueError("not a MelodyMaker genre-classifier checkpoint")
    if ck.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"checkpoint format version {ck.get('format_version')} is not "
                         f"{FORMAT_VERSION}; retrain with python -m melodymaker.classify train")
    if ck.get("backend") not in BACKENDS:
        raise ValueError(f"unknown classifier backend {ck.get('backend')!r}")
    unknown = [g for g in ck.get("genres", []) if g not in GENRES]
    if not ck.get("genres") or unknown:
        raise ValueError(f"checkpoint genres {ck.get('genres')} are not a subset of {list(GENRES)}")
    if ck["backend"] == "cnn" and ck.get("state_dict") is None:
        raise ValueError("cnn checkpoint has no weights")
    if ck["backend"] == "linear" and ck.get("linear") is None:
        raise ValueError("linear checkpoint has no coefficients")
    return ck

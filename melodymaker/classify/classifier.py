"""The CNN judge: a log-mel CNN checkpoint, then genre probabilities and embeddings for any audio.

Stateless per call: the network is read-only after loading, so predict/embed may run from
several threads at once. The other judge (feature_judge.py) shares no features with this one.
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
from .features import MelParams, log_mel, spectrum, windows
from .model import GenreCNN, ModelArgs

CHECKPOINT_NAME = "classifier.pt"
FORMAT = "melodymaker-genre-classifier"
FORMAT_VERSION = 2   # 2: the CNN alone (the feature judge has its own file), trained with degradations
BATCH_WINDOWS = 32  # windows per forward pass: bounds memory on long uploads


class GenreClassifier:
    """Genre probabilities and a similarity embedding from a self-describing CNN checkpoint dict.

    A log-mel CNN averaged over overlapping windows; the embedding is its penultimate layer
    averaged over windows, L2-normalised.
    """

    def __init__(self, checkpoint: dict, *, name: str = CHECKPOINT_NAME, version: str = "unsaved",
                 warm_up: bool = True):
        ck = _validate(checkpoint)
        self.checkpoint_name, self.version = name, version
        self.genres: tuple[str, ...] = tuple(ck["genres"])
        self.mel = MelParams(**ck["mel"])
        self.metrics: dict = dict(ck.get("metrics", {}))
        self.split: dict = dict(ck.get("split", {}))
        self._index = np.array([GENRES.index(g) for g in self.genres])
        self.model = GenreCNN(ModelArgs(**ck["model_args"]))
        self.model.load_state_dict(ck["state_dict"])
        self.model.eval()
        self._mean = ck["norm_mean"].float().numpy()[:, None]
        self._std = ck["norm_std"].float().numpy()[:, None]
        if warm_up:  # first calls allocate and pick kernels: pay that here, once
            self.predict_and_embed(np.zeros(self.mel.sr // 2, dtype=np.float32), self.mel.sr)

    @classmethod
    def from_file(cls, path: str | Path) -> "GenreClassifier":
        return build_from_file(cls, path, "classifier")

    # -- the API ------------------------------------------------------------------------------
    def predict(self, y: np.ndarray, sr: int) -> dict[str, float]:
        """Probability of each of options.GENRES (summing to 1) for the whole track."""
        return self.predict_and_embed(y, sr)[0]

    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        """A fixed-size, L2-normalised float32 vector; similar music has a high dot product."""
        return self.predict_and_embed(y, sr)[1]

    def predict_and_embed(self, y: np.ndarray, sr: int) -> tuple[dict[str, float], np.ndarray]:
        """Both in one pass over the audio."""
        y = prepare_audio(y, sr, self.mel.sr)
        probs, emb = self.from_logmel(log_mel(spectrum(y, self.mel), self.mel))
        return full_probabilities(probs, self._index), emb

    @property
    def info(self) -> dict:
        m = self.metrics
        return {"name": self.checkpoint_name, "version": self.version, "judge": "cnn",
                "features": "log-mel windows (64 Slaney mel bands, Hann STFT 2048/512)",
                "accuracy": m.get("accuracy"), "accuracy_degraded": m.get("accuracy_degraded"),
                "genres": list(self.genres), "embedding_size": self.embedding_size}

    @property
    def embedding_size(self) -> int:
        return int(self.model.args.embed_dim)

    # -- on precomputed features (training evaluates through this) ---------------------------
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
        return p / p.sum(), unit_vector(torch.stack(embs).sum(dim=0).numpy())


def load_classifier(models_dir: str | Path) -> GenreClassifier:
    """The CNN judge in models_dir (models/ or models/classifier/); load_judges has both judges.

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


# -- helpers both judges use -------------------------------------------------------------------------
def read_checkpoint_file(path: str | Path, what: str) -> tuple[dict, str]:
    """(checkpoint dict loaded with weights_only, version: the first 12 hex digits of its sha256).
    FileNotFoundError when there is no file, ValueError when it is not a readable torch file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} checkpoint at {path} "
                                "(train the judges: python -m melodymaker.classify train)")
    data = path.read_bytes()
    try:
        ck = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for damaged files; all mean "broken"
        raise ValueError(f"{what} checkpoint {path.name} is not readable "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})") from e
    return ck, hashlib.sha256(data).hexdigest()[:12]


def build_from_file(cls, path: str | Path, what: str):
    """cls(checkpoint, name=, version=) from a file read by read_checkpoint_file; a checkpoint that
    does not fit this code is a ValueError naming the file, never a KeyError from deep inside."""
    ck, version = read_checkpoint_file(path, what)
    name = Path(path).name
    try:
        return cls(ck, name=name, version=version)
    except ValueError as e:
        raise ValueError(f"{what} checkpoint {name}: {e}") from e
    except (KeyError, TypeError, RuntimeError, AttributeError) as e:
        raise ValueError(f"{what} checkpoint {name} does not match this code "
                         f"({type(e).__name__}: {str(e)[:160]})") from e


def prepare_audio(y: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """Float32 mono at target_sr from (n,), (channels, n) or (n, channels) audio at sr; ValueError
    for empty or non-finite audio or a bad sample rate."""
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


def full_probabilities(probs: np.ndarray, index: np.ndarray) -> dict[str, float]:
    """{genre: p} over every options.GENRES (0 for genres the judge never saw), summing to 1."""
    full = np.zeros(len(GENRES))
    full[index] = probs
    full /= full.sum()
    return {g: float(v) for g, v in zip(GENRES, full)}


def unit_vector(v: np.ndarray) -> np.ndarray:
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
    unknown = [g for g in ck.get("genres", []) if g not in GENRES]
    if not ck.get("genres") or unknown:
        raise ValueError(f"checkpoint genres {ck.get('genres')} are not a subset of {list(GENRES)}")
    if ck.get("state_dict") is None:
        raise ValueError("cnn checkpoint has no weights")
    return ck

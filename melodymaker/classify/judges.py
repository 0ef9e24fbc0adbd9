"""The two genre judges together: the CNN and the feature judge, and their combined verdict.

    from melodymaker.classify import load_judges
    judges = load_judges(models_dir / "classifier")   # FileNotFoundError / ValueError with the reason
    v = judges.verdict(y, sr)     # v.cnn, v.features, v.combined: {genre: p}; v.embedding: unit vector

The two share no features (log-mel windows against MFCC/chroma/contrast/rhythm statistics of
their own STFT), were trained on the same clips with generic degradations only, and never on any
mode's output. The combined judgement of one track is their geometric mean, renormalised: a genre
scores high only when both judges give it weight.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .classifier import CHECKPOINT_NAME as CNN_NAME
from .classifier import GenreClassifier, prepare_audio
from .feature_judge import CHECKPOINT_NAME as FEATURES_NAME
from .feature_judge import FeatureJudge

COMBINATION = "geometric mean, renormalised"
JUDGES = ("cnn", "features")


def combine(cnn: dict[str, float], features: dict[str, float]) -> dict[str, float]:
    """The renormalised geometric mean of two {genre: p} (over the same genres)."""
    genres = list(cnn)
    g = np.sqrt(np.array([cnn[k] for k in genres], dtype=np.float64)
                * np.array([features.get(k, 0.0) for k in genres], dtype=np.float64))
    if g.sum() <= 0.0:  # the judges disagree completely: no genre has weight from both
        g = np.array([cnn[k] + features.get(k, 0.0) for k in genres], dtype=np.float64)
    g /= g.sum()
    return {k: float(v) for k, v in zip(genres, g)}


@dataclass(frozen=True)
class Verdict:
    """What the judges say of one track: each judge's probabilities, their combination, and the
    CNN's unit embedding (for "similar tracks" and the Fréchet distance)."""
    cnn: dict[str, float]
    features: dict[str, float]
    combined: dict[str, float]
    embedding: np.ndarray

    def top(self, judge: str = "combined") -> str:
        probs = getattr(self, judge)
        return max(probs, key=probs.get)


class Judges:
    """Both judges, each usable alone (.cnn.predict, .features.predict), and their verdict."""

    def __init__(self, cnn: GenreClassifier, features: FeatureJudge):
        self.cnn, self.features = cnn, features
        self.version = hashlib.sha256(f"{cnn.version}+{features.version}".encode()).hexdigest()[:12]

    def hear(self, y: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
        """The one place a track's audio enters the judges: mono (n,) or stereo (n, 2) at any rate,
        folded to mono (the channels' mean) and resampled to the rate they were trained at (GTZAN's
        22050 Hz), once for both; ValueError for empty or non-finite audio."""
        rate = self.cnn.mel.sr
        return prepare_audio(y, sr, rate), rate

    def verdict(self, y: np.ndarray, sr: int) -> Verdict:
        """Both judges on float32 audio, mono (n,) or stereo (n, 2), at any sr (see hear())."""
        y, sr = self.hear(y, sr)
        cnn, embedding = self.cnn.predict_and_embed(y, sr)
        features = self.features.predict(y, sr)
        return Verdict(cnn, features, combine(cnn, features), embedding)

    # the classifier interface (predict / embed / predict_and_embed), on the combined judgement
    def predict(self, y: np.ndarray, sr: int) -> dict[str, float]:
        return self.verdict(y, sr).combined

    def embed(self, y: np.ndarray, sr: int) -> np.ndarray:
        return self.cnn.embed(*self.hear(y, sr))

    def predict_and_embed(self, y: np.ndarray, sr: int) -> tuple[dict[str, float], np.ndarray]:
        v = self.verdict(y, sr)
        return v.combined, v.embedding

    @property
    def embedding_version(self) -> str:
        """What library embeddings are cached under: the CNN's version (only it embeds)."""
        return self.cnn.version

    @property
    def info(self) -> dict:
        return {"version": self.version, "cnn": self.cnn.info, "features": self.features.info,
                "split": dict(self.cnn.split), "combination": COMBINATION}


def load_judges(folder: str | Path) -> Judges:
    """The judges in `folder` (models/classifier: classifier.pt and features.pt; models/ works too).

    FileNotFoundError when a checkpoint is missing, ValueError when one is damaged, from an
    incompatible version, or the two were trained on different splits; the message says which.
    """
    folder = Path(folder)
    if not (folder / CNN_NAME).is_file() and (folder / "classifier" / CNN_NAME).is_file():
        folder = folder / "classifier"
    cnn = GenreClassifier.from_file(folder / CNN_NAME)
    features = FeatureJudge.from_file(folder / FEATURES_NAME)
    a, b = cnn.split.get("held_out"), features.split.get("held_out")
    if a is not None and b is not None and sorted(a) != sorted(b):
        raise ValueError(f"{CNN_NAME} and {FEATURES_NAME} were trained on different splits; "
                         "retrain both with python -m melodymaker.classify train")
    return Judges(cnn, features)

"""Genre classifier: train on genres/, predict genre probabilities, embed audio for similarity.

    from melodymaker.classify import load_classifier
    clf = load_classifier(Path("models"))           # FileNotFoundError / ValueError with the reason
    probs, vector = clf.predict_and_embed(y, sr)    # {genre: p} over options.GENRES, unit float32 vector

Train: python -m melodymaker.classify train --genres genres --out models/classifier --seed 0
"""
from .classifier import (CHECKPOINT_NAME, GenreClassifier, frechet_distance,  # noqa: F401
                         load_classifier)
from .features import MelParams  # noqa: F401


def __getattr__(name):
    # training pulls in scikit-learn and the CLI; load it only when asked for
    if name in ("TrainConfig", "train", "split_clips", "main"):
        from . import training as _train
        return getattr(_train, name)
    raise AttributeError(name)

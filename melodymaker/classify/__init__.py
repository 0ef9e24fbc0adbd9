"""The genre judges: two classifiers that share no features, their combined verdict, embeddings.

    from melodymaker.classify import load_judges
    judges = load_judges(Path("models/classifier"))   # FileNotFoundError / ValueError with the reason
    v = judges.verdict(y, sr)          # v.cnn, v.features, v.combined: {genre: p}; v.embedding
    judges.cnn.predict(y, sr)          # each judge alone; judges.info says what they are

load_classifier(models_dir) still gives the CNN judge alone (predict, embed, predict_and_embed).

Train: python -m melodymaker.classify train --genres lib100 --out models/classifier --seed 0 --copies 6
"""
from .classifier import (CHECKPOINT_NAME, GenreClassifier, frechet_distance,  # noqa: F401
                         load_classifier)
from .feature_judge import FeatureJudge  # noqa: F401
from .features import MelParams  # noqa: F401
from .judges import COMBINATION, JUDGES, Judges, Verdict, combine, load_judges  # noqa: F401


def __getattr__(name):
    # training pulls in scikit-learn and the CLI; load it only when asked for
    if name in ("TrainConfig", "train", "main"):
        from . import training as _train
        return getattr(_train, name)
    raise AttributeError(name)

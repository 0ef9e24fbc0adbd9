"""MelodyMaker: genre music generation, classification and recommendation."""
import os as _os
from pathlib import Path as _Path

__version__ = "0.1.0"

# librosa builds its constant-Q filter bank anew for every call (the key estimate of every track
# spends half its time there) unless its on-disk cache (librosa.cache, joblib) has a folder: give
# it one under the var folder, before librosa is first imported
_os.environ.setdefault("LIBROSA_CACHE_DIR", str(
    _Path(_os.environ.get("MELODYMAKER_VAR_DIR") or _Path(__file__).resolve().parent.parent / "var")
    / "cache" / "librosa"))

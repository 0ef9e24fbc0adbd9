"""Where things live: folders and limits, injected so tests run on a temporary tree."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    """Paths and limits. Environment variables MELODYMAKER_<NAME> override the defaults."""
    genres_dir: Path = ROOT / "genres"
    models_dir: Path = ROOT / "models"
    var_dir: Path = ROOT / "var"              # library cache and generated tracks
    soundfont: Path | None = None              # an SF2/SF3; None = the GM font pretty_midi ships
    max_upload_bytes: int = 20 * 1024 * 1024
    max_tracks: int = 200                      # the store keeps the newest this many
    workers: int = field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)))
    max_queue: int = 16
    job_timeout: int = 3600                    # seconds the longest generation may take (also: when
                                               # the store may sweep a temporary folder as abandoned)
    # browser pages allowed to call /generate and /api/* from another origin (CORS): exact origins,
    # regexes (matched against the whole origin), "null" (a page opened from disk) or "*" (any)
    cors_origins: tuple[str, ...] = (r"^https?://(localhost|127\.0\.0\.1)(:\d+)?$",)

    @property
    def cache_dir(self) -> Path:
        return self.var_dir / "cache"

    @property
    def store_dir(self) -> Path:
        return self.var_dir / "tracks"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = {}
        for name in ("genres_dir", "models_dir", "var_dir", "soundfont"):
            env = os.environ.get(f"MELODYMAKER_{name.upper()}")
            if env:
                values[name] = Path(env)
        for name in ("max_upload_bytes", "max_tracks", "workers", "max_queue", "job_timeout"):
            env = os.environ.get(f"MELODYMAKER_{name.upper()}")
            if env:
                values[name] = int(env)
        origins = [o.strip() for o in os.environ.get("MELODYMAKER_CORS_ORIGINS", "").split(",")]
        if any(origins):
            values["cors_origins"] = tuple(o for o in origins if o)
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("genres_dir", "models_dir", "var_dir", "soundfont"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        return cls(**values)

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
    # scaling out (README "Scaling out"): "" = the embedded pool; redis://HOST:PORT/DB = RQ workers
    queue: str = ""
    queue_routes: str = ""                     # mode=queue[/fallback],... over the registry's defaults
    store_path: Path | None = None             # MELODYMAKER_STORE_DIR: a folder every process mounts
    generate_timeout: int = 0                  # seconds POST /generate waits for its job; 0: job_timeout
    worker_heartbeat: int = 10                 # seconds between an RQ worker's heartbeats
    worker_maintenance: int = 30               # seconds between its sweeps for abandoned jobs

    @property
    def cache_dir(self) -> Path:
        return self.var_dir / "cache"

    @property
    def store_dir(self) -> Path:
        """Where finished tracks live: MELODYMAKER_STORE_DIR, else tracks/ under var_dir."""
        return self.store_path if self.store_path is not None else self.var_dir / "tracks"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        values = {}
        for name in ("genres_dir", "models_dir", "var_dir", "soundfont"):
            env = os.environ.get(f"MELODYMAKER_{name.upper()}")
            if env:
                values[name] = Path(env)
        if os.environ.get("MELODYMAKER_STORE_DIR"):
            values["store_path"] = Path(os.environ["MELODYMAKER_STORE_DIR"])
        for name in ("queue", "queue_routes"):
            if os.environ.get(f"MELODYMAKER_{name.upper()}"):
                values[name] = os.environ[f"MELODYMAKER_{name.upper()}"].strip()
        for name in ("max_upload_bytes", "max_tracks", "workers", "max_queue", "job_timeout",
                     "generate_timeout", "worker_heartbeat", "worker_maintenance"):
            env = os.environ.get(f"MELODYMAKER_{name.upper()}")
            if env:
                values[name] = int(env)
        origins = [o.strip() for o in os.environ.get("MELODYMAKER_CORS_ORIGINS", "").split(",")]
        if any(origins):
            values["cors_origins"] = tuple(o for o in origins if o)
        if "store_dir" in overrides:  # the name callers know
            overrides["store_path"] = overrides.pop("store_dir")
        values.update({k: v for k, v in overrides.items() if v is not None})
        for name in ("genres_dir", "models_dir", "var_dir", "soundfont", "store_path"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        return cls(**values)

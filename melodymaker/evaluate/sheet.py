"""The spectrogram sheet: one row per genre, a library clip beside each mode's track, one colour scale.

    from melodymaker.evaluate.sheet import sheet
    sheet([("jazz", [("library", y, sr), ("ddim", y2, sr)]), ...], Path("sheet.png"))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

N_MELS = 96
N_FFT, HOP = 2048, 512
DB_RANGE = (-80.0, 0.0)     # dB re full scale: the one colour scale of every panel
PANEL_INCHES = (2.6, 1.25)  # width, height of one panel
LEFT, TOP, BOTTOM = 0.9, 0.75, 0.7  # inches: row labels; title and column titles; colour bar
DPI = 100


def log_mel(y: np.ndarray, sr: int) -> np.ndarray:
    """Log-mel power in dB re full scale (a full-scale sine peaks near 0 dB), shape (N_MELS, frames)."""
    import librosa
    S = librosa.feature.melspectrogram(y=np.asarray(y, dtype=np.float32), sr=sr, n_fft=N_FFT,
                                       hop_length=HOP, n_mels=N_MELS, power=2.0)
    # a full-scale sine puts (N_FFT/4)^2 of power into its bin under a Hann window: scale to that
    return librosa.power_to_db(S / (N_FFT / 4) ** 2, ref=1.0, amin=1e-10, top_db=None)


def sheet_size(rows: int, columns: int) -> tuple[int, int]:
    """(width, height) in pixels of a sheet with this many rows and columns."""
    w = LEFT + columns * PANEL_INCHES[0] + 0.1
    h = TOP + rows * PANEL_INCHES[1] + BOTTOM
    return int(round(w * DPI)), int(round(h * DPI))


def sheet(rows: list[tuple[str, list[tuple[str, np.ndarray | None, int]]]], path: str | Path, *,
          title: str = "") -> dict:
    """Draw the sheet to a PNG at `path`.

    rows: (row label, [(column title, mono audio or None for a missing panel, sample rate), ...]),
    every row with the same columns in the same order; the first column is meant to be the
    library. Each panel is a log-mel spectrogram (0-sr/2 Hz upwards, time rightwards) on the
    DB_RANGE colour scale. Returns {"path", "rows", "columns", "size": (width, height)}."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    if not rows:
        raise ValueError("the sheet needs at least one row")
    titles = [c[0] for c in rows[0][1]]
    if any([c[0] for c in cells] != titles for _, cells in rows):
        raise ValueError("every row of the sheet needs the same columns in the same order")
    n_rows, n_cols = len(rows), len(titles)
    width, height = sheet_size(n_rows, n_cols)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    inch_x, inch_y = DPI / width, DPI / height   # one inch as a fraction of the figure
    left = LEFT * inch_x
    grid = fig.add_gridspec(n_rows, n_cols, left=left, right=1 - 0.1 * inch_x, bottom=BOTTOM * inch_y,
                            top=1 - TOP * inch_y, wspace=0.04, hspace=0.08)
    image = None
    for r, (label, cells) in enumerate(rows):
        for c, (name, y, sr) in enumerate(cells):
            ax = fig.add_subplot(grid[r, c])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=10)
            if c == 0:
                ax.set_ylabel(label, fontsize=10, rotation=0, ha="right", va="center")
            if y is None or len(y) == 0:
                ax.set_facecolor("0.85")
                ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)
                continue
            seconds = len(y) / sr
            image = ax.imshow(log_mel(y, sr), origin="lower", aspect="auto", cmap="magma",
                              vmin=DB_RANGE[0], vmax=DB_RANGE[1], extent=(0, seconds, 0, N_MELS),
                              interpolation="nearest")
    if title:
        fig.suptitle(title, fontsize=11, y=1 - 0.1 * inch_y, va="top")
    if image is not None:
        bar = fig.add_axes((left, 0.25 * inch_y, min(0.4, 2.5 * inch_x), 0.1 * inch_y))
        fig.colorbar(image, cax=bar, orientation="horizontal")
        bar.tick_params(labelsize=7)
        bar.set_title(f"dB re full scale; each panel: log-mel, {N_MELS} bands 0 Hz (bottom) to sr/2 "
                      "(top), time left to right", fontsize=7, loc="left", pad=3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return {"path": str(path), "rows": n_rows, "columns": titles, "size": (width, height)}

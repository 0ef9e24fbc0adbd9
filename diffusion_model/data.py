"""Training data: the library's clips as normalised MDCT frames, held in memory.

Normalisation (recorded in the checkpoint, undone by `denormalise`): a power-law compression of
the MDCT coefficients, c = sign(X) |X|^alpha, then division by each bin's standard deviation over
the library, so every bin the network sees has unit scale whatever its loudness.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from melodymaker.library import Library
from melodymaker.options import GENRES, SAMPLE_RATE

from .mdct import MDCT


def compress(x: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.sign(x) * x.abs().pow(alpha)


def expand(c: torch.Tensor, alpha: float) -> torch.Tensor:
    return torch.sign(c) * c.abs().pow(1.0 / alpha)


def normalise(coeffs: torch.Tensor, alpha: float, bin_std: torch.Tensor) -> torch.Tensor:
    """MDCT (..., bins, frames) -> what the network sees."""
    return compress(coeffs, alpha) / bin_std[:, None]


def denormalise(x: torch.Tensor, alpha: float, bin_std: torch.Tensor) -> torch.Tensor:
    """What the network makes -> MDCT coefficients."""
    return expand(x * bin_std[:, None], alpha)


@dataclass
class MDCTDataset:
    """Per-clip normalised MDCT frames (float16, bins x frames) with genre labels and tempi (BPM by
    the library's beat tracker, the estimate the post stage conforms with; 0 where none was found)."""
    frames: list[torch.Tensor]
    labels: list[int]
    names: list[str]
    bin_std: torch.Tensor
    alpha: float
    hop: int
    library: Library
    tempi: list[float] = field(default_factory=list)

    @classmethod
    def build(cls, genres_dir: str | Path, *, hop: int = 256, alpha: float = 0.5,
              max_per_genre: int = 0, progress: bool = True, rank=None, workers: int = 1,
              stretch: float = 0.0, seed: int = 0) -> "MDCTDataset":
        """rank (melodymaker.distributed.Rank, under torchrun): read only this rank's shard of the
        clips; the per-bin scale is still the whole library's (its sums added over the ranks).
        workers: processes that beat-track the clips first (the slow part of reading a library).

        Tempi are folded into each genre's octave (fold_tempi). stretch > 0: each clip also comes
        time-stretched (Rubber Band, the pitch kept) by a rate drawn log-uniformly within
        1 / (1 + stretch) ... 1 + stretch, its tempo times that rate: the same music at two tempi,
        which is what teaches a tempo embedding tempo rather than the clips that happen to have it."""
        from tqdm import tqdm
        library = Library(Path(genres_dir)).scan()
        mdct = MDCT(hop)
        clips = [(GENRES.index(g), c) for g in GENRES
                 for c in (library.genre_clips(g)[:max_per_genre] if max_per_genre
                           else library.genre_clips(g))]
        if not clips:
            raise SystemExit(f"no audio found in {genres_dir} (expected {genres_dir}/<genre>/<file>)")
        if rank is not None and rank.distributed:
            from melodymaker.distributed import shard
            clips = shard(clips, rank)
        known = clip_tempi([c for _, c in clips], workers) if workers > 1 else {}
        raw, labels, names, tempi, paths = [], [], [], [], []
        for label, clip in tqdm(clips, desc="mdct", disable=not progress):
            try:
                y = library.load(clip, SAMPLE_RATE)
            except Exception as e:  # an unreadable file is skipped and reported, as the library does
                print(f"skipping {clip.key}: {e}")
                continue
            with torch.no_grad():
                raw.append(compress(mdct(torch.from_numpy(y)), alpha))
            labels.append(label)
            names.append(clip.key)
            paths.append(str(clip.path))
            tempi.append(known[clip.key] if clip.key in known else
                         float(library.analyse(clip, y, save=False).tempo or 0.0))
        tempi = fold_tempi(tempi, labels)
        if stretch > 0:
            rng = np.random.default_rng(seed)
            rates = np.exp(rng.uniform(-np.log1p(stretch), np.log1p(stretch), len(names)))
            for i, y in enumerate(tqdm(stretched(paths, rates, workers), total=len(paths), desc="stretch",
                                       disable=not progress)):
                with torch.no_grad():
                    raw.append(compress(mdct(torch.from_numpy(y)), alpha))
                labels.append(labels[i])
                names.append(f"{names[i]}@{rates[i]:.3f}")
                tempi.append(tempi[i] * float(rates[i]))
        # each bin's mean square over every frame (under torchrun, over every rank's frames)
        sums = torch.cat([sum(c.double().pow(2).sum(dim=1) for c in raw),
                          torch.tensor([float(sum(c.shape[1] for c in raw))], dtype=torch.float64)])
        if rank is not None and rank.distributed:
            sums = rank.sum(sums)
        bin_std = (sums[:-1] / sums[-1]).sqrt().float().clamp_min(1e-5)
        frames = []
        while raw:  # float16 one clip at a time: the float32 copies go as the half ones come
            frames.append((raw.pop(0) / bin_std[:, None]).half())
        return cls(frames, labels, names, bin_std, alpha, hop, library, tempi)

    def rescale(self, bin_std: torch.Tensor) -> None:
        """Normalise by `bin_std` instead (a resumed run's, or the checkpoint a run starts from)."""
        bin_std = bin_std.float().cpu()
        if torch.equal(bin_std, self.bin_std):
            return
        ratio = (self.bin_std / bin_std)[:, None]
        self.frames = [(f.float() * ratio).half() for f in self.frames]
        self.bin_std = bin_std

    def batch(self, size: int, frames: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`size` random windows of `frames` frames, their genres and their clips' tempi."""
        picks = torch.randint(0, len(self.frames), (size,), generator=gen).tolist()
        xs = []
        for i in picks:
            clip = self.frames[i]
            if clip.shape[1] < frames:
                clip = torch.nn.functional.pad(clip, (0, frames - clip.shape[1]))
            start = int(torch.randint(0, clip.shape[1] - frames + 1, (1,), generator=gen))
            xs.append(clip[:, start:start + frames].float())
        return (torch.stack(xs), torch.tensor([self.labels[i] for i in picks]),
                torch.tensor([self.tempi[i] if self.tempi else 0.0 for i in picks]))

    def counts(self) -> dict[str, int]:
        return {g: self.labels.count(i) for i, g in enumerate(GENRES) if i in self.labels}


def fold_tempi(tempi: list[float], labels: list[int]) -> list[float]:
    """Each tempo (0: none) moved by an octave (x1/2, x1, x2) to the one nearest its genre's median:
    a beat tracker that counts a 90 BPM groove at 180 labels it as the 90 it is, so that one
    tempo means one speed of music to the network (the post stage folds octaves the same way)."""
    out = list(tempi)
    for label in set(labels):
        known = [t for t, g in zip(tempi, labels) if g == label and t > 0]
        if not known:
            continue
        median = float(np.median(known))
        for i, (t, g) in enumerate(zip(tempi, labels)):
            if g == label and t > 0:
                out[i] = min((t * k for k in (0.5, 1.0, 2.0)), key=lambda c: abs(np.log(c / median)))
    return out


def in_processes(fn, jobs: list, workers: int):
    """fn(job) for each job, in order, on `workers` spawned processes of one thread each (here,
    one by one, when workers <= 1)."""
    if workers <= 1:
        yield from map(fn, jobs)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from melodymaker.classify.prepare import one_thread
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=one_thread) as pool:
        yield from pool.map(fn, jobs, chunksize=4)


def _stretched(job: tuple[str, float]) -> np.ndarray:
    from melodymaker import audio
    path, rate = job
    return audio.time_stretch(audio.load(path), rate, sr=SAMPLE_RATE)


def stretched(paths: list[str], rates, workers: int):
    """Each clip time-stretched by its rate, in order, on `workers` processes (in_processes)."""
    return in_processes(_stretched, [(p, float(r)) for p, r in zip(paths, rates)], workers)


def _clip_tempo(path: str) -> float:
    from melodymaker import audio
    try:
        return round(float(audio.estimate_tempo(audio.load(path), SAMPLE_RATE)[0] or 0.0), 3)  # as analyse() keeps it
    except Exception:  # an unreadable clip is skipped (and reported) by the MDCT pass
        return 0.0


def clip_tempi(clips: list, workers: int) -> dict[str, float]:
    """{clip key: BPM by the beat tracker (Library.analyse's estimate), 0 where none} on `workers`
    processes of one thread each."""
    tempi = in_processes(_clip_tempo, [str(c.path) for c in clips], workers)
    return {c.key: t for c, t in zip(clips, tempi)}


def clip_seconds(ds: MDCTDataset) -> float:
    return float(np.sum([f.shape[1] for f in ds.frames]) * ds.hop / SAMPLE_RATE)

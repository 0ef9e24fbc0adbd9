"""Load a MEL-GAN checkpoint and make audio: genre + length + seed -> mel -> vocoder or Griffin-Lim.

    python -m melgan_model.sample --checkpoint models/melgan/melgan.pt --genre jazz --length 20 \
        --seed 7 --out jazz.wav [--inversion vocoder|griffinlim] [--truncation 1.0]
"""
from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.nn.utils import parametrize

from melodymaker.audio import WIDE_TEMPI, estimate_tempo, tempo_to_draw
from melodymaker.trainkit import check_checkpoint, float_weights, read_checkpoint

from .model import (
    LOG_FLOOR,
    LogMel,
    MelConfig,
    MelGenConfig,
    MelGenerator,
    MelNorm,
    MultiResolutionSTFTLoss,
    Vocoder,
    VocoderConfig,
    beat_clock,
    from_dict,
    phase_at_tempo,
    phase_from_beats,
)
from .vocos import KIND as VOCOS
from .vocos import Vocos, VocosConfig

FORMAT, FORMAT_VERSION = "melodymaker-melgan", 1
"""melgan.pt: trainkit's header, then version, mel and norm (the mel settings and normalisation),
genres, generator_args and generator (EMA weights), vocoder_args and vocoder, and info (how it was
trained). Files written before format_version ("melodymaker-melgan/1") read as well."""
INVERSIONS = ("vocoder", "vocoder-raw", "griffinlim")
"""vocoder: the checkpoint's vocoder (the default): a MelGAN vocoder followed by one mel-envelope
correction pass, or a Vocos (when "vocoder_kind" says so) alone, which needs none (measured: the
pass made its held-out mels no more recognisable, see models/melgan/README.md);
vocoder-raw: the vocoder alone; griffinlim: librosa's Griffin-Lim, the baseline and fallback."""
ENVELOPE_LIMIT = 4.0     # nats: the most the envelope correction lifts or cuts one band
VOCODER_CHUNK = 1024     # mel frames per vocoder pass: bounds memory on long tracks
VOCODER_CONTEXT = 16     # frames of context each side, more than the vocoder's receptive field
CONTEXT_STEPS = 6        # noise steps (16 mel frames each: 1.1 s) fitted to the tail a continuation follows
FIT_STEPS = 60           # Adam steps of that fit
FIT_AHEAD = 8            # noise steps after the fitted ones that the fit draws (the generator sees under 6 back)


class MelGAN:
    """A loaded checkpoint (see `load`): mel generator (EMA weights), vocoder, mel settings and normalisation.

    Holds no generation settings: genre, seed, length and inversion arrive with each call.
    """

    def __init__(self, checkpoint: dict):
        check_checkpoint(checkpoint, FORMAT, FORMAT_VERSION, name="MEL-GAN")
        self.checkpoint_info = {k: checkpoint[k] for k in ("step", "version") if k in checkpoint}
        self.mel = MelConfig(**checkpoint["mel"])
        self.norm = MelNorm.from_state(checkpoint["norm"])
        self.genres = list(checkpoint["genres"])
        self.tempi = dict(checkpoint.get("tempi") or {})   # {genre: [low, median, high] BPM} it trained on
        self.generator = MelGenerator(from_dict(MelGenConfig, checkpoint["generator_args"]))
        self.generator.load_state_dict(float_weights(checkpoint["generator"]))
        self.vocoder_kind = checkpoint.get("vocoder_kind", "melgan")
        if self.vocoder_kind == VOCOS:
            self.vocoder = Vocos(VocosConfig(**checkpoint["vocoder_args"]))
        elif self.vocoder_kind == "melgan":
            self.vocoder = Vocoder(from_dict(VocoderConfig, checkpoint["vocoder_args"]))
        else:
            raise ValueError(f"unknown vocoder kind {self.vocoder_kind!r} (this code reads melgan and {VOCOS})")
        self.vocoder.load_state_dict(float_weights(checkpoint["vocoder"]))
        if self.vocoder.hop != self.mel.hop:
            raise ValueError(f"vocoder upsamples by {self.vocoder.hop}, the mel hop is {self.mel.hop}")
        for m in self.vocoder.modules():  # fold weight norm once: faster inference
            if parametrize.is_parametrized(m):
                parametrize.remove_parametrizations(m, "weight")
        self.generator.eval()
        self.vocoder.eval()
        self.info = checkpoint.get("info", {})
        self.logmel = LogMel(self.mel)
        basis = self.logmel.basis
        self._spread = (basis / basis.sum(0, keepdim=True).clamp(min=1e-8)).T  # bin <- its mel bands

    # -- tempo: a generator with a beat clock draws at the tempo it is given ------------------------
    @property
    def takes_tempo(self) -> bool:
        return bool(self.generator.cfg.clock)

    def play_tempo(self, genre: str, requested: float | None) -> float | None:
        """The tempo to draw `genre` at for a request of `requested` BPM (audio.tempo_to_draw within
        the tempi it trained on); None for no request or a generator without a clock."""
        if not requested or not self.takes_tempo:
            return None
        return tempo_to_draw(requested, self.tempi.get(genre))

    def clock(self, genre: str, frames: int, tempo: float | None = None,
              phase: np.ndarray | None = None) -> torch.Tensor | None:
        """beat_clock (1, C, frames) for a generator with a clock: `phase` (beats at each of at
        least `frames` frames), else a steady `tempo` from a beat at frame 0 (None: the genre's
        median tempo); None for a generator without one."""
        if not self.takes_tempo:
            return None
        if phase is None:
            bpm = tempo or (self.tempi.get(genre) or WIDE_TEMPI)[1]
            phase = phase_at_tempo(bpm, frames, self.mel.hop / self.mel.sr)
        return beat_clock(torch.from_numpy(np.asarray(phase[:frames], dtype=np.float32))[None])

    # -- the three steps -------------------------------------------------------------------------
    def frames_for(self, n_samples: int) -> int:
        return n_samples // self.mel.hop + 1

    @torch.inference_mode()
    def generate_mel(self, genre: str, frames: int, *, seed: int, truncation: float = 1.0,
                     tempo: float | None = None) -> torch.Tensor:
        """Normalised mel in [-1, 1], shape (n_mels, frames), in one pass (no windows, no seams);
        `tempo` (BPM) sets a clocked generator's beat (None: the genre's median)."""
        if genre not in self.genres:
            raise ValueError(f"unknown genre {genre!r}; choose from {', '.join(self.genres)}")
        g = torch.Generator().manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        z, zg = self.generator.noise(1, frames, generator=g, truncation=truncation)
        label = torch.tensor([self.genres.index(genre)])
        clock = self.clock(genre, z.shape[-1] * self.generator.cfg.frames_per_step, tempo)
        return self.generator(label, z, zg, clock)[0, :, :frames]

    @torch.inference_mode()
    def vocode(self, mel: torch.Tensor, n_samples: int | None = None) -> np.ndarray:
        """Normalised mel (n_mels, frames) -> float32 audio, in chunks that share context (a Vocos
        vocoder, at the frame rate throughout, takes the whole track in one pass)."""
        frames = mel.shape[-1]
        if self.vocoder_kind == VOCOS:
            n = (frames - 1) * self.mel.hop if n_samples is None else n_samples
            return self.vocoder(mel.float()[None], n)[0].numpy().astype(np.float32)
        out = []
        for start in range(0, frames, VOCODER_CHUNK):
            stop = min(frames, start + VOCODER_CHUNK)
            lo, hi = max(0, start - VOCODER_CONTEXT), min(frames, stop + VOCODER_CONTEXT)
            y = self.vocoder(mel[None, :, lo:hi])[0]
            a = (start - lo) * self.mel.hop
            out.append(y[a: a + (stop - start) * self.mel.hop])
        y = torch.cat(out).numpy().astype(np.float32)
        return y if n_samples is None else _fit(y, n_samples)

    @torch.inference_mode()
    def correct_envelope(self, mel: torch.Tensor, y: np.ndarray, *, n_iter: int = 1) -> np.ndarray:
        """Audio whose log-mel matches `mel` more closely: each pass measures the audio's log-mel,
        turns the per-band, per-frame error into a gain on the STFT bins (each bin takes the
        weighted mean of its mel bands' log gains, capped at ±ENVELOPE_LIMIT) and resynthesises.
        The vocoder's phase and fine structure stay; only the spectral envelope moves toward the
        target. Cheap (one STFT and one inverse STFT per pass) and seamless (overlap-add)."""
        target, m = self.norm.denormalise(mel.float()), self.mel
        window, yt = self.logmel.window, torch.from_numpy(np.asarray(y, dtype=np.float32))
        for _ in range(n_iter):
            spec = torch.stft(yt, m.n_fft, m.hop, window=window, center=True, pad_mode="reflect",
                              return_complex=True)
            current = torch.log(torch.clamp(self.logmel.basis @ spec.abs(), min=LOG_FLOOR))
            k = min(target.shape[1], current.shape[1])   # frames both have; the others keep their level
            error = torch.zeros_like(current)
            error[:, :k] = (target[:, :k] - current[:, :k]).clamp(-ENVELOPE_LIMIT, ENVELOPE_LIMIT)
            gain = torch.exp(self._spread @ error)
            yt = torch.istft(spec * gain, m.n_fft, m.hop, window=window, center=True, length=len(yt))
        return yt.numpy().astype(np.float32)

    def griffin_lim(self, mel: torch.Tensor, n_samples: int | None = None, *, n_iter: int = 32) -> np.ndarray:
        """Normalised mel -> audio by Griffin-Lim: de-normalise, undo the log, and invert the
        *amplitude* mel (power=1.0) with librosa."""
        import librosa
        amplitude = np.exp(self.norm.denormalise(mel.float().numpy()))
        amplitude = np.maximum(amplitude - LOG_FLOOR, 0.0)
        m = self.mel
        y = librosa.feature.inverse.mel_to_audio(
            amplitude, sr=m.sr, n_fft=m.n_fft, hop_length=m.hop, power=1.0, n_iter=n_iter,
            fmin=m.fmin, fmax=m.fmax, length=n_samples)
        return np.asarray(y, dtype=np.float32)

    def generate(self, genre: str, n_samples: int, *, seed: int, inversion: str = "vocoder",
                 truncation: float = 1.0, tempo: float | None = None,
                 progress: Callable[[float, str], None] | None = None) -> np.ndarray:
        """float32 mono audio of exactly n_samples at self.mel.sr; `tempo` as generate_mel."""
        if inversion not in INVERSIONS:
            raise ValueError(f"unknown inversion {inversion!r}; choose from {', '.join(INVERSIONS)}")
        progress = progress or (lambda f, m="": None)
        progress(0.1, "generating the mel-spectrogram")
        mel = self.generate_mel(genre, self.frames_for(n_samples), seed=seed, truncation=truncation, tempo=tempo)
        progress(0.3, f"inverting the mel ({inversion})")
        y = invert(self, mel, n_samples, inversion)
        progress(0.9, "done")
        return y

    def continue_audio(self, tail: np.ndarray, genre: str, n_samples: int, *, seed: int,
                       inversion: str = "vocoder", truncation: float = 1.0, tempo: float | None = None,
                       progress: Callable[[float, str], None] | None = None) -> tuple[np.ndarray, dict]:
        """float32 audio of exactly n_samples at self.mel.sr that continues `tail` (raw audio at
        that rate which this mode made): its first sample is the one after the tail's last. Also
        how it was made.

        The generator's noise for the last CONTEXT_STEPS steps of the tail's mel (its global noise
        too) is fitted so that it draws that mel (`fit_noise`); seeded new noise follows, and the
        generator, convolutional in time, draws on from the fitted steps into the new ones. The
        tail's own mel stands for the fitted part (crossfaded into the drawn one over its last
        frames) and the whole is inverted at once, so the new audio flows on from the inverter's
        rendering of the tail, which is cut off. That rendering is not the tail's exact waveform:
        the caller hands over from the tail. A clocked generator's beat clock follows the tail's
        own beats (the project's beat tracker) and goes on at their period. A tail too short for one
        step: `generate`'s draw at `tempo`, the tail unused."""
        progress = progress or (lambda f, m="": None)
        hop, per_step = self.mel.hop, self.generator.cfg.frames_per_step
        whole = len(tail) // hop                       # hops of tail on a grid ending at its last sample
        steps = min(CONTEXT_STEPS, (whole - 3) // per_step)  # fitted frames clear of both padded edges
        if steps < 1:
            return self.generate(genre, n_samples, seed=seed, inversion=inversion, truncation=truncation,
                                 tempo=tempo, progress=progress), {"context_frames": 0}
        known = steps * per_step
        end = torch.from_numpy(np.ascontiguousarray(tail[len(tail) - whole * hop:], dtype=np.float32))
        with torch.no_grad():
            mel = self.norm.normalise(self.logmel(end[None])[0])
        # frame j is centred on sample j * hop: the last two reach past the tail's end (padding)
        real = mel[:, whole - 1 - known: whole - 1]
        frames = known + 2 + math.ceil(n_samples / hop) + 1  # from the first fitted frame to the end
        progress(0.1, "fitting the generator's noise to the tail's mel")
        phase = None
        if self.takes_tempo:  # the tail's beats, frame j of `end` at j * hop
            beats = estimate_tempo(end.numpy(), self.mel.sr)[1]
            phase = phase_from_beats(beats, whole + frames + per_step, hop / self.mel.sr)[whole - 1 - known:]
        drawn, error = self.fit_noise(genre, real, frames, seed=seed, truncation=truncation, phase=phase)
        blend = min(8, known)                          # frames over which the tail's mel gives way
        ramp = torch.linspace(0.0, 1.0, blend + 2)[1:-1]
        mel = drawn.clone()
        mel[:, :known] = real
        mel[:, known - blend: known] += (drawn[:, known - blend: known] - real[:, known - blend:]) * ramp
        progress(0.4, f"inverting the mel ({inversion})")
        lead = (known + 1) * hop                       # samples of the tail rendered again
        y = invert(self, mel, lead + n_samples, inversion)[lead:]
        progress(0.9, "done")
        return y, {"context_frames": known, "fit_l1": round(error, 4)}

    def fit_noise(self, genre: str, target: torch.Tensor, frames: int, *, seed: int,
                  truncation: float = 1.0, phase: np.ndarray | None = None) -> tuple[torch.Tensor, float]:
        """A normalised mel (n_mels, frames) whose first frames draw `target` (n_mels, k, k a whole
        number of noise steps): seeded noise, of which the steps under the target and the global
        noise are fitted by Adam (FIT_STEPS steps, L1 to the target and a small pull toward the
        noise's N(0, 1) scale, each step drawing only as far as reaches back into the target), the
        later steps left as drawn; `phase` is a clocked generator's beat phase from the first
        frame (None: the genre's median tempo). Returns the mel and the fit's mean L1 error."""
        if genre not in self.genres:
            raise ValueError(f"unknown genre {genre!r}; choose from {', '.join(self.genres)}")
        g = torch.Generator().manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)
        z, zg = self.generator.noise(1, frames, generator=g, truncation=truncation)
        k = target.shape[1]
        split = k // self.generator.cfg.frames_per_step
        fitted, rest = z[:, :, :split].clone().requires_grad_(True), z[:, :, split:]
        zg.requires_grad_(True)
        label = torch.tensor([self.genres.index(genre)])
        per_step = self.generator.cfg.frames_per_step
        clock = self.clock(genre, z.shape[-1] * per_step, phase=phase)
        ahead = None if clock is None else clock[..., : (split + FIT_AHEAD) * per_step]
        opt = torch.optim.Adam([fitted, zg], lr=0.05)
        with torch.enable_grad():
            for _ in range(FIT_STEPS):
                drawn = self.generator(label, torch.cat([fitted, rest[:, :, :FIT_AHEAD]], dim=2), zg, ahead)[0, :, :k]
                loss = (drawn - target).abs().mean() + 1e-3 * (fitted.pow(2).mean() + zg.pow(2).mean())
                fitted.grad, zg.grad = torch.autograd.grad(loss, [fitted, zg])  # not the weights'
                opt.step()
        with torch.no_grad():
            drawn = self.generator(label, torch.cat([fitted, rest], dim=2), zg, clock)[0, :, :frames]
        return drawn, float((drawn[:, :k] - target).abs().mean())


def load(path: str | Path) -> MelGAN:
    """The sampler of a melgan.pt: FileNotFoundError when there is none, ValueError when it is not
    a MEL-GAN checkpoint of the version this code reads."""
    return MelGAN(read_checkpoint(path, FORMAT, FORMAT_VERSION, name="MEL-GAN"))


def invert(model: MelGAN, mel: torch.Tensor, n_samples: int, inversion: str, *, n_iter: int = 32) -> np.ndarray:
    """Normalised mel -> audio of n_samples by one of INVERSIONS."""
    if inversion == "griffinlim":
        return model.griffin_lim(mel, n_samples, n_iter=n_iter)
    y = model.vocode(mel, n_samples)
    return model.correct_envelope(mel, y) if inversion == "vocoder" and model.vocoder_kind != VOCOS else y


def compare_inversions(model: MelGAN, clips: list[np.ndarray], *, n_iter: int = 32) -> dict:
    """Vocoder vs Griffin-Lim on real audio the vocoder never trained on: each clip -> its
    normalised mel -> audio by both; speed (× real time) and spectral distance to the real clip
    (log-mel L1 in nats, and multi-resolution STFT loss)."""
    logmel, stft = LogMel(model.mel), MultiResolutionSTFTLoss()
    rows = {name: {"seconds": 0.0, "audio_seconds": 0.0, "logmel_l1": [], "mrstft": []} for name in INVERSIONS}
    for y in clips:
        real = torch.from_numpy(np.asarray(y, dtype=np.float32))
        with torch.inference_mode():
            real_mel = logmel(real[None])[0]
        mel = model.norm.normalise(real_mel)
        for name in INVERSIONS:
            t = time.perf_counter()
            out = invert(model, mel, len(y), name, n_iter=n_iter)
            rows[name]["seconds"] += time.perf_counter() - t
            rows[name]["audio_seconds"] += len(y) / model.mel.sr
            fake = torch.from_numpy(out)
            with torch.inference_mode():
                rows[name]["logmel_l1"].append(float((logmel(fake[None])[0] - real_mel).abs().mean()))
                rows[name]["mrstft"].append(float(stft(fake[None], real[None])))
    return {name: {"realtime_factor": round(r["audio_seconds"] / max(r["seconds"], 1e-9), 2),
                   "logmel_l1": round(float(np.mean(r["logmel_l1"])), 4),
                   "mrstft": round(float(np.mean(r["mrstft"])), 4),
                   **({"griffinlim_iters": n_iter} if name == "griffinlim" else {})}
            for name, r in rows.items()} | {"clips": len(clips),
                                             "seconds_each": round(len(clips[0]) / model.mel.sr, 2) if clips else 0,
                                             "threads": torch.get_num_threads()}


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    return y[:n] if len(y) >= n else np.concatenate([y, np.zeros(n - len(y), dtype=np.float32)])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m melgan_model.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("models/melgan/melgan.pt"))
    p.add_argument("--genre", required=True)
    p.add_argument("--length", type=float, default=10.0, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inversion", choices=INVERSIONS, default="vocoder")
    p.add_argument("--truncation", type=float, default=1.0, help="noise scale; < 1 trades variety for typicality")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, required=True, help="a .wav file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import soundfile as sf
    model = load(args.checkpoint)
    n = round(args.length * model.mel.sr)
    t = time.perf_counter()
    y = model.generate(args.genre, n, seed=args.seed, inversion=args.inversion, truncation=args.truncation)
    seconds = time.perf_counter() - t
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, y, model.mel.sr, subtype="PCM_16")
    print(f"{args.out}: {len(y)} samples, {len(y) / model.mel.sr:.2f} s of {args.genre} "
          f"({args.inversion}, {args.length / seconds if seconds else math.inf:.1f}× real time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Train MEL-GAN from a genres/ folder: the genre-conditioned mel GAN and the MelGAN vocoder,
interleaved in one loop, resumable from the last checkpoint.

    python -m melgan_model.train --genres genres --out models/melgan --max-minutes 60
    torchrun --standalone --nproc_per_node 2 -m melgan_model.train --genres genres --out models/melgan

Writes out/train_state.pt (everything needed to resume: networks, optimisers, RNG, step),
out/melgan.pt (what sampling needs: EMA generator, vocoder, mel settings, normalisation),
out/losses.csv, and out/card.json. Run it again to continue where it stopped. Under torchrun
(DistributedDataParallel, melodymaker/distributed.py) every rank decodes the library and fits the
same normalisation, trains on its shard of the clips (batch sizes are per rank), and rank 0 alone
writes.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from melodymaker import distributed
from melodymaker.trainkit import (Clock, LossLog, RunningMeans, atomic_save, carry_figures, checkpoint_header,
                                  ema_update, evaluate_section, float_weights, ints, load_clips, load_resume,
                                  markdown_benchmark, markdown_losses, markdown_notes, markdown_rows, markdown_training,
                                  read_card,
                                  read_checkpoint, restore, run_info, save_card, set_lr, split_args, trainer_parser, training_state)
from melodymaker.trainkit import feature_matching as paired_feature_matching

from .model import (
    LogMel,
    MelConfig,
    MelGenConfig,
    MelGenerator,
    MelNorm,
    MultiResolutionSTFTLoss,
    MultiScaleDiscriminator,
    MultiScaleMelDiscriminator,
    Vocoder,
    VocoderConfig,
    beat_clock,
    config_dict,
    count_params,
    diff_augment,
    from_dict,
    phase_from_beats,
)
from .sample import FORMAT, FORMAT_VERSION, compare_inversions, load

STATE, CHECKPOINT, LOSSES, CARD, BEATS = "train_state.pt", "melgan.pt", "losses.csv", "card.json", "beats.pt"
COLUMNS = ["step", "wall_min", "d_hinge", "d_ac", "g_adv", "g_fm", "g_ac", "v_stft", "v_adv", "v_fm", "vd"]
RUN_KEYS = ("genres", "out", "steps", "max_minutes", "threads", "device", "log_every", "save_every",
            "compare_clips", "gan_every", "gan_per_step", "lr_v", "voc_adv_start")
"""What a resumed run may change (the schedule); the rest comes from the checkpoint's config."""


@dataclass
class TrainConfig:
    genres: str = "genres"
    out: str = "models/melgan"
    seed: int = 0
    steps: int = 20000            # loop iterations: gan_per_step mel-GAN updates + 1 vocoder update each
    max_minutes: float = 0.0      # stop (and save) after this much wall time in this run; 0 = no limit
    threads: int = 1
    device: str = "cpu"
    holdout: int = 2              # clips per genre kept out of training (vocoder comparison)
    per_genre: int = 0            # use at most this many clips per genre; 0 = all
    init_from: str = ""           # a melgan.pt whose mel settings, normalisation, generator (and, with
                                  # --voc-batch 0, vocoder) a fresh run starts from
    # the mel GAN
    gan_frames: int = 256         # training window in mel frames (~3 s)
    gan_batch: int = 16
    gan_per_step: int = 1
    gan_every: int = 1            # mel-GAN updates on every n-th step only (more time for the vocoder)
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    fm_weight: float = 2.0
    ac_weight: float = 1.0
    ema: float = 0.999
    g_channels: str = "256,192,128,128"
    d_channels: str = "128,256,256,384"
    d_scales: int = 1             # mel discriminators at 1, 1/2, 1/4 ... of the frame rate
    d2d: int = 0                  # > 0: a 2-D patch discriminator over (band, frame) of this width joins them
    clock: bool = False           # a beat clock from each clip's beats into the generator and the 1-D discriminators
    augment: float = 0.0          # DiffAugment: probability of each transform, real and generated alike
    # the vocoder (--voc-batch 0: not trained; the --init-from checkpoint's vocoder ships unchanged)
    voc_samples: int = 8192
    voc_batch: int = 8
    lr_v: float = 2e-4
    voc_adv_start: int = 4000     # vocoder steps on the STFT loss alone before its discriminators join
    stft_weight: float = 2.5
    voc_fm_weight: float = 2.0
    ngf: int = 16
    ratios: str = "4,4,4,4"
    # bookkeeping
    compare_clips: int = 10       # held-out clips (10 s each) for the card's vocoder vs Griffin-Lim figures
    log_every: int = 25
    save_every: int = 250


def parse_args(argv: list[str] | None) -> tuple:
    return split_args(trainer_parser("melgan_model.train", __doc__, TrainConfig, mode="melgan").parse_args(argv),
                      TrainConfig)


# -- data --------------------------------------------------------------------------------------
def load_library(cfg: TrainConfig, mel: MelConfig):
    """(genre index, audio, log-mel) of every readable clip long enough for a vocoder window, per
    genre split into train and held-out; and the library facts."""
    train, held, facts = load_clips(cfg.genres, mel.sr, holdout=cfg.holdout, per_genre=cfg.per_genre,
                                    min_samples=cfg.voc_samples + mel.hop)
    to_mel = LogMel(mel)
    with torch.no_grad():
        train, held = ([(g, y, to_mel(torch.from_numpy(y)[None])[0].numpy()) for g, y in part]
                       for part in (train, held))
    return train, held, facts


def clip_beats(train: list, mel: MelConfig, cache: Path, margin: int) -> list[np.ndarray]:
    """The beat phase at every mel frame of each training clip and `margin` frames past its end
    (phase_from_beats of the project's beat tracker, audio.estimate_tempo, continued at the clip's
    beat period), kept in `cache` by a fingerprint of each clip so a resumed run does not track
    them again."""
    import hashlib
    import sys
    from melodymaker.audio import estimate_tempo
    known = torch.load(cache, weights_only=False) if cache.is_file() else {}
    out, fresh = [], 0
    for _, y, lm in train:
        key = hashlib.sha1(y.tobytes()).hexdigest()
        if key not in known:
            known[key] = np.asarray(estimate_tempo(y, mel.sr)[1], dtype=np.float32)
            fresh += 1
        out.append(phase_from_beats(known[key], lm.shape[1] + margin, mel.hop / mel.sr))
    if fresh:
        atomic_save(cache, known)
        print(f"beats: tracked {fresh} clips, {len(train) - fresh} from {cache.name}", file=sys.stderr)
    return out


def genre_tempi(train: list, phases: list[np.ndarray], mel: MelConfig) -> dict:
    """{genre: [low, median, high]} BPM of the clips trained on (5th, 50th, 95th percentiles of
    each clip's mean beat rate): the tempi the generator knows for each genre."""
    from melodymaker.options import GENRES
    seconds = lambda ph: (len(ph) - 1) * mel.hop / mel.sr
    per = {}
    for (g, _, lm), ph in zip(train, phases):
        ph = ph[: lm.shape[1]]                     # the clip's own frames, not the margin past its end
        if len(ph) > 1:
            per.setdefault(GENRES[g], []).append(60.0 * (ph[-1] - ph[0]) / seconds(ph))
    return {g: [round(float(q), 2) for q in np.percentile(t, [5, 50, 95])] for g, t in per.items()}


class Batches:
    """Random training windows, genre-balanced, drawn from one seeded torch.Generator; with
    `phases`, each mel window comes with the beat phase of its frames."""

    def __init__(self, clips, norm: MelNorm, hop: int, rng: torch.Generator, phases: list | None = None,
                 frames_per_step: int = 1):
        self.clips, self.hop, self.rng = clips, hop, rng
        self.phases = None if phases is None else [torch.from_numpy(p) for p in phases]
        self.frames_per_step = frames_per_step
        self.mels = [torch.from_numpy(norm.normalise(lm)) for _, _, lm in clips]
        self.audio = [torch.from_numpy(y) for _, y, _ in clips]
        self.by_genre: dict[int, list[int]] = {}
        for i, (g, _, _) in enumerate(clips):
            self.by_genre.setdefault(g, []).append(i)
        self.genre_ids = sorted(self.by_genre)

    def _pick(self, n: int) -> list[int]:
        gs = torch.randint(len(self.genre_ids), (n,), generator=self.rng).tolist()
        return [self.by_genre[self.genre_ids[g]][int(torch.randint(len(self.by_genre[self.genre_ids[g]]), (1,),
                                                                     generator=self.rng))] for g in gs]

    def mel_windows(self, n: int, frames: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(normalised mels (n, n_mels, frames), genre ids (n,), beat phases (n, frames rounded up
        to whole generator steps) or None). A phase is the clip's own, so whole beats fall where
        the clip's beats are."""
        out, genres, phases = [], [], []
        span = -(-frames // self.frames_per_step) * self.frames_per_step
        for i in self._pick(n):
            m = self.mels[i]
            start = int(torch.randint(max(1, m.shape[1] - frames + 1), (1,), generator=self.rng))
            w = m[:, start: start + frames]
            if w.shape[1] < frames:
                w = F.pad(w, (0, frames - w.shape[1]), value=-1.0)
            out.append(w)
            genres.append(self.clips[i][0])
            if self.phases is not None:
                phases.append(self.phases[i][start: start + span])
        return torch.stack(out), torch.tensor(genres), torch.stack(phases) if phases else None

    def audio_windows(self, n: int, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(normalised mels (n, n_mels, samples // hop), audio (n, samples)), aligned frame to hop."""
        k = samples // self.hop
        mels, ys = [], []
        for i in self._pick(n):
            m, y = self.mels[i], self.audio[i]
            start = int(torch.randint(max(1, min(m.shape[1] - k, (len(y) - samples) // self.hop) + 1), (1,),
                                      generator=self.rng))
            mels.append(m[:, start: start + k])
            ys.append(y[start * self.hop: start * self.hop + samples])
        return torch.stack(mels), torch.stack(ys)


# -- losses -------------------------------------------------------------------------------------
def feature_matching(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Match each layer's per-channel mean and spread over batch and time (real and fake are not
    paired: the generator sees only a genre and noise)."""
    loss = 0.0
    for r, f in zip(real, fake):
        r = r.detach()
        loss = loss + (r.mean((0, 2)) - f.mean((0, 2))).abs().mean() + (r.std((0, 2)) - f.std((0, 2))).abs().mean()
    return loss / len(real)


# -- checkpoints --------------------------------------------------------------------------------
def inference_checkpoint(s: dict) -> dict:
    """The part of the training state that sampling needs; a few MB."""
    return {**checkpoint_header(FORMAT, FORMAT_VERSION, s["step"]), "version": f"step{s['step']}",
            "mel": s["mel"], "norm": s["norm"], "genres": s["genres"], "generator_args": s["generator_args"],
            "tempi": s.get("tempi", {}),
            "generator": s["generator_ema"], "vocoder_kind": s.get("vocoder_kind", "melgan"),
            "vocoder_args": s["vocoder_args"], "vocoder": s["vocoder"], "info": s["info"]}


# -- one update of each half --------------------------------------------------------------------
def gan_step(G: MelGenerator, D: MultiScaleMelDiscriminator, opt_g, opt_d, batches: Batches, cfg: TrainConfig,
             rng: torch.Generator, device) -> dict:
    """The mel GAN: hinge loss, projection + auxiliary genre head, feature matching, each the
    mean over the discriminator's time scales; DiffAugment on every mel the discriminator sees."""
    real, genre, phase = batches.mel_windows(cfg.gan_batch, cfg.gan_frames)
    real, genre = real.to(device), genre.to(device)
    z, zg = distributed.unwrap(G).noise(len(genre), cfg.gan_frames, generator=rng)
    clock = None if phase is None else beat_clock(phase).to(device)   # real and fake share their clocks
    fake = G(genre, z.to(device), zg.to(device), clock)[:, :, : cfg.gan_frames]
    clock = None if clock is None else clock[..., : cfg.gan_frames]

    def judged(mel):
        if clock is None:
            return D(diff_augment(mel, cfg.augment, rng), genre)
        mel, moved = diff_augment(mel, cfg.augment, rng, aux=clock)
        return D(mel, genre, moved)

    mean = lambda xs: sum(xs) / len(xs)
    real_out, fake_out = judged(real), judged(fake.detach())
    d_hinge = mean([F.relu(1 - r[0]).mean() + F.relu(1 + f[0]).mean() for r, f in zip(real_out, fake_out)])
    d_ac = mean([F.cross_entropy(r[1], genre) for r in real_out])
    opt_d.zero_grad(set_to_none=True)
    (d_hinge + cfg.ac_weight * d_ac).backward()
    opt_d.step()
    fake_out = judged(fake)
    with torch.no_grad():
        real_out = judged(real)
    g_adv = mean([-f[0].mean() for f in fake_out])
    g_fm = mean([feature_matching(r[2], f[2]) for r, f in zip(real_out, fake_out)])
    g_ac = mean([F.cross_entropy(f[1], genre) for f in fake_out])
    opt_g.zero_grad(set_to_none=True)
    (g_adv + cfg.fm_weight * g_fm + cfg.ac_weight * g_ac).backward()
    opt_g.step()
    return {"d_hinge": d_hinge, "d_ac": d_ac, "g_adv": g_adv, "g_fm": g_fm, "g_ac": g_ac}


def vocoder_step(V: Vocoder, MSD: MultiScaleDiscriminator, opt_v, opt_msd, stft, batches: Batches,
                 cfg: TrainConfig, adversarial: bool, device) -> dict:
    """The vocoder: multi-resolution STFT loss, then (once `adversarial`) LS-GAN multi-scale
    discriminators with feature matching."""
    mels, y = batches.audio_windows(cfg.voc_batch, cfg.voc_samples)
    mels, y = mels.to(device), y.to(device)
    y_hat = V(mels)[:, : y.shape[1]]
    v_stft = stft(y_hat, y)
    v_adv = v_fm = vd = torch.zeros(())
    if adversarial:
        d_fake, d_real = MSD(y_hat.detach()), MSD(y)
        vd = sum(((1 - r[-1]) ** 2).mean() + (f[-1] ** 2).mean() for r, f in zip(d_real, d_fake))
        opt_msd.zero_grad(set_to_none=True)
        vd.backward()
        opt_msd.step()
        d_fake = MSD(y_hat)
        v_adv = sum(((1 - f[-1]) ** 2).mean() for f in d_fake)
        v_fm = paired_feature_matching(d_real, d_fake)
    opt_v.zero_grad(set_to_none=True)
    (cfg.stft_weight * v_stft + v_adv + cfg.voc_fm_weight * v_fm).backward()
    opt_v.step()
    return {"v_stft": v_stft, "v_adv": v_adv, "v_fm": v_fm, "vd": vd}


# -- the recipe ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    cfg, opts = parse_args(argv)
    torch.set_num_threads(max(1, cfg.threads))
    rank = distributed.setup(cfg.device)           # one process, or this rank of torchrun's
    device = rank.device
    from melodymaker.options import GENRES
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    resume = load_resume(out / STATE, cfg, RUN_KEYS, fresh=opts.fresh)
    init = read_checkpoint(cfg.init_from, FORMAT, FORMAT_VERSION, name="MEL-GAN") if cfg.init_from and not resume \
        else None
    source = resume or init                        # where mel settings, normalisation and config come from
    mel = MelConfig(**source["mel"]) if source else MelConfig()
    torch.manual_seed(cfg.seed)
    train, held, library = load_library(cfg, mel)
    if opts.card_only:
        if resume is None:
            raise SystemExit(f"--card-only needs a trained {out / STATE}")
        if rank.main:
            write_card(out, held, cfg, evaluate_json=opts.evaluate_json)
        return 0

    norm = MelNorm.from_state(source["norm"]) if source else MelNorm.fit(
        np.concatenate([lm[:, ::4] for _, _, lm in train], axis=1))
    if source:
        gcfg = from_dict(MelGenConfig, source["generator_args"])
        if init:  # the discriminator is new: its shape is this run's; --clock grows the generator one
            gcfg = replace(gcfg, d_channels=ints(cfg.d_channels), clock=gcfg.clock or cfg.clock)
    else:
        gcfg = MelGenConfig(n_mels=mel.n_mels, n_genres=len(GENRES), channels=ints(cfg.g_channels),
                            d_channels=ints(cfg.d_channels), clock=cfg.clock)
    G, D = MelGenerator(gcfg).to(device), MultiScaleMelDiscriminator(gcfg, cfg.d_scales, cfg.d2d).to(device)
    if init:
        missing, unexpected = G.load_state_dict(float_weights(init["generator"]), strict=False)
        if unexpected or any(".clock." not in k for k in missing):
            raise SystemExit(f"--init-from {cfg.init_from}: its generator is not this one's shape "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    phases = clip_beats(train, mel, out / BEATS, cfg.gan_frames + gcfg.frames_per_step) if gcfg.clock else None
    tempi = genre_tempi(train, phases, mel) if phases else (source or {}).get("tempi", {})
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr_d, betas=(0.5, 0.9))
    parts = {"generator": G, "generator_ema": G_ema, "discriminator": D, "opt_g": opt_g, "opt_d": opt_d}
    carried = None                                 # a vocoder this run ships without training it
    if cfg.voc_batch > 0:
        vcfg = from_dict(VocoderConfig, resume["vocoder_args"]) if resume else \
            VocoderConfig(n_mels=mel.n_mels, ngf=cfg.ngf, ratios=ints(cfg.ratios))
        V, MSD = Vocoder(vcfg).to(device), MultiScaleDiscriminator(vcfg).to(device)
        if V.hop != mel.hop:
            raise SystemExit(f"--ratios multiply to {V.hop}, the mel hop is {mel.hop}")
        opt_v = torch.optim.Adam(V.parameters(), cfg.lr_v, betas=(0.5, 0.9))
        opt_msd = torch.optim.Adam(MSD.parameters(), cfg.lr_v, betas=(0.5, 0.9))
        parts.update({"vocoder": V, "vocoder_discriminator": MSD, "opt_v": opt_v, "opt_msd": opt_msd})
    elif source:
        carried = {k: source[k] for k in ("vocoder_kind", "vocoder_args", "vocoder") if k in source}
    else:
        raise SystemExit("--voc-batch 0 trains no vocoder: give --init-from a melgan.pt whose vocoder to keep")
    rng = distributed.rank_generator(cfg.seed, rank)
    step, wall = 0, 0.0
    if resume:
        step, wall = restore(resume, parts, rng)
        if "opt_v" in parts:
            set_lr(opt_v, cfg.lr_v)  # the schedule may change on resume
        if not rank.main:                          # the saved generator is rank 0's
            rng = distributed.rank_generator(cfg.seed, rank, step)
    trained = {k: distributed.wrap(parts[name], rank) for k, name in (("G", "generator"), ("D", "discriminator"),
               ("V", "vocoder"), ("MSD", "vocoder_discriminator")) if name in parts}
    started_from = {  # the run this one continues (--init-from): its command, library and length
        "path": cfg.init_from, "version": init.get("version"), **{k: (init.get("info") or {}).get(k) for k in (
            "command", "resumed_with", "library", "step", "wall_seconds", "device", "init_from")}} if init \
        else (resume or {}).get("info", {}).get("init_from")
    info = run_info("melgan_model.train", argv, resume and resume["info"], config=asdict(cfg), library=library,
                    device=str(device), threads=cfg.threads, **({"init_from": started_from} if started_from else {}),
                    params={"mel_generator": count_params(G), "mel_discriminator": count_params(D),
                            **({"vocoder": count_params(V), "vocoder_discriminators": count_params(MSD)}
                               if "vocoder" in parts else {})})
    last: dict = {}

    def checkpoint() -> None:
        if not rank.main:
            return
        state = training_state(
            parts, rng, config=asdict(cfg), step=clock.step, wall_seconds=clock.wall, mel=mel.asdict(),
            norm=norm.state(), genres=list(GENRES), generator_args=config_dict(gcfg), tempi=tempi,
            **(carried or {"vocoder_args": config_dict(vcfg)}),
            info={**info, "step": clock.step, "wall_seconds": round(clock.wall, 1), "final_losses": last})
        atomic_save(out / STATE, state)
        atomic_save(out / CHECKPOINT, inference_checkpoint(state))

    mine = distributed.shard(list(range(len(train))), rank)
    batches = Batches([train[i] for i in mine], norm, mel.hop, rng, phases and [phases[i] for i in mine],
                      gcfg.frames_per_step)
    stft = MultiResolutionSTFTLoss().to(device)
    log = LossLog(out / LOSSES, COLUMNS, append=bool(resume), tensorboard=out / "tensorboard",
                  scalars=COLUMNS[2:]) if rank.main else distributed.NoLog()
    means = RunningMeans(COLUMNS[2:], ndigits=4)
    clock = Clock(cfg, step, wall, desc="melgan", progress=rank.main)
    gan_losses = dict.fromkeys(("d_hinge", "d_ac", "g_adv", "g_fm", "g_ac"), torch.zeros(()))
    while clock.running:
        gan_now = clock.step % max(1, cfg.gan_every) == 0
        for _ in range(cfg.gan_per_step if gan_now else 0):
            gan_losses = gan_step(trained["G"], trained["D"], opt_g, opt_d, batches, cfg, rng, device)
            ema_update(G_ema, G, clock.step, cfg.ema)
        voc_losses = vocoder_step(trained["V"], trained["MSD"], opt_v, opt_msd, stft, batches, cfg,
                                  clock.step >= cfg.voc_adv_start, device) if "V" in trained else {}
        clock.tick()
        means.add({**(gan_losses if gan_now else {}), **voc_losses})  # mel-GAN losses only when it learned
        if clock.log_due:
            last = {k: round(v, 4) for k, v in rank.mean(means.take()).items()}
            log.write({"step": clock.step, "wall_min": round(clock.wall / 60, 2), **last})
            clock.bar.set_postfix(d=last["d_hinge"], g=last["g_adv"], ac=last["g_ac"], stft=last["v_stft"])
        if clock.save_due:
            checkpoint()
        if rank.any(clock.time_is_up()):
            break
    clock.close()
    if means.pending:
        last = {k: round(v, 4) for k, v in rank.mean(means.take()).items()}
    checkpoint()
    if rank.main:
        write_card(out, held, cfg)
    distributed.finish(rank, *(m for name, m in parts.items() if not name.startswith("opt")))   # every rank holds the same weights, or it says so
    return 0


def write_card(out: Path, held: list, cfg: TrainConfig, *, evaluate_json: Path | None = None) -> dict:
    """card.json and README.md: what was trained, how, and Griffin-Lim vs vocoder on held-out real mels."""
    model = load(out / CHECKPOINT)
    n = min([int(10.0 * model.mel.sr)] + [len(y) for _, y, _ in held])
    clips = [y[len(y) // 2 - n // 2: len(y) // 2 - n // 2 + n] for _, y, _ in held]
    clips = clips[:: max(1, len(clips) // max(1, cfg.compare_clips))][: cfg.compare_clips]
    info = model.info
    card = {"model": "MelodyMaker MEL-GAN", "checkpoint": CHECKPOINT, "format": FORMAT,
            "format_version": FORMAT_VERSION, "version": model.checkpoint_info.get("version"),
            "checkpoint_bytes": (out / CHECKPOINT).stat().st_size, "vocoder_kind": model.vocoder_kind,
            "command": info.get("command"), "resumed_with": info.get("resumed_with", []), "library": info.get("library"),
            "steps": info.get("step"), "wall_minutes": round(info.get("wall_seconds", 0) / 60, 1),
            "device": info.get("device"), "threads": info.get("threads"),
            "params": {**(info.get("params") or {}), **((info.get("vocoder") or {}).get("params") or {})},
            "init_from": info.get("init_from"), "vocoder_run": info.get("vocoder"),
            "config": info.get("config"), "mel": model.mel.asdict(), "final_losses": info.get("final_losses"),
            "inversion_on_held_out_real_mels": compare_inversions(model, clips) if clips else None}
    # figures measured earlier for this same checkpoint (some added by hand) stay
    carry_figures(card, read_card(out), {
        "evaluate": evaluate_section(evaluate_json, "melgan") if evaluate_json else None,
        "evaluate_other_inversions": None, "notes": None})
    save_card(out, card, render_markdown(card))
    return card


def render_markdown(card: dict) -> str:
    """The model card as a page: README.md beside the checkpoint, made from card.json."""
    lib, inv, ev = card.get("library") or {}, card.get("inversion_on_held_out_real_mels"), card.get("evaluate")
    params = card.get("params") or {}
    vocoder = {"vocos": "Vocos"}.get(card.get("vocoder_kind"), "MelGAN")
    lines = [
        "# MEL-GAN", "",
        (f"A genre-conditioned mel-spectrogram GAN and a {vocoder} vocoder (code and method: "
        "`melgan_model/README.md`). Checkpoint `melgan.pt` "
        f"(version `{card['version']}`, {card['checkpoint_bytes'] / 1e6:.1f} MB: EMA mel generator "
        f"{params.get('mel_generator', 0) / 1e6:.2f} M parameters + vocoder {params.get('vocoder', 0) / 1e6:.2f} M)."), "",
        *markdown_training(card, "then stopped and resumed (changing only the schedule) with:"),
        (f"- library: `{lib.get('path')}`, {lib.get('note') or 'audio clips'}; "
        f"built by `{lib.get('builder', '?')}`; {lib.get('train_clips')} clips trained on, "
        f"{lib.get('held_out_clips')} held out (the last of each genre) for the vocoder figures"),
        (f"- {card['steps']} steps (each: {card['config']['gan_per_step']} mel-GAN updates of "
        f"{card['config']['gan_batch']} × {card['config']['gan_frames']} frames, "
        + (f"1 vocoder update of {card['config']['voc_batch']} × {card['config']['voc_samples']} samples), "
           if card['config'].get('voc_batch') else "no vocoder update: the vocoder is trained apart), ")
        + f"{card['wall_minutes']} min wall time on {card['device']} with {card['threads']} thread(s)"),
        markdown_losses(card),
        "- the loss curve is `losses.csv`", ""]
    start = card.get("init_from")
    if start:
        lines += [(f"Continued from `{start.get('path')}`, {start.get('step')} steps made by:"), "",
                  f"    {start.get('command')}", ""]
    run = card.get("vocoder_run")
    if run:
        lines += [f"The vocoder ({vocoder}) was trained apart, {run.get('steps')} steps, "
                  f"{run.get('wall_minutes')} min on {run.get('device')}, and installed into `melgan.pt`:", "",
                  f"    {run.get('command')}", f"    {run.get('install', '')}", ""]
    for key, title in (("what_helped", "What helped"), ("vocoder_comparison_held_out_real_mels", "Vocoders compared")):
        lines += markdown_rows(title, card.get(key))
    if inv:
        lines += ["## Griffin-Lim vs the vocoder, on held-out real mels", "",
                  (f"{inv['clips']} held-out clips × {inv['seconds_each']} s: real audio → normalised mel → "
                  f"audio by each inversion, on {inv['threads']} CPU thread(s). Distances to the real clip: "
                  "log-mel L1 (nats, lower is better) and the multi-resolution STFT loss "
                  "(spectral convergence + log-magnitude L1, lower is better)."), "",
                  "| inversion | × real time | log-mel L1 | MR-STFT |", "|---|---|---|---|"]
        default = (f"{vocoder} vocoder (default; no correction pass)" if vocoder == "Vocos"
                   else f"{vocoder} vocoder + one envelope-correction pass (default)")
        for name, label in (("vocoder", default),
                            ("vocoder-raw", f"{vocoder} vocoder alone"),
                            ("griffinlim", f"Griffin-Lim, {inv['griffinlim']['griffinlim_iters']} iterations")):
            r = inv[name]
            lines.append(f"| {label} | {r['realtime_factor']} | {r['logmel_l1']} | {r['mrstft']} |")
        lines.append("")
    if ev:
        lines += markdown_benchmark(ev)
        others = card.get("evaluate_other_inversions") or {}
        if others:
            lines += ["The same benchmark with the other inversions (`MELODYMAKER_MELGAN_INVERSION=<name>`):", "",
                      "| inversion | genre fit (lower judge) | fit: CNN | fit: features | × real time (median) | Fréchet |",
                      "|---|---|---|---|---|---|"]
            for name, s in others.items():  # benchmark JSON from before the two judges has one figure
                fit = s.get("genre_fit", s.get("genre_top1_accuracy"))
                lines.append(f"| {name} | {fit} | {s.get('fit_cnn', '—')} | {s.get('fit_features', '—')} | "
                             f"{s['realtime_factor_median']} | {s['frechet_distance']} |")
            lines.append("")
    return "\n".join(lines + markdown_notes(card))


if __name__ == "__main__":
    raise SystemExit(main())

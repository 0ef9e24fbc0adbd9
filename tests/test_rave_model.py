"""RAVE's parts, without a training run: the PQMF bank, the noise branch, the low-band-weighted
loss, starting from a checkpoint of another shape or version, chunked decoding, and genre latent
trajectories (spliced, seeded, and on a tempo's beat grid)."""
import numpy as np
import pytest
import torch

from train_rave import latents
from train_rave.losses import LowBandSpectralLoss, MultiScaleDiscriminator, MultiScaleSpectralLoss, mel_density
from train_rave.model import PQMF, RAVE, RaveConfig, adapt_weights, export, model_from_checkpoint

SMALL = RaveConfig(channels=(8, 8, 16, 16), latent_size=4)

# -- the filter bank ------------------------------------------------------------------------------
def test_pqmf_reconstructs_and_splits_into_bands():
    pqmf = PQMF(16, 8)
    x = torch.randn(2, 1, 16 * 2000)
    y = pqmf.inverse(pqmf(x))
    assert y.shape == x.shape
    inner = slice(2000, -2000)
    err = float((y[..., inner] - x[..., inner]).pow(2).mean() / x[..., inner].pow(2).mean())
    assert 10 * np.log10(err) < -45
    t = torch.arange(16 * 2000) / 22050
    tone = torch.sin(2 * np.pi * 3000 * t)[None, None]   # band width 22050 / 32 = 689 Hz: band 4
    energy = pqmf(tone)[0, :, 100:-100].pow(2).mean(-1)
    assert int(energy.argmax()) == 3000 * 32 // 22050 and energy[4] > 50 * energy[8]


# -- the noise branch and the loss -------------------------------------------------------------------
def test_noise_branch_shapes_and_a_silent_noise_branch_leaves_the_waveform_alone():
    torch.manual_seed(0)
    decoder = RAVE(SMALL).decoder.eval()
    z = torch.randn(2, 4, 6)                                   # 6 latent frames: 6 * 32 band samples
    with torch.no_grad():
        hidden = decoder.net(z)
        mags = decoder.noise.magnitudes(hidden)
        assert hidden.shape == (2, 8, 192) and decoder(z).shape == (2, 16, 192)
        assert mags.shape == (2, 16, 192 // 8, 5) and bool((mags >= 0).all()) and float(mags.max()) < 0.01
        assert decoder.noise(hidden).shape == (2, 16, 192)
        only_dc = torch.zeros(1, 16, 3, 5)
        only_dc[..., 0] = 1.0                                  # each frame's noise keeps its mean alone
        frames = decoder.noise.synthesise(only_dc).reshape(1, 16, 3, 8)
        torch.testing.assert_close(frames, frames[..., :1].expand_as(frames))
        decoder.noise.magnitudes = lambda h: torch.zeros(h.shape[0], 16, h.shape[-1] // 8, 5)
        torch.testing.assert_close(decoder(z), decoder.waveform(hidden), atol=0, rtol=0)
    assert RAVE(RaveConfig(channels=(8, 8, 16, 16), latent_size=4, noise_bands=0)).decoder.noise is None


def test_low_band_loss_weighs_low_frequencies_more_and_is_zero_for_identical_signals():
    w = mel_density(2048, 22050)
    assert w.shape == (1025,) and abs(float(w.mean()) - 1) < 1e-5
    assert float(w[0]) > 5 and float(w[-1]) < 0.4 and bool((w[1:] <= w[:-1]).all())
    loss, plain = LowBandSpectralLoss(22050), MultiScaleSpectralLoss()
    x = torch.randn(2, 1, 16384, generator=torch.Generator().manual_seed(0)) * 0.05
    assert float(loss(x, x)) == 0.0
    t = torch.arange(16384) / 22050
    low, high = (x + 0.1 * torch.sin(2 * np.pi * f * t) for f in (150.0, 7000.0))
    assert float(loss(low, x)) / float(loss(high, x)) > float(plain(low, x)) / float(plain(high, x))


def test_the_chroma_term_tells_a_wrong_pitch_class_from_an_octave():
    """A note a semitone off changes the harmony; the same note an octave up keeps its pitch class.
    The chroma term adds to the distance for the first and almost nothing for the second."""
    t = torch.arange(16384) / 22050
    note = lambda f: (0.3 * torch.sin(2 * np.pi * f * t))[None, None]  # noqa: E731
    plain, with_chroma = LowBandSpectralLoss(22050), LowBandSpectralLoss(22050, chroma_weight=1.0)
    x = note(261.63)                                           # C4
    assert float(with_chroma(x, x)) == 0.0
    semitone, octave = note(277.18), note(523.25)              # C#4, C5
    added = {name: float(with_chroma(y, x) - plain(y, x)) for name, y in (("semitone", semitone), ("octave", octave))}
    assert added["semitone"] > 0.03 and added["octave"] < 0.2 * added["semitone"]


def test_stft_discriminators_judge_the_spectrum_beside_the_waveform_ones():
    disc = MultiScaleDiscriminator(2, 4, stft_sizes=(512, 256))
    x = torch.randn(2, 1, 8192, requires_grad=True)
    out = disc(x)
    assert len(out) == 4                                       # 2 waveform scales + 2 STFT sizes
    for features, n in zip(out[2:], (512, 256)):
        score = features[-1]
        frames, bins = 8192 // (n // 4) + 1, n // 2 + 1
        assert score.shape[:3] == (2, 1, frames) and score.shape[3] == -(-bins // 8)  # frequency strided by 8
    sum(f[-1].mean() for f in out).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


# -- checkpoints of another shape or version -------------------------------------------------------------
def test_a_wider_latent_and_a_new_noise_branch_start_from_an_older_model_unchanged():
    torch.manual_seed(0)
    old_cfg = RaveConfig(channels=(8, 8, 16, 16), latent_size=4, noise_bands=0)
    old, new = RAVE(old_cfg).eval(), RAVE(RaveConfig(channels=(8, 8, 16, 16), latent_size=6)).eval()
    done = adapt_weights(new, old.state_dict(), old_cfg)
    assert done["widened"] and any(n.startswith("decoder.noise.") for n in done["new"])
    x, z = torch.randn(1, 1, 512 * 5) * 0.1, torch.randn(1, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(new.encode(x)[0][:, :4], old.encode(x)[0])
        new.decoder.noise.magnitudes = lambda h: torch.zeros(h.shape[0], 16, h.shape[-1] // 8, 5)
        torch.testing.assert_close(new.decode(z), old.decode(z[:, :4]), atol=1e-6, rtol=1e-5)


def test_a_version_1_checkpoint_reads_as_a_model_without_noise():
    old = RAVE(RaveConfig(channels=(8, 8, 16, 16), latent_size=4, noise_bands=0)).eval()
    weights = {k.replace("decoder.wave.", "decoder.net.11."): v for k, v in old.state_dict().items()}
    args = {k: list(v) if isinstance(v, tuple) else v for k, v in vars(old.cfg).items() if k != "noise_bands"}
    v1 = {"format": "melodymaker-rave", "format_version": 1, "step": 3, "model_args": args, "model": weights}
    model = model_from_checkpoint(v1)
    assert model.cfg.noise_bands == 0 and model.decoder.noise is None
    z = torch.randn(1, 4, 3)
    with torch.no_grad():
        torch.testing.assert_close(model.decode(z), old.decode(z))
    with pytest.raises(ValueError, match="format version 3"):
        model_from_checkpoint({**v1, "format_version": 3})


def test_chunked_decode_equals_one_pass():
    """Without the noise branch (whose draws differ with the chunking) decoding is exact in chunks."""
    torch.manual_seed(0)
    model = latents.RaveExport(export(RAVE(RaveConfig(channels=(8, 8, 16, 16), latent_size=4, noise_bands=0))))
    assert (model.sr, model.latent_size, model.ratio) == (22050, 4, 512)
    z = np.random.default_rng(0).standard_normal((4, latents.DECODE_CHUNK + 70)).astype(np.float32)
    chunked = model.decode(z)
    with torch.inference_mode():
        whole = model.module.decode(torch.from_numpy(z)[None])[0, 0].numpy()
    assert len(chunked) == len(whole) == z.shape[1] * 512
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


# -- genre latents --------------------------------------------------------------------------------
def test_genre_trajectory_is_made_of_the_genres_material_and_seeded():
    rng = np.random.default_rng(0)
    clips = [torch.from_numpy(rng.standard_normal((4, 300)).astype(np.float32) + 10 * i) for i in range(3)]
    z, used = latents.genre_trajectory(clips, 1000, seed=5, frame_rate=43.0, variation=0.0)
    again, _ = latents.genre_trajectory(clips, 1000, seed=5, frame_rate=43.0, variation=0.0)
    other, _ = latents.genre_trajectory(clips, 1000, seed=6, frame_rate=43.0, variation=0.0)
    assert z.shape == (4, 1000) and np.array_equal(z, again) and not np.array_equal(z, other)
    assert len(used) > 2 and used[0]["at"] == 0
    first = used[0]   # the first segment is copied verbatim from its clip
    np.testing.assert_array_equal(z[:, : first["frames"] - 22],
                                  clips[first["clip"]].numpy()[:, first["start"]: first["start"] + first["frames"] - 22])
    noisy, _ = latents.genre_trajectory(clips, 1000, seed=5, frame_rate=43.0, variation=0.15)
    assert 0 < np.abs(noisy - z).mean() < 0.2 * np.concatenate([c.numpy() for c in clips], 1).std()
    with pytest.raises(ValueError):
        latents.genre_trajectory([], 10, seed=0, frame_rate=43.0)


def _pulses(bpm: float, frames: int, first: float, frame_rate: float = 43.0) -> np.ndarray:
    """A 2-d latent trajectory whose first dimension is a triangle pulse on every beat."""
    t = np.arange(frames) / frame_rate
    phase = ((t - first) * bpm / 60.0) % 1.0
    dist = np.minimum(phase, 1 - phase) * 60.0 / bpm * frame_rate      # frames to the nearest beat
    return np.stack([np.clip(1 - dist / 2.5, 0, None), np.zeros(frames)]).astype(np.float32)


def _beat_period(x: np.ndarray, lo: int, hi: int) -> int:
    x = x - x.mean()
    ac = [float(np.dot(x[:-lag], x[lag:])) for lag in range(lo, hi)]
    return lo + int(np.argmax(ac))


def test_genre_trajectory_on_the_beat_grid_plays_the_requested_tempo():
    """Clips at 120 and 96 BPM, asked for 100 BPM: whole bars from their beats, stretched in latent
    space by each clip's own ratio, so the pulse comes every 60 / 100 s throughout."""
    fr, tempos, firsts = 43.0, [120.0, 96.0, 118.0], [0.21, 0.05, 0.4]
    clips = [torch.from_numpy(_pulses(b, 1300, f, fr)) for b, f in zip(tempos, firsts)]
    z, used = latents.genre_trajectory(clips, 1200, seed=3, frame_rate=fr, variation=0.0, tempo=100.0,
                                       tempos=tempos, first_beats=firsts)
    again, _ = latents.genre_trajectory(clips, 1200, seed=3, frame_rate=fr, variation=0.0, tempo=100.0,
                                        tempos=tempos, first_beats=firsts)
    assert z.shape == (2, 1200) and np.array_equal(z, again) and len(used) >= 3
    assert all(u["beats"] % 4 == 0 for u in used)
    assert {u["rate"] for u in used} <= {round(100.0 / t, 4) for t in tempos}   # median 118: no octave fold
    assert _beat_period(z[0], 15, 40) == round(60 / 100 * fr)      # 25.8 frames per beat
    beats = np.flatnonzero((z[0, 1:] > 0.5) & (z[0, :-1] <= 0.5)) + 1   # each pulse's rising edge
    grid = np.arange(len(beats)) * 60 / 100 * fr
    assert np.abs(beats - beats[0] - grid).max() < 1.5              # no beat lost at a splice
    # without clip tempi (an older bank) the segments are cut as before, unstretched
    _, plain = latents.genre_trajectory(clips, 1200, seed=3, frame_rate=fr, variation=0.0, tempo=100.0)
    assert not any("rate" in u for u in plain)

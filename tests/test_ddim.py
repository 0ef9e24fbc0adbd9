"""DDIM on MDCT: the transform's perfect reconstruction, a tiny training run through train.py,
checkpoints, windowed sampling without seams, sample.py, the engine, and broken checkpoints."""
import csv
import json
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import refuse_mode_and_serve, serve_mode
from diffusion_model import sample, train
from diffusion_model.data import compress, denormalise, expand, normalise
from diffusion_model.mdct import MDCT
from melodymaker.audio import load

TINY = ["--steps", "60", "--seed", "0", "--threads", "1", "--batch-size", "8", "--frames", "64",
        "--channels", "32,48", "--emb-dim", "32", "--attention-heads", "4", "--patch", "2",
        "--lr", "2e-3", "--warmup", "5", "--log-every", "10", "--save-every", "30", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(composed_library, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddim_run")
    threads = torch.get_num_threads()
    assert train.main(["--genres", str(composed_library), "--out", str(out)] + TINY) == 0
    torch.set_num_threads(threads)
    return out


@pytest.fixture()
def ddim_models(tiny_run, tmp_path):
    (tmp_path / "models" / "ddim").mkdir(parents=True)
    shutil.copy(tiny_run / "ddim.pt", tmp_path / "models" / "ddim" / "ddim.pt")
    return tmp_path / "models"


# -- the transform -------------------------------------------------------------------------------
def test_mdct_reconstructs_real_audio_perfectly(composed_library):
    clip = sorted(composed_library.glob("*/*.au"))[0]
    y = torch.from_numpy(load(clip))
    mdct = MDCT(256)
    coeffs = mdct(y)
    assert coeffs.shape == (256, mdct.frames_for(len(y)))
    back = mdct.inverse(coeffs, len(y))
    assert float((back - y).norm() / y.norm()) < 1e-4


def test_mdct_is_batched_and_handles_any_length():
    mdct = MDCT(128)
    x = torch.randn(3, 2, 1001)
    c = mdct(x)
    assert c.shape == (3, 2, 128, mdct.frames_for(1001))
    assert float((mdct.inverse(c, 1001) - x).abs().max()) < 1e-4
    # a critically sampled lapped transform: one frame per hop, not two
    assert mdct.frames_for(128 * 50) == 51


def test_normalisation_round_trips():
    x = torch.randn(256, 100) * torch.logspace(-4, 0, 256)[:, None]
    assert torch.allclose(expand(compress(x, 0.5), 0.5), x, atol=1e-6)
    std = compress(x, 0.5).pow(2).mean(1).sqrt()
    n = normalise(x, 0.5, std)
    assert abs(float(n.pow(2).mean()) - 1) < 0.05  # every bin at unit scale
    assert torch.allclose(denormalise(n, 0.5, std), x, atol=1e-5)


# -- training ------------------------------------------------------------------------------------
def test_tiny_training_loss_goes_down_and_writes_a_card(tiny_run):
    # the probe is the same windows, times and noise at every check, so its fall is the model's
    rows = list(csv.DictReader(open(tiny_run / "log.csv")))
    probes = [float(r["probe_loss"]) for r in rows if r["probe_loss"]]
    assert [int(r["step"]) for r in rows if r["probe_loss"]] == [0, 30, 60]
    assert probes[0] > probes[1] > probes[2] and probes[2] < 0.97 * probes[0], probes
    card = json.loads((tiny_run / "card.json").read_text())
    assert card["training"]["steps"] == 60 and card["command"].startswith("python -m diffusion_model.train")
    assert card["library"]["used"] == 20 and card["training"]["final_losses"]["probe_loss"] == round(probes[-1], 5)
    assert not list(tiny_run.glob("*.tmp"))


def test_training_resumes_from_its_last_state(tiny_run, composed_library, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out)
    args = ["--genres", str(composed_library), "--out", str(out)] + TINY
    args[args.index("--steps") + 1] = "70"
    assert train.main(args) == 0
    steps = [int(r["step"]) for r in csv.DictReader(open(out / "log.csv"))]
    assert steps[-1] == 70 and steps.count(60) == 1  # carried on, did not start again
    assert torch.load(out / "ddim.pt", weights_only=True)["step"] == 70


def test_a_new_run_starts_from_a_shipped_checkpoint(tiny_run, composed_library, tmp_path):
    """--init-from: the shipped ddim.pt's shape and per-bin scale, its weights; a fresh optimiser.
    The first probe is the shipped model's (well under a fresh network's), and the card says what
    the run continues."""
    out = tmp_path / "continued"
    args = ["--genres", str(composed_library), "--out", str(out), "--init-from", str(tiny_run / "ddim.pt")] + TINY
    args[args.index("--steps") + 1] = "10"
    args[args.index("--channels") + 1] = "8,8"   # the checkpoint's shape wins over the flags
    args += ["--guidance", "7", "--sample-steps", "3"]  # and its sampling defaults (a grid adopted them)
    assert train.main(args) == 0
    first = [float(r["probe_loss"]) for r in csv.DictReader(open(tiny_run / "log.csv")) if r["probe_loss"]]
    probes = [float(r["probe_loss"]) for r in csv.DictReader(open(out / "log.csv")) if r["probe_loss"]]
    assert probes[0] < 0.99 * first[0] and abs(probes[0] - first[-1]) < 0.02 * first[-1], (first, probes)
    card = json.loads((out / "card.json").read_text())
    assert card["init_from"]["step"] == 60 and card["init_from"]["path"].endswith("ddim.pt")
    assert card["config"]["channels"] == [32, 48]
    shipped, continued = sample.load(tiny_run / "ddim.pt"), sample.load(out / "ddim.pt")
    assert torch.equal(shipped.bin_std, continued.bin_std) and continued.net.cfg == shipped.net.cfg
    assert continued.defaults == shipped.defaults
    # running the command again resumes its own state, and still knows where it started
    args[args.index("--steps") + 1] = "12"
    assert train.main(args) == 0
    assert json.loads((out / "card.json").read_text())["init_from"]["step"] == 60


def _randomised(net):
    """A network whose every weight is random (a fresh one's last layers are zero: it says nothing)."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.1 if p.dim() > 1 else 0.3) + (1.0 if p.dim() == 1 else 0.0))
    return net.eval()


def test_a_widened_network_holds_the_one_it_was_widened_from():
    """model.widen: each channel of a doubled level twice, side by side, and the layers that read
    it at half weight. Up to the first block that joins a doubled skip to an undoubled level (its
    norm regroups) every activation is the old one's, twice; the output stays far nearer the old
    network's than a network that was not copied."""
    from dataclasses import replace

    from diffusion_model.model import UNet1D, UNetConfig, widen
    replace_channels = lambda cfg, channels: replace(cfg, channels=tuple(channels))
    old = _randomised(UNet1D(UNetConfig(bins=16, patch=2, channels=(128, 128), emb_dim=32, attention_heads=4,
                                        classes=3, tempo_cond=True)))
    g = torch.Generator().manual_seed(2)
    x, ctx = torch.randn(3, 16, 32, generator=g), torch.randn(3, 16, 32, generator=g)
    mask = (torch.rand(3, 1, 32, generator=g) < 0.5).float()
    t, genre, bpm = torch.tensor([0.2, 0.5, 0.9]), torch.tensor([0, 2, 3]), torch.tensor([90.0, 0.0, 140.0])

    def run(net):
        seen = {}
        layers = {"stem": net.stem, "top block": net.down[0][-1], "downsample": net.downsample[0]}
        hooks = [layer.register_forward_hook(lambda m, i, o, name=name: seen.setdefault(name, o))
                 for name, layer in layers.items()]
        out = net(x, ctx, mask, t, genre, bpm)
        for h in hooks:
            h.remove()
        return out, seen

    with torch.no_grad():
        before, inside = run(old)
        exact = UNet1D(replace_channels(old.cfg, (256, 128)))
        widen(old, exact, noise=0.0)
        parted = UNet1D(replace_channels(old.cfg, (256, 128)))
        widen(old, parted, noise=0.01)
        stranger = _randomised(UNet1D(replace_channels(old.cfg, (256, 128))))
        gap = lambda out: float((out - before).norm() / before.norm())
        out, wide = run(exact)
        assert exact.stem.out_channels == 256 and exact.head[2].in_channels == 256
        for name in ("stem", "top block", "downsample"):
            torch.testing.assert_close(wide[name], inside[name].repeat_interleave(2, dim=1), rtol=1e-3, atol=1e-4)
        assert gap(out) < 0.5 * gap(stranger(x, ctx, mask, t, genre, bpm)), (gap(out), gap(stranger(x, ctx, mask, t, genre, bpm)))
        # without noise a channel's two copies stay one channel; with it they can part
        assert torch.equal(exact.stem.weight[0], exact.stem.weight[1])
        assert not torch.equal(parted.stem.weight[0], parted.stem.weight[1])
    with pytest.raises(ValueError, match="cannot widen channels"):
        widen(old, UNet1D(replace_channels(old.cfg, (192, 128))))


def test_a_gain_filter_grown_from_a_gain_is_the_same_network_and_reaches_its_neighbours():
    """add_taps: the old elementwise gain is the centre tap, the new taps start at zero, so the
    network's v is the old one's exactly, guided or not; once a side tap is set, v in a frame
    moves with x_t in the next frame of the same bin, and in no other bin."""
    from diffusion_model.model import UNet1D, UNetConfig, add_taps
    old = _randomised(UNet1D(UNetConfig(bins=16, patch=2, channels=(32, 48), emb_dim=32, attention_heads=4,
                                        classes=3, tempo_cond=True)))
    new = UNet1D(UNetConfig(**{**old.cfg.to_dict(), "channels": (32, 48), "taps": 5}))
    add_taps(old, new)
    g = torch.Generator().manual_seed(3)
    x, ctx = torch.randn(1, 16, 32, generator=g), torch.randn(1, 16, 32, generator=g)
    mask = (torch.rand(1, 1, 32, generator=g) < 0.5).float()
    t, genre, bpm = torch.tensor([0.4, 0.4]), torch.tensor([1, 3]), torch.tensor([100.0, 0.0])
    with torch.no_grad():
        torch.testing.assert_close(new(x, ctx, mask, t[:1], genre[:1], bpm[:1]), old(x, ctx, mask, t[:1], genre[:1], bpm[:1]))
        torch.testing.assert_close(new(x, ctx, mask, t, genre, bpm, guidance=3.0),
                                   old(x, ctx, mask, t, genre, bpm, guidance=3.0))
        block = 16 * 2                               # head rows per chunk: bins x patch
        new.head[2].bias[3 * block:4 * block] += 1.0  # tap 3 weighs x_t one frame on
        nudged = x.clone()
        nudged[0, 5, 10] += 1.0
        moved = new(nudged, ctx, mask, t[:1], genre[:1], bpm[:1]) - new(x, ctx, mask, t[:1], genre[:1], bpm[:1])
        back = old(nudged, ctx, mask, t[:1], genre[:1], bpm[:1]) - old(x, ctx, mask, t[:1], genre[:1], bpm[:1])
    assert abs(float((moved - back)[0, 5, 9]) - 1.0) < 0.05   # bin 5, the frame before: the new tap
    assert float((moved - back)[0, torch.arange(16) != 5].abs().max()) < 0.05 * float((moved - back).abs().max())
    with pytest.raises(ValueError, match="taps must be an odd number"):
        UNet1D(UNetConfig(**{**old.cfg.to_dict(), "taps": 4}))


def test_a_run_grows_the_gain_filter_of_the_checkpoint_it_starts_from(tiny_run, composed_library, tmp_path, capsys):
    """--taps 3 from a checkpoint with an elementwise gain: its first probe is the checkpoint's
    own, the card and the checkpoint say taps 3, and an even --taps is refused by name."""
    out = tmp_path / "taps"
    args = ["--genres", str(composed_library), "--out", str(out), "--init-from", str(tiny_run / "ddim.pt"),
            "--taps", "3"] + TINY
    args[args.index("--steps") + 1] = "4"
    assert train.main(args) == 0
    before = [float(r["probe_loss"]) for r in csv.DictReader(open(tiny_run / "log.csv")) if r["probe_loss"]]
    after = [float(r["probe_loss"]) for r in csv.DictReader(open(out / "log.csv")) if r["probe_loss"]]
    assert abs(after[0] - before[-1]) < 0.02 * before[-1], (before, after)
    card = json.loads((out / "card.json").read_text())
    assert card["config"]["taps"] == 3 and card["init_from"]["taps"] == {"from": 1, "to": 3}
    model = sample.load(out / "ddim.pt")
    assert model.net.cfg.taps == 3 and len(model.sample("jazz", 1.0, 1, steps=2)) == model.sr
    with pytest.raises(SystemExit):
        train.main(["--genres", str(composed_library), "--out", str(tmp_path / "even"), "--taps", "4"])
    assert "--taps must be an odd number of frames" in capsys.readouterr().err


def test_a_run_widens_the_checkpoint_it_starts_from(tiny_run, composed_library, tmp_path, capsys):
    """--widen --channels: the checkpoint's network at the new widths, which starts near the
    checkpoint's probe loss (a fresh network starts far above it), says so in its card, and resumes
    at its own width without the flags."""
    out = tmp_path / "wide"
    args = ["--genres", str(composed_library), "--out", str(out), "--init-from", str(tiny_run / "ddim.pt"),
            "--widen"] + TINY
    args[args.index("--steps") + 1] = "6"
    args[args.index("--channels") + 1] = "64,48"
    assert train.main(args) == 0
    first = [float(r["probe_loss"]) for r in csv.DictReader(open(tiny_run / "log.csv")) if r["probe_loss"]]
    probes = [float(r["probe_loss"]) for r in csv.DictReader(open(out / "log.csv")) if r["probe_loss"]]
    assert probes[0] < first[-1] + 0.5 * (first[0] - first[-1]), (first, probes)
    card = json.loads((out / "card.json").read_text())
    assert card["config"]["channels"] == [64, 48]
    assert card["init_from"]["widened"] == {"from": [32, 48], "to": [64, 48]}
    assert sample.load(out / "ddim.pt").net.stem.out_channels == 64
    resumed = [a for a in args if a != "--widen"]
    resumed[resumed.index("--channels") + 1] = "32,48"
    resumed[resumed.index("--steps") + 1] = "8"
    assert train.main(resumed) == 0
    assert sample.load(out / "ddim.pt").net.cfg.channels == (64, 48)
    for bad, says in ((["--channels", "40,48"], "--widen: cannot widen channels [32, 48] to [40, 48]"),):
        bad_args = args[:]
        bad_args[bad_args.index("--out") + 1] = str(tmp_path / "bad")
        bad_args[bad_args.index("--channels") + 1] = bad[1]
        with pytest.raises(SystemExit, match=re.escape(says)):
            train.main(bad_args)
    with pytest.raises(SystemExit):
        train.main(["--genres", str(composed_library), "--out", str(tmp_path / "none"), "--widen"])
    assert "--widen needs --init-from" in capsys.readouterr().err


def test_checkpoint_round_trips(tiny_run):
    model = sample.load(tiny_run / "ddim.pt")
    state = torch.load(tiny_run / "train_state.pt", weights_only=False)
    for k, v in model.net.state_dict().items():  # the shipped weights are the EMA ones, in int8 (per-channel
        ema = state["ema"][k].float()             # scale) where large, else float16
        step = ema.abs().amax(dim=tuple(range(1, ema.dim())), keepdim=True) / 127 if ema.dim() >= 2 else 0
        assert torch.all((v - ema).abs() <= step * 0.51 + ema.abs() * 1e-3 + 1e-6)
    assert model.genres[:2] == ["blues", "classical"] and model.hop == 256 and model.sr == 22050
    assert model.defaults["steps"] <= 50 and model.step == 60
    ckpt = torch.load(tiny_run / "ddim.pt", weights_only=True)
    assert (ckpt["format"], ckpt["format_version"], ckpt["step"]) == ("melodymaker-ddim", 1, 60)


# -- sampling ------------------------------------------------------------------------------------
def test_one_set_of_frames_under_two_labels_is_each_label_alone_and_guides_the_same(tiny_run, tempo_run):
    """Guidance's two branches share the noisy frames: given once (batch 1) against two labels, the
    network's stem runs once, and each branch's output is what that label alone gives; asked for
    the guided v, it mixes them before its head, and gives what mixing the two outputs gives."""
    for run, tempo in ((tiny_run, None), (tempo_run, torch.tensor([120.0, 0.0]))):
        net = sample.load(run / "ddim.pt").net
        frames = net.multiple * 4
        g = torch.Generator().manual_seed(3)
        x, ctx = torch.randn(1, net.cfg.bins, frames, generator=g), torch.randn(1, net.cfg.bins, frames, generator=g)
        mask = torch.zeros(1, 1, frames)
        mask[..., :net.multiple] = 1.0
        t, labels = torch.tensor([0.6, 0.6]), torch.tensor([1, net.cfg.classes])
        with torch.no_grad():
            shared = net(x, ctx, mask, t, labels, tempo)
            each = [net(x, ctx, mask, t[k:k + 1], labels[k:k + 1], None if tempo is None else tempo[k:k + 1])
                    for k in range(2)]
        assert shared.shape == (2, net.cfg.bins, frames)
        for k in range(2):
            torch.testing.assert_close(shared[k:k + 1], each[k], rtol=1e-4, atol=1e-5)
        assert (shared[0] - shared[1]).abs().max() > 0   # the labels do differ
        with torch.no_grad():  # guided: the branches mixed before the head are those mixed after it
            guided = net(x, ctx, mask, t, labels, tempo, guidance=3.0)
        torch.testing.assert_close(guided, shared[1:] + 3.0 * (shared[:1] - shared[1:]), rtol=1e-4, atol=1e-4)


def test_long_tracks_are_windows_that_continue_without_a_seam(tiny_run):
    model = sample.load(tiny_run / "ddim.pt")
    window, overlap = 64, 16  # 0.74 s windows: a 4 s track takes six, joined five times
    y = model.sample("disco", 4.0, seed=3, steps=4, window=window, overlap=overlap)
    assert len(y) == 4 * 22050 and np.isfinite(y).all()
    # the sample-to-sample jump at each window boundary is no larger than the track's usual jumps
    jumps = np.abs(np.diff(y))
    bounds = [(window + k * (window - overlap)) * 256 for k in range(5)]
    near = max(jumps[b - 512:b + 512].max() for b in bounds if b + 512 < len(jumps))
    assert near <= np.quantile(jumps, 0.9999) * 1.5
    # windows are fresh material, not copies of each other
    a, b = y[:window * 256], y[(window - overlap) * 256:(2 * window - overlap) * 256]
    assert abs(np.corrcoef(a[:len(b)], b[:len(a)])[0, 1]) < 0.5


def test_both_solvers_make_the_same_kind_of_window(tiny_run):
    model = sample.load(tiny_run / "ddim.pt")
    ddim = model.sample("jazz", 1.0, seed=5, steps=6, solver="ddim")
    dpm = model.sample("jazz", 1.0, seed=5, steps=6, solver="dpm++2m")
    assert len(ddim) == len(dpm) == 22050 and np.isfinite(dpm).all()
    # the same start noise down the same ODE: close, but the second-order steps differ
    assert 0.5 < np.sqrt((dpm ** 2).mean() / (ddim ** 2).mean()) < 2
    assert np.corrcoef(ddim, dpm)[0, 1] > 0.5 and not np.array_equal(ddim, dpm)
    with pytest.raises(ValueError, match="solver"):
        model.sample("jazz", 1.0, seed=5, solver="euler")


def test_sample_cli_writes_exact_length(tiny_run, tmp_path, capsys):
    out = tmp_path / "x.wav"
    assert sample.main(["--checkpoint", str(tiny_run / "ddim.pt"), "--genre", "metal", "--length",
                        "1.3", "--seed", "1", "--steps", "3", "--out", str(out), "--threads", "1"]) == 0
    y, sr = sf.read(out)
    assert sr == 22050 and len(y) == round(1.3 * 22050) and np.abs(y).max() > 0
    assert sample.main(["--checkpoint", str(tmp_path / "none.pt"), "--genre", "metal",
                        "--out", str(out)]) == 2
    assert "cannot load" in capsys.readouterr().err


def test_engine_exact_length_and_same_seed_same_bytes(ddim_models, composed_library, tmp_path):
    from melodymaker.request import GenerationRequest
    from melodymaker.service import Service
    from melodymaker.settings import Settings
    service = Service(Settings(genres_dir=composed_library, models_dir=ddim_models, var_dir=tmp_path / "var"))
    assert service.engines["ddim"].availability() is None
    req = GenerationRequest.parse({"genre": "reggae", "mode": "ddim", "length": 2.5, "seed": 7})
    t1, _ = service.generate(req)
    t2, _ = service.generate(req)
    assert len(t1.audio) == round(2.5 * 22050) and t1.meta["engine"] == "ddim"
    assert t1.audio.tobytes() == t2.audio.tobytes()


def test_server_serves_ddim_with_a_checkpoint(ddim_models, settings):
    settings.models_dir = ddim_models
    serve_mode(settings, "ddim", "disco", length=2)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "foreign"])
def test_a_broken_checkpoint_makes_ddim_unavailable_but_the_server_serves(damage, settings, tmp_path, ddim_models):
    models = tmp_path / "m"
    shutil.copytree(ddim_models, models)
    ckpt = models / "ddim" / "ddim.pt"
    if damage == "missing":
        ckpt.unlink()
    elif damage == "corrupt":
        ckpt.write_bytes(ckpt.read_bytes()[:5000])
    else:
        torch.save({"weights": torch.zeros(3)}, ckpt)
    settings.models_dir = models
    refuse_mode_and_serve(settings, "ddim")


# -- windows and weights ---------------------------------------------------------------------------
@pytest.mark.parametrize("total", [1, 100, 431, 862, 1034, 2584, 25840])
@pytest.mark.parametrize("window,overlap", [(256, 32), (512, 64), (64, 16)])
def test_windows_cover_the_track_with_no_more_than_they_need(total, window, overlap):
    n, size, kept = sample.plan_windows(total, window, overlap, 16)
    assert size % 16 == 0 and size <= window and kept == overlap
    covered = n * size - (n - 1) * overlap
    assert covered >= total
    assert covered - total < n * 16  # at most one rounding to the network's multiple per window
    fewer = n - 1  # one window fewer of the largest size cannot cover the track
    assert fewer == 0 or fewer * window - (fewer - 1) * overlap < total


def test_int8_weights_make_a_smaller_checkpoint_that_samples_the_same_music(tiny_run, tmp_path, capsys):
    from melodymaker import weights
    half, packed = tmp_path / "half.pt", tmp_path / "int8.pt"
    for path, to in ((half, "float16"), (packed, "int8")):
        shutil.copy(tiny_run / "ddim.pt", path)
        assert weights.main([str(path), "--to", to]) == 0
        assert to in capsys.readouterr().out
    ckpt = torch.load(packed, weights_only=True)
    assert ckpt["weights"]["storage"] == {"model": "int8"}
    assert any(k.endswith("::int8") and v.dtype == torch.int8 for k, v in ckpt["model"].items())
    assert not any(k.endswith("::int8") for k in torch.load(half, weights_only=True)["model"])
    assert packed.stat().st_size < 0.7 * half.stat().st_size
    a = sample.load(half).sample("blues", 1.0, seed=2, steps=4)
    b = sample.load(packed).sample("blues", 1.0, seed=2, steps=4)
    assert np.corrcoef(a, b)[0, 1] > 0.98
    assert 0.9 < np.sqrt((b ** 2).mean() / (a ** 2).mean()) < 1.1
    with pytest.raises(SystemExit):
        weights.main([str(tmp_path / "none.pt"), "--to", "int8"])


def test_the_grid_measures_settings_and_adopts_one_as_the_checkpoints_defaults(tiny_run, tmp_path, capsys):
    from diffusion_model import grid
    ckpt = tmp_path / "ddim.pt"
    shutil.copy(tiny_run / "ddim.pt", ckpt)
    assert grid.main(["--checkpoint", str(ckpt), "--adopt", "dpm++2m:3:64:16:1.5"]) == 0
    model = sample.load(ckpt)
    assert {k: model.defaults[k] for k in ("solver", "steps", "window", "overlap", "guidance")} == \
        {"solver": "dpm++2m", "steps": 3, "window": 64, "overlap": 16, "guidance": 1.5}
    explicit = model.sample("metal", 1.0, seed=4, solver="dpm++2m", steps=3, window=64, overlap=16, guidance=1.5)
    assert np.array_equal(model.sample("metal", 1.0, seed=4), explicit)
    history = torch.load(ckpt, weights_only=True)["sampling_history"]
    assert history[-1]["was"]["solver"] == "ddim" and "--adopt" in history[-1]["command"]
    with pytest.raises(SystemExit):
        grid.main(["--checkpoint", str(ckpt), "--adopt", "euler:3:64:16:1"])


# -- tempo ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tempo_run(tiny_run, composed_library, tmp_path_factory):
    """The tiny run continued with a tempo embedding (--init-from --tempo-cond)."""
    out = tmp_path_factory.mktemp("ddim_tempo")
    args = ["--genres", str(composed_library), "--out", str(out), "--init-from", str(tiny_run / "ddim.pt"),
            "--tempo-cond"] + TINY
    args[args.index("--steps") + 1] = "20"
    threads = torch.get_num_threads()
    assert train.main(args) == 0
    torch.set_num_threads(threads)
    return out


def test_a_tempo_embedding_starts_as_the_network_it_was_added_to(tiny_run, tempo_run):
    """Its last layer starts at zero: the first probe is the checkpoint's own, and the state names
    the new shape, so the run resumes without the flag."""
    before = [float(r["probe_loss"]) for r in csv.DictReader(open(tiny_run / "log.csv")) if r["probe_loss"]]
    after = [float(r["probe_loss"]) for r in csv.DictReader(open(tempo_run / "log.csv")) if r["probe_loss"]]
    assert abs(after[0] - before[-1]) < 0.02 * before[-1], (before, after)
    state = torch.load(tempo_run / "train_state.pt", weights_only=True)
    assert state["model_config"]["tempo_cond"] is True
    assert json.loads((tempo_run / "card.json").read_text())["config"]["tempo_cond"] is True


def test_the_checkpoint_knows_each_genres_tempi_and_folds_a_request_into_them(tempo_run, composed_library):
    from melodymaker.library import Library
    model = sample.load(tempo_run / "ddim.pt")
    assert model.takes_tempo and set(model.tempi) == {p.name for p in composed_library.iterdir() if p.is_dir()}
    library = Library(composed_library).scan()
    for genre, (low, median, high) in model.tempi.items():
        measured = [library.analyse(c, save=False).tempo for c in library.genre_clips(genre)]
        assert low <= median <= high and min(measured) <= median <= max(measured)
        for asked in (50, 70, 100, 140, 200, 260):
            played = model.play_tempo(genre, asked)
            assert low <= played <= high
            if any(low <= asked * k <= high for k in (0.5, 1, 2)):  # an octave of it fits: that one
                assert any(abs(played - asked * k) < 1e-9 for k in (0.5, 1, 2))
    assert model.play_tempo("jazz", None) is None


def test_tempi_read_in_parallel_are_the_library_analysis(composed_library):
    from diffusion_model.data import clip_tempi
    from melodymaker.library import Library
    library = Library(composed_library).scan()
    clips = [c for g in ("disco", "jazz") for c in library.genre_clips(g)[:2]]
    assert clip_tempi(clips, 2) == {c.key: library.analyse(c, save=False).tempo for c in clips}


def test_tempi_are_folded_into_their_genres_octave():
    """A tracker's double or half tempo is labelled as the groove it is; no tempo stays none."""
    from diffusion_model.data import fold_tempi
    tempi = [90.0, 180.0, 88.0, 0.0, 45.5, 130.0, 65.0, 128.0]
    labels = [0, 0, 0, 0, 0, 1, 1, 1]
    assert fold_tempi(tempi, labels) == [90.0, 90.0, 88.0, 0.0, 91.0, 130.0, 130.0, 128.0]


def test_a_stretched_copy_is_the_same_music_at_its_tempo_times_the_rate(composed_library):
    """--stretch: every clip twice, the copy as many frames shorter or longer as its rate makes it,
    its tempo label scaled alike, its rate drawn within the range and the same for the same seed."""
    from diffusion_model.data import MDCTDataset
    plain = MDCTDataset.build(composed_library, max_per_genre=1, progress=False)
    both = MDCTDataset.build(composed_library, max_per_genre=1, progress=False, stretch=0.25, seed=5)
    again = MDCTDataset.build(composed_library, max_per_genre=1, progress=False, stretch=0.25, seed=5)
    n = len(plain.frames)
    assert len(both.frames) == 2 * n and both.names[:n] == plain.names and both.labels == plain.labels * 2
    assert both.names == again.names and both.tempi == again.tempi
    for i in range(n):
        name, rate = both.names[n + i].split("@")
        rate = float(rate)
        assert name == plain.names[i] and 1 / 1.25 <= rate <= 1.25
        assert both.tempi[n + i] == pytest.approx(plain.tempi[i] * rate, rel=1e-3)
        assert both.frames[n + i].shape[1] == pytest.approx(plain.frames[i].shape[1] / rate, abs=3)


def test_a_stretch_outside_its_range_is_refused_by_name(composed_library, tmp_path, capsys):
    for bad in ("-0.1", "2"):
        with pytest.raises(SystemExit):
            train.main(["--genres", str(composed_library), "--out", str(tmp_path), "--stretch", bad])
        assert "--stretch must be within 0-1" in capsys.readouterr().err
    assert not (tmp_path / "ddim.pt").exists()


def test_the_tempo_steers_a_tempo_network_and_no_other(tiny_run, tempo_run):
    with_tempo, without = sample.load(tempo_run / "ddim.pt"), sample.load(tiny_run / "ddim.pt")
    fast = with_tempo.sample("disco", 1.0, seed=3, steps=4, tempo=150.0)
    slow = with_tempo.sample("disco", 1.0, seed=3, steps=4, tempo=75.0)
    free = with_tempo.sample("disco", 1.0, seed=3, steps=4)
    assert len(fast) == len(slow) == 22050 and not np.array_equal(fast, slow) and not np.array_equal(fast, free)
    assert np.array_equal(without.sample("disco", 1.0, seed=3, steps=4, tempo=150.0),
                          without.sample("disco", 1.0, seed=3, steps=4))
    assert without.play_tempo("disco", 150.0) is None


def test_the_engine_draws_near_the_tempo_asked_for_and_says_so(tempo_run, composed_library, tmp_path):
    from melodymaker.request import GenerationRequest
    from melodymaker.service import Service
    from melodymaker.settings import Settings
    (tmp_path / "models" / "ddim").mkdir(parents=True)
    shutil.copy(tempo_run / "ddim.pt", tmp_path / "models" / "ddim" / "ddim.pt")
    service = Service(Settings(genres_dir=composed_library, models_dir=tmp_path / "models", var_dir=tmp_path / "var"),
                      with_store=False, modes=["ddim"])
    try:
        track, meta = service.generate_one(GenerationRequest.parse(
            {"genre": "reggae", "mode": "ddim", "length": 2.5, "seed": 7, "tempo": 150}))
        played = meta["details"]["drawn_at_tempo"]
        assert played == round(service.engine("ddim").model.play_tempo("reggae", 150), 2)
        assert len(track.audio) == round(2.5 * 22050) and meta["details"]["tempo_conform"]["rate"] > 0
        _, free = service.generate_one(GenerationRequest.parse({"genre": "reggae", "mode": "ddim", "length": 2.5,
                                                               "seed": 7}))
        assert "drawn_at_tempo" not in free["details"]
    finally:
        service.close()


def test_a_network_over_long_frames_trains_continues_and_keeps_exact_lengths(composed_library, tmp_path):
    """--hop 1024 --patch 1 (what the shipped network uses: 1,024 bins of 10.8 Hz, one frame a
    token): the same trainer, sampler and continuation, with exact lengths on a frame grid four
    times coarser than the default's."""
    out = tmp_path / "h1024"
    threads = torch.get_num_threads()
    flags = [a for a in TINY if a not in ("--frames", "64", "--patch", "2", "--steps", "60")]
    assert train.main(["--genres", str(composed_library), "--out", str(out), "--hop", "1024", "--patch", "1",
                       "--frames", "16", "--steps", "20"] + flags) == 0
    torch.set_num_threads(threads)
    model = sample.load(out / "ddim.pt")
    assert (model.hop, model.net.cfg.bins, model.net.cfg.patch) == (1024, 1024, 1)
    y = model.sample("rock", 2.3, seed=4, steps=3)
    assert len(y) == round(2.3 * 22050) and np.isfinite(y).all() and np.abs(y).max() > 0
    assert np.array_equal(y, model.sample("rock", 2.3, seed=4, steps=3))
    more, known = model.continue_audio(y, "rock", 1.1, seed=5, steps=3)
    assert known == model.defaults["overlap"] == 2 and len(more) == round(1.1 * 22050)
    assert abs(float(more[0] - y[-1])) <= 2 * np.abs(np.diff(y[-2048:])).max()
    # a run that goes on from it reads the library as it learned it: 1,024 bins without --hop
    again = tmp_path / "again"
    assert train.main(["--genres", str(composed_library), "--out", str(again), "--init-from", str(out / "ddim.pt"),
                       "--frames", "16", "--steps", "5"] + flags) == 0
    torch.set_num_threads(threads)
    assert sample.load(again / "ddim.pt").hop == 1024
    assert json.loads((again / "card.json").read_text())["config"]["hop"] == 1024

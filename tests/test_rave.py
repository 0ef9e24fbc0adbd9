"""RAVE: the PQMF bank, a tiny training run through train.py, checkpoints and the TorchScript
export with the official interface (ours and a v1-style stand-in both through plain
torch.jit.load), genre latent trajectories, sample.py, the engine and a missing or corrupt export."""
import csv
import io
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from conftest import refuse_mode_and_serve, serve_mode
from train_rave import latents, sample, train
from train_rave.model import PQMF, RAVE, RaveConfig, fold_weight_norm, model_from_checkpoint

TINY = ["--steps", "12", "--adv-start", "8", "--seed", "0", "--threads", "1", "--holdout", "1",
        "--channels", "8,8,16,16", "--latent-size", "4", "--batch", "2", "--window", "8192",
        "--lr", "3e-3", "--lr-adv", "1e-3", "--d-width", "4", "--log-every", "4", "--save-every", "100",
        "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(composed_library, tmp_path_factory):
    """A tiny RAVE trained for 12 steps (8 spectral, 4 adversarial) on the composed library."""
    out = tmp_path_factory.mktemp("rave_run")
    threads = torch.get_num_threads()
    assert train.main(["--genres", str(composed_library), "--out", str(out)] + TINY) == 0
    torch.set_num_threads(threads)
    return out


@pytest.fixture()
def rave_models(tiny_run, tmp_path):
    """A models/ folder holding only the tiny export and its latent bank."""
    (tmp_path / "models" / "rave").mkdir(parents=True)
    for name in ("rave.ts", "rave.latents.pt"):
        shutil.copy(tiny_run / name, tmp_path / "models" / "rave" / name)
    return tmp_path / "models"


def v1_style_export(sr: int = 44100, latent: int = 3, ratio: int = 64) -> torch.jit.ScriptModule:
    """A stand-in for a RAVE v1 export: `sampling_rate` buffer (no `sr`), encode/decode with the
    params buffers; its decoder draws noise, as official exports with a noise generator do."""

    class V1(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("sampling_rate", torch.tensor(sr))
            self.register_buffer("encode_params", torch.tensor([1, 1, latent, ratio]))
            self.register_buffer("decode_params", torch.tensor([latent, ratio, 1, 1]))
            self.ratio = ratio

        @torch.jit.export
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            frames = F.avg_pool1d(x.abs(), self.ratio, self.ratio)
            return torch.cat([frames, frames * 2, -frames], 1)

        @torch.jit.export
        def decode(self, z: torch.Tensor) -> torch.Tensor:
            env = z[:, :1].repeat_interleave(self.ratio, -1)
            t = torch.arange(env.shape[-1], dtype=torch.float32) / 44100.0
            return env * torch.sin(2 * 3.14159 * 440 * t) + 0.01 * torch.randn_like(env)

    return torch.jit.script(V1())


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


# -- training, checkpoints, export -------------------------------------------------------------------
def test_tiny_training_run_lowers_its_loss_and_writes_everything(tiny_run):
    with open(tiny_run / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert [r["phase"] for r in rows] == ["spectral", "spectral", "adversarial"]
    assert float(rows[1]["spectral"]) < float(rows[0]["spectral"])
    assert float(rows[2]["d_hinge"]) > 0 and float(rows[0]["d_hinge"]) == 0
    card = json.loads((tiny_run / "card.json").read_text())
    assert card["steps"] == 12 and card["library"]["train_clips"] == 16
    assert card["phases"] == [{"phase": "spectral", "from_step": 0, "to_step": 8},
                              {"phase": "adversarial", "from_step": 8, "to_step": 12}]
    assert card["reconstruction_on_held_out_clips"]["clips"] == 4
    assert set(card["bytes"]) == {"rave.pt", "rave.ts", "rave.latents.pt"}
    assert "## Reconstruction of held-out clips" in (tiny_run / "README.md").read_text()


def test_checkpoint_round_trips_and_training_resumes(tiny_run, composed_library, tmp_path):
    state = torch.load(tiny_run / "train_state.pt", weights_only=True)
    ckpt = torch.load(tiny_run / "rave.pt", weights_only=True)
    assert (ckpt["format"], ckpt["format_version"]) == ("melodymaker-rave", 1)
    assert ckpt["step"] == 12 and ckpt["genres"][:2] == ["blues", "classical"]
    assert ckpt["audio"] == {"sr": 22050, "n_bands": 16, "ratio": 512, "latent_size": 4}
    model = model_from_checkpoint(ckpt)
    for k, v in model.state_dict().items():  # float16 storage: equal to that precision
        torch.testing.assert_close(v, state["model_ema"][k], atol=1e-3, rtol=1e-3)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    args = ["--genres", str(composed_library), "--out", str(run)] + TINY
    args[args.index("--steps") + 1] = "14"
    assert train.main(args) == 0
    assert torch.load(run / "train_state.pt", weights_only=True)["step"] == 14
    report = {"command": "python -m melodymaker evaluate --modes rave", "machine": {"cpus": 2, "platform": "x"},
              "summary": [{"mode": "rave", "genre_top1_accuracy": 0.5}], "markdown": "| mode |\n|---|\n| rave |"}
    (tmp_path / "eval.json").write_text(json.dumps(report))
    assert train.main(args + ["--card-only", "--evaluate-json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((run / "card.json").read_text())["evaluate"]["summary"]["genre_top1_accuracy"] == 0.5
    assert "## Benchmark" in (run / "README.md").read_text()
    with pytest.raises(ValueError, match="not a RAVE checkpoint"):
        model_from_checkpoint({"format": "melodymaker-melgan/1"})


def test_a_checkpoint_trained_elsewhere_continues_and_gets_its_card(tiny_run, composed_library, tmp_path):
    """What comes back from a GPU machine is rave.pt and losses.csv (no train_state.pt): training
    goes on from its weights and step, and --card-only exports it and builds its latent bank."""
    came_back, run = tmp_path / "back", tmp_path / "run"
    came_back.mkdir()
    run.mkdir()
    shutil.copy(tiny_run / "rave.pt", came_back / "rave.pt")
    shutil.copy(tiny_run / "losses.csv", run / "losses.csv")
    args = ["--genres", str(composed_library), "--out", str(run)] + TINY
    args[args.index("--steps") + 1] = "16"
    assert train.main(args + ["--init-from", str(came_back / "rave.pt")]) == 0
    with open(run / "losses.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [4, 8, 12, 16]
    card = json.loads((run / "card.json").read_text())
    assert card["steps"] == 16 and card["command"].endswith(" ".join(TINY))
    assert "--init-from" in card["resumed_with"][-1]

    bare = tmp_path / "bare"
    bare.mkdir()
    shutil.copy(run / "rave.pt", bare / "rave.pt")
    assert train.main(["--genres", str(composed_library), "--out", str(bare), "--card-only"]) == 0
    ts = torch.jit.load(str(bare / "rave.ts"))
    assert json.loads(ts.metadata)["step"] == 16
    bank = latents.load_bank(bare / "rave.latents.pt")
    assert set(bank["genres"]) == {g for g, n in card["library"]["counts"].items() if n}
    assert json.loads((bare / "card.json").read_text())["steps"] == 16


def test_export_has_the_official_interface_and_matches_the_model(tiny_run):
    ts = torch.jit.load(str(tiny_run / "rave.ts"))   # the path an official export takes
    assert ts.sr == 22050
    assert ts.encode_params.tolist() == [1, 1, 4, 512] and ts.decode_params.tolist() == [4, 512, 1, 1]
    assert json.loads(ts.metadata)["step"] == 12
    model = fold_weight_norm(model_from_checkpoint(torch.load(tiny_run / "rave.pt", weights_only=True)))
    x = torch.randn(1, 1, 512 * 10) * 0.1
    with torch.inference_mode():
        z = ts.encode(x)
        assert z.shape == (1, 4, 10)
        torch.testing.assert_close(z, model.encode(x)[0], atol=1e-5, rtol=1e-4)
        for frames in (1, 7, 33):   # any length
            assert ts.decode(torch.randn(1, 4, frames)).shape == (1, 1, frames * 512)
        torch.testing.assert_close(ts.decode(z), model.decode(z), atol=1e-5, rtol=1e-4)
    assert ts.encode(torch.zeros(1, 1, 1000)).shape == (1, 4, 2)  # padded up to whole frames


def test_chunked_decode_equals_one_pass(tiny_run):
    model = latents.RaveExport.from_file(tiny_run / "rave.ts")
    assert (model.sr, model.latent_size, model.ratio) == (22050, 4, 512)
    z = np.random.default_rng(0).standard_normal((4, latents.DECODE_CHUNK + 70)).astype(np.float32)
    chunked = model.decode(z)
    with torch.inference_mode():
        whole = model.module.decode(torch.from_numpy(z)[None])[0, 0].numpy()
    assert len(chunked) == len(whole) == z.shape[1] * 512
    np.testing.assert_allclose(chunked, whole, atol=1e-5)


def test_official_v1_style_export_loads_decodes_and_is_resampled(composed_library, tmp_path):
    path = tmp_path / "v1.ts"
    v1_style_export().save(str(path))
    model = latents.RaveExport.from_file(path)
    assert (model.sr, model.latent_size, model.ratio) == (44100, 3, 64)
    rave = sample.GenreRave({"rave": model}, genres_dir=composed_library)
    y, info = rave.generate("disco", 12345, sr=22050, seed=4)
    again, _ = rave.generate("disco", 12345, sr=22050, seed=4)
    assert len(y) == 12345 and y.dtype == np.float32 and np.abs(y).max() > 0
    assert y.tobytes() == again.tobytes()       # the export's own noise is seeded too
    assert info["model"]["sr"] == 44100 and info["segments"][0]["clip"].startswith("disco")
    spectrum = np.abs(np.fft.rfft(y[2000:]))
    assert abs(np.argmax(spectrum) * 22050 / len(y[2000:]) - 440) < 20   # resampled, pitch kept
    torch.jit.script(torch.nn.Linear(2, 2)).save(str(tmp_path / "bad.ts"))
    with pytest.raises(ValueError, match="not a RAVE export"):
        latents.RaveExport.from_file(tmp_path / "bad.ts")


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


# -- making audio --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["rave.ts", "rave.pt"])
def test_sample_cli_writes_exactly_the_requested_length(tiny_run, composed_library, tmp_path, name):
    out = tmp_path / "x.wav"
    assert sample.main(["--checkpoint", str(tiny_run / name), "--genre", "metal", "--length", "1.37",
                        "--seed", "5", "--genres", str(composed_library), "--out", str(out)]) == 0
    assert sf.info(out).frames == round(1.37 * 22050) and sf.info(out).samplerate == 22050


def test_engine_exact_length_same_seed_same_bytes(rave_models, settings):
    from melodymaker.engines import rave
    from melodymaker.request import GenerationRequest
    settings.models_dir = rave_models
    engine = rave.load(settings)
    assert engine.capabilities.length and engine.capabilities.tempo
    seen = []
    req = lambda seed: GenerationRequest.parse({"genre": "reggae", "mode": "rave", "length": 2.3, "seed": seed})
    a = engine.generate(req(11), lambda f, m="": seen.append(f))
    b = engine.generate(req(11))
    c = engine.generate(req(12))
    assert a.sr == 22050 and a.audio.dtype == np.float32 and len(a.audio) == round(2.3 * 22050)
    assert a.audio.tobytes() == b.audio.tobytes() and a.audio.tobytes() != c.audio.tobytes()
    assert seen and all(0 <= f <= 1 for f in seen) and seen == sorted(seen)
    assert a.meta["engine"] == "rave" and a.meta["model"]["file"] == "rave.ts"
    assert all(s["clip"].startswith("reggae") for s in a.meta["segments"])


def test_engine_honours_tempo_in_latent_space(rave_models, settings, tiny_run):
    """With a tempo the latent segments are laid on its beat grid, so the post stage has nothing
    to conform; a bank without clip tempi falls back to the phase vocoder."""
    from melodymaker import post
    from melodymaker.engines import rave
    from melodymaker.request import GenerationRequest
    settings.models_dir = rave_models
    engine = rave.load(settings)
    req = GenerationRequest.parse({"genre": "metal", "mode": "rave", "length": 6, "seed": 3, "tempo": 100})
    track = engine.generate(req)
    assert track.meta["tempo"] == 100 and track.meta["tempo_by"] == "latent time-stretch on the beat grid"
    assert len(track.audio) == 6 * 22050 and all("rate" in s for s in track.meta["segments"])
    done = post.finish(track, req, engine.capabilities)
    assert "tempo_conform" not in done.meta and len(done.audio) == 6 * 22050
    bank = latents.load_bank(rave_models / "rave" / "rave.latents.pt")
    assert len(bank["genres"]["metal"]["tempos"]) == len(bank["genres"]["metal"]["names"])
    for material in bank["genres"].values():   # as banks made before clip tempi were recorded
        del material["tempos"], material["first_beats"]
    old = sample.load(tiny_run / "rave.ts")
    old.banks[sample.MULTI] = bank
    y, info = old.generate("metal", 6 * 22050, sr=22050, seed=3, tempo=100)
    assert info["tempo_by"].startswith("phase vocoder") and "rate" in info["tempo_conform"]
    assert len(y) == 6 * 22050


def test_per_genre_exports_and_latents_encoded_on_first_use(tiny_run, composed_library, settings, tmp_path):
    from melodymaker.engines import rave
    from melodymaker.errors import ModeUnavailable
    from melodymaker.request import GenerationRequest
    folder = tmp_path / "per_genre" / "rave"
    folder.mkdir(parents=True)
    shutil.copy(tiny_run / "rave.ts", folder / "Metal.ts")       # no bank beside it, odd case
    settings.models_dir, settings.genres_dir = folder.parent, composed_library
    engine = rave.load(settings)
    track = engine.generate(GenerationRequest.parse({"genre": "metal", "mode": "rave", "length": 1.5, "seed": 1}))
    assert track.meta["model"]["file"] == "Metal.ts" and len(track.audio) == round(1.5 * 22050)
    assert list((settings.cache_dir / "rave").glob("metal-*.latents.pt"))
    with pytest.raises(ModeUnavailable, match="no RAVE export for disco"):
        engine.generate(GenerationRequest.parse({"genre": "disco", "mode": "rave", "length": 1.5}))


def test_server_serves_rave_with_an_export(rave_models, settings):
    settings.models_dir = rave_models
    serve_mode(settings, "rave", "classical", tempo=96)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_export_leaves_rave_unavailable_and_the_server_serving(settings, damage):
    if damage == "corrupt":
        (settings.models_dir / "rave").mkdir(parents=True)
        (settings.models_dir / "rave" / "rave.ts").write_bytes(b"not a torchscript file" * 64)
    reason = refuse_mode_and_serve(settings, "rave")
    assert ("no trained checkpoint" in reason) if damage == "missing" else ("could not be loaded" in reason)


def test_bad_sample_arguments_are_refused_clearly(tiny_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        sample.main(["--checkpoint", str(tiny_run / "rave.ts"), "--genre", "polka", "--out", str(tmp_path / "x.wav")])
    assert "unknown genre 'polka'" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):
        sample.load(tmp_path / "absent.ts")
    with pytest.raises(SystemExit, match="multiple of the ratio"):
        train.main(["--out", str(tmp_path / "r"), "--window", "1000", "--fresh"])
    with pytest.raises(ValueError, match="strides must be even"):
        RAVE(RaveConfig(strides=(3, 4, 2)))


def test_decode_benchmark_reports_realtime_factors(tiny_run, tmp_path):
    out = tmp_path / "speed.json"
    threads = torch.get_num_threads()
    assert sample.main(["--checkpoint", str(tiny_run / "rave.ts"), "--benchmark", str(out)]) == 0
    assert torch.get_num_threads() == threads
    report = json.loads(out.read_text())
    assert set(report["realtime_factor_by_threads"]) == {"1", "2"}
    assert all(v > 1 for v in report["realtime_factor_by_threads"].values())

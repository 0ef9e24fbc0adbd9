"""RAVE trained and served: a tiny training run through train.py (its loss, card and resynthesis
ceiling), checkpoints, resume and continuing elsewhere, the TorchScript export with the official
interface (ours and a v1-style stand-in both through plain torch.jit.load), the export derived
from rave.pt on first use, sample.py, the engine (library latents, or the prior of a per-genre
export without a library) and a missing or corrupt checkpoint. The parts: test_rave_model.py."""
import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.nn.functional as F

from conftest import refuse_mode_and_serve, serve_mode
from train_rave import latents, sample, train
from train_rave.model import RAVE, RaveConfig, fold_weight_norm, model_from_checkpoint

TINY = ["--steps", "12", "--adv-start", "8", "--adv-plateau", "0", "--seed", "0", "--threads", "1",
        "--holdout", "1", "--channels", "8,8,16,16", "--latent-size", "4", "--batch", "2", "--window", "8192",
        "--lr", "3e-3", "--lr-adv", "1e-3", "--d-width", "4", "--d-scales", "2", "--log-every", "4",
        "--save-every", "100", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(composed_library, tmp_path_factory):
    """A tiny RAVE trained for 12 steps (8 spectral, 4 adversarial) on the composed library, with
    its export and latent bank (--export --bank)."""
    out = tmp_path_factory.mktemp("rave_run")
    threads = torch.get_num_threads()
    assert train.main(["--genres", str(composed_library), "--out", str(out), "--export", "--bank"] + TINY) == 0
    torch.set_num_threads(threads)
    return out


@pytest.fixture()
def rave_models(tiny_run, tmp_path):
    """A models/ folder as shipped: rave.pt alone, here with a latent bank made from it."""
    (tmp_path / "models" / "rave").mkdir(parents=True)
    for name in ("rave.pt", "rave.latents.pt"):
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


# -- training, checkpoints, export -------------------------------------------------------------------
def test_tiny_training_run_lowers_its_loss_and_writes_everything(tiny_run):
    with open(tiny_run / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert [r["phase"] for r in rows] == ["spectral", "spectral", "adversarial"]
    assert float(rows[1]["spectral"]) < float(rows[0]["spectral"])
    assert float(rows[2]["d_hinge"]) > 0 and float(rows[0]["d_hinge"]) == 0
    card = json.loads((tiny_run / "card.json").read_text())
    lib = card["library"]
    assert card["steps"] == 12 and lib["train_clips"] > 0 and card["adversarial_from_step"] == 8
    assert card["phases"] == [{"phase": "spectral", "from_step": 0, "to_step": 8},
                              {"phase": "adversarial", "from_step": 8, "to_step": 12}]
    ceiling = card["resynthesis_ceiling"]
    assert ceiling["clips"] == lib["held_out_clips"] > 0 and ceiling["spectral_distance"] > 0
    assert set(card["bytes"]) == {"rave.pt", "rave.ts", "rave.latents.pt"}   # --export --bank
    readme = (tiny_run / "README.md").read_text()
    assert "## Resynthesis ceiling" in readme and "--init-from models/rave/rave.pt" in readme


def test_the_ceiling_is_the_same_through_the_export_and_the_network_and_counts_judges(tiny_run, composed_library):
    from train_rave import ceiling
    from train_rave.model import read
    clips = ceiling.held_out_clips(composed_library, 22050, per_genre=1, holdout=1)
    assert clips and len({g for g, _ in clips}) == len(clips)
    y = clips[0][1][:22050]
    by_network = ceiling.model_resynthesiser(model_from_checkpoint(read(tiny_run / "rave.pt")), "cpu")(y)
    by_export = ceiling.export_resynthesiser(sample.export_of(tiny_run / "rave.pt"))(y)
    np.testing.assert_allclose(by_network, by_export, atol=1e-4)

    class Judge:   # always says the first clip's genre
        def predict(self, audio, sr):
            return {g: float(g == clips[0][0]) for g in ("classical", "disco", "metal", "reggae")}
    report = ceiling.resynthesis_ceiling(lambda y: y, clips, sr=22050, judges={"j": Judge()}, seconds=1.0)
    assert report["spectral_distance"] == report["low_band_distance"] == 0.0
    assert report["lower_judge_top1"] == report["judges"]["j"]["original"] == round(1 / len(clips), 3)


def test_the_adversarial_phase_waits_for_the_spectral_loss_to_converge():
    cfg = train.TrainConfig(adv_start=100, adv_plateau=0.01, plateau_steps=400, log_every=50)
    falling = [(s, 2.0 - s / 1000) for s in range(50, 1001, 50)]       # 5 % better every 100 steps
    flat = [(s, 1.0 + 0.001 * (s % 100 == 0)) for s in range(50, 1001, 50)]
    assert not train.converged(falling, 1000, cfg)
    assert train.converged(flat, 1000, cfg) and not train.converged(flat, 300, cfg)  # a full window first
    assert not train.converged(flat, 50, cfg)                                         # before adv_start
    assert train.converged([], 100, train.TrainConfig(adv_start=100, adv_plateau=0))


def test_checkpoint_round_trips_and_training_resumes(tiny_run, composed_library, tmp_path):
    state = torch.load(tiny_run / "train_state.pt", weights_only=True)
    ckpt = torch.load(tiny_run / "rave.pt", weights_only=True)
    assert (ckpt["format"], ckpt["format_version"]) == ("melodymaker-rave", 2)
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
    helped = {"what": "each change on the ceiling", "rows": [
        {"change": "chroma term", "steps": 14, "mrstft": 1.3, "fit_cnn": 0.9, "fit_features": 0.6, "lower": 0.6,
         "verdict": "helped"}]}
    (tmp_path / "helped.json").write_text(json.dumps(helped))
    assert train.main(args + ["--card-only", "--evaluate-json", str(tmp_path / "eval.json"),
                              "--what-helped-json", str(tmp_path / "helped.json")]) == 0
    assert json.loads((run / "card.json").read_text())["evaluate"]["summary"]["genre_top1_accuracy"] == 0.5
    assert json.loads((run / "card.json").read_text())["what_helped"] == helped
    readme = (run / "README.md").read_text()
    assert "## Benchmark" in readme and "## What helped" in readme
    assert "| chroma term | 14 | 1.3 | 0.9 | 0.6 | 0.6 | helped |" in readme
    with pytest.raises(ValueError, match="not a RAVE checkpoint"):
        model_from_checkpoint({"format": "melodymaker-melgan/1"})
    with pytest.raises(SystemExit, match="--loss must be"):
        train.main(["--genres", str(composed_library), "--out", str(tmp_path / "x"), "--loss", "l2"] + TINY)


def test_a_checkpoint_trained_elsewhere_continues_and_gets_its_card(tiny_run, composed_library, tmp_path):
    """What comes back from a GPU machine is rave.pt and losses.csv (no train_state.pt): training
    goes on from its weights and step, and --card-only (--export --bank) exports it and builds its
    latent bank."""
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
    assert train.main(["--genres", str(composed_library), "--out", str(bare), "--card-only", "--export", "--bank"]) == 0
    ts = torch.jit.load(str(bare / "rave.ts"))
    assert json.loads(ts.metadata)["step"] == 16
    bank = latents.load_bank(bare / "rave.latents.pt")
    assert set(bank["genres"]) == {g for g, n in card["library"]["counts"].items() if n}
    assert json.loads((bare / "card.json").read_text())["steps"] == 16


def test_weights_past_their_spectral_phase_train_adversarially_at_once_and_keep_snapshots(tiny_run, composed_library,
                                                                                        tmp_path):
    """RAVE's second phase for weights that came back from a GPU (scripts/device_rave.sh
    RAVE_PHASE=adversarial): with --adv-plateau 0 and the step past --adv-start, every step is
    adversarial, STFT discriminators stand beside the waveform ones, and --keep-every leaves
    rave-step<N>.pt snapshots to choose from."""
    run = tmp_path / "run"
    args = ["--genres", str(composed_library), "--out", str(run)] + TINY
    args[args.index("--steps") + 1] = "16"
    args[args.index("--save-every") + 1] = "2"
    assert train.main(args + ["--init-from", str(tiny_run / "rave.pt"), "--adv-start", "0", "--d-stft", "256,128",
                              "--keep-every", "2"]) == 0
    with open(run / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(int(r["step"]), r["phase"]) for r in rows] == [(16, "adversarial")] and float(rows[0]["d_hinge"]) > 0
    card = json.loads((run / "card.json").read_text())
    assert card["adversarial_from_step"] == 12 and card["config"]["d_stft"] == "256,128"
    assert sorted(p.name for p in run.glob("rave-step*.pt")) == ["rave-step14.pt", "rave-step16.pt"]
    snapshot = model_from_checkpoint(torch.load(run / "rave-step14.pt", weights_only=True))
    assert torch.load(run / "rave-step14.pt", weights_only=True)["step"] == 14
    final = model_from_checkpoint(torch.load(run / "rave.pt", weights_only=True))
    assert any(not torch.equal(a, b) for a, b in zip(snapshot.state_dict().values(), final.state_dict().values()))


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
        torch.manual_seed(5)        # the noise branch draws from torch's generator: the same draws
        y = ts.decode(z)
        torch.manual_seed(5)
        torch.testing.assert_close(y, model.decode(z), atol=1e-5, rtol=1e-4)
    assert ts.encode(torch.zeros(1, 1, 1000)).shape == (1, 4, 2)  # padded up to whole frames


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
    assert a.meta["engine"] == "rave" and a.meta["model"]["file"] == "rave.pt"
    assert a.meta["genre_from"] == "library latents"
    assert all(s["clip"].startswith("reggae") for s in a.meta["segments"])
    assert list((settings.cache_dir / "rave").glob("rave-*.ts"))            # derived on first start
    assert engine.describe()["genre_from"]["reggae"].startswith("library latents of")


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


def test_a_per_genre_export_without_a_library_generates_from_its_prior(tiny_run, settings, tmp_path):
    """As the original project did: N(0, 1) latents, seeded; the capability table says so."""
    from melodymaker.engines import rave
    from melodymaker.errors import ModeUnavailable
    from melodymaker.request import GenerationRequest
    folder = tmp_path / "official" / "rave"
    folder.mkdir(parents=True)
    shutil.copy(tiny_run / "rave.ts", folder / "jazz.ts")
    settings.models_dir, settings.genres_dir = folder.parent, tmp_path / "no-library"
    engine = rave.load(settings)
    assert engine.describe()["genre_from"]["jazz"] == sample.PRIOR
    assert engine.describe()["genre_from"]["rock"].startswith("unavailable")
    req = lambda seed: GenerationRequest.parse({"genre": "jazz", "mode": "rave", "length": 2, "seed": seed, "tempo": 90})
    a, b, c = engine.generate(req(4)), engine.generate(req(4)), engine.generate(req(5))
    assert len(a.audio) == 2 * 22050 and np.abs(a.audio).max() > 0 and a.meta["genre_from"] == sample.PRIOR
    assert a.audio.tobytes() == b.audio.tobytes() != c.audio.tobytes() and a.meta["segments"] == []
    assert a.meta["tempo_by"].startswith("phase vocoder")
    with pytest.raises(ModeUnavailable, match="no RAVE export for rock"):
        engine.generate(GenerationRequest.parse({"genre": "rock", "mode": "rave", "length": 1}))


def test_rave_pt_alone_derives_its_export_on_first_use_and_an_official_export_wins(tiny_run, tmp_path):
    folder, cache = tmp_path / "models" / "rave", tmp_path / "cache"
    folder.mkdir(parents=True)
    shutil.copy(tiny_run / "rave.pt", folder / "rave.pt")
    rave = sample.load(folder, cache_dir=cache)
    derived = list((cache / "rave").glob("rave-*.ts"))
    assert len(derived) == 1 and not list(folder.glob("*.ts"))
    model = model_from_checkpoint(torch.load(folder / "rave.pt", weights_only=True))
    z = np.random.default_rng(1).standard_normal((4, 40)).astype(np.float32)
    y = rave.models["rave"].decode(z, seed=3)
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        expected = model.decode(torch.from_numpy(z)[None])[0, 0].numpy()
    np.testing.assert_allclose(y, expected, atol=1e-5)
    made = derived[0].stat().st_mtime_ns
    again = sample.load(folder, cache_dir=cache)                   # the next start reads the cache
    assert derived[0].stat().st_mtime_ns == made and again.models["rave"].digest == rave.models["rave"].digest
    assert again.models["rave"].describe()["file"] == "rave.pt"
    shutil.copy(tiny_run / "rave.ts", folder / "rave.ts")          # our own export: rave.pt stays the source
    assert sample.load(folder, cache_dir=cache).models["rave"].path.name == "rave.pt"
    v1_style_export().save(str(folder / "rave.ts"))                 # an official export put there wins
    assert sample.load(folder, cache_dir=cache).models["rave"].sr == 44100


def test_server_serves_rave_with_an_export(rave_models, settings):
    settings.models_dir = rave_models
    serve_mode(settings, "rave", "classical", tempo=96)


@pytest.mark.parametrize("damage", ["missing", "corrupt", "corrupt-pt"])
def test_missing_or_corrupt_export_leaves_rave_unavailable_and_the_server_serving(settings, damage):
    if damage.startswith("corrupt"):
        (settings.models_dir / "rave").mkdir(parents=True)
        name = "rave.pt" if damage == "corrupt-pt" else "rave.ts"
        (settings.models_dir / "rave" / name).write_bytes(b"not a torch file" * 64)
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

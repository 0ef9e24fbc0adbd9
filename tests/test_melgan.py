"""MEL-GAN: mel normalisation, a tiny training run through train.py, checkpoints, sample.py, the
engine (exact length, same seed -> same bytes) and a missing or corrupt checkpoint."""
import csv
import json
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import refuse_mode_and_serve, serve_mode
from melgan_model import sample, train
from melgan_model.model import LogMel, MelConfig, MelNorm, Vocoder, VocoderConfig

TINY = ["--steps", "12", "--seed", "0", "--threads", "1", "--holdout", "1", "--compare-clips", "1",
        "--gan-frames", "32", "--gan-batch", "4", "--g-channels", "32,32", "--d-channels", "32,32",
        "--voc-samples", "2048", "--voc-batch", "2", "--ngf", "4", "--lr-v", "1e-3",
        "--voc-adv-start", "8", "--log-every", "4", "--save-every", "100"]


@pytest.fixture(scope="module")
def tiny_run(composed_library, tmp_path_factory):
    """A tiny MEL-GAN trained for 12 steps on the composed library through train.py's main()."""
    out = tmp_path_factory.mktemp("melgan_run")
    torch_threads = torch.get_num_threads()
    assert train.main(["--genres", str(composed_library), "--out", str(out)] + TINY) == 0
    torch.set_num_threads(torch_threads)
    return out


@pytest.fixture()
def tiny_models(tiny_run, tmp_path):
    """A models/ folder holding only the tiny MEL-GAN checkpoint."""
    (tmp_path / "models" / "melgan").mkdir(parents=True)
    shutil.copy(tiny_run / "melgan.pt", tmp_path / "models" / "melgan" / "melgan.pt")
    return tmp_path / "models"


# -- the mel and its normalisation ---------------------------------------------------------------
def test_log_mel_is_librosas_amplitude_mel():
    import librosa
    y = np.random.default_rng(0).standard_normal(22050).astype(np.float32) * 0.1
    mel = MelConfig()
    ours = LogMel(mel)(torch.from_numpy(y)[None])[0].numpy()
    ref = librosa.feature.melspectrogram(y=y, sr=mel.sr, n_fft=mel.n_fft, hop_length=mel.hop,
                                         n_mels=mel.n_mels, fmin=mel.fmin, fmax=mel.fmax, power=1.0,
                                         pad_mode="reflect")
    assert ours.shape == ref.shape == (80, 22050 // 256 + 1)
    np.testing.assert_allclose(ours, np.log(np.maximum(ref, 1e-5)), atol=1e-3)


def test_normalisation_maps_into_minus_one_one_and_back():
    rng = np.random.default_rng(0)
    logmels = rng.normal(-4, 2, (80, 1000)).astype(np.float32) + np.linspace(0, 3, 80)[:, None]
    norm = MelNorm.fit(logmels)
    x = norm.normalise(logmels)
    assert x.min() >= -1 and x.max() <= 1 and x.min() < -0.99 and x.max() > 0.99
    inside = (logmels >= norm.lo[:, None]) & (logmels <= norm.hi[:, None])
    np.testing.assert_allclose(norm.denormalise(x)[inside], logmels[inside], atol=1e-4)
    t = norm.normalise(torch.from_numpy(logmels))  # torch and numpy agree; state round-trips
    np.testing.assert_allclose(t.numpy(), x, atol=1e-6)
    again = MelNorm.from_state(norm.state())
    np.testing.assert_allclose(again.denormalise(torch.zeros(80, 3)).numpy(), norm.denormalise(np.zeros((80, 3))))


def test_griffin_lim_inverts_the_amplitude_not_the_normalised_values(tiny_run):
    """The seed fed tanh outputs to Griffin-Lim as if they were power; a tone must come back a tone
    at its own loudness."""
    model = sample.load(tiny_run / "melgan.pt")
    t = np.arange(22050) / 22050
    y = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    logmel = LogMel(model.mel)(torch.from_numpy(y)[None])[0]
    model.norm = MelNorm.fit(logmel.numpy(), low_pct=0, high_pct=100)  # nothing clipped here
    mel = model.norm.normalise(logmel)
    out = model.griffin_lim(mel, len(y), n_iter=16)
    assert len(out) == len(y)
    rms = lambda a: float(np.sqrt(np.mean(a[2000:-2000] ** 2)))
    assert 0.5 < rms(out) / rms(y) < 2.0
    spectrum = np.abs(np.fft.rfft(out[2000:-2000]))
    assert abs(np.argmax(spectrum) * 22050 / len(out[2000:-2000]) - 440) < 30


# -- training and checkpoints ----------------------------------------------------------------------
def test_tiny_training_run_lowers_its_loss_and_writes_checkpoint_log_and_card(tiny_run):
    with open(tiny_run / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [4, 8, 12]
    assert float(rows[-1]["v_stft"]) < float(rows[0]["v_stft"])
    assert float(rows[-1]["v_adv"]) > 0                                 # discriminators joined at step 8
    card = json.loads((tiny_run / "card.json").read_text())
    assert card["steps"] == 12 and card["library"]["train_clips"] == 16
    assert set(card["inversion_on_held_out_real_mels"]) >= {"vocoder", "vocoder-raw", "griffinlim"}
    assert "Griffin-Lim vs the vocoder" in (tiny_run / "README.md").read_text()


def test_checkpoint_round_trips_and_training_resumes(tiny_run, composed_library, tmp_path):
    state = torch.load(tiny_run / "train_state.pt", weights_only=True)
    model = sample.load(tiny_run / "melgan.pt")
    for k, v in model.generator.state_dict().items():
        assert torch.equal(v, state["generator_ema"][k])
    assert model.genres[:2] == ["blues", "classical"] and model.mel.hop == 256
    assert model.checkpoint_info["step"] == 12
    ckpt = torch.load(tiny_run / "melgan.pt", weights_only=True)
    assert (ckpt["format"], ckpt["format_version"]) == ("melodymaker-melgan", 1)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    args = ["--genres", str(composed_library), "--out", str(run)] + TINY
    args[args.index("--steps") + 1] = "14"
    args[args.index("--compare-clips") + 1] = "0"  # the card's Griffin-Lim figures are tested above
    assert train.main(args) == 0
    resumed = torch.load(run / "train_state.pt", weights_only=True)
    assert resumed["step"] == 14 and resumed["config"]["gan_frames"] == 32
    report = {"command": "python -m melodymaker evaluate --modes melgan", "machine": {"cpus": 2, "platform": "x"},
              "summary": [{"mode": "melgan", "genre_top1_accuracy": 0.5}], "markdown": "| mode |\n|---|\n| melgan |"}
    (tmp_path / "eval.json").write_text(json.dumps(report))
    assert train.main(args + ["--card-only", "--evaluate-json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((run / "card.json").read_text())["evaluate"]["summary"]["genre_top1_accuracy"] == 0.5
    assert "## Benchmark" in (run / "README.md").read_text()
    assert torch.load(run / "train_state.pt", weights_only=True)["step"] == 14  # card-only trains nothing


def test_a_damaged_checkpoint_is_refused_with_a_reason(tmp_path):
    bad = tmp_path / "melgan.pt"
    torch.save({"format": "something-else"}, bad)
    with pytest.raises(ValueError, match="not a MEL-GAN checkpoint"):
        sample.load(bad)
    with pytest.raises(FileNotFoundError):
        sample.load(tmp_path / "absent.pt")


# -- making audio -------------------------------------------------------------------------------
def test_vocoder_chunks_share_context_so_long_audio_has_no_seams(tiny_run):
    model = sample.load(tiny_run / "melgan.pt")
    mel = model.generate_mel("disco", 2 * sample.VOCODER_CHUNK + 300, seed=3)
    chunked = model.vocode(mel)
    with torch.inference_mode():
        whole = model.vocoder(mel[None])[0].numpy()
    assert len(chunked) == len(whole) == mel.shape[-1] * 256
    np.testing.assert_allclose(chunked, whole, atol=1e-4)


def test_envelope_correction_brings_the_vocoders_mel_closer_to_its_input(tiny_run):
    model = sample.load(tiny_run / "melgan.pt")
    mel = model.generate_mel("classical", 200, seed=1)
    raw = model.vocode(mel, 199 * 256)  # 199 * 256 samples have 200 frames
    fixed = model.correct_envelope(mel, raw)
    target = model.norm.denormalise(mel)
    error = lambda y: float((model.logmel(torch.from_numpy(y)[None])[0] - target).abs().mean())
    assert len(fixed) == len(raw) and error(fixed) < 0.8 * error(raw)


@pytest.mark.parametrize("inversion", ["vocoder", "vocoder-raw", "griffinlim"])
def test_sample_cli_writes_exactly_the_requested_length(tiny_run, tmp_path, inversion):
    out = tmp_path / "x.wav"
    assert sample.main(["--checkpoint", str(tiny_run / "melgan.pt"), "--genre", "metal", "--length", "1.37",
                        "--seed", "5", "--inversion", inversion, "--out", str(out)]) == 0
    assert sf.info(out).frames == round(1.37 * 22050) and sf.info(out).samplerate == 22050


def test_engine_exact_length_same_seed_same_bytes(tiny_models, settings):
    from melodymaker.engines import melgan
    from melodymaker.request import GenerationRequest
    settings.models_dir = tiny_models
    engine = melgan.load(settings)
    assert engine.capabilities.length and not engine.capabilities.tempo
    seen = []
    req = lambda seed: GenerationRequest.parse({"genre": "reggae", "mode": "melgan", "length": 2.3, "seed": seed})
    a = engine.generate(req(11), lambda f, m="": seen.append(f))
    b = engine.generate(req(11))
    c = engine.generate(req(12))
    assert a.sr == 22050 and a.audio.dtype == np.float32 and len(a.audio) == round(2.3 * 22050)
    assert a.audio.tobytes() == b.audio.tobytes() and a.audio.tobytes() != c.audio.tobytes()
    assert seen and all(0 <= f <= 1 for f in seen) and seen == sorted(seen)
    assert a.meta["engine"] == "melgan" and a.meta["step"] == 12 and a.meta["inversion"] == "vocoder"


def test_griffin_lim_is_a_selectable_fallback(tiny_models, settings, monkeypatch):
    from melodymaker.engines import melgan
    from melodymaker.request import GenerationRequest
    settings.models_dir = tiny_models
    monkeypatch.setenv("MELODYMAKER_MELGAN_INVERSION", "griffinlim")
    track = melgan.load(settings).generate(GenerationRequest.parse({"genre": "metal", "mode": "melgan", "length": 1.5}))
    assert track.meta["inversion"] == "griffinlim" and len(track.audio) == round(1.5 * 22050)
    monkeypatch.setenv("MELODYMAKER_MELGAN_INVERSION", "wavenet")
    with pytest.raises(ValueError, match="MELODYMAKER_MELGAN_INVERSION"):
        melgan.load(settings)


def test_server_serves_melgan_with_a_checkpoint(tiny_models, settings):
    settings.models_dir = tiny_models
    serve_mode(settings, "melgan", "jazz")


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_missing_or_corrupt_checkpoint_leaves_melgan_unavailable_and_the_server_serving(settings, damage):
    if damage == "corrupt":
        (settings.models_dir / "melgan").mkdir(parents=True)
        (settings.models_dir / "melgan" / "melgan.pt").write_bytes(b"not a checkpoint" * 64)
    reason = refuse_mode_and_serve(settings, "melgan")
    assert ("no trained checkpoint" in reason) if damage == "missing" else ("could not be loaded" in reason)


def test_vocoder_output_length_is_frames_times_hop():
    v = Vocoder(VocoderConfig(ngf=4))
    assert v.hop == 256
    assert v(torch.zeros(1, 80, 7)).shape == (1, 7 * 256)


# -- the Vocos vocoder ---------------------------------------------------------------------------
VOCOS_TINY = ["--steps", "16", "--seed", "0", "--threads", "1", "--holdout", "1", "--compare-clips", "1",
              "--samples", "4096", "--batch", "4", "--dim", "32", "--intermediate", "64", "--layers", "2",
              "--lr", "3e-3", "--lr-final", "1e-3", "--log-every", "4", "--save-every", "100"]


@pytest.fixture(scope="module")
def vocos_run(tiny_run, composed_library, tmp_path_factory):
    """A tiny Vocos trained for 16 steps for the tiny MEL-GAN's mels, through train_vocos.main()."""
    from melgan_model import train_vocos
    out = tmp_path_factory.mktemp("vocos_run")
    torch_threads = torch.get_num_threads()
    assert train_vocos.main(["--genres", str(composed_library), "--melgan", str(tiny_run / "melgan.pt"),
                             "--out", str(out)] + VOCOS_TINY) == 0
    torch.set_num_threads(torch_threads)
    return out


def test_vocos_learns_and_its_run_writes_checkpoint_log_and_card(vocos_run, tiny_run, composed_library):
    from melgan_model import train_vocos
    from melgan_model.vocos import Vocos, VocosConfig
    with open(vocos_run / "losses.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [4, 8, 12, 16]
    assert float(rows[-1]["mrstft"]) < float(rows[0]["mrstft"])
    card = json.loads((vocos_run / "card.json").read_text())
    assert card["steps"] == 16 and card["library"]["train_clips"] > 0
    assert set(card["inversion_on_held_out_real_mels"]) >= {"vocoder", "vocoder-raw", "griffinlim"}
    # the trained vocoder inverts a real clip's mel better than the same network untrained
    model = sample.load(vocos_run / "melgan-with-vocos.pt")
    y = torch.from_numpy(np.asarray(sf.read(sorted(composed_library.glob("*/*.au"))[0])[0][:22050], dtype=np.float32))
    mel = model.norm.normalise(model.logmel(y[None])[0])
    untrained = Vocos(VocosConfig(n_mels=80, dim=32, intermediate=64, layers=2)).eval()
    stft = train_vocos.MultiResolutionSTFTLoss()
    with torch.inference_mode():
        trained_error = float(stft(torch.from_numpy(model.vocode(mel, len(y)))[None], y[None]))
        untrained_error = float(stft(untrained(mel[None], len(y)), y[None]))
    assert trained_error < untrained_error


def test_vocos_training_resumes_and_installs_into_a_melgan_checkpoint(vocos_run, tiny_run, composed_library,
                                                                      tmp_path, settings):
    from melgan_model import train_vocos
    run = tmp_path / "run"
    shutil.copytree(vocos_run, run)
    assert train_vocos.main(["--genres", str(composed_library), "--melgan", str(tiny_run / "melgan.pt"),
                             "--out", str(run)] + VOCOS_TINY[:1] + ["20"] + VOCOS_TINY[2:]) == 0
    with open(run / "losses.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [4, 8, 12, 16, 20]
    target = tmp_path / "models" / "melgan" / "melgan.pt"
    target.parent.mkdir(parents=True)
    shutil.copy(tiny_run / "melgan.pt", target)
    assert train_vocos.main(["--out", str(run), "--install", str(target)]) == 0
    model = sample.load(target)
    assert model.vocoder_kind == "vocos" and model.info["vocoder"]["step"] == 20
    mel = model.generate_mel("jazz", 100, seed=2)  # a Vocos needs no envelope correction: none is applied
    assert np.array_equal(sample.invert(model, mel, 99 * 256, "vocoder"), sample.invert(model, mel, 99 * 256,
                                                                                          "vocoder-raw"))
    original = sample.load(tiny_run / "melgan.pt")
    for k, v in model.generator.state_dict().items():  # the generator is the same one, stored in fp16
        assert torch.allclose(v, original.generator.state_dict()[k].half().float())
    # served: exact length, and the same seed gives the same audio
    from melodymaker.engines.melgan import load as load_engine
    from melodymaker.request import GenerationRequest
    settings.models_dir = tmp_path / "models"
    engine = load_engine(settings)
    request = GenerationRequest.parse({"mode": "melgan", "genre": "rock", "length": 1.5, "seed": 4})
    a, b = engine.generate(request), engine.generate(request)
    assert len(a.audio) == round(1.5 * 22050) and np.array_equal(a.audio, b.audio)
    assert np.abs(a.audio).max() > 1e-3


def test_vocos_refuses_a_melgan_with_other_mel_settings(vocos_run, tiny_run, tmp_path):
    from melgan_model import train_vocos
    other = torch.load(tiny_run / "melgan.pt", weights_only=True)
    other["norm"]["lo"] = other["norm"]["lo"] - 1
    torch.save(other, tmp_path / "melgan.pt")
    with pytest.raises(SystemExit, match="normalisation"):
        train_vocos.main(["--out", str(vocos_run), "--install", str(tmp_path / "melgan.pt")])


# -- the generator's recipe: DiffAugment, discriminators over time scales, continuing a run ------
def test_diff_augment_is_differentiable_and_the_same_kind_of_mel():
    from melgan_model.model import diff_augment
    rng = torch.Generator().manual_seed(0)
    mel = (torch.rand(8, 80, 64) * 2 - 1).requires_grad_(True)
    assert torch.equal(diff_augment(mel, 0.0, rng), mel)
    out = diff_augment(mel, 1.0, rng)
    assert out.shape == mel.shape and not torch.equal(out, mel)
    out.sum().backward()
    assert mel.grad is not None and float(mel.grad.abs().sum()) > 0
    # every example is cut somewhere: whole bands and whole frames at -1 (silence)
    silent = (out.detach() == -1)
    assert all(silent[i].all(dim=1).any() and silent[i].all(dim=0).any() for i in range(8))


def test_the_2d_discriminator_judges_a_spectral_shape_the_same_wherever_it_lies_in_frequency():
    from melgan_model.model import MelGenConfig, MultiScaleMelDiscriminator
    torch.manual_seed(0)
    d = MultiScaleMelDiscriminator(MelGenConfig(n_mels=80), scales=2, width_2d=8).eval()
    assert len(d(torch.zeros(1, 80, 64) - 1, torch.tensor([0]))) == 3
    patch = d.patch2d
    line = torch.full((1, 80, 64), -1.0)
    low, high = line.clone(), line.clone()
    low[0, 20, 16:48], high[0, 52, 16:48] = 1.0, 1.0          # one harmonic line, 32 bands apart
    with torch.no_grad():
        (_, _, f_low), (_, _, f_high) = patch(low, torch.tensor([3])), patch(high, torch.tensor([3]))
    first_low, first_high = f_low[0].reshape(8, 80, -1), f_high[0].reshape(8, 80, -1)
    # the first layer (stride 1 along bands) answers the line 32 bands higher with the same values
    assert torch.allclose(first_low[:, 14:27], first_high[:, 46:59], atol=1e-5)
    assert not torch.allclose(first_low[:, 14:27], first_high[:, 14:27], atol=1e-3)
    logits, genre_logits, _ = patch(low, torch.tensor([3]))
    assert logits.shape == (1, 10 * 8)            # 80 bands / 8, 64 frames / 8 and genre_logits.shape == (1, 10)


def test_a_run_continues_a_generator_with_augmentation_and_keeps_its_vocoder(tiny_run, composed_library, tmp_path):
    out = tmp_path / "run"
    assert train.main(["--genres", str(composed_library), "--out", str(out)] + TINY +
                      ["--init-from", str(tiny_run / "melgan.pt"), "--voc-batch", "0", "--augment", "0.5",
                       "--d-scales", "2", "--d2d", "8", "--steps", "6"]) == 0
    old, new = sample.load(tiny_run / "melgan.pt"), sample.load(out / "melgan.pt")
    for k, v in old.vocoder.state_dict().items():
        assert torch.equal(v, new.vocoder.state_dict()[k])
    assert np.array_equal(old.norm.lo, new.norm.lo) and old.mel == new.mel
    assert any(not torch.equal(v, new.generator.state_dict()[k]) for k, v in old.generator.state_dict().items())
    state = torch.load(out / "train_state.pt", weights_only=True)
    assert any(k.startswith("discs.1.") for k in state["discriminator"]) and "vocoder_discriminator" not in state
    assert any(k.startswith("patch2d.") for k in state["discriminator"])
    # it resumes: the saved config (two scales, the 2-D discriminator, no vocoder) comes back with the state
    assert train.main(["--genres", str(composed_library), "--out", str(out), "--steps", "8"]) == 0
    assert torch.load(out / "melgan.pt", weights_only=True)["step"] == 8
    card = json.loads((out / "card.json").read_text())  # the card names the run it continued
    assert card["init_from"]["step"] == 12 and "melgan_model.train" in card["init_from"]["command"]
    with pytest.raises(SystemExit, match="init-from"):
        train.main(["--genres", str(composed_library), "--out", str(tmp_path / "x")] + TINY + ["--voc-batch", "0"])


# -- the beat clock: a generator that draws at the tempo it is given ---------------------------------
def test_the_beat_phase_counts_beats_between_and_beyond_the_tracked_ones():
    from melgan_model.model import beat_clock, phase_at_tempo, phase_from_beats
    frame = 0.1
    phase = phase_from_beats(np.array([1.0, 1.5, 2.0, 2.5]), 40, frame)   # 120 BPM from 1 s
    assert phase[10] == pytest.approx(0.0) and phase[15] == pytest.approx(1.0) and phase[25] == pytest.approx(3.0)
    assert phase[12] == pytest.approx(0.4, abs=1e-5)                       # between two beats
    assert phase[0] == pytest.approx(-2.0) and phase[35] == pytest.approx(5.0)  # continued at 0.5 s a beat
    assert np.allclose(phase_at_tempo(120.0, 40, frame), np.arange(40) * 0.2)
    clock = beat_clock(torch.from_numpy(phase)[None])
    # one beat later, the beat, half-beat ... pairs are where they were; the bar of four is not
    assert torch.allclose(clock[0, [2, 3, 6, 7], 15], clock[0, [2, 3, 6, 7], 10], atol=1e-5)
    assert not torch.allclose(clock[0, [0, 4], 15], clock[0, [0, 4], 10], atol=1e-2)


@pytest.fixture(scope="module")
def clocked_run(tiny_run, composed_library, tmp_path_factory):
    """The tiny MEL-GAN grown a beat clock (--init-from --clock) and trained 4 steps more."""
    out = tmp_path_factory.mktemp("melgan_clock")
    torch_threads = torch.get_num_threads()
    assert train.main(["--genres", str(composed_library), "--out", str(out)] + TINY +
                      ["--init-from", str(tiny_run / "melgan.pt"), "--voc-batch", "0", "--clock", "--steps", "4"]) == 0
    torch.set_num_threads(torch_threads)
    return out


def test_a_generator_grown_a_clock_starts_as_the_one_it_grew_from(tiny_run):
    from melgan_model.model import MelGenConfig, MelGenerator, beat_clock
    old = sample.load(tiny_run / "melgan.pt").generator
    grown = MelGenerator(MelGenConfig(**{**old.cfg.__dict__, "clock": True})).eval()
    missing, unexpected = grown.load_state_dict(old.state_dict(), strict=False)
    assert not unexpected and missing and all(".clock." in k for k in missing)
    z, zg = old.noise(1, 64, generator=torch.Generator().manual_seed(1))
    label = torch.tensor([2])
    clock = beat_clock(torch.arange(64.0)[None] / 20)
    with torch.no_grad():
        assert torch.equal(grown(label, z, zg, clock), old(label, z, zg))
    with pytest.raises(ValueError, match="beat clock"):
        grown(label, z, zg)


def test_a_clocked_run_keeps_each_genres_tempi_and_draws_at_the_tempo_asked(clocked_run, composed_library):
    from melodymaker.options import GENRES
    model = sample.load(clocked_run / "melgan.pt")
    trained = {GENRES[g] for g, _, _ in train.load_library(train.TrainConfig(genres=str(composed_library), holdout=1),
                                                           model.mel)[0]}
    assert model.takes_tempo and set(model.tempi) == trained
    for genre, (low, median, high) in model.tempi.items():
        assert 40 < low <= median <= high < 250, (genre, model.tempi[genre])
        played = model.play_tempo(genre, 2 * median)           # an octave up folds back to the median
        assert played == pytest.approx(median)
    genre = sorted(trained)[0]
    assert model.play_tempo(genre, None) is None
    n = 22050
    a = model.generate(genre, n, seed=5, tempo=90.0)
    assert len(a) == n and np.array_equal(a, model.generate(genre, n, seed=5, tempo=90.0))
    assert not np.array_equal(a, model.generate(genre, n, seed=5, tempo=140.0))
    # it resumes with its clock and its beats come from the cache, not tracked again
    assert train.main(["--genres", str(composed_library), "--out", str(clocked_run), "--steps", "6"]) == 0
    assert sample.load(clocked_run / "melgan.pt").takes_tempo


def test_the_engine_draws_a_clocked_generator_at_the_tempo_asked_and_continues_it(clocked_run, settings, tmp_path):
    from melodymaker.engines import melgan
    from melodymaker.engines.base import Parent
    from melodymaker.request import GenerationRequest
    (tmp_path / "models" / "melgan").mkdir(parents=True)
    shutil.copy(clocked_run / "melgan.pt", tmp_path / "models" / "melgan" / "melgan.pt")
    settings.models_dir = tmp_path / "models"
    engine = melgan.load(settings)
    genre, (_, median, _) = sorted(engine.model.tempi.items())[0]
    asked = GenerationRequest.parse({"genre": genre, "mode": "melgan", "length": 2, "seed": 4,
                                     "tempo": round(median * 2, 1)})
    track = engine.generate(asked)
    assert track.meta["drawn_at_tempo"] == pytest.approx(median, rel=0.01)
    assert len(track.audio) == 2 * 22050
    parent = Parent(asked, track.meta, at=2.0, seconds=1.0, tail=track.audio)
    more = engine.continue_from(parent)
    assert len(more.audio) >= 22050 and np.all(np.isfinite(more.audio)) and more.meta["context_frames"] > 0


def test_training_windows_keep_the_clips_own_beat_phase():
    """A window's clock must say where the clip's beats are: whole beats fall on the frames the
    tracker found, wherever the window starts (a window's phase set to 0 at its first frame
    would put the clock half a beat off the music as often as not)."""
    from melgan_model.model import phase_from_beats
    frame = 256 / 22050
    beats = (5 + 20 * np.arange(10)) * frame                      # a beat every 20 frames from frame 5
    lm = np.zeros((80, 200), dtype=np.float32)
    norm = MelNorm(np.full(80, -1.0, np.float32), np.ones(80, np.float32))
    phases = [phase_from_beats(beats, 200 + 64 + 16, frame)]
    batches = train.Batches([(0, np.zeros(200 * 256, np.float32), lm)], norm, 256,
                            torch.Generator().manual_seed(0), phases, frames_per_step=16)
    _, _, phase = batches.mel_windows(8, 60)
    assert phase.shape == (8, 64)                                 # whole generator steps
    starts = 20 * phase[:, 0] + 5                                 # the clip frame each window starts at
    assert torch.allclose(starts, starts.round(), atol=1e-3) and len(set(starts.round().tolist())) > 1
    expected = (starts[:, None] + torch.arange(64)[None] - 5) / 20
    assert torch.allclose(phase, expected, atol=1e-4)

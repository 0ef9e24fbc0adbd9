"""The two genre judges: the degradations they train under, the library split they share with the
models, a real (tiny) training run of both, their verdicts, and their checkpoints without pickle."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy import signal

from conftest import COMPOSED_GENRES
from melodymaker import audio
from melodymaker.classify import COMBINATION, combine, degrade, load_judges
from melodymaker.library import heldout, split_facts, split_keys
from melodymaker.options import GENRES

SR = 22050


@pytest.fixture(scope="module")
def music(composed_library) -> np.ndarray:
    """Eight seconds of real composer audio (a metal clip of the built library)."""
    return audio.load(sorted((composed_library / "metal").glob("*.au"))[0], SR)


def _band_energy(y: np.ndarray, low: float, high: float) -> float:
    f, p = signal.welch(y, SR, nperseg=4096)
    return float(p[(f >= low) & (f < high)].sum())


def _db(a: float, b: float) -> float:
    return 10 * np.log10(a / b)


# -- the degradations ---------------------------------------------------------------------------
def test_every_degradation_is_seeded_and_keeps_length(music):
    for name in (*degrade.CONDITIONS,):
        a = degrade.apply(name, music, SR, np.random.default_rng(3))
        b = degrade.apply(name, music, SR, np.random.default_rng(3))
        assert a.dtype == np.float32 and a.shape == music.shape, name
        assert np.array_equal(a, b) and np.isfinite(a).all(), name
    with pytest.raises(ValueError, match="unknown condition"):
        degrade.apply("vinyl", music, SR, np.random.default_rng(0))


@pytest.mark.parametrize("snr", [0.0, 10.0, 30.0])
@pytest.mark.parametrize("colour", ["white", "pink"])
def test_noise_is_at_the_snr_it_says(music, snr, colour):
    z = degrade.noise(music, SR, np.random.default_rng(1), snr_db=snr, colour=colour)
    measured = _db(np.mean(music.astype(np.float64) ** 2), np.mean((z - music).astype(np.float64) ** 2))
    assert abs(measured - snr) < 1.0


def test_noise_snr_is_drawn_from_0_to_30_db(music):
    rng = np.random.default_rng(2)
    for _ in range(5):
        z = degrade.noise(music, SR, rng)
        assert -1.0 < _db(np.mean(music ** 2), np.mean((z - music) ** 2)) < 31.0


def test_lowpass_removes_energy_above_the_cutoff(music):
    z = degrade.lowpass(music, SR, np.random.default_rng(0), cutoff=3000.0)
    assert _db(_band_energy(music, 4500, 11025), _band_energy(z, 4500, 11025)) > 40
    assert abs(_db(_band_energy(music, 50, 1500), _band_energy(z, 50, 1500))) < 1.0


def test_resample_removes_the_band_above_the_new_nyquist(music):
    z = degrade.resample(music, SR, np.random.default_rng(0), low_sr=8000)
    assert len(z) == len(music)
    assert _db(_band_energy(music, 4400, 11025), _band_energy(z, 4400, 11025)) > 30
    assert abs(_db(_band_energy(music, 50, 3000), _band_energy(z, 50, 3000))) < 1.0


@pytest.mark.parametrize("level", [0.2, 0.6, 0.9])   # about 130, 65 and 24 kbit/s
def test_mp3_round_trip_keeps_length_and_alignment(music, level):
    z = degrade.mp3(music, SR, np.random.default_rng(0), level=level)
    assert len(z) == len(music)
    assert np.corrcoef(music, z)[0, 1] > 0.8   # aligned: the codec's delay is taken out


def test_gain_scales_by_the_decibels_it_says(music):
    z = degrade.gain(music, SR, np.random.default_rng(0), db=-12.0)
    assert _db(np.mean(z.astype(np.float64) ** 2), np.mean(music.astype(np.float64) ** 2)) == pytest.approx(-12, abs=0.01)


def test_eq_tilt_tilts_and_keeps_the_level(music):
    up = degrade.eq_tilt(music, SR, np.random.default_rng(0), db_per_octave=3.0)
    assert np.mean(up.astype(np.float64) ** 2) == pytest.approx(np.mean(music.astype(np.float64) ** 2), rel=1e-3)
    before = _db(_band_energy(music, 3000, 6000), _band_energy(music, 200, 400))
    after = _db(_band_energy(up, 3000, 6000), _band_energy(up, 200, 400))
    assert after - before == pytest.approx(3.0 * 4, abs=1.5)   # 4 octaves between the bands' centres


def test_reverb_decays_by_60_db_over_rt60():
    click = np.zeros(3 * SR, dtype=np.float32)
    click[0] = 1.0
    z = degrade.reverb(click, SR, np.random.default_rng(0), rt60=1.0, wet=1.0)
    level = lambda t: np.mean(z[int(t * SR): int((t + 0.05) * SR)].astype(np.float64) ** 2)  # noqa: E731
    assert _db(level(0.0), level(0.5)) == pytest.approx(30, abs=6)
    assert np.abs(z[int(1.05 * SR):]).max() < 1e-9   # the impulse response ends at rt60


def test_mix_chains_several(music):
    z = degrade.apply("mix", music, SR, np.random.default_rng(5))
    assert not np.allclose(z, music) and len(z) == len(music)
    assert set(degrade.DESCRIPTIONS) == set(degrade.CONDITIONS)


# -- the split ----------------------------------------------------------------------------------
def test_split_is_deterministic_prefix_stable_and_near_its_fraction():
    keys = [f"{g}/{g}.{i:05d}.au" for g in GENRES for i in range(100)]
    train, test = split_keys(keys)
    assert (train, test) == split_keys(keys) and sorted(train + test) == sorted(keys)
    assert 0.15 < len(test) / len(keys) < 0.25
    for g in GENRES:   # a 20-per-genre build holds out exactly its clips of a 100-per-genre one
        small = [f"{g}/{g}.{i:05d}.au" for i in range(20)]
        assert split_keys(small)[1] == [k for k in test if k in small]
    assert split_keys(keys, seed=1)[1] != test
    assert heldout("rock/rock.00003.au", fraction=0.0) is False
    assert heldout("rock/rock.00003.au", fraction=1.0) is True
    with pytest.raises(ValueError):
        heldout("rock/x.au", fraction=1.5)
    facts = split_facts(keys, fraction=0.2, seed=0)
    assert facts["held_out"] == sorted(test) and facts["train"] + facts["test"] == len(keys)


def test_model_trainers_hold_out_the_same_clips(composed_library):
    from melodymaker.trainkit import load_clips
    train, held, facts = load_clips(composed_library, SR, holdout=5)
    keys = [f"{g}/{p.name}" for g in COMPOSED_GENRES for p in sorted((composed_library / g).glob("*.au"))]
    expected = [k for k in keys if heldout(k)]
    assert facts["split"]["held_out"] == sorted(expected)
    assert len(held) == len(expected) and len(train) == len(keys) - len(expected)
    _, none_back, _ = load_clips(composed_library, SR, holdout=0)
    assert none_back == []   # still out of training: holdout only says how many come back


# -- the judges ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def judges(tiny_models):
    return load_judges(tiny_models / "classifier")


def test_verdicts_sum_to_one_and_combine_by_geometric_mean(judges, music):
    v = judges.verdict(music, SR)
    for probs in (v.cnn, v.features, v.combined):
        assert tuple(probs) == GENRES and sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    g = {k: np.sqrt(v.cnn[k] * v.features[k]) for k in GENRES}
    assert v.combined == pytest.approx({k: g[k] / sum(g.values()) for k in GENRES}, abs=1e-9)
    assert v.embedding.dtype == np.float32 and np.linalg.norm(v.embedding) == pytest.approx(1.0, abs=1e-5)
    assert judges.cnn.predict(music, SR) == pytest.approx(v.cnn)
    assert judges.features.predict(music, SR) == pytest.approx(v.features)
    y44 = audio.resample(music, SR, 44100)   # any sample rate: resampled inside
    assert max(judges.verdict(y44, 44100).features.items(), key=lambda kv: kv[1])[0] == v.top("features")


def test_combine_when_the_judges_disagree_entirely():
    a = {"rock": 1.0, "jazz": 0.0}
    b = {"rock": 0.0, "jazz": 1.0}
    assert combine(a, b) == {"rock": 0.5, "jazz": 0.5}


def test_info_names_both_judges_and_the_split(judges, tiny_models):
    info = judges.info
    assert info["combination"] == COMBINATION and len(info["version"]) == 12
    assert info["cnn"]["judge"] == "cnn" and info["features"]["judge"] == "features"
    card = json.loads((tiny_models / "classifier" / "card.json").read_text())
    assert info["split"]["held_out"] == card["split"]["held_out"]
    assert set(card["results"]["accuracy"]["features"]) == {"clean_whole_clip", *degrade.CONDITIONS}


def test_checkpoints_hold_no_pickle(tiny_models):
    for name in ("classifier.pt", "features.pt"):
        ck = torch.load(tiny_models / "classifier" / name, weights_only=True)

        def plain(x):
            if isinstance(x, dict):
                return all(isinstance(k, str) and plain(v) for k, v in x.items())
            if isinstance(x, (list, tuple)):
                return all(plain(v) for v in x)
            return isinstance(x, (torch.Tensor, str, int, float, bool, type(None)))
        assert plain(ck), name
    features = torch.load(tiny_models / "classifier" / "features.pt", weights_only=True)
    assert features["coef"].shape == (len(features["genres"]), len(features["feature_names"]))


def test_a_missing_damaged_or_mismatched_judge_is_a_clear_error(tiny_models, tmp_path):
    import shutil
    folder = tmp_path / "classifier"
    shutil.copytree(tiny_models / "classifier", folder)
    (folder / "features.pt").unlink()
    with pytest.raises(FileNotFoundError, match="features.pt"):
        load_judges(folder)
    (folder / "features.pt").write_bytes(b"\x00not torch" * 50)
    with pytest.raises(ValueError, match="feature judge checkpoint features.pt is not readable"):
        load_judges(folder)
    ck = torch.load(tiny_models / "classifier" / "features.pt", weights_only=True)
    ck["split"] = {**ck["split"], "held_out": ck["split"]["held_out"][1:]}
    torch.save(ck, folder / "features.pt")
    with pytest.raises(ValueError, match="different splits"):
        load_judges(folder)
    assert load_judges(tiny_models).version == load_judges(tiny_models / "classifier").version

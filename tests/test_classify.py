"""The CNN judge (and the training CLI that makes both judges), trained for real on a tiny synthetic
library; test_judges.py has the feature judge, the pair and the degradations."""
from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from melodymaker.classify import GenreClassifier, frechet_distance, load_classifier
from melodymaker.classify.training import main
from melodymaker.library import heldout
from melodymaker.options import GENRES

SR = 22050
SECONDS = 6.0
KINDS = ("classical", "disco", "metal", "reggae")


def synth(genre: str, seed: int, seconds: float = SECONDS, sr: int = SR) -> np.ndarray:
    """Four clearly different kinds of sound, varied per seed."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    t = np.arange(n) / sr
    y = np.zeros(n)
    if genre == "classical":  # sustained harmonic tones, a new note every second
        for k in range(int(seconds)):
            f = rng.uniform(300, 600)
            seg = slice(k * sr, min(n, (k + 1) * sr))
            y[seg] = sum(np.sin(2 * np.pi * f * h * t[seg]) / h for h in (1, 2, 3))
        y *= 0.2
    elif genre == "disco":  # bright clicks on a steady ~120 BPM grid
        bpm = rng.uniform(115, 125)
        click = np.sin(2 * np.pi * 3000 * t[: int(0.02 * sr)]) * np.exp(-t[: int(0.02 * sr)] * 300)
        for at in np.arange(0, seconds, 60 / bpm / 2):
            i = int(at * sr)
            y[i: i + len(click)] += 0.6 * click[: n - i]
    elif genre == "metal":  # loud broadband noise, fast bursts
        bpm = rng.uniform(170, 190)
        env = np.zeros(n)
        for at in np.arange(0, seconds, 60 / bpm / 2):
            i = int(at * sr)
            env[i: i + int(0.08 * sr)] = 1.0
        y = 0.5 * rng.standard_normal(n) * (0.3 + 0.7 * env)
    else:  # reggae: low bass pulses, slow
        f = rng.uniform(55, 90)
        bpm = rng.uniform(70, 80)
        env = np.zeros(n)
        for at in np.arange(0, seconds, 60 / bpm):
            i = int(at * sr)
            m = min(int(0.4 * sr), n - i)
            env[i: i + m] = np.exp(-np.arange(m) / (0.15 * sr))
        y = 0.6 * np.sin(2 * np.pi * f * t) * env
    return (y * rng.uniform(0.6, 1.0)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """Six 6-s clips of four genres, trained with a tiny config through the real CLI."""
    root = tmp_path_factory.mktemp("classify")
    for gi, genre in enumerate(KINDS):
        folder = root / "genres" / (genre.title() if genre == "metal" else genre)  # any case
        folder.mkdir(parents=True)
        for i in range(6):
            sf.write(folder / f"{genre}.{i:05d}.au", synth(genre, 100 * gi + i), SR,
                     format="AU", subtype="PCM_16")
            sidecar = {"genre": genre, "index": i, "library_seed": 7, "duration": SECONDS}
            (folder / f"{genre}.{i:05d}.json").write_text(json.dumps(sidecar))  # as the builder writes
    (root / "genres" / "reggae" / "reggae.99999.au").write_bytes(b"not audio at all")
    out = root / "models" / "classifier"
    rc = main(["train", "--genres", str(root / "genres"), "--out", str(out), "--seed", "0",
               "--epochs", "12", "--crops-per-clip", "8", "--batch-size", "16", "--n-mels", "32",
               "--channels", "8,16,32", "--embed-dim", "32", "--segment", "1.5",
               "--test-fraction", "0.34", "--workers", "1", "--eval-every", "6", "--threads", "1"])
    assert rc == 0
    return out


def test_train_writes_checkpoints_and_card(trained):
    ck, card_path = trained / "classifier.pt", trained / "card.json"
    assert ck.is_file() and (trained / "features.pt").is_file() and card_path.is_file()
    readme = (trained / "README.md").read_text()
    assert "Held-out accuracy, clean and degraded" in readme and "| features |" in readme
    assert ck.stat().st_size < 5_000_000
    card = json.loads(card_path.read_text())
    assert card["command"].startswith("python -m melodymaker.classify train --genres ")
    assert card["library"]["builder"] == ("python -m melodymaker library build --out genres "
                                          "--per-genre 6 --seed 7 --duration 6")
    assert card["library"]["library_seed"] == 7 and card["library"]["per_genre"] == 6
    assert card["library"]["counts"] == {g: 6 for g in KINDS}
    assert any("reggae.99999.au" in s["path"] for s in card["library"]["skipped"])
    for name in ("cnn", "features"):
        result = card["results"][name]
        assert 0.0 <= result["accuracy"] <= 1.0
        assert set(result["per_genre"]) == set(KINDS)
        assert np.array(result["confusion"]["matrix"]).sum() == card["split"]["test"]
        assert card["judges"][name]["bytes"] == (trained / card["judges"][name]["checkpoint"]).stat().st_size
    assert card["results"]["cnn"]["accuracy"] >= 0.75
    assert card["training"]["steps"] > 0 and card["training"]["final_train_loss"] is not None
    assert card["judges"]["cnn"]["parameters"] > 0 and card["combination"] == "geometric mean, renormalised"


def test_split_is_the_librarys_by_clip(trained):
    split = json.loads((trained / "card.json").read_text())["split"]
    test = set(split["held_out"])
    keys = {f"{g}/{g}.{i:05d}.au" for g in KINDS for i in range(6)}
    assert test == {k for k in keys if heldout(k, fraction=0.34, seed=0)}
    assert split["train"] + split["test"] == 24 and split["test"] == len(test) > 0
    assert split["seed"] == 0 and split["fraction"] == 0.34 and "sha256" in split["method"]
    assert GenreClassifier.from_file(trained / "classifier.pt").split["held_out"] == split["held_out"]


def test_predicts_the_genre_of_new_clips(trained):
    clf = load_classifier(trained.parent)
    for gi, genre in enumerate(KINDS):
        probs = clf.predict(synth(genre, 10_000 + gi, seconds=8.0), SR)
        assert tuple(probs) == GENRES
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert max(probs, key=probs.get) == genre, probs
        assert all(probs[g] == 0.0 for g in GENRES if g not in KINDS)


def test_odd_inputs(trained):
    clf = load_classifier(trained.parent)
    short = clf.predict(synth("metal", 1, seconds=0.3), SR)  # shorter than one window: padded
    assert sum(short.values()) == pytest.approx(1.0, abs=1e-6)
    y44 = synth("reggae", 2, sr=44100)
    assert max(clf.predict(y44, 44100).items(), key=lambda kv: kv[1])[0] == "reggae"
    stereo = np.stack([synth("disco", 3), synth("disco", 3)])
    assert max(clf.predict(stereo, SR).items(), key=lambda kv: kv[1])[0] == "disco"
    silence = clf.embed(np.zeros(SR * 2, np.float32), SR)
    assert np.isfinite(silence).all() and np.linalg.norm(silence) == pytest.approx(1.0, abs=1e-5)
    with pytest.raises(ValueError):
        clf.predict(np.zeros(0, np.float32), SR)
    with pytest.raises(ValueError):
        clf.predict(np.full(SR, np.nan, np.float32), SR)


def test_embeddings_are_unit_and_group_by_genre(trained):
    clf = load_classifier(trained.parent)
    vectors, labels = [], []
    for gi, genre in enumerate(KINDS):
        for i in range(3):
            probs, v = clf.predict_and_embed(synth(genre, 20_000 + 10 * gi + i), SR)
            assert v.dtype == np.float32 and v.shape == (clf.embedding_size,)
            assert np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5)
            if i == 0:
                assert probs == clf.predict(synth(genre, 20_000 + 10 * gi + i), SR)
            vectors.append(v)
            labels.append(genre)
    sims = np.stack(vectors) @ np.stack(vectors).T
    same = np.equal.outer(labels, labels)
    np.fill_diagonal(same, False)
    other = ~np.equal.outer(labels, labels)
    for i in range(len(labels)):  # every clip's own genre is nearer than any other genre
        assert sims[i][same[i]].min() > sims[i][other[i]].max(), labels[i]
    a = np.stack(vectors[:3])
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-4)
    assert frechet_distance(a, np.stack(vectors[3:6])) > 0.01


def test_concurrent_predictions_match_serial(trained):
    clf = load_classifier(trained.parent)
    clips = [synth(g, 30_000 + i) for i, g in enumerate(KINDS * 2)]
    serial = [clf.predict_and_embed(y, SR) for y in clips]
    results = [None] * len(clips)

    def work(i):
        results[i] = clf.predict_and_embed(clips[i], SR)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clips))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (p1, e1), (p2, e2) in zip(serial, results):
        assert max(abs(p1[g] - p2[g]) for g in GENRES) < 1e-6
        assert np.allclose(e1, e2, atol=1e-6)


def test_info(trained):
    info = load_classifier(trained.parent).info
    assert info["name"] == "classifier.pt" and len(info["version"]) == 12 and info["judge"] == "cnn"
    assert info["genres"] == list(KINDS)
    assert 0.0 <= info["accuracy"] <= 1.0 and set(info["accuracy_degraded"]) >= {"noise", "mp3", "mix"}


def test_missing_or_broken_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no classifier checkpoint"):
        load_classifier(tmp_path)
    folder = tmp_path / "classifier"
    folder.mkdir()
    (folder / "classifier.pt").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ValueError, match="not readable"):
        load_classifier(tmp_path)
    torch.save({"format": "something else"}, folder / "classifier.pt")  # no pickle: dict of str
    with pytest.raises(ValueError, match="not a MelodyMaker genre-classifier checkpoint"):
        load_classifier(tmp_path)
    torch.save({"format": "melodymaker-genre-classifier", "format_version": 1}, folder / "classifier.pt")
    with pytest.raises(ValueError, match="format version 1 .*retrain"):  # the one-judge format
        load_classifier(tmp_path)


def test_truncated_checkpoint(trained, tmp_path):
    data = (trained / "classifier.pt").read_bytes()
    (tmp_path / "classifier.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="classifier.pt"):
        load_classifier(tmp_path)
    assert isinstance(GenreClassifier.from_file(trained / "classifier.pt"), GenreClassifier)


def test_features_match_librosa():
    import librosa
    from melodymaker.classify.features import MelParams, _mel_basis, log_mel, spectrum
    mel = MelParams()
    y = synth("classical", 3, seconds=4.0) + 0.01 * np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32)
    S = spectrum(y, mel)
    ref = np.abs(librosa.stft(y, n_fft=mel.n_fft, hop_length=mel.hop))
    assert S.shape == ref.shape and np.allclose(S, ref, atol=1e-3 * ref.max())
    basis = librosa.filters.mel(sr=SR, n_fft=mel.n_fft, n_mels=mel.n_mels, fmin=mel.fmin, fmax=mel.fmax)
    assert np.allclose(_mel_basis(SR, mel.n_fft, mel.n_mels, mel.fmin, mel.fmax), basis, atol=1e-7)
    dense = np.log(basis @ S ** 2 + 1e-6)   # log_mel multiplies by a sparse copy of the bank
    assert np.allclose(log_mel(S, mel), dense, atol=1e-4)

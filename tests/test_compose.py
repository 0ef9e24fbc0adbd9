"""The compose mode and the built-in library: real scores, real rendering, real audio analysis."""
from __future__ import annotations

import io
import json
import random

import librosa
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from melodymaker.compose import builder
from melodymaker.compose.composer import cast_roles, compose, perform
from melodymaker.compose.styles import STYLES
from melodymaker.engines.compose import ComposeEngine
from melodymaker.midi import render, to_bytes
from melodymaker.options import GENRES, INSTRUMENTS, SAMPLE_RATE
from melodymaker.request import GenerationRequest

SR = SAMPLE_RATE


def detected_tempo(y: np.ndarray, sr: int = SR) -> float:
    """librosa's beat tracker, refined by the slope of beat time against beat number."""
    tempo, beats = librosa.beat.beat_track(y=y, sr=sr, units="time")
    tempo = float(np.atleast_1d(tempo)[0])
    if len(beats) >= 8:
        slope = np.polyfit(np.arange(len(beats)), beats, 1)[0]
        if abs(60.0 / slope - tempo) < 0.08 * tempo:
            tempo = 60.0 / slope
    return tempo


def octave_error(detected: float, requested: float) -> float:
    """Relative tempo error, forgiving the beat tracker's half- and double-time answers."""
    return min(abs(detected / requested - k) / k for k in (0.5, 1.0, 2.0))


def rms_db(y: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2)) + 1e-12)


@pytest.mark.parametrize("genre", GENRES)
def test_every_genre_composes_and_renders(genre):
    y, score, facts = perform(genre, tempo=None, length=8.0, seed=11)
    assert y.dtype == np.float32 and y.shape == (8 * SR,)
    assert np.all(np.isfinite(y))
    assert 0.05 < np.max(np.abs(y)) <= 0.99          # audible, never clipped
    lo, hi = STYLES[genre].tempo
    assert lo <= facts["tempo"] <= hi
    assert facts["genre"] == genre and facts["key"] and facts["form"][-1] == "ending"
    assert score.time_signature_changes[0].numerator == 4
    assert len(score.key_signature_changes) == 1


@pytest.mark.parametrize("genre,bpm", [("rock", 120), ("disco", 124), ("hiphop", 92),
                                       ("jazz", 150), ("country", 104), ("blues", 84)])
def test_tempo_is_exact_in_the_score_and_heard_in_the_audio(genre, bpm):
    y, score, facts = perform(genre, tempo=bpm, length=20.0, seed=3)
    assert facts["tempo"] == bpm
    _, tempi = score.get_tempo_changes()
    assert list(tempi) == pytest.approx([bpm], abs=1e-6)
    reloaded = pretty_midi.PrettyMIDI(io.BytesIO(to_bytes(score)))
    assert reloaded.get_tempo_changes()[1][0] == pytest.approx(bpm, abs=0.01)
    assert octave_error(detected_tempo(y), bpm) < 0.02


@pytest.mark.parametrize("length", [1.0, 7.3, 12.345])
def test_engine_length_is_exact_and_ends_on_the_tonic(length):
    request = GenerationRequest.parse({"genre": "pop", "length": length, "tempo": 110,
                                       "seed": 5, "mode": "compose"})
    seen = []
    track = ComposeEngine().generate(request, lambda f, m="": seen.append(f))
    assert len(track.audio) == round(length * SR) and track.sr == SR
    assert track.meta["engine"] == "compose" and track.meta["tempo"] == 110
    assert seen == sorted(seen) and 0.1 in seen and 0.9 in seen
    score = track.midi
    assert max(n.end for i in score.instruments for n in i.notes) <= length + 1e-9
    tonic = track.meta["tonic"]
    ringing = [n.pitch % 12 for i in score.instruments if not i.is_drum
               for n in i.notes if n.end >= length - 1e-6]
    assert ringing and tonic in ringing                  # the final chord rings to the end
    assert ringing.count(tonic) >= 2


def test_chosen_instruments_replace_the_defaults_in_their_roles():
    chosen = ("organ", "trumpet", "upright bass")
    score, facts = compose("rock", tempo=128, length=10, instruments=chosen, seed=2)
    programs = {i.name: (i.program, i.is_drum) for i in score.instruments}
    for name in chosen:
        assert programs[name] == (INSTRUMENTS[name].program, False)
    assert "distorted guitar" not in programs and "lead guitar" not in programs
    assert programs["drums"][1] is True                  # drums were not chosen: default kept
    assert facts["instruments"] == {"drums": ["drums"], "bass": ["upright bass"],
                                    "harmony": ["organ"], "lead": ["trumpet"]}
    # only a harmony instrument: the other roles keep the genre's defaults
    assert cast_roles(STYLES["metal"], ("piano",)) == {
        "drums": ["drums"], "bass": ["bass"], "harmony": ["piano"], "lead": ["lead guitar"]}
    # two leads share the role, both play
    score, _ = compose("jazz", tempo=140, length=20, instruments=("trumpet", "flute"), seed=1)
    assert all(i.notes for i in score.instruments if i.name in ("trumpet", "flute"))


def test_midi_download_is_the_multitrack_score():
    score, facts = compose("reggae", tempo=80, length=12, seed=4)
    back = pretty_midi.PrettyMIDI(io.BytesIO(to_bytes(score)))
    assert [(i.program, i.is_drum) for i in back.instruments] == \
        [(i.program, i.is_drum) for i in score.instruments]
    assert len(back.instruments) == 4
    assert back.key_signature_changes[0].key_number == facts["tonic"] + 12 * (facts["mode"] == "minor")
    controllers = {c.number for i in back.instruments for c in i.control_changes}
    assert {7, 10, 91, 93} <= controllers


def test_classical_has_no_drums_unless_asked():
    score, facts = compose("classical", tempo=None, length=15, seed=8)
    assert not any(i.is_drum for i in score.instruments) and "drums" not in facts["instruments"]
    score, _ = compose("classical", tempo=None, length=15, instruments=("drums",), seed=8)
    assert any(i.is_drum and i.notes for i in score.instruments)


def test_same_seed_same_bytes_other_seeds_other_songs():
    a, score_a, _ = perform("jazz", tempo=None, length=6, seed=42)
    b, score_b, _ = perform("jazz", tempo=None, length=6, seed=42)
    assert a.tobytes() == b.tobytes() and to_bytes(score_a) == to_bytes(score_b)
    facts = [compose(g, tempo=None, length=5, seed=s)[1] for g in ("pop", "metal") for s in range(6)]
    assert len({f["key"] for f in facts}) > 3 and len({f["tempo"] for f in facts}) > 3


def test_notes_stay_inside_each_instruments_range():
    rng = random.Random(0)
    names = list(INSTRUMENTS)
    for i in range(30):
        chosen = tuple(rng.sample(names, rng.randint(0, 4)))
        score, _ = compose(rng.choice(GENRES), tempo=rng.uniform(50, 220),
                           length=rng.choice([2, 9, 25]), instruments=chosen, seed=i)
        for inst in score.instruments:
            spec = INSTRUMENTS[inst.name]
            if not spec.is_drum:
                assert all(spec.low <= n.pitch <= spec.high for n in inst.notes), inst.name


def test_no_endless_identical_bars():
    for genre in ("disco", "metal", "hiphop", "classical"):
        score, facts = compose(genre, tempo=None, length=30, seed=9)
        bar = 240.0 / facts["tempo"]
        prints = []
        for b in range(facts["bars"]):
            prints.append(tuple(sorted(
                (i.name, n.pitch, round((n.start - b * bar) / bar * 16))
                for i in score.instruments for n in i.notes
                if b * bar - 0.03 <= n.start < (b + 1) * bar - 0.03)))
        runs = [a == b for a, b in zip(prints, prints[1:])]
        assert not any(x and y for x, y in zip(runs, runs[1:])), genre   # never 3 alike
        assert len(set(prints)) >= 0.6 * len(prints), genre


@pytest.mark.parametrize("genre", ["metal", "hiphop", "rock", "disco"])
def test_the_drums_do_not_drown_the_band(genre):
    score, facts = compose(genre, tempo=None, length=12, seed=6)
    level = {}
    for inst in score.instruments:
        alone = pretty_midi.PrettyMIDI(initial_tempo=facts["tempo"])
        alone.instruments = [inst]
        level[inst.name] = rms_db(render(alone)[: 12 * SR])
    drums = level.pop("drums")
    assert drums <= max(level.values()) + 3.0, (drums, level)
    assert min(level.values()) > max(level.values()) - 9.0, level    # every part is heard


def test_rendering_honours_programs_bends_and_the_reverb_send():
    score = pretty_midi.PrettyMIDI(initial_tempo=120)
    flute = pretty_midi.Instrument(73)
    flute.notes.append(pretty_midi.Note(100, 72, 0.0, 0.5))
    flute.pitch_bends.append(pretty_midi.PitchBend(4096, 0.0))   # up a semitone (range 2)
    score.instruments.append(flute)
    y = render(score)
    assert len(y) >= int(1.5 * SR) and y.dtype == np.float32
    f0 = librosa.yin(y[2000:9000], fmin=300, fmax=1200, sr=SR)
    assert np.median(f0) == pytest.approx(librosa.midi_to_hz(73), rel=0.02)
    dry = pretty_midi.PrettyMIDI(initial_tempo=120)
    dry.instruments.append(pretty_midi.Instrument(73))
    dry.instruments[0].notes.append(pretty_midi.Note(100, 72, 0.0, 0.5))
    dry.instruments[0].control_changes.append(pretty_midi.ControlChange(91, 0, 0.0))
    tail = slice(int(0.9 * SR), int(1.3 * SR))                  # after the note's release
    assert rms_db(render(dry)[tail]) < rms_db(y[tail]) - 10


# --- the library builder ---------------------------------------------------------------

def test_builder_writes_gtzan_layout_deterministic_prefix_and_resumes(tmp_path):
    genres = ("blues", "metal", "classical")
    small = builder.build_library(tmp_path / "a", per_genre=2, duration=3.0, workers=2,
                                  progress=False, genres=genres)
    large = builder.build_library(tmp_path / "b", per_genre=3, duration=3.0, workers=1,
                                  progress=False, genres=genres)
    assert small["written"] == 6 and large["written"] == 9
    for genre in genres:
        for i in range(3):
            au = tmp_path / "b" / genre / f"{genre}.{i:05d}.au"
            info = sf.info(str(au))
            assert (info.format, info.subtype, info.samplerate, info.channels, info.frames) == \
                ("AU", "PCM_16", 22050, 1, 3 * 22050)
            meta = json.loads(au.with_suffix(".json").read_text())
            assert meta["genre"] == genre and meta["index"] == i and meta["library_seed"] == 0
            assert {"tempo", "key", "instruments", "seed", "builder_version"} <= set(meta)
            if i < 2:   # a small build is a prefix of a large one, byte for byte
                twin = tmp_path / "a" / genre / au.name
                assert twin.read_bytes() == au.read_bytes()
                assert twin.with_suffix(".json").read_bytes() == au.with_suffix(".json").read_bytes()
    again = builder.build_library(tmp_path / "b", per_genre=3, duration=3.0, workers=2,
                                  progress=False, genres=genres)
    assert again["written"] == 0 and again["kept"] == 9
    assert not list((tmp_path / "b").rglob("*.tmp"))


def test_builder_command_line(tmp_path, capsys):
    assert builder.main(["--out", str(tmp_path / "g"), "--per-genre", "1", "--duration", "2",
                         "--workers", "1", "--quiet"]) == 0
    assert len(list((tmp_path / "g").glob("*/*.au"))) == len(GENRES)
    assert "10 clips" in capsys.readouterr().out


@pytest.fixture(scope="session")
def small_library(tmp_path_factory):
    """12 clips per genre, 10 s each: the issue's separability check."""
    out = tmp_path_factory.mktemp("library") / "genres"
    builder.build_library(out, per_genre=12, duration=10.0, workers=2, progress=False)
    features, labels, waves = [], [], []
    for path in sorted(out.glob("*/*.au")):
        y, sr = sf.read(path, dtype="float32")
        mfcc = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=20)
        chroma = librosa.feature.chroma_stft(y=y, sr=sr)
        features.append(np.concatenate([mfcc.mean(1), mfcc.std(1), chroma.mean(1), chroma.std(1)]))
        labels.append(path.parent.name)
        waves.append(y)
    return np.array(features), np.array(labels), waves


def test_library_is_genre_separable(small_library):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    X, y, _ = small_library
    assert sorted(set(y)) == sorted(GENRES) and len(y) == 120
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                        random_state=0)
    clf = RandomForestClassifier(n_estimators=300, random_state=0).fit(X_train, y_train)
    accuracy = float(np.mean(clf.predict(X_test) == y_test))
    print(f"held-out genre accuracy: {accuracy:.3f}")
    assert accuracy >= 0.90


def test_library_clips_are_not_near_identical(small_library):
    X, y, waves = small_library
    Z = (X - X.mean(0)) / (X.std(0) + 1e-9)
    for genre in GENRES:
        idx = np.where(y == genre)[0]
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                fa, fb = Z[idx[a]], Z[idx[b]]
                assert np.linalg.norm(fa - fb) > 2.0, (genre, a, b)
                wa, wb = waves[idx[a]], waves[idx[b]]
                corr = float(np.dot(wa, wb) / (np.linalg.norm(wa) * np.linalg.norm(wb)))
                assert abs(corr) < 0.5, (genre, a, b, corr)

"""The dataset mode through the whole data path: tempo, exact length, determinism, encodings."""
import io

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from melodymaker import audio
from melodymaker.request import GenerationRequest
from melodymaker.service import Service
from conftest import CLICK_BPM


@pytest.fixture()
def service(settings):
    s = Service(settings, with_store=False)
    yield s
    s.close()


@pytest.mark.parametrize("target", [80, 120, 150])
def test_tempo_is_conformed_on_a_click_library(service, target):
    req = GenerationRequest.parse({"genre": "rock", "tempo": target, "length": 20, "seed": 1})
    track, meta = service.generate(req)
    detected, _ = audio.estimate_tempo(track.audio, track.sr)
    assert abs(detected - target) / target < 0.03, (target, detected, CLICK_BPM)
    assert meta["tempo"] == target


@pytest.mark.parametrize("length", [1, 7.3, 45])
def test_length_is_exact(service, length):
    track, meta = service.generate(GenerationRequest.parse({"genre": "jazz", "tempo": 110,
                                                            "length": length, "seed": 2}))
    assert abs(len(track.audio) / track.sr - length) <= 0.001
    assert meta["length"] == pytest.approx(length, abs=0.001)


def test_same_seed_same_bytes_other_seed_other_audio(service):
    body = {"genre": "jazz", "tempo": 100, "length": 12, "seed": 11}
    a, _ = service.generate(GenerationRequest.parse(body))
    b, _ = service.generate(GenerationRequest.parse(body))
    c, _ = service.generate(GenerationRequest.parse({**body, "seed": 12}))
    assert audio.encode(a.audio, a.sr, "wav") == audio.encode(b.audio, b.sr, "wav")
    assert not np.array_equal(a.audio, c.audio)


def test_output_is_loudness_normalised_with_fades_and_no_clipping(service):
    track, meta = service.generate(GenerationRequest.parse({"genre": "rock", "length": 15, "seed": 3}))
    # clicks are all peak: a limiter that does not bend the waveform holds their true peak at
    # -1 dBTP, so their loudness stays under the target (music with a normal crest factor reaches it)
    from melodymaker.mastering import dbtp
    assert audio.TARGET_LUFS - 12 < meta["loudness_lufs"] < audio.TARGET_LUFS + 0.5
    assert np.max(np.abs(track.audio)) <= audio.PEAK_CEILING + 1e-6 and dbtp(track.audio) <= -1.0 + 0.02
    assert abs(track.audio[0]) < 1e-3 and abs(track.audio[-1]) < 1e-3


def test_segments_come_from_several_clips_of_the_genre(service):
    track, meta = service.generate(GenerationRequest.parse({"genre": "rock", "length": 40, "seed": 4}))
    clips = {s["clip"] for s in meta["details"]["segments"]}
    assert clips <= {"rock/rock.00000.au", "rock/rock.00001.wav"}
    assert len(meta["details"]["segments"]) >= 3


def test_mp3_and_midi_decode_back(service):
    track, meta = service.generate(GenerationRequest.parse({"genre": "blues", "length": 6, "seed": 5}))
    mp3 = service.encode(track, "mp3")
    assert mp3[:3] == b"ID3" or (mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0)   # an MPEG frame sync
    y, sr = sf.read(io.BytesIO(mp3))
    assert sr == track.sr and abs(len(y) / sr - 6) < 0.1
    assert np.corrcoef(y[: len(track.audio)], track.audio[: len(y)])[0, 1] > 0.9
    mid = service.encode(track, "midi")  # a transcription at the track's tempo
    assert mid[:4] == b"MThd"
    score = pretty_midi.PrettyMIDI(io.BytesIO(mid))
    notes = [n for inst in score.instruments for n in inst.notes]
    assert notes, "the transcription of a 110 Hz tone with noise bursts has notes"
    assert any(abs(n.pitch - 45) <= 1 for n in notes)    # A2 = 110 Hz


def test_normalize_reaches_the_target_on_dense_audio():
    rng = np.random.default_rng(0)
    y = (0.01 * rng.standard_normal(22050 * 5)).astype(np.float32)
    out = audio.normalize(y, 22050)
    assert abs(audio.loudness(out, 22050) - audio.TARGET_LUFS) < 0.5
    assert np.max(np.abs(out)) <= audio.PEAK_CEILING

"""GenerationRequest: the structured form, every string of the original page, and the 400 cases."""
import pytest

from melodymaker import options as opt
from melodymaker.errors import InvalidRequest
from melodymaker.request import GenerationRequest

ORIGINAL_GENRES = ["Blues", "Classical", "Country", "Disco", "HipHop", "Jazz", "Metal", "Pop", "Reggae", "Rock"]
ORIGINAL_INSTRUMENTS = ["Piano", "Guitar", "Strings", "Drums", "Saxophone", "Trumpet"]
ORIGINAL_TEMPI = {"Slow (60-80 BPM)": (60, 80), "Medium (90-120 BPM)": (90, 120),
                  "Fast (130-160 BPM)": (130, 160), "Very Fast (170+ BPM)": (170, 240)}


def test_structured_form():
    r = GenerationRequest.parse({"genre": "jazz", "instruments": ["piano", "bass"], "tempo": 96,
                                 "length": 20, "mode": "dataset", "seed": 7, "format": "mp3"})
    assert (r.genre, r.instruments, r.tempo, r.length, r.mode, r.seed, r.format) == \
        ("jazz", ("piano", "bass"), 96.0, 20.0, "dataset", 7, "mp3")


@pytest.mark.parametrize("genre", ORIGINAL_GENRES)
def test_original_genres(genre):
    assert GenerationRequest.parse({"genre": genre}).genre == genre.lower()


@pytest.mark.parametrize("instrument", ORIGINAL_INSTRUMENTS)
def test_original_instruments(instrument):
    r = GenerationRequest.parse({"genre": "Pop", "instruments": instrument})
    assert r.instruments == (instrument.lower(),)
    assert r.instruments[0] in opt.INSTRUMENTS


@pytest.mark.parametrize("label,bounds", ORIGINAL_TEMPI.items())
def test_original_tempo_presets_map_into_their_range_by_seed(label, bounds):
    tempi = {GenerationRequest.parse({"genre": "Rock", "tempo": label, "seed": s}).tempo for s in range(20)}
    assert all(bounds[0] <= t <= bounds[1] for t in tempi)
    assert len(tempi) > 1  # the seed picks the BPM
    again = GenerationRequest.parse({"genre": "Rock", "tempo": label, "seed": 3}).tempo
    assert again == GenerationRequest.parse({"genre": "Rock", "tempo": label, "seed": 3}).tempo


def test_original_page_exact_json():
    r = GenerationRequest.parse({"genre": "HipHop", "instruments": "Piano", "tempo": "Medium (90-120 BPM)",
                                 "length": "Demo (30 seconds)", "generate_mode": 0})
    assert (r.genre, r.instruments, r.length, r.mode, r.format) == ("hiphop", ("piano",), 30.0, "dataset", "wav")
    assert 90 <= r.tempo <= 120


@pytest.mark.parametrize("number,mode", [(0, "dataset"), (1, "rave"), (2, "compose"), (3, "ddim"),
                                         (4, "melgan"), ("2", "compose")])
def test_generate_mode_numbers(number, mode):
    assert GenerationRequest.parse({"genre": "pop", "generate_mode": number}).mode == mode


def test_defaults_and_random_seed():
    r = GenerationRequest.parse({"genre": "pop"})
    assert r.length == 30 and r.mode == "dataset" and r.format == "wav" and r.tempo is None
    assert 0 <= r.seed <= opt.SEED_MAX


@pytest.mark.parametrize("body,field", [
    ({}, "genre"),
    ({"genre": "polka"}, "genre"),
    ({"genre": 5}, "genre"),
    ({"genre": "pop", "tempo": 39}, "tempo"),
    ({"genre": "pop", "tempo": 241}, "tempo"),
    ({"genre": "pop", "tempo": "Ludicrous (300 BPM)"}, "tempo"),
    ({"genre": "pop", "tempo": True}, "tempo"),
    ({"genre": "pop", "length": 0.5}, "length"),
    ({"genre": "pop", "length": 301}, "length"),
    ({"genre": "pop", "length": "Epic (1 hour)"}, "length"),
    ({"genre": "pop", "mode": "magic"}, "mode"),
    ({"genre": "pop", "generate_mode": 9}, "generate_mode"),
    ({"genre": "pop", "generate_mode": 1, "mode": "dataset"}, "mode"),
    ({"genre": "pop", "instruments": ["kazoo"]}, "instruments"),
    ({"genre": "pop", "instruments": 3}, "instruments"),
    ({"genre": "pop", "seed": -1}, "seed"),
    ({"genre": "pop", "seed": 1.5}, "seed"),
    ({"genre": "pop", "format": "ogg"}, "format"),
])
def test_invalid_fields_are_named(body, field):
    with pytest.raises(InvalidRequest) as err:
        GenerationRequest.parse(body)
    assert err.value.field == field
    assert err.value.status == 400


def test_error_lists_allowed_values():
    with pytest.raises(InvalidRequest) as err:
        GenerationRequest.parse({"genre": "polka"})
    assert all(g in err.value.message for g in opt.GENRES)
    with pytest.raises(InvalidRequest) as err:
        GenerationRequest.parse({"genre": "pop", "tempo": 500})
    assert "40" in err.value.message and "240" in err.value.message

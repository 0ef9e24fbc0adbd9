"""The meter of a request: 4/4, 3/4 or 6/8; the composer writes it (bars in the MIDI, grooves in each
genre's feel), a genre without a convincing one refuses it, the audio modes ignore it and say so."""
import io

import numpy as np
import pretty_midi
import pytest

from melodymaker import options as opt
from melodymaker.compose.composer import compose
from melodymaker.compose.styles import STYLES
from melodymaker.errors import InvalidRequest
from melodymaker.request import GenerationRequest


def meter_of(value) -> str:
    return GenerationRequest.parse({"genre": "pop", "meter": value}).meter


def test_4_4_is_the_default_and_the_three_meters_parse():
    assert meter_of(None) == meter_of("") == "4/4"
    assert meter_of("3/4") == meter_of(" 3 / 4 ") == "3/4" and meter_of("6/8") == "6/8"


@pytest.mark.parametrize("bad", ["5/4", "3-4", "waltz", 3, 0.75, True, ["3/4"]])
def test_a_bad_meter_is_400_naming_the_field_and_the_meters(client, bad):
    with pytest.raises(InvalidRequest) as e:
        GenerationRequest.parse({"genre": "pop", "meter": bad})
    assert e.value.field == "meter"
    r = client.post("/generate", json={"genre": "rock", "length": 2, "meter": bad})
    assert r.status_code == 400 and r.json["field"] == "meter"
    assert "4/4, 3/4, 6/8" in r.json["message"]


@pytest.mark.parametrize("meter, beats, quarters", [("3/4", 3, 3.0), ("6/8", 2, 3.0)])
@pytest.mark.parametrize("genre", ["classical", "country", "jazz", "pop"])
def test_the_midi_has_bars_of_the_meter_at_the_tempo(genre, meter, beats, quarters):
    """90 BPM counts quarters in 3/4 (a bar is 2 s) and dotted quarters in 6/8 (a bar is 1.33 s);
    the file's time signature, downbeats and quarter-note tempo agree, and the drums' and bass's
    first note of each bar falls on its downbeat."""
    score, facts = compose(genre, tempo=90, length=12, seed=1, meter=meter, instruments=("drums",))
    file = pretty_midi.PrettyMIDI(io.BytesIO(_bytes(score)))
    (sig,) = file.time_signature_changes
    assert f"{sig.numerator}/{sig.denominator}" == meter == facts["time_signature"]
    bar = beats * 60 / 90
    downbeats = file.get_downbeats()
    assert np.allclose(np.diff(downbeats), bar, atol=1e-3)
    assert file.get_tempo_changes()[1][0] == pytest.approx(90 * quarters / beats, rel=1e-4)
    starts = [bar * i for i in range(facts["bars"])]
    for name in ("drums", "bass", "upright bass", "cello"):
        part = next((p for p in file.instruments if p.name == name), None)
        if part is None:
            continue
        onsets = np.array([n.start for n in part.notes])
        on_downbeat = [np.min(np.abs(onsets - t)) < 0.03 for t in starts]
        assert sum(on_downbeat) >= 0.8 * len(starts), (name, genre, meter)


def _bytes(score) -> bytes:
    buf = io.BytesIO()
    score.write(buf)
    return buf.getvalue()


def test_genres_without_a_convincing_meter_say_so_and_refuse_it(client):
    options = client.get("/api/options").json["meter"]
    assert options["default"] == "4/4" and [m["name"] for m in options["meters"]] == list(opt.METERS)
    by_name = {m["name"]: m for m in options["meters"]}
    assert by_name["6/8"]["tempo_counts"] == "dotted quarter note"
    assert by_name["3/4"]["tempo_counts"] == by_name["4/4"]["tempo_counts"] == "quarter note"
    assert by_name["4/4"]["compose_genres"] == list(opt.GENRES)
    assert "disco" not in by_name["3/4"]["compose_genres"] and "classical" in by_name["3/4"]["compose_genres"]
    assert "four on the floor" in options["compose_notes"]["disco"]
    caps = {m["name"]: m["capabilities"]["meter"] for m in client.get("/api/options").json["modes"]}
    assert caps == {"dataset": False, "rave": False, "compose": True, "ddim": False, "melgan": False}
    r = client.post("/api/tracks", json={"genre": "disco", "mode": "compose", "meter": "3/4", "length": 2})
    assert r.status_code == 400 and r.json["field"] == "meter" and "for disco: 4/4" in r.json["message"]
    body = client.get("/openapi.json").json["paths"]["/generate"]["post"]["requestBody"]
    schema = body["content"]["application/json"]["schema"]["properties"]
    assert schema["meter"]["enum"] == list(opt.METERS) and "dotted quarter" in schema["meter"]["description"]


def test_every_style_meter_composes(tmp_path):
    for genre, style in STYLES.items():
        for meter in style.meter_names[1:]:
            score, facts = compose(genre, tempo=100, length=8, seed=2, meter=meter)
            assert facts["time_signature"] == meter and sum(len(p.notes) for p in score.instruments) > 20


def test_audio_modes_accept_the_meter_ignore_it_and_say_so(client):
    r = client.post("/generate", json={"genre": "jazz", "mode": "dataset", "length": 2, "seed": 1,
                                       "meter": "3/4"})
    assert r.status_code == 200
    meta = client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json["meta"]
    assert meta["meter"] == {"requested": "3/4", "applied": "ignored"}
    assert meta["request"]["meter"] == "3/4"

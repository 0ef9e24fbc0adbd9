"""The key of a request: spellings and 400s, the composer writing in it, audio modes pitch-shifted onto
it, the key estimated from every track's audio; and unknown request fields listed back."""
import io
from urllib.parse import unquote

import pytest
import soundfile as sf

from melodymaker import keys
from melodymaker import options as opt
from melodymaker.errors import InvalidRequest
from melodymaker.request import GenerationRequest

SHARPS = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
FLATS = ("C", "Db", "D", "Eb", "E", "F", "Gb", "G", "Ab", "A", "Bb", "B")


def key_of(value) -> str:
    return GenerationRequest.parse({"genre": "pop", "key": value}).key


# -- parsing ----------------------------------------------------------------------------------------
def test_auto_is_the_default():
    assert GenerationRequest.parse({"genre": "pop"}).key == "auto"
    assert key_of("auto") == key_of(" Auto ") == key_of("") == key_of(None) == "auto"


@pytest.mark.parametrize("name", opt.KEYS)
def test_every_key_the_server_names_parses_to_itself(name):
    assert key_of(name) == name
    assert key_of(name.upper()) == key_of(name.lower()) == name


@pytest.mark.parametrize("pc", range(12))
@pytest.mark.parametrize("mode", opt.KEY_MODES)
def test_sharps_and_flats_name_the_same_key(pc, mode):
    expected = f"{opt.KEY_TONICS[mode][pc]} {mode}"
    short = "m" if mode == "minor" else ""
    for tonic in {SHARPS[pc], FLATS[pc]}:
        spellings = [f"{tonic} {mode}", f"{tonic}{mode}", f"{tonic} {mode[:3]}", f"{tonic}{short}",
                     tonic.replace("#", "♯").replace("b", "♭") + f" {mode}",
                     tonic.replace("#", " sharp").replace("b", "-flat") + f"_{mode}"]
        for spelling in spellings:
            assert key_of(spelling) == expected, spelling


@pytest.mark.parametrize("spelling,expected", [
    ("Cb major", "B major"), ("E# minor", "F minor"), ("B# major", "C major"), ("Fb major", "E major"),
    ("G## major", "A major"), ("Bbb minor", "A minor"), ("Am", "A minor"), ("am", "A minor"),
    ("AM", "A major"), ("A", "A major"), ("B-flat minor", "Bb minor"), ("c_sharp_minor", "C# minor"),
    ("a sharp minor", "Bb minor"), ("Gb", "F# major"), ("D#m", "Eb minor"), ("Ab minor", "G# minor")])
def test_enharmonics_and_short_forms(spelling, expected):
    assert key_of(spelling) == expected


@pytest.mark.parametrize("bad", ["H minor", "A dorian", "minor", "#A", "A minor minor", "Amajor minor",
                                 "C-3", "7", 7, True, ["A", "minor"], {"tonic": "A"}])
def test_a_bad_key_is_400_naming_the_field_and_what_is_allowed(client, bad):
    with pytest.raises(InvalidRequest) as e:
        GenerationRequest.parse({"genre": "pop", "key": bad})
    assert e.value.field == "key"
    r = client.post("/generate", json={"genre": "rock", "length": 2, "key": bad})
    assert r.status_code == 400 and r.json["field"] == "key"
    message = r.json["message"]
    assert "'auto'" in message and "major, minor" in message and "C#/Db" in message and "A#/Bb" in message


def test_options_and_openapi_list_the_keys(client):
    options = client.get("/api/options").json
    assert options["key"]["default"] == "auto" and options["key"]["keys"] == list(opt.KEYS)
    assert len(set(options["key"]["keys"])) == 24 and options["key"]["max_shift"] == 6
    caps = {m["name"]: m["capabilities"]["key"] for m in options["modes"]}
    assert caps == {"dataset": False, "rave": False, "compose": True, "ddim": False, "melgan": False}
    schema = client.get("/openapi.json").json["paths"]["/generate"]["post"]["requestBody"]
    key = schema["content"]["application/json"]["schema"]["properties"]["key"]
    assert key["enum"] == ["auto", *opt.KEYS] and key["default"] == "auto"


# -- the shift onto a key -------------------------------------------------------------------------
def test_the_shift_is_the_smallest_onto_the_pitch_set():
    c_major, a_minor = keys.parse("C major"), keys.parse("A minor")
    assert keys.shift_between(c_major, a_minor) == 0          # the relative key: the same set
    assert keys.shift_between(c_major, keys.parse("D major")) == 2
    assert keys.shift_between(c_major, keys.parse("Bb major")) == -2
    assert keys.shift_between(keys.parse("E minor"), keys.parse("C minor")) == -4
    for a in keys.ALL:
        for b in keys.ALL:
            n = keys.shift_between(a, b)
            assert -keys.MAX_SHIFT <= n <= keys.MAX_SHIFT and (a.major_tonic + n) % 12 == b.major_tonic
    assert [keys.relation(keys.parse("A minor"), keys.parse(k)) for k in
            ("A minor", "E minor", "D minor", "C major", "A major", "F# major")] == \
        ["exact", "fifth", "fifth", "relative", "parallel", "other"]


# -- compose writes in the key ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def composer(tmp_path_factory):
    from melodymaker.service import Service
    from melodymaker.settings import Settings
    base = tmp_path_factory.mktemp("keys")
    service = Service(Settings(genres_dir=base / "genres", models_dir=base / "models", var_dir=base / "var",
                               workers=1), with_store=False, modes=["compose"])
    yield service
    service.close()


def test_compose_in_24_keys_reaches_the_requested_tonic(composer):
    """12 tonics x 2 modes, the genres in turn: the score says the key, the audio sounds in it."""
    found = []
    for i, name in enumerate(opt.KEYS):
        request = GenerationRequest.parse({"genre": opt.GENRES[i % len(opt.GENRES)], "mode": "compose",
                                           "length": 10, "seed": 4200 + i, "key": name})
        track, meta = composer.generate_one(request)
        wanted = keys.parse(name)
        (signature,) = track.midi.key_signature_changes
        assert signature.key_number == wanted.tonic + (12 if wanted.mode == "minor" else 0)
        assert meta["key"]["requested"] == meta["key"]["written"] == name and "shift" not in meta["key"]
        estimated = keys.parse(meta["key"]["estimated"])
        assert meta["key"]["relation"] == keys.relation(wanted, estimated)
        found.append((name, estimated.name))
    tonic = [a for a, b in found if keys.parse(a).tonic == keys.parse(b).tonic]
    assert len(tonic) >= 0.9 * len(found), found


def test_a_key_changes_only_the_key_of_the_seeds_song(composer):
    auto = GenerationRequest.parse({"genre": "jazz", "mode": "compose", "length": 8, "seed": 12})
    _, a = composer.generate_one(auto)
    _, b = composer.generate_one(GenerationRequest.parse({**auto.to_dict(), "key": "F# minor"}))
    assert a["key"]["requested"] == "auto" and a["key"]["written"] in opt.KEYS and a["key"]["estimated"]
    assert "relation" not in a["key"]
    assert b["key"]["written"] == "F# minor"
    same = ("form", "instruments", "bars", "feel")
    assert a["tempo"] == b["tempo"] and {k: a["details"][k] for k in same} == {k: b["details"][k] for k in same}


# -- audio modes: pitch-shifted onto the key ----------------------------------------------------------
def test_a_dataset_track_is_pitch_shifted_into_the_requested_key(composed_library, tmp_path):
    """The same seed, first in its own key, then asked for that key moved up four semitones: the
    audio is shifted by exactly that, keeps its length and rate, and is estimated in the new key."""
    from app import create_app
    from melodymaker.settings import Settings
    app = create_app(Settings(genres_dir=composed_library, models_dir=tmp_path / "models",
                              var_dir=tmp_path / "var", workers=1))
    try:
        client = app.test_client()
        body = {"genre": "reggae", "mode": "dataset", "length": 6, "seed": 3}
        r = client.post("/generate", json=body)
        assert r.status_code == 200
        own = client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json["meta"]["key"]
        assert own["requested"] == "auto" and "shift" not in own
        assert r.headers["X-Key"] == f"requested=auto; estimated={own['estimated']}"
        before = keys.parse(own["estimated"])
        wanted = keys.Key((before.tonic + 4) % 12, before.mode)

        r = client.post("/generate", json={**body, "key": wanted.name})
        assert r.status_code == 200
        meta = client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json["meta"]
        assert meta["key"]["shift"] == {"estimated_before": before.name, "semitones": 4}
        assert meta["key"]["requested"] == meta["key"]["estimated"] == wanted.name
        assert meta["key"]["relation"] == "exact"
        assert r.headers["X-Key"] == f"requested={wanted.name}; estimated={wanted.name}"
        y, sr = sf.read(io.BytesIO(r.data))
        assert sr == opt.SAMPLE_RATE and len(y) == 6 * sr
    finally:
        app.extensions["melodymaker"].close()


# -- unknown fields ----------------------------------------------------------------------------------
def test_unknown_fields_are_accepted_and_listed_back(client):
    body = {"genre": "rock", "length": 2, "seed": 1, "Key": "A minor", "tempo_bpm": 90, "ключ": 1,
            "a, b": True}
    r = client.post("/generate", json=body)
    assert r.status_code == 200 and r.data[:4] == b"RIFF"
    listed = [unquote(n.strip()) for n in r.headers["X-Ignored-Fields"].split(",")]
    assert sorted(listed) == sorted(["Key", "tempo_bpm", "ключ", "a, b"])  # each name once, intact
    assert r.headers["X-Key"].startswith("requested=auto;")  # "Key" is not "key": it did nothing
    meta = client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json["meta"]
    assert meta["ignored_fields"] == listed

    r = client.post("/api/tracks", json={"genre": "rock", "length": 2, "sedd": 5})
    assert r.status_code == 202 and r.json["ignored_fields"] == ["sedd"]
    assert r.headers["X-Ignored-Fields"] == "sedd"

    r = client.post("/generate", json={"genre": "rock", "length": 2, "seed": 1, "key": "auto"})
    assert r.status_code == 200 and "X-Ignored-Fields" not in r.headers
    assert client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json["meta"]["ignored_fields"] == []


def test_a_parsed_request_keeps_its_ignored_fields_through_the_queue():
    r = GenerationRequest.parse({"genre": "pop", "colour": "blue", "key": "bbm"})
    assert r.ignored_fields == ("colour",) and r.key == "Bb minor"
    again = GenerationRequest.parse(r.to_dict())  # what a queue worker does with the job's payload
    assert again == r

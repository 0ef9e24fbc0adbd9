"""More like this (POST /api/tracks/from-reference): a clip's genre (the real, small judges), tempo,
key and length become the request, the form's fields win, RAVE transfers the clip itself (the
shipped checkpoint), and bad uploads or fields are refused naming the field."""
import io
import json
import os

import numpy as np
import pytest
import soundfile as sf

from conftest import CLICK_BPM, ROOT, SR, click_track, tone

REFERENCE = ("disco", "disco.00001")   # a composer clip whose tempo and key are told right by ear


@pytest.fixture(scope="module")
def ref_app(composed_library, tiny_models, tmp_path_factory):
    from app import create_app
    from melodymaker.settings import Settings
    app = create_app(Settings(genres_dir=composed_library, models_dir=tiny_models, workers=2,
                              var_dir=tmp_path_factory.mktemp("ref") / "var", max_upload_bytes=2_000_000))
    yield app
    app.extensions["melodymaker"].close()


@pytest.fixture()
def ref_client(ref_app):
    return ref_app.test_client()


def upload(client, data, name: str = "clip.wav", **form):
    """POST the clip (a path or float32 samples at SR) with form fields beside it."""
    if isinstance(data, np.ndarray):
        buf = io.BytesIO()
        sf.write(buf, data, SR, format="WAV")
        buf.seek(0)
        data = buf
    elif not isinstance(data, io.IOBase):
        data = open(data, "rb")
    return client.post("/api/tracks/from-reference", data={"file": (data, name), **form},
                       content_type="multipart/form-data")


def finished(client, answer) -> dict:
    """The metadata of the track a 202 started, once its job is done."""
    job = client.application.extensions["melodymaker"].wait(answer["id"])
    assert job.status == "done", job.error
    status = client.get(answer["url"]).json
    return status["meta"]


def test_more_like_a_library_clip_follows_its_genre_tempo_key_and_length(ref_client, composed_library):
    genre, stem = REFERENCE
    path = composed_library / genre / f"{stem}.au"
    truth = json.loads(path.with_suffix(".json").read_text())
    r = upload(ref_client, path, path.name)
    assert r.status_code == 202, r.json
    assert r.headers["Location"] == r.json["url"] == f"/api/tracks/{r.json['id']}"
    assert r.json["status"] in ("queued", "running", "done") and r.json["transfer"] is False
    heard, made = r.json["heard"], r.json["request"]
    assert heard["filename"] == path.name and heard["length"] == pytest.approx(8.0, abs=0.01)
    assert heard["genre"]["name"] == genre and heard["genre_reason"] is None
    assert [t["genre"] for t in heard["genre"]["top3"]][0] == genre and len(heard["genre"]["top3"]) == 3
    assert heard["tempo"] == pytest.approx(truth["tempo"], rel=0.03)
    assert heard["key"]["key"] == truth["key"]
    assert heard["from_clip"] == ["genre", "tempo", "key", "length"] and heard["from_form"] == []
    options = ref_client.get("/api/options").json
    assert made["mode"] == options["default_mode"]
    assert (made["genre"], made["tempo"], made["key"], made["length"]) == (genre, heard["tempo"], truth["key"], 8.0)
    meta = finished(ref_client, r.json)
    assert (meta["genre"], meta["length"], meta["tempo"]) == (genre, 8.0, heard["tempo"])
    assert meta["key"]["requested"] == truth["key"]
    assert meta["measured_tempo"] == pytest.approx(truth["tempo"], rel=0.06)
    # the track remembers the clip it was made like
    assert meta["reference"]["length"] == 8.0 and meta["reference"]["tempo"] == heard["tempo"]
    assert meta["reference"]["genre"] == genre and "genre" in meta["reference"]["from_clip"]


def test_form_fields_override_what_is_heard(ref_client, composed_library):
    genre, stem = REFERENCE
    path = composed_library / genre / f"{stem}.au"
    r = upload(ref_client, path, path.name, genre="reggae", length="5", tempo="90", mode="compose",
               seed="4", key="", colour="blue")
    assert r.status_code == 202, r.json
    heard, made = r.json["heard"], r.json["request"]
    assert heard["genre"]["name"] == genre            # heard, and then overridden
    assert heard["from_clip"] == ["key"]              # a blank field leaves what was heard
    assert sorted(heard["from_form"]) == ["genre", "length", "mode", "seed", "tempo"]
    assert (made["genre"], made["length"], made["tempo"], made["mode"], made["seed"]) == ("reggae", 5, 90, "compose", 4)
    assert made["key"] == heard["key"]["key"]
    assert r.json["ignored_fields"] == ["colour"] and r.headers["X-Ignored-Fields"] == "colour"
    meta = finished(ref_client, r.json)
    assert (meta["genre"], meta["length"], meta["tempo"], meta["mode"]) == ("reggae", 5.0, 90, "compose")
    assert meta["key"]["requested"] == heard["key"]["key"]
    assert meta["measured_tempo"] == pytest.approx(90, rel=0.05)


def test_bad_uploads_and_fields_are_refused_naming_the_field(ref_client, composed_library):
    clip = composed_library / REFERENCE[0] / f"{REFERENCE[1]}.au"
    r = upload(ref_client, io.BytesIO(b"hello" * 100), "notes.wav", genre="jazz")
    assert r.status_code == 400 and "audio" in r.json["message"]
    r = upload(ref_client, io.BytesIO(b"\0" * 3_000_000), "big.wav")
    assert r.status_code == 413 and r.json["status"] == "error"
    long = io.BytesIO()
    sf.write(long, np.zeros(8000 * 60 * 11, dtype=np.float32), 8000, format="FLAC")   # 11 min, tiny file
    long.seek(0)
    r = upload(ref_client, long, "long.flac")
    assert r.status_code == 400 and "limit" in r.json["message"]
    r = ref_client.post("/api/tracks/from-reference", data={"genre": "jazz"}, content_type="multipart/form-data")
    assert r.status_code == 400 and r.json["field"] == "file"
    for form, field in (({"tempo": "999"}, "tempo"), ({"length": "301"}, "length"), ({"mode": "polka"}, "mode"),
                        ({"transfer": "true", "mode": "compose"}, "transfer"), ({"transfer": "perhaps"}, "transfer")):
        r = upload(ref_client, clip, clip.name, **form)
        assert r.status_code == 400 and r.json["field"] == field, (form, r.json)


def test_without_a_classifier_the_genre_must_be_given(client):
    """No classifier here (conftest's app: an empty models folder): the clip's tempo, key and length
    are still heard, and the genre is the form's or a 400 that says why it is needed."""
    clip = click_track(CLICK_BPM, 8) + tone(220, 8)
    r = upload(client, clip)
    assert r.status_code == 400 and r.json["field"] == "genre" and "classifier" in r.json["message"]
    r = upload(client, clip, genre="rock")
    assert r.status_code == 202, r.json
    heard, made = r.json["heard"], r.json["request"]
    assert heard["genre"] is None and "classifier is unavailable" in heard["genre_reason"]
    assert heard["from_form"] == ["genre"] and heard["from_clip"] == ["tempo", "key", "length"]
    assert made["genre"] == "rock" and made["tempo"] == pytest.approx(CLICK_BPM, rel=0.02) and made["length"] == 8
    meta = finished(client, r.json)
    assert (meta["genre"], meta["length"]) == ("rock", 8.0)
    # a transfer needs RAVE, which is not here either
    r = upload(client, clip, genre="rock", transfer="true")
    assert r.status_code == 503 and r.json["field"] == "mode"


@pytest.fixture(scope="module")
def rave_client(library_dir, tmp_path_factory):
    """The app with the shipped RAVE checkpoint (models/rave) and no classifier."""
    from app import create_app
    from melodymaker.settings import Settings
    models = tmp_path_factory.mktemp("rave_models")
    os.symlink(ROOT / "models" / "rave", models / "rave")
    app = create_app(Settings(genres_dir=library_dir, models_dir=models, workers=2,
                              var_dir=tmp_path_factory.mktemp("rave") / "var"))
    yield app.test_client()
    app.extensions["melodymaker"].close()


def test_transfer_resynthesises_the_clip_through_rave(rave_client):
    clip = click_track(CLICK_BPM, 12) + tone(220, 12)
    r = upload(rave_client, clip, "groove.wav", genre="jazz", transfer="true")
    assert r.status_code == 202, r.json
    made = r.json["request"]
    assert r.json["transfer"] is True and made["mode"] == "rave"   # transfer alone means RAVE
    assert r.json["heard"]["from_form"] == ["genre"] and made["length"] == 12.0
    meta = finished(rave_client, r.json)
    assert meta["transfer"] is True and meta["mode"] == "rave" and meta["length"] == 12.0
    assert meta["reference"]["filename"] == "groove.wav" and meta["reference"]["length"] == 12.0
    assert meta["measured_tempo"] == pytest.approx(CLICK_BPM, rel=0.04)   # the clip's own beat
    assert meta["loudness_lufs"] > -30
    y, sr = sf.read(io.BytesIO(rave_client.get(f"{r.json['url']}/audio.wav").data))
    assert sr == SR and len(y) == 12 * SR
    # it follows its clip: there is no more of the clip to extend it with
    r2 = rave_client.post(f"{r.json['url']}/extend", json={"seconds": 5})
    assert r2.status_code == 409 and "transfer" in r2.json["message"]
    assert abs(np.corrcoef(y[: len(clip)], clip)[0, 1]) < 0.9                # remade, not copied
    store = rave_client.application.extensions["melodymaker"].settings.store_dir
    assert not list(store.glob(".tmp-reference-*"))                       # the job's clip is gone

    # the form's tempo and key move the clip first; the length follows the tempo
    r = upload(rave_client, clip, "groove.wav", genre="jazz", transfer="1", tempo="120", key="E minor")
    assert r.status_code == 202, r.json
    assert r.json["request"]["length"] == pytest.approx(12 * 100 / 120, abs=0.05)
    meta = finished(rave_client, r.json)
    assert meta["measured_tempo"] == pytest.approx(120, rel=0.04)
    assert meta["reference"]["tempo_conform"]["rate"] == pytest.approx(1.2, abs=0.01)
    assert meta["reference"]["key_shift"]["semitones"] != 0
    r = upload(rave_client, clip, "groove.wav", genre="jazz", transfer="true", length="30")
    assert r.status_code == 400 and r.json["field"] == "length" and "12.00 s" in r.json["message"]


def test_a_long_clip_encodes_in_chunks_as_in_one_pass(rave_client, monkeypatch):
    from melodymaker import reference
    monkeypatch.setattr(reference, "ENCODE_CHUNK", 96)                    # short chunks, a short clip
    model = rave_client.application.extensions["melodymaker"].engines["rave"].rave.model_for("jazz")[1]
    seconds = 2.5 * reference.ENCODE_CHUNK * model.ratio / model.sr      # three chunks
    y = click_track(CLICK_BPM, seconds, model.sr) + tone(220, seconds, model.sr)
    chunked = reference.encode(model, y)
    assert chunked.shape == (model.latent_size, int(np.ceil(len(y) / model.ratio)))
    assert np.allclose(chunked, model.encode(y), atol=1e-4)


def test_a_transfer_runs_on_a_queue_worker_from_the_shared_store(library_dir, tmp_path):
    """Over RQ the web tier loads no engine: it saves the clip in the store folder every process
    mounts and enqueues; a worker (here a burst worker in this process) transfers it from there."""
    pytest.importorskip("rq", reason="rq is not installed (pip install -r requirements.txt)")
    import dataclasses

    from redis_server import RedisServer
    from test_redis_queue import publish_worker, run_burst_worker

    from app import create_app
    from melodymaker.settings import Settings
    os.symlink(ROOT / "models" / "rave", tmp_path / "rave")
    server = RedisServer(tmp_path / "redis").start()
    try:
        settings = Settings(genres_dir=library_dir, models_dir=tmp_path, var_dir=tmp_path / "var",
                            store_path=tmp_path / "shared", workers=1)
        app = create_app(dataclasses.replace(settings, queue=server.url))
        try:
            client = app.test_client()
            publish_worker(server.url, "w1", ["cpu"], {"rave": None})
            clip = click_track(CLICK_BPM, 6) + tone(220, 6)
            r = upload(client, clip, "groove.wav", genre="rock", transfer="true")
            assert r.status_code == 202, r.json
            assert len(list((tmp_path / "shared").glob(".tmp-reference-*"))) == 1
            run_burst_worker(settings, server.url, modes=["rave"])
            status = client.get(r.json["url"]).json
            assert status["status"] == "done", status
            assert status["meta"]["transfer"] is True and status["meta"]["length"] == 6.0
            assert not list((tmp_path / "shared").glob(".tmp-reference-*"))
        finally:
            app.extensions["melodymaker"].close()
    finally:
        server.stop()

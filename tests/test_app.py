"""The HTTP contract through Flask's test client: generation, jobs, library, options, errors."""
import io
import time

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

ORIGINAL_JSON = {"genre": "Rock", "instruments": "Piano", "tempo": "Medium (90-120 BPM)",
                 "length": "Demo (30 seconds)", "generate_mode": 0}


def test_generate_with_the_original_pages_exact_json_returns_playable_audio(client):
    r = client.post("/generate", json=ORIGINAL_JSON)
    assert r.status_code == 200, r.json
    assert r.mimetype == "audio/wav"
    assert "attachment" in r.headers["Content-Disposition"] and ".wav" in r.headers["Content-Disposition"]
    y, sr = sf.read(io.BytesIO(r.data))
    assert sr == 22050 and len(y) == 30 * 22050
    assert np.sqrt(np.mean(y ** 2)) > 0.01                     # not silence
    assert 90 <= float(r.headers["X-Tempo"]) <= 120
    track_id = r.headers["X-Track-Id"]
    again = client.get(f"/api/tracks/{track_id}/audio.wav")
    assert again.status_code == 200 and again.data == r.data


@pytest.mark.parametrize("fmt,mime", [("mp3", "audio/mpeg"), ("midi", "audio/midi")])
def test_generate_other_formats(client, fmt, mime):
    r = client.post("/generate", json={"genre": "jazz", "tempo": 96, "length": 8, "seed": 7, "format": fmt})
    assert r.status_code == 200 and r.mimetype == mime
    if fmt == "mp3":
        y, sr = sf.read(io.BytesIO(r.data))
        assert abs(len(y) / sr - 8) < 0.1
    else:
        assert pretty_midi.PrettyMIDI(io.BytesIO(r.data)).instruments


def test_stored_track_serves_all_three_encodings(client):
    r = client.post("/generate", json={"genre": "rock", "length": 5, "seed": 1})
    tid = r.headers["X-Track-Id"]
    for ext, mime in (("wav", "audio/wav"), ("mp3", "audio/mpeg"), ("mid", "audio/midi")):
        f = client.get(f"/api/tracks/{tid}/audio.{ext}?download=1")
        assert f.status_code == 200 and f.mimetype == mime
        assert f"melodymaker-rock-dataset-1.{ext}" in f.headers["Content-Disposition"]
    # an unknown format is a 400 naming the field and the formats, never a silent fallback
    r = client.get(f"/api/tracks/{tid}/audio.ogg")
    assert r.status_code == 400 and r.json["field"] == "format"
    assert all(name in r.json["message"] for name in ("wav", "mp3", "midi"))
    assert client.get(f"/api/tracks/{'0' * 32}/audio.wav").status_code == 404


@pytest.mark.parametrize("body,field", [
    ({"genre": "polka"}, "genre"), ({"genre": "rock", "tempo": 999}, "tempo"),
    ({"genre": "rock", "length": 0}, "length"), ({"genre": "rock", "mode": "x"}, "mode"),
    ({"genre": "rock", "format": "flac"}, "format")])
def test_bad_requests_are_400_json_naming_the_field(client, body, field):
    r = client.post("/generate", json=body)
    assert r.status_code == 400
    assert r.json["status"] == "error" and r.json["field"] == field and r.json["message"]


def test_non_json_body_is_400(client):
    r = client.post("/generate", data="genre=", content_type="text/plain")
    assert r.status_code == 400 and r.json["status"] == "error"
    r = client.post("/generate", data="[1,2]", content_type="application/json")
    assert r.status_code == 400


def test_unavailable_mode_is_503_with_reason(client):
    r = client.post("/generate", json={"genre": "rock", "generate_mode": 1})
    assert r.status_code == 503
    assert r.json["field"] == "mode" and "rave" in r.json["message"]


def test_missing_genre_in_library_is_503_not_500(client):
    r = client.post("/generate", json={"genre": "metal", "length": 3})
    assert r.status_code == 503 and "metal" in r.json["message"]


def test_job_api_reports_progress_then_metadata(client):
    r = client.post("/api/tracks", json={"genre": "jazz", "tempo": 120, "length": 10, "seed": 9})
    assert r.status_code == 202
    tid = r.json["id"]
    assert r.headers["Location"] == f"/api/tracks/{tid}"
    seen, deadline = [], time.time() + 60
    while time.time() < deadline:
        s = client.get(f"/api/tracks/{tid}").json
        seen.append(s["progress"])
        assert 0 <= s["progress"] <= 1
        if s["status"] in ("done", "error"):
            break
        time.sleep(0.05)
    assert s["status"] == "done", s
    assert seen == sorted(seen)
    assert s["meta"]["genre"] == "jazz" and s["meta"]["seed"] == 9
    assert s["files"]["mp3"] == f"/api/tracks/{tid}/audio.mp3"
    assert any(t["id"] == tid for t in client.get("/api/tracks").json["tracks"])


def test_unknown_track_is_404(client):
    assert client.get("/api/tracks/" + "0" * 32).status_code == 404
    assert client.get("/api/tracks/../../etc/passwd").status_code == 404
    assert client.get("/api/tracks/zzz/audio.wav").status_code == 404


def test_options_describe_modes_and_vocabulary(client):
    o = client.get("/api/options").json
    assert [g["name"] for g in o["genres"]][:2] == ["blues", "classical"]
    assert o["upload"] == {"max_bytes": 20 * 2 ** 20, "max_seconds": 600}
    modes = {m["name"]: m for m in o["modes"]}
    assert modes["dataset"]["available"] and not modes["rave"]["available"] and modes["rave"]["reason"]
    assert {"piano", "drums", "saxophone"} <= {i["name"] for i in o["instruments"]}
    assert o["tempo"]["min"] == 40 and o["tempo"]["max"] == 240
    # the capability table says what each mode approximates and what it ignores, unavailable or not
    assert modes["dataset"]["approximated"] == ["key", "loop", "midi"]
    assert modes["dataset"]["ignored"] == ["instruments", "meter"]
    assert set(modes["ddim"]["approximated"]) == {"tempo", "key", "loop", "midi"}
    assert modes["compose"]["approximated"] == modes["compose"]["ignored"] == []


def test_health_lists_skipped_files(client):
    h = client.get("/api/health").json
    assert h["status"] == "ok" and h["library"]["clips"] == 5
    skipped = {s["path"] for s in h["library"]["skipped"]}
    assert {"blues/broken.au", "blues/empty.wav"} <= skipped


def test_library_lists_and_streams_browser_playable_wav(client):
    lib = client.get("/api/library?genre=rock").json
    assert lib["count"] == 2
    url = lib["clips"][0]["url"]
    r = client.get(url)
    assert r.status_code == 200 and r.mimetype == "audio/wav"
    y, sr = sf.read(io.BytesIO(r.data))
    assert sr == 22050 and len(y) > 0
    assert client.get("/api/library?genre=polka").status_code == 400


@pytest.mark.parametrize("path", [
    "/api/library/..%2f..%2fetc/passwd", "/api/library/rock/..%2f..%2f..%2fetc%2fpasswd",
    "/api/library/rock/../../app.py", "/api/library/..%2fmodels/x", "/api/library/rock/%2e%2e%2fapp.py",
    "/api/library/rock/rock.00000.au%00.txt", "/app.py", "/melodymaker/options.py", "/requirements.txt",
    "/genres/rock/rock.00000.au", "/var/cache/library.json", "/assets/../app.py", "/.git/config"])
def test_no_file_outside_the_routes_is_reachable(client, path):
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"import" not in r.data and b"root:" not in r.data


def test_page_is_served(client):
    for path in ("/", "/index.html"):
        r = client.get(path)
        assert r.status_code == 200 and b"MelodyMaker" in r.data
    assert client.get("/script.js").status_code == 200
    assert client.get("/styles.css").status_code == 200


def test_openapi_describes_every_route(app, client):
    import re
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    for rule in app.url_map.iter_rules():     # every API route and method the server answers
        if not (rule.rule.startswith("/api/") or rule.rule == "/generate"):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        assert path in spec["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], (method, path)


def test_unknown_route_and_method_are_json(client):
    r = client.get("/nope")
    assert r.status_code == 404 and r.json["status"] == "error"
    r = client.get("/generate")
    assert r.status_code == 405 and r.json["status"] == "error"

"""CORS: browser pages on localhost (the original MelodyMaker page) may call /generate and /api/*;
other origins may not; MELODYMAKER_CORS_ORIGINS replaces the list."""
import pytest

from melodymaker.request import GenerationRequest
from melodymaker.settings import Settings

ORIGINAL_BODY = {"genre": "HipHop", "instruments": "Piano", "tempo": "Fast (130-160 BPM)",
                 "length": "Demo (30 seconds)"}
TRACK_HEADERS = {"X-Track-Id", "X-Genre", "X-Mode", "X-Seed", "X-Tempo", "X-Length", "X-Measured-Tempo",
                 "X-Track-Url", "X-Genre-Fit", "X-Genre-Top3", "X-Key", "X-Ignored-Fields",
                 "Content-Disposition"}


@pytest.fixture()
def settings(settings, request, monkeypatch):
    """conftest's settings; a test parametrized with a MELODYMAKER_CORS_ORIGINS value gets the
    settings Settings.from_env makes from it (same folders)."""
    env = getattr(request, "param", None)
    if env is None:
        return settings
    monkeypatch.setenv("MELODYMAKER_CORS_ORIGINS", env)
    return Settings.from_env(genres_dir=settings.genres_dir, models_dir=settings.models_dir,
                             var_dir=settings.var_dir, workers=settings.workers,
                             max_queue=settings.max_queue)


def preflight(client, origin, path="/generate"):
    return client.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "POST",
                                         "Access-Control-Request-Headers": "Content-Type"})


def listed(value):
    return {v.strip().lower() for v in (value or "").split(",") if v.strip()}


@pytest.mark.parametrize("path", ["/generate", "/api/options", "/api/tracks"])
@pytest.mark.parametrize("origin", ["http://localhost:8091", "http://127.0.0.1:8080", "http://localhost",
                                    "https://127.0.0.1:8443", "http://LocalHost:8000"])
def test_preflight_from_a_localhost_page_is_allowed(client, origin, path):
    r = preflight(client, origin, path)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Origin"] == origin
    assert "content-type" in listed(r.headers["Access-Control-Allow-Headers"])
    assert "post" in listed(r.headers["Access-Control-Allow-Methods"])
    assert "origin" in listed(r.headers.get("Vary"))           # caches must key on the Origin


@pytest.mark.parametrize("origin", [
    "http://evil.example", "http://localhost.evil.example", "https://127.0.0.1.nip.io",
    "http://localhost:8091.evil.example", "http://127.0.0.1:80@evil.example", "http://localhost:80x",
    "http://127.0.0.10", "http://0.0.0.0:8090", "ftp://localhost", "null"])
def test_other_origins_get_no_allow_origin(client, origin):
    r = preflight(client, origin)
    assert "Access-Control-Allow-Origin" not in r.headers
    assert "Access-Control-Allow-Headers" not in r.headers
    r = client.get("/api/options", headers={"Origin": origin})
    assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers


def test_a_cross_origin_generate_exposes_the_track_headers(client):
    r = client.post("/generate", json={"genre": "rock", "length": 3, "seed": 1},
                    headers={"Origin": "http://localhost:8091"})
    assert r.status_code == 200 and r.mimetype == "audio/wav"
    assert r.headers["Access-Control-Allow-Origin"] == "http://localhost:8091"
    exposed = listed(r.headers["Access-Control-Expose-Headers"])
    assert exposed == {h.lower() for h in TRACK_HEADERS}
    sent = {k.lower() for k in r.headers.keys() if k.startswith("X-")} | {"content-disposition"}
    assert {"x-track-id", "x-genre", "x-seed", "x-tempo"} <= sent
    assert sent <= exposed                       # every track header this answer has is readable


def test_errors_carry_cors_headers_so_the_page_can_read_them(client):
    r = client.post("/generate", json={**ORIGINAL_BODY, "genre": None},
                    headers={"Origin": "http://127.0.0.1:8000"})
    assert r.status_code == 400 and r.json["field"] == "genre"
    assert r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"
    r = client.get("/api/tracks/" + "0" * 32, headers={"Origin": "http://127.0.0.1:8000"})
    assert r.status_code == 404 and r.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:8000"


def test_the_original_pages_body_parses_with_null_categories():
    req = GenerationRequest.parse(ORIGINAL_BODY)
    assert req.genre == "hiphop" and req.instruments == ("piano",) and 130 <= req.tempo <= 160
    assert req.length == 30 and req.mode == "dataset"
    req = GenerationRequest.parse({**ORIGINAL_BODY, "tempo": None, "length": None})
    assert req.tempo is None and req.length == 30                  # the genre's tempo, the default length
    assert GenerationRequest.parse({**ORIGINAL_BODY, "instruments": None}).instruments == ()


def test_requests_without_an_origin_and_other_paths_get_no_cors_headers(client):
    r = client.get("/api/options")                                  # curl, scripts: not CORS
    assert not [k for k in r.headers.keys() if k.startswith("Access-Control-")]
    for path in ("/", "/index.html", "/openapi.json"):              # only /generate and /api/*
        r = client.get(path, headers={"Origin": "http://localhost:8091"})
        assert r.status_code == 200 and "Access-Control-Allow-Origin" not in r.headers


def test_a_blank_environment_keeps_the_localhost_default(monkeypatch):
    default = Settings().cors_origins
    assert default == (r"^https?://(localhost|127\.0\.0\.1)(:\d+)?$",)
    for blank in ("", " ", " , "):
        monkeypatch.setenv("MELODYMAKER_CORS_ORIGINS", blank)
        assert Settings.from_env().cors_origins == default


@pytest.mark.parametrize("settings", ["null"], indirect=True)
def test_null_admits_a_page_opened_from_disk_and_replaces_the_default(client, settings):
    assert settings.cors_origins == ("null",)
    r = preflight(client, "null")
    assert r.headers["Access-Control-Allow-Origin"] == "null"
    assert "Access-Control-Allow-Origin" not in preflight(client, "http://localhost:8091").headers


@pytest.mark.parametrize("settings", ["*"], indirect=True)
def test_star_admits_any_origin(client):
    for origin in ("http://evil.example", "null", "http://localhost:8091"):
        r = preflight(client, origin, "/api/options")
        assert r.headers["Access-Control-Allow-Origin"] == "*"
        assert "content-type" in listed(r.headers["Access-Control-Allow-Headers"])
    assert "Access-Control-Allow-Origin" not in client.get("/", headers={"Origin": "http://evil.example"}).headers


@pytest.mark.parametrize("settings", [r" http://Example.test:8000 , https://[a-z]+\.example\.org,, "],
                         indirect=True)
def test_exact_origins_and_regexes_matched_whole(client, settings):
    assert settings.cors_origins == ("http://Example.test:8000", r"https://[a-z]+\.example\.org")
    for origin in ("http://example.test:8000", "https://app.example.org", "HTTPS://App.Example.org"):
        assert preflight(client, origin).headers.get("Access-Control-Allow-Origin") == origin
    for origin in ("http://example.test:8001", "http://example.test:8000.evil.example",
                   "https://app.example.org.evil.example", "https://app.example.organ",
                   "http://localhost:8091"):
        assert "Access-Control-Allow-Origin" not in preflight(client, origin).headers, origin

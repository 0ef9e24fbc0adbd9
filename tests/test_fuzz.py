"""Contract fuzzing: schemathesis generates requests from the app's own /openapi.json and checks
each answer against it (no 5xx, a documented status code, a documented content type, a body that
fits the documented schema). Runs through the Flask WSGI app, seeded and bounded.

To keep the run cheap, fuzzed generation bodies ask for at most LENGTH_CAP seconds of audio and one
candidate: the test (not the app) rewrites a generated `length` above the cap, or a length preset
name, to LENGTH_CAP before sending. Every other field is sent as generated.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance, response_schema_conformance, status_code_conformance)

LENGTH_CAP = 5
EXAMPLES = {"positive": 20, "negative": 10}


def no_server_error(ctx, response, case):
    """not_a_server_error, except a 503 the operation documents: "this mode/classifier is not
    available here" is a deliberate, documented answer (the test app has no classifier and no
    metal clips), not a crash. Any 500, or an undocumented 5xx, fails."""
    from melodymaker.openapi import spec
    documented = spec()["paths"][case.operation.path][case.method.lower()]["responses"]
    if response.status_code == 503 and "503" in documented:
        return None
    return not_a_server_error(ctx, response, case)


CHECKS = [no_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]


@pytest.fixture()
def fuzz_app(library_dir, tmp_path):
    from app import create_app
    from melodymaker.settings import Settings
    app = create_app(Settings(genres_dir=library_dir, models_dir=tmp_path / "models",
                              var_dir=tmp_path / "var", workers=2, max_queue=8,
                              max_upload_bytes=2 * 1024 * 1024))
    app.config["TESTING"] = True
    yield app
    app.extensions["melodymaker"].close()


def _cases() -> list[tuple[str, str, str]]:
    """(method, path, mode): positive for every operation, negative where there is input to break."""
    from melodymaker.openapi import spec
    out = []
    for path, item in spec()["paths"].items():
        for method, op in item.items():
            out.append((method, path, "positive"))
            constrained = [q for q in op.get("parameters", []) if q["schema"] != {"type": "string"}]
            if constrained or op.get("requestBody"):
                out.append((method, path, "negative"))
    return out


def _cheap(case) -> None:
    """Generation bodies: length capped (numbers above the cap and preset names become the cap)."""
    body = case.body
    if case.path in ("/generate", "/api/tracks") and case.method.upper() == "POST" and isinstance(body, dict):
        length = body.get("length")
        if isinstance(length, str) or (isinstance(length, (int, float)) and not isinstance(length, bool)
                                       and length > LENGTH_CAP):
            body["length"] = LENGTH_CAP


# schemathesis' own pytest plugin (schema.parametrize) does not run under pytest 9 (it sets
# Function._nodeid), so each operation is a pytest case driving the operation's Hypothesis strategy.
@pytest.mark.parametrize("method,path,mode", _cases())
def test_api_contract(fuzz_app, method, path, mode):
    from hypothesis import given
    from schemathesis.generation import GenerationMode
    schema = schemathesis.openapi.from_wsgi("/openapi.json", fuzz_app)
    operation = schema[path][method.upper()]
    strategy = operation.as_strategy(generation_mode=GenerationMode(mode))

    @given(case=strategy)
    @settings(max_examples=EXAMPLES[mode], derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        _cheap(case)
        case.call_and_validate(checks=CHECKS)

    run()


@pytest.mark.parametrize("path", ["/generate", "/api/tracks"])
def test_oversized_generation_body_is_a_documented_413(fuzz_app, path):
    """Bodies over MAX_CONTENT_LENGTH are refused with 413 on every route, so the spec says so."""
    from melodymaker.openapi import spec
    big = b'{"genre": "rock", "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    r = fuzz_app.test_client().post(path, data=big, content_type="application/json")
    assert r.status_code == 413 and r.json["status"] == "error"
    assert "413" in spec()["paths"][path]["post"]["responses"]

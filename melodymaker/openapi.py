"""The machine-readable HTTP contract (OpenAPI 3.0), built from the vocabulary in options."""
from __future__ import annotations

from . import __version__, engines, formats, keys
from . import options as opt

ERROR = {"$ref": "#/components/schemas/Error"}
IGNORED_HEADER = {"description": "the request's fields this server does not know, comma-separated, "
                                 "percent-encoded; absent when there were none",
                  "schema": {"type": "string"}}
TRACK_HEADERS = {
    "X-Track-Id": {"description": "the track's id (GET /api/tracks/{id})", "schema": {"type": "string"}},
    "X-Key": {"description": "the key asked for and the key estimated from the audio: "
                             "'requested=A minor; estimated=A minor' (requested=auto when none was)",
              "schema": {"type": "string"}},
    "X-Ignored-Fields": IGNORED_HEADER,
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR}}}


def _too_large(description: str) -> dict:
    """413: Flask's JSON error, or, for an announced body far over the limit, the server's own
    plain-text refusal sent before the body is read (see app.main)."""
    return {"description": description, "content": {"application/json": {"schema": ERROR},
                                                    "text/plain": {"schema": {"type": "string"}}}}


def _json(description: str, schema: dict | None = None) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _audio(description: str) -> dict:
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {"description": description,
            "content": {f.mime: binary for f in formats.FORMATS.values()}}


def spec() -> dict:
    track_id = {"name": "track_id", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
    generation = {
        "type": "object",
        "required": ["genre"],
        "properties": {
            "genre": {"type": "string", "description": "case-insensitive",
                      "enum": list(opt.GENRES) + [opt.GENRE_LABELS[g] for g in opt.GENRES]},
            "instruments": {"oneOf": [
                {"type": "array", "maxItems": 8, "items": {"type": "string", "enum": list(opt.INSTRUMENTS)}},
                {"type": "string", "description": "one name, or names separated by commas"}]},
            "tempo": {"oneOf": [
                {"type": "number", "minimum": opt.TEMPO_MIN, "maximum": opt.TEMPO_MAX},
                {"type": "string", "enum": [p.label for p in opt.TEMPO_PRESETS]}]},
            "length": {"oneOf": [
                {"type": "number", "minimum": opt.LENGTH_MIN, "maximum": opt.LENGTH_MAX},
                {"type": "string", "enum": list(opt.LENGTH_PRESETS)}]},
            "mode": {"type": "string", "enum": list(engines.MODES),
                     "description": "; ".join(f"{m.name}: {m.description}" for m in engines.MODES.values())},
            "generate_mode": {"type": "integer", "enum": sorted(engines.MODE_NUMBERS),
                              "description": ", ".join(f"{n} = {m}" for n, m in sorted(engines.MODE_NUMBERS.items()))},
            "seed": {"type": "integer", "minimum": 0, "maximum": opt.SEED_MAX},
            "format": {"type": "string", "description": "; ".join(f"{f.name}: {f.description}" for f in formats.FORMATS.values()),
                       "enum": sorted({a for f in formats.FORMATS.values() for a in (f.name, f.extension, *f.aliases)})},
            "candidates": {"type": "integer", "minimum": opt.CANDIDATES_MIN, "maximum": opt.CANDIDATES_MAX,
                           "description": "make this many variations (seeds: the request's, then a fixed "
                                          "sequence from it), side by side where the worker pool allows; "
                                          "the one the genre classifier fits best is returned, and every one "
                                          "is kept as a track of its own: meta.group {id, chosen, tracks: "
                                          "[{id, seed, genre_fit}]}. Needs the classifier"},
            "key": {"type": "string", "default": opt.KEY_AUTO, "enum": [opt.KEY_AUTO, *opt.KEYS],
                    "description": "a tonic and a mode, or auto (the mode's own choice). Also accepted: any "
                                   "case, sharps or flats either way ('Gb major' = 'F# major'), "
                                   "'Am', 'B-flat minor'. Modes without capabilities.key pitch-shift "
                                   f"their audio (at most {keys.MAX_SHIFT} semitones) onto the key's scale"},
            "meter": {"type": "string", "default": opt.METER_DEFAULT, "enum": list(opt.METERS),
                      "description": "the time signature. The tempo counts "
                                     + "; ".join(f"{m.beat}s in {m.name}" for m in opt.METERS.values())
                                     + ". compose writes it (a genre without a convincing one refuses "
                                       "it: /api/options' meter.meters[].compose_genres); modes "
                                       "without capabilities.meter ignore it and say so in the track's "
                                       "metadata (meter.applied)"},
            "loop": {"oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["true", "false", "1", "0"]}],
                     "default": False,
                     "description": "a seamless loop: the length rounded to the nearest whole number of "
                                    "bars (at least 1) at the tempo the request resolves to, no fades, "
                                    "the end flowing into the start (compose writes its last bar into "
                                    "its first; modes without capabilities.loop crossfade their tail "
                                    f"into their head over {opt.LOOP_CROSSFADE} s). The track's metadata "
                                    "says loop: {start: 0, end: N samples, bars: B}; the WAV carries "
                                    "them in a smpl chunk; an MP3 cannot loop gaplessly"},
            "quality": {"type": "string", "default": opt.QUALITY_DEFAULT, "enum": list(opt.QUALITIES),
                        "description": "; ".join(f"{q.name}: {q.description}" for q in opt.QUALITIES.values())
                                       + ". The WAV and MP3 (and a composed track's stems) have the "
                                         "track's rate and channels; the MIDI is the same either way. "
                                         "The track's metadata says which (quality: {name, sample_rate, "
                                         "channels, stereo: 'true stereo' or 'upsampled, centred'}), "
                                         "/api/options' quality.studio says it per mode, and an "
                                         "extension keeps its parent's quality. The genre fit and similar "
                                         f"tracks hear every track as {opt.SAMPLE_RATE} Hz mono"},
        },
        "additionalProperties": True,
        "description": "Fields not listed here are accepted and ignored; the track's metadata "
                       "(ignored_fields) and the X-Ignored-Fields header name them.",
    }
    body = {"required": True, "content": {"application/json": {"schema": generation}}}
    common = {"400": _error("a field is invalid; `field` names it"),
              "503": _error("the mode is unavailable here; the message says why"),
              "413": _too_large("the body is over the upload limit"),
              "429": _error("too many generations queued; see Retry-After")}
    return {
        "openapi": "3.0.3",
        "info": {"title": "MelodyMaker", "version": __version__,
                 "description": "Generate genre music, browse the library, classify audio."},
        "paths": {
            "/generate": {"post": {
                "summary": "Generate a track and answer with its bytes (the original contract)",
                "requestBody": body,
                "responses": {"200": {**_audio("the track in the requested format; X-Track-Id and "
                                               "other X- headers describe it"), "headers": TRACK_HEADERS},
                              "409": _error("the generation was cancelled"), **common}}},
            "/api/tracks": {
                "post": {"summary": "Start a generation job", "requestBody": body,
                         "responses": {"202": {**_json("the job, queued", {"$ref": "#/components/schemas/Job"}),
                                               "headers": {"X-Ignored-Fields": IGNORED_HEADER}},
                                       **common}},
                "get": {"summary": "Recent tracks, newest first",
                        "parameters": [{"name": "limit", "in": "query",
                                        "schema": {"type": "integer", "minimum": 1, "maximum": 500}}],
                        "responses": {"200": _json("track metadata list"), "400": _error("bad limit")}}},
            "/api/tracks/{track_id}": {"get": {
                "summary": "A job's status and progress; the track's metadata when done",
                "parameters": [track_id],
                "responses": {"200": _json("status", {"$ref": "#/components/schemas/Job"}),
                              "404": _error("no such track")}}},
            "/api/tracks/{track_id}/cancel": {"post": {
                "summary": "Cancel a queued or running job", "parameters": [track_id],
                "responses": {"200": _json("the job", {"$ref": "#/components/schemas/Job"}),
                              "404": _error("no such job")}}},
            "/api/tracks/{track_id}/audio.{ext}": {"get": {
                "summary": "The track encoded in one of the formats (made on first request)",
                "parameters": [track_id,
                               {"name": "ext", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": [f.extension for f in formats.FORMATS.values()]}},
                               {"name": "download", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _audio("the file"), "400": _error("unknown format; `field` is format"),
                              "404": _error("no such track")}}},
            "/api/tracks/{track_id}/stems.zip": {"get": {
                "summary": "A composed track's stems: one WAV per role the arrangement used (drums, bass, "
                           "harmony, lead), sample-aligned and given the mix's gains (peak scale, "
                           "loudness, fades, the limiter's gain curve) so that they sum to the mix; "
                           "and the score (score.mid)",
                "parameters": [track_id],
                "responses": {"200": {"description": "a ZIP archive", "content": {
                    "application/zip": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": _error("no such track"),
                    "409": _error("the track has no stems: its mode (capabilities.stems false) makes "
                                  "one mixed signal; the message says why")}}},
            "/api/tracks/{track_id}/extend": {"post": {
                "summary": "Continue a finished track by `seconds` more: a new track (the parent is "
                           "unchanged) in the same mode, genre, tempo, key and seed lineage. It is the "
                           "parent up to the seam (its fade-out start; compose: the bar line of its "
                           "final chord), then the continuation, crossfaded over the parent's fade-out "
                           "at the parent's loudness; its metadata names the parent and the seam",
                "parameters": [track_id],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["seconds"], "properties": {
                        "seconds": {"type": "number", "minimum": opt.LENGTH_MIN, "maximum": opt.LENGTH_MAX,
                                    "description": f"seconds to add; the whole track at most "
                                                   f"{opt.LENGTH_MAX} s"}}}}}},
                "responses": {"202": _json("the new track's job; `parent` is the extended track's id",
                                           {"$ref": "#/components/schemas/Job"}),
                              "400": _error("`seconds` is missing, not a number, or past the length limit "
                                            "(the message gives the most this track can take)"),
                              "404": _error("no such track"),
                              "409": _error("the track is still being made, or is a loop"),
                              "429": _error("too many generations queued; see Retry-After"),
                              "503": _error("the track's mode is unavailable here")}}},
            "/api/tracks/{track_id}/keep": {"post": {
                "summary": "Keep a variation (a track of a group made with candidates > 1, meta.group): "
                           "its metadata gets kept: true, and the page lists it in the history",
                "parameters": [track_id],
                "responses": {"200": _json("{id, kept: true, group}"), "404": _error("no such track"),
                              "409": _error("the track is not one of a group of variations")}}},
            "/api/library": {"get": {
                "summary": "Library clips, all or of one genre",
                "parameters": [{"name": "genre", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": _json("clips"), "400": _error("unknown genre")}}},
            "/api/library/{genre}/{name}": {"get": {
                "summary": "One library clip as browser-playable WAV",
                "parameters": [{"name": "genre", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "WAV audio", "content": {
                    "audio/wav": {"schema": {"type": "string", "format": "binary"}}}},
                    "404": _error("no such clip")}}},
            "/api/tracks/{track_id}/similar": {"get": {
                "summary": "Library clips nearest to a generated track (classifier embeddings)",
                "parameters": [track_id, {"name": "k", "in": "query",
                                          "schema": {"type": "integer", "minimum": 1, "maximum": 50}}],
                "responses": {"200": _json("nearest clips, best first"), "400": _error("bad k"),
                              "404": _error("no such track"), "503": _error("no classifier")}}},
            "/api/library/{genre}/{name}/similar": {"get": {
                "summary": "Library clips nearest to a library clip (itself excluded)",
                "parameters": [{"name": "genre", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}},
                               {"name": "k", "in": "query",
                                "schema": {"type": "integer", "minimum": 1, "maximum": 50}}],
                "responses": {"200": _json("nearest clips, best first"), "400": _error("bad k"),
                              "404": _error("no such clip"), "503": _error("no classifier")}}},
            "/api/classify": {"post": {
                "summary": "Genre probabilities of an uploaded audio file",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}}}}}},
                "responses": {"200": _json("probabilities and top 3"),
                              "400": _error("not audio, or too long"), "413": _too_large("upload too large"),
                              "503": _error("no classifier")}}},
            "/api/tracks/from-reference": {"post": {
                "summary": "More like this: hear an uploaded clip (genre by the judges, tempo, key, "
                           "length clamped to 1-300 s) and start a generation with those values, any "
                           "request field given beside the file winning; with transfer=true (RAVE), "
                           "the clip itself through the genre's RAVE (timbre transfer)",
                "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                    "type": "object", "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"},
                                   "transfer": {"type": "string", "enum": ["true", "false", "1", "0"]},
                                   **{k: {"type": "string"} for k in ("genre", "mode", "tempo", "length",
                                                                       "key", "meter", "seed", "instruments",
                                                                       "loop", "candidates", "format")}},
                    "additionalProperties": True}}}},
                "responses": {"202": {**_json("the job, with `request` (what was asked for), `transfer` "
                                              "and `heard` (genre with its probability and top 3 or "
                                              "genre_reason, tempo, key, length; from_clip and from_form "
                                              "say where each field came from)",
                                              {"$ref": "#/components/schemas/Job"}),
                                      "headers": {"X-Ignored-Fields": IGNORED_HEADER}},
                              "400": _error("no file, not audio, longer than 10 minutes, a field is "
                                            "invalid, or no classifier and no genre given; `field` names it"),
                              "413": _too_large("upload too large"),
                              "429": _error("too many generations queued; see Retry-After"),
                              "503": _error("the mode is unavailable here")}}},
            "/api/options": {"get": {"summary": "Genres, instruments, tempo and length ranges, modes",
                                     "responses": {"200": _json("the vocabulary")}}},
            "/api/health": {"get": {"summary": "Version, models, library size and skipped files",
                                    "responses": {"200": _json("health")}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json("OpenAPI")}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["status", "message"], "properties": {
                "status": {"type": "string", "enum": ["error"]}, "message": {"type": "string"},
                "field": {"type": "string", "nullable": True}}},
            "Job": {"type": "object", "required": ["id", "status", "progress"], "properties": {
                "id": {"type": "string"},
                "status": {"type": "string", "enum": ["queued", "running", "done", "error", "cancelled"]},
                "progress": {"type": "number", "minimum": 0, "maximum": 1},
                "message": {"type": "string"}, "error": {"type": "object", "nullable": True},
                "meta": {"type": "object"}, "files": {"type": "object"}, "url": {"type": "string"}}},
        }},
    }

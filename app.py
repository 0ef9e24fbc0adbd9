"""MelodyMaker's web app: routes and HTTP concerns only. `python app.py` serves on 127.0.0.1:8090."""
from __future__ import annotations

import argparse
import logging
import os
import re
import threading
import webbrowser
from urllib.parse import quote

from flask import Flask, Response, jsonify, request, send_file, send_from_directory
from flask_cors import CORS
from werkzeug.exceptions import HTTPException

from melodymaker import formats
from melodymaker import options as opt
from melodymaker.errors import InvalidRequest, MelodyMakerError, QueueUnavailable
from melodymaker.openapi import spec
from melodymaker.request import GenerationRequest
from melodymaker.service import Service
from melodymaker.settings import ROOT, Settings

log = logging.getLogger("melodymaker")


def create_app(settings: Settings | None = None) -> Flask:
    app = Flask(__name__, static_folder=None)
    service = Service(settings or Settings.from_env())
    app.config["MAX_CONTENT_LENGTH"] = service.settings.max_upload_bytes
    app.extensions["melodymaker"] = service
    _allow_cors(app, service.settings.cors_origins)

    # -- the page ---------------------------------------------------------------------------
    @app.get("/")
    @app.get("/<any(index.html, script.js, styles.css):name>")
    def page(name: str = "index.html"):
        return send_from_directory(ROOT, name, max_age=0)

    @app.get("/assets/<path:name>")
    def assets(name: str):
        return send_from_directory(ROOT / "assets", name)

    # -- generation ---------------------------------------------------------------------------
    @app.post("/generate")
    def generate():
        req = GenerationRequest.parse(_body())
        job = service.wait(service.submit(req).id)
        if job.status != "done":
            raise _job_error(job)
        path, fmt, meta = service.track_file(job.id, req.format)
        response = send_file(path, mimetype=fmt.mime, as_attachment=True,
                             download_name=formats.download_name(meta, fmt), max_age=0)
        response.headers.update(_track_headers(meta))
        return response

    @app.post("/api/tracks")
    def start_track():
        req = GenerationRequest.parse(_body())
        job = service.submit(req)
        body = {**job.public(), "url": f"/api/tracks/{job.id}", "ignored_fields": list(req.ignored_fields)}
        headers = {"Location": f"/api/tracks/{job.id}", **_ignored_header(req.ignored_fields)}
        return jsonify(body), 202, headers

    @app.get("/api/tracks")
    def list_tracks():
        limit = _int_arg("limit", 50, 1, 500)
        return jsonify({"tracks": service.list_tracks(limit)})

    @app.get("/api/tracks/<track_id>")
    def track_status(track_id: str):
        return jsonify(service.track_status(track_id))

    @app.post("/api/tracks/<track_id>/cancel")
    def cancel_track(track_id: str):
        return jsonify(service.cancel(track_id).public())

    @app.post("/api/tracks/<track_id>/extend")
    def extend_track(track_id: str):
        body = _body()
        if "seconds" not in body:
            raise InvalidRequest("send {\"seconds\": S}: how many seconds to add (1-300, the whole "
                                 f"track at most {opt.LENGTH_MAX} s)", field="seconds")
        job = service.extend(track_id, body["seconds"])
        return jsonify({**job.public(), "url": f"/api/tracks/{job.id}", "parent": track_id}), 202, \
            {"Location": f"/api/tracks/{job.id}"}

    @app.post("/api/tracks/<track_id>/keep")
    def keep_track(track_id: str):
        meta = service.keep(track_id)
        return jsonify({"id": track_id, "kept": True, "group": meta["group"]})

    @app.get("/api/tracks/<track_id>/audio.<ext>")
    def track_audio(track_id: str, ext: str):
        path, fmt, meta = service.track_file(track_id, ext)  # an unknown format is a 400
        download = request.args.get("download") in ("1", "true")
        return send_file(path, mimetype=fmt.mime, as_attachment=download,
                         download_name=formats.download_name(meta, fmt), max_age=3600)

    @app.get("/api/tracks/<track_id>/stems.zip")
    def track_stems(track_id: str):
        path, meta = service.track_stems(track_id)
        return send_file(path, mimetype="application/zip", as_attachment=True, max_age=0,
                         download_name=f"melodymaker-{meta['genre']}-{meta['mode']}-{meta['seed']}-stems.zip")

    @app.get("/api/tracks/<track_id>/similar")
    def track_similar(track_id: str):
        k = _int_arg("k", 5, 1, 50)
        return jsonify({"id": track_id, "similar": service.similar_to_track(track_id, k)})

    @app.post("/api/classify")
    def classify():
        upload = request.files.get("file")
        if upload is None:
            raise InvalidRequest("send the audio as a multipart form field named 'file'", field="file")
        y = service.decode_upload(upload.stream)
        result = service.classify(y, opt.SAMPLE_RATE)
        return jsonify({"filename": upload.filename, "duration": round(len(y) / opt.SAMPLE_RATE, 3),
                        **result})

    @app.post("/api/tracks/from-reference")
    def track_from_reference():
        upload = request.files.get("file")
        if upload is None:
            raise InvalidRequest("send the reference clip as a multipart form field named 'file'; "
                                 "any request field (genre, tempo, length, mode, ...) beside it "
                                 "overrides what is heard in the clip", field="file")
        y = service.decode_upload(upload.stream)
        job, answer = service.from_reference(y, opt.SAMPLE_RATE, request.form.to_dict(), upload.filename)
        ignored = answer["request"]["ignored_fields"]
        body = {**job.public(), "url": f"/api/tracks/{job.id}", "ignored_fields": ignored, **answer}
        return jsonify(body), 202, {"Location": f"/api/tracks/{job.id}", **_ignored_header(ignored)}

    # -- library, options, health ---------------------------------------------------------------
    @app.get("/api/library")
    def library():
        genre = request.args.get("genre")
        if genre is not None and genre.lower() not in opt.GENRES:
            raise InvalidRequest(f"unknown genre {genre!r}; one of: {', '.join(opt.GENRES)}", field="genre")
        clips = service.library.genre_clips(genre) if genre else service.library.all_clips()
        return jsonify({"count": len(clips), "per_genre": service.library.counts(),
                        "clips": [c.public() for c in clips]})

    @app.get("/api/library/<genre>/<name>")
    def library_clip(genre: str, name: str):
        clip = service.library.find(genre, name)
        data = service.library_wav(clip)
        return Response(data, mimetype="audio/wav", headers={"Cache-Control": "max-age=3600"})

    @app.get("/api/library/<genre>/<name>/similar")
    def library_similar(genre: str, name: str):
        clip = service.library.find(genre, name)
        return jsonify({"clip": clip.public(), "similar": service.similar_to_clip(clip, _int_arg("k", 5, 1, 50))})

    @app.get("/api/options")
    def options():
        return jsonify(service.options())

    @app.get("/api/health")
    def health():
        return jsonify(service.health())

    @app.get("/openapi.json")
    def openapi():
        return jsonify(spec())

    # -- errors: JSON everywhere ------------------------------------------------------------------
    @app.errorhandler(MelodyMakerError)
    def user_error(e: MelodyMakerError):
        retry = getattr(e, "retry_after", None)  # a full queue (429), an unreachable one (503)
        headers = {"Retry-After": str(retry)} if retry else {}
        return jsonify({"status": "error", "message": e.message, "field": e.field}), e.status, headers

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        return jsonify({"status": "error", "message": e.description, "field": None}), e.code

    @app.errorhandler(Exception)
    def server_error(e: Exception):
        log.exception("unhandled error")
        return jsonify({"status": "error", "message": f"internal error: {type(e).__name__}",
                        "field": None}), 500

    return app


def _body() -> dict:
    """JSON object, or form fields (the original page could post either)."""
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            raise InvalidRequest("the body is not a JSON object", field="body")
        return data
    if request.form:
        return request.form.to_dict()
    data = request.get_json(force=True, silent=True)
    if isinstance(data, dict):
        return data
    raise InvalidRequest("send a JSON object (Content-Type: application/json)", field="body")


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}", field=name) from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}", field=name)
    return value


def _job_error(job) -> MelodyMakerError:
    if not job.finished:  # still queued or running when /generate stopped waiting
        e = MelodyMakerError(f"the generation is still {job.status} after the server's wait; "
                             f"follow it at /api/tracks/{job.id}", field=None)
        e.status = 504
        return e
    if job.status == "cancelled":
        e = MelodyMakerError("the generation was cancelled before it finished")
        e.status = 409
        return e
    err = job.error or {"message": f"generation {job.status}", "field": None, "status": 500}
    e = MelodyMakerError(err["message"], field=err.get("field"))
    e.status = err.get("status", 500)
    return e


def _track_headers(meta: dict) -> dict:
    values = {"X-Track-Id": meta["id"], "X-Genre": meta["genre"], "X-Mode": meta["mode"],
              "X-Seed": meta["seed"], "X-Tempo": meta.get("tempo"), "X-Length": meta["length"],
              "X-Measured-Tempo": meta.get("measured_tempo"),
              "X-Track-Url": f"/api/tracks/{meta['id']}"}
    key = meta.get("key")
    if key:
        values["X-Key"] = f"requested={key['requested']}; estimated={key['estimated'] or 'unknown'}"
    fit = meta.get("genre_fit")
    if fit:
        values["X-Genre-Fit"] = fit["probability"]
        values["X-Genre-Top3"] = ",".join(f"{t['genre']}:{t['probability']}" for t in fit["top3"])
    return {**{k: str(v) for k, v in values.items() if v is not None},
            **_ignored_header(meta.get("ignored_fields") or ())}


def _ignored_header(names) -> dict:
    """X-Ignored-Fields: the request's unknown field names, comma-separated, each percent-encoded
    (a header is Latin-1 text, a JSON key any string); none when every field was understood."""
    if not names:
        return {}
    return {"X-Ignored-Fields": ", ".join(quote(n, safe="") for n in names)}


# -- CORS: pages served from another origin, such as the original MelodyMaker page ------------------
# what such a page may read of a /generate answer: the track headers (_track_headers) and the file name
EXPOSED_HEADERS = ("X-Track-Id", "X-Genre", "X-Mode", "X-Seed", "X-Tempo", "X-Length", "X-Measured-Tempo",
                   "X-Track-Url", "X-Genre-Fit", "X-Genre-Top3", "X-Key", "X-Ignored-Fields",
                   "Content-Disposition")


def _allow_cors(app: Flask, origins) -> None:
    """Let browser pages from `origins` call /generate and /api/*. Each origin is exact (any case),
    a regex (flask-cors would match it at the start only: here it must match the whole origin),
    "null" (a page opened from disk) or "*" (any page, answered with a literal *)."""
    allowed: list = []
    for origin in [origins] if isinstance(origins, str) else origins:
        if origin == "*" or not set("^$*?+|()[]{}\\") & set(origin):
            allowed.append(origin)          # flask-cors compares these literally (or, "*", admits all)
        else:
            allowed.append(re.compile(f"(?:{origin})\\Z", re.IGNORECASE))
    CORS(app, resources={r"/generate": {}, r"/api/.*": {}}, origins=allowed,
         allow_headers=["Content-Type"], expose_headers=list(EXPOSED_HEADERS), max_age=600,
         send_wildcard="*" in allowed, always_send=False)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve MelodyMaker.")
    parser.add_argument("--host", default=os.environ.get("MELODYMAKER_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("MELODYMAKER_PORT", "8090")))
    parser.add_argument("--no-browser", action="store_true",
                        default=bool(os.environ.get("CI") or os.environ.get("MELODYMAKER_NO_BROWSER")))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        app = create_app()
    except (QueueUnavailable, ValueError) as e:  # e.g. MELODYMAKER_QUEUE names a Redis that is down
        raise SystemExit(f"MelodyMaker cannot start: {getattr(e, 'message', e)}") from None
    service = app.extensions["melodymaker"]
    service.share_cores()
    url = f"http://{'localhost' if args.host in ('127.0.0.1', '0.0.0.0') else args.host}:{args.port}/"
    log.info("MelodyMaker serving on %s (library: %d clips)", url, len(service.library))
    # load the classifier, analyse and embed the library in the background
    threading.Thread(target=service.warm_up, daemon=True).start()
    if not args.no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    from waitress import serve
    # waitress buffers a whole body (up to 1 GB by default) before Flask sees it: refuse an
    # announced Content-Length far over the upload limit at once (waitress' own 413); bodies up
    # to twice the limit still reach Flask, which answers its JSON 413
    # POST /generate holds a server thread while its job waits and runs: enough threads for every
    # admitted job plus spare ones, so health and status polls never queue behind generations
    # and a request over capacity gets its 429 at once
    threads = max(8, service.settings.workers + service.settings.max_queue + 4)
    serve(app, host=args.host, port=args.port, threads=threads, ident="MelodyMaker",
          max_request_body_size=2 * service.settings.max_upload_bytes)


if __name__ == "__main__":
    main()

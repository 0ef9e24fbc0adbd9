"""The original MelodyMaker page's request, sent cross-origin by a page of another localhost port,
as the original's README serves it (a static server for the page, the API on its own port)."""
from __future__ import annotations

import http.server
import json
import threading

import pytest

# The original page's exact body; the e2e library gains a hiphop clip for it (conftest's EXTRA_GENRES)
EXTRA_GENRES = ("hiphop",)
ORIGINAL_BODY = {"genre": "HipHop", "instruments": "Piano", "tempo": "Fast (130-160 BPM)",
                 "length": "Demo (30 seconds)"}

PAGE = """<!doctype html><meta charset="utf-8"><title>original page</title>
<audio id="player" controls></audio>
<script>
// what the original page's script does: POST the choices as JSON, play the answer from a blob
window.generate = async (api, body) => {
  window.result = null;
  try {
    const response = await fetch(api + "/generate", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
    const blob = await response.blob();
    const player = document.getElementById("player");
    if (player.src) URL.revokeObjectURL(player.src);
    player.src = URL.createObjectURL(blob);
    await new Promise((ok, fail) => { player.onloadedmetadata = ok; player.onerror = fail; });
    await player.play();
    window.result = {status: response.status, type: blob.type, size: blob.size,
                     trackId: response.headers.get("X-Track-Id"), tempo: response.headers.get("X-Tempo"),
                     disposition: response.headers.get("Content-Disposition")};
  } catch (e) {
    window.result = {error: String(e)};
  }
};
</script>"""


@pytest.fixture(scope="module")
def page_origin():
    """http://127.0.0.1:<another port>/ serving PAGE, the way `python -m http.server` serves the original."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            data = PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("body", [ORIGINAL_BODY, {**ORIGINAL_BODY, "tempo": None, "length": None}],
                         ids=["as-sent", "tempo-and-length-unselected"])
def test_the_original_pages_request_generates_and_plays_cross_origin(session, server, page_origin, body):
    assert page_origin != server                                   # another origin: CORS applies
    page = session.page
    page.goto(page_origin + "/")
    page.evaluate("([api, body]) => { window.generate(api, body); }", [server, body])
    page.wait_for_function("window.result !== null", timeout=120_000)
    result = page.evaluate("window.result")
    assert "error" not in result, (result, session.console_errors)
    assert result["status"] == 200 and result["type"] == "audio/wav" and result["size"] > 1_000_000
    assert result["trackId"] and "attachment" in result["disposition"]   # exposed headers are readable
    if body["tempo"]:
        assert 130 <= float(result["tempo"]) <= 160
    assert abs(page.evaluate("document.getElementById('player').duration") - 30.0) <= 0.1
    page.wait_for_function("document.getElementById('player').currentTime > 0.2", timeout=15_000)
    assert not page.evaluate("document.getElementById('player').paused")
    assert not session.page_errors and not session.console_errors, session.console_errors


def test_a_null_genre_is_a_400_the_page_can_read(session, server, page_origin):
    page = session.page
    page.goto(page_origin + "/")
    answer = page.evaluate("""async ([api, body]) => {
        const r = await fetch(api + "/generate", {method: "POST",
            headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
        return {status: r.status, json: await r.json()};
    }""", [server, {**ORIGINAL_BODY, "genre": None}])
    assert answer["status"] == 400 and answer["json"]["field"] == "genre", json.dumps(answer)

"""The page keeps going from a track: extend it, choose among its variations, make more like a clip."""
from __future__ import annotations

import importlib.util
import io
import re
import subprocess
import sys

import pytest
import soundfile as sf

from .conftest import ROOT, serve, why_no_browser

_reason = why_no_browser()
if _reason:
    pytest.skip(f"browser tests skipped: {_reason}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

from .test_page import AUDIO, LISTEN_URL, assert_clean, fill_request, open_page  # noqa: E402


# -- small helpers (test_page.py's, and this file's own) ----------------------------------------------
def generate(page, **request) -> str:
    """Fill the Create form, generate, and return the id of the track the Listen screen opens."""
    fill_request(page, **request)
    page.click("#generate")
    page.wait_for_url(LISTEN_URL, timeout=40_000)
    page.wait_for_function(f"{AUDIO}.duration > 0", timeout=20_000)
    return current_id(page)


def current_id(page) -> str:
    return LISTEN_URL.search(page.url).group(0).rsplit("/", 1)[1]


def info_row(page, name):
    return page.locator("#track-info div").filter(has=page.locator("dt", has_text=re.compile(rf"^{name}$")))


def unnamed_controls(page, selector):
    """Controls under selector that a screen reader could not name."""
    return page.evaluate("""(sel) => [...document.querySelectorAll(sel)].filter(el =>
        !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
        !el.getAttribute('aria-labelledby') && !el.textContent.trim()).map(el => el.outerHTML)""", selector)


def click_clip(seconds: float = 8.0) -> bytes:
    """A 100 BPM metronome as WAV bytes (tests/conftest.py's click_track, loaded by path)."""
    spec = importlib.util.spec_from_file_location("melodymaker_tests_conftest", ROOT / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    buffer = io.BytesIO()
    sf.write(buffer, module.click_track(module.CLICK_BPM, seconds), module.SR, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


# -- a server with a (tiny) genre classifier, for best-of-N --------------------------------------------
@pytest.fixture(scope="module")
def classifier_server(tmp_path_factory):
    """A real server whose models folder holds a classifier trained in seconds on its own small
    library (four click-track rock clips, four noise-and-tone jazz clips), so candidates > 1 works."""
    spec = importlib.util.spec_from_file_location("melodymaker_tests_conftest", ROOT / "tests" / "conftest.py")
    clips = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(clips)
    base = tmp_path_factory.mktemp("e2e-classifier")
    library = base / "genres"
    for genre in ("rock", "jazz"):
        (library / genre).mkdir(parents=True)
    for i in range(4):
        sf.write(library / "rock" / f"rock.{i:05d}.wav",
                 clips.click_track(100 + 5 * i, 6, pitch=1000 + 200 * i), clips.SR, subtype="PCM_16")
        sf.write(library / "jazz" / f"jazz.{i:05d}.wav",
                 0.5 * clips.noise_bursts(90 + 5 * i, 6, seed=i) + clips.tone(220 + 20 * i, 6), clips.SR,
                 subtype="PCM_16")
    models = base / "models"
    train = subprocess.run(
        [sys.executable, "-m", "melodymaker.classify", "train", "--genres", str(library),
         "--out", str(models / "classifier"), "--seed", "0", "--epochs", "2", "--min-steps", "30",
         "--copies", "1", "--crops-per-clip", "4", "--batch-size", "16", "--n-mels", "32",
         "--channels", "8,16,32", "--embed-dim", "32", "--segment", "2.0", "--test-fraction", "0.5",
         "--test-seconds", "4", "--workers", "1", "--eval-every", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert train.returncode == 0, train.stdout[-2000:] + train.stderr[-2000:]
    yield from serve(base, library, models)


# -- the tests -------------------------------------------------------------------------------------
def shot(page, path):
    """A full-page screenshot from the top."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path, full_page=True)


def test_extend_a_track_from_the_listen_screen(session, server, artifacts):
    """Extend by a few seconds: the new track opens, is the sum long, says what it extends and where
    the seam is, and its parent opens from there; an extension past the limit is explained in place."""
    page = open_page(session, server, "#create")
    parent = generate(page, genre="Rock", length=5, seed=3)
    card = page.locator("#extend-card")
    expect(card).to_be_visible()
    assert unnamed_controls(page, "#extend-card input, #extend-card button") == []
    expect(page.locator("#extend-seconds")).to_have_attribute("max", "295")
    expect(page.locator("#extend-hint")).to_contain_text("up to 295 more seconds")

    # past 300 s in all: the server's 400, next to the control, and nothing else happens
    page.fill("#extend-seconds", "400")
    page.click("#extend")
    expect(page.locator("#extend-error")).to_contain_text("can take 1 to 295 more seconds")
    expect(page.locator("#extend-seconds")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#extend")).to_be_enabled()
    assert current_id(page) == parent

    page.fill("#extend-seconds", "3")
    expect(page.locator("#extend-error")).to_be_hidden()
    with page.expect_request(re.compile(rf"/api/tracks/{parent}/extend$")) as sent:
        page.click("#extend")
    assert sent.value.post_data_json == {"seconds": 3}
    page.wait_for_function(f"location.hash !== '#listen/{parent}'", timeout=30_000)
    child = current_id(page)
    assert child != parent
    page.wait_for_function(f"Math.abs({AUDIO}.duration - 8) < 0.1", timeout=20_000)
    expect(info_row(page, "Length")).to_contain_text("8.00 s")
    expect(info_row(page, "Extended from")).to_contain_text("Rock · Library remix, 0:05")
    expect(info_row(page, "Seam")).to_contain_text(re.compile(r"at 0:0[45] \(\d\.\d\d s\), \d\.\d\d s crossfade"))
    expect(page.locator("#extend-done")).to_contain_text("Extended to 8 s")
    # the history shows it, newest first, marked as an extension
    first = page.locator("#history .history-item").first
    expect(first).to_have_attribute("data-id", child)
    expect(first).to_contain_text("extended")
    expect(page.locator("#extend-hint")).to_contain_text("up to 292 more seconds")
    shot(page, str(artifacts / "extended-desktop.png"))

    page.click("#extended-from")
    page.wait_for_url(re.compile(rf"#listen/{parent}$"))
    expect(info_row(page, "Length")).to_contain_text("5.00 s")
    expect(info_row(page, "Extended from")).to_have_count(0)
    page.go_back()  # the address history holds the way back to the extension
    page.wait_for_url(re.compile(rf"#listen/{child}$"))
    expect(info_row(page, "Length")).to_contain_text("8.00 s")
    assert page.evaluate("document.documentElement.scrollWidth") <= page.viewport_size["width"]
    assert_clean(session)


def test_variations_audition_and_keep(session, classifier_server, artifacts):
    """Three candidates: all three listed with seed and fit, the chosen one marked and in the history;
    one auditioned on the player; one kept (then in the history), the other not in the history."""
    server = classifier_server
    page = open_page(session, server, "#create")
    chosen = generate(page, genre="Rock", length=3, seed=5, candidates=3)
    group = page.request.get(f"{server}/api/tracks/{chosen}").json()["meta"]["group"]
    assert group["chosen"] == chosen and len(group["tracks"]) == 3
    items = page.locator("#variations .variation")
    expect(items).to_have_count(3)
    assert items.evaluate_all("(els) => els.map(e => e.dataset.id)") == [t["id"] for t in group["tracks"]]
    for item, member in zip(items.all(), group["tracks"]):
        expect(item).to_contain_text(f"seed {member['seed']}")
        expect(item).to_contain_text(f"{round(member['genre_fit'] * 100)}% genre fit")
    chosen_item = page.locator(f"#variations li[data-id='{chosen}']")
    expect(chosen_item.locator(".badge.chosen")).to_have_text("Chosen")
    expect(chosen_item).to_have_attribute("aria-current", "true")
    expect(chosen_item.locator("button", has_text="Keep")).to_have_count(0)
    assert unnamed_controls(page, "#variations-card button") == []
    history = page.locator("#history")
    expect(history.locator(f"li[data-id='{chosen}']")).to_have_count(1)
    others = [t["id"] for t in group["tracks"] if t["id"] != chosen]
    for other in others:  # not chosen, not kept: not in the history
        expect(history.locator(f"li[data-id='{other}']")).to_have_count(0)

    # audition one: the player loads it, the list marks it, the info says what it is
    keep, drop = others
    with page.expect_response(re.compile(rf"/api/tracks/{keep}/audio\.wav")):
        page.locator(f"#variations li[data-id='{keep}'] button.icon-btn").click()
    page.wait_for_url(re.compile(rf"#listen/{keep}$"))
    page.wait_for_function(f"{AUDIO}.duration > 0 && !{AUDIO}.paused", timeout=20_000)
    expect(page.locator(f"#variations li[data-id='{keep}']")).to_have_attribute("aria-current", "true")
    expect(info_row(page, "Variation")).to_contain_text("not chosen: one of 3")

    # keep it: marked kept, and listed in the history beside the chosen one; the other is not
    page.locator(f"#variations li[data-id='{keep}'] button", has_text="Keep").click()
    expect(page.locator(f"#variations li[data-id='{keep}'] .badge.kept")).to_have_text("Kept")
    expect(page.locator("#variations-status")).to_contain_text("Kept variation")
    expect(history.locator(f"li[data-id='{keep}']")).to_have_count(1)
    expect(history.locator(f"li[data-id='{keep}']")).to_contain_text("kept variation")
    expect(history.locator(f"li[data-id='{chosen}']")).to_have_count(1)
    expect(history.locator(f"li[data-id='{drop}']")).to_have_count(0)
    assert page.request.get(f"{server}/api/tracks/{keep}").json()["meta"]["kept"] is True
    shot(page, str(artifacts / "variations-desktop.png"))
    # after a reload the page still lists what the server says
    page.reload()
    page.wait_for_selector("body.ready")
    expect(history.locator(f"li[data-id='{keep}']")).to_have_count(1)
    expect(history.locator(f"li[data-id='{drop}']")).to_have_count(0)
    expect(page.locator(f"#variations li[data-id='{keep}'] .badge.kept")).to_be_visible()
    expect(page.locator(f"#variations li[data-id='{drop}'] button", has_text="Keep")).to_be_visible()
    assert_clean(session)


def test_more_like_this_from_a_clip(phone, server, artifacts):
    """At phone width: a clip uploaded with the form's mode is heard (tempo, key, length; this server
    has no classifier, so the form's genre stands in) and its job opens on Listen; a file that is
    not audio is explained next to the upload."""
    page = open_page(phone, server, "#create")
    assert unnamed_controls(page, "#field-reference input, #field-reference button") == []
    fill_request(page, genre="Jazz", length=6)
    page.click("#reference-go")
    expect(page.locator("#reference-error")).to_contain_text("Choose an audio clip first")

    page.set_input_files("#reference-file", {"name": "notes.txt", "mimeType": "text/plain",
                                             "buffer": b"this is not audio at all" * 20})
    expect(page.locator("#reference-error")).to_be_hidden()
    page.click("#reference-go")
    expect(page.locator("#reference-error")).to_contain_text(re.compile("audio", re.I))
    expect(page.locator("#reference-go")).to_be_enabled()

    page.set_input_files("#reference-file", {"name": "clicks.wav", "mimeType": "audio/wav", "buffer": click_clip(8)})
    with page.expect_response(re.compile(r"/api/tracks/from-reference$")) as answered:
        page.click("#reference-go")
    answer = answered.value.json()  # (a multipart body with a file is not readable from the request)
    assert answered.value.status == 202, answer
    # the form sent its mode and, with no classifier here, its genre; the rest was heard
    assert sorted(answer["heard"]["from_form"]) == ["genre", "mode"], answer["heard"]
    assert answer["request"]["mode"] == "dataset" and answer["request"]["genre"] == "jazz"
    assert answer["transfer"] is False
    heard = page.locator("#reference-heard")
    expect(heard).to_contain_text("Heard in the clip")
    expect(heard).to_contain_text("clicks.wav")
    expect(heard).to_contain_text(re.compile(r"Tempo\s*100 BPM"))
    expect(heard).to_contain_text(re.compile(r"Length\s*8 s"))
    expect(heard).to_contain_text("Jazz (from the form)")
    page.wait_for_url(LISTEN_URL, timeout=40_000)
    page.wait_for_function(f"Math.abs({AUDIO}.duration - 8) < 0.1", timeout=20_000)
    expect(info_row(page, "Genre")).to_contain_text("Jazz")
    expect(info_row(page, "Made like")).to_contain_text("clicks.wav")
    expect(info_row(page, "Requested tempo")).to_contain_text("100 BPM")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, str(artifacts / "keep-going-phone.png"))
    page.click("a[data-screen=create]")
    expect(heard).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    heard.scroll_into_view_if_needed()
    page.locator("#field-reference").screenshot(path=str(artifacts / "more-like-this-phone.png"))
    assert_clean(phone)


def test_timbre_transfer_is_offered_with_rave(session, server):
    """The transfer switch shows only while RAVE is the mode (the options are stood in for: this
    server has no RAVE checkpoint), and a checked one is sent as transfer=true with mode rave."""
    page = session.page

    def with_rave(route):
        response = route.fetch()
        body = response.json()
        for mode in body["modes"]:
            if mode["name"] == "rave":
                mode.update(available=True, reason=None)
        route.fulfill(response=response, json=body)

    sent = []

    def refuse(route):
        sent.append(route.request.post_data_buffer)
        route.fulfill(status=503, json={"status": "error", "message": "RAVE is busy", "field": "mode"})

    page.route(re.compile(r"/api/options$"), with_rave)
    page.route(re.compile(r"/api/tracks/from-reference$"), refuse)
    open_page(session, server, "#create")
    expect(page.locator("#reference-transfer-box")).to_be_hidden()
    page.locator("label.mode", has_text="RAVE").click()
    expect(page.locator("#reference-transfer-box")).to_be_visible()
    expect(page.locator("#reference-transfer-hint")).to_be_visible()
    page.check("#reference-transfer")
    page.set_input_files("#reference-file", {"name": "clicks.wav", "mimeType": "audio/wav", "buffer": click_clip(2)})
    page.click("#reference-go")
    expect(page.locator("#reference-error")).to_contain_text("RAVE is busy")  # the server's words, in place
    expect(page.locator("#reference-go")).to_be_enabled()
    assert len(sent) == 1 and b'filename="clicks.wav"' in sent[0]
    for name, value in ((b"mode", b"rave"), (b"transfer", b"true")):
        assert re.search(rb'name="%s"\r\n\r\n%s\r\n' % (name, value), sent[0]), name
    page.locator("label.mode", has_text="Library remix").click()
    expect(page.locator("#reference-transfer-box")).to_be_hidden()
    expect(page.locator("#reference-transfer")).not_to_be_checked()
    assert_clean(session)

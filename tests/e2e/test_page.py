"""The page in a real browser: load offline, generate from clicks, play, see, download, recover from errors."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from .conftest import why_no_browser

_reason = why_no_browser()
if _reason:
    pytest.skip(f"browser tests skipped: {_reason}", allow_module_level=True)

from playwright.sync_api import expect  # noqa: E402

LISTEN_URL = re.compile(r"#listen/[0-9a-f]{32}$")
AUDIO = "document.getElementById('audio')"


def open_page(session, server, screen=""):
    page = session.page
    page.goto(f"{server}/{screen}")
    page.wait_for_selector("body.ready")
    return page


def fill_request(page, *, genre, length, tempo=None, seed=None, candidates=None):
    page.locator("label.genre-tile", has_text=re.compile(rf"^{genre}", re.I)).click()
    page.locator("label.mode", has_text="Library remix").click()
    page.fill("#length", str(length))
    if tempo is not None:
        page.fill("#tempo", str(tempo))
    if seed is not None:
        page.fill("#seed", str(seed))
    if candidates is not None:
        page.fill("#candidates", str(candidates))


def shot(page, path, **kwargs):
    """A full-page screenshot from the top (the sticky header stays where it belongs)."""
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=path, **kwargs)


def assert_clean(session):
    assert session.page_errors == [], session.page_errors
    assert session.dialogs == [], f"the page used a dialog: {session.dialogs}"
    assert session.foreign_requests() == [], f"requests left localhost: {session.foreign_requests()}"


def test_page_loads_offline_with_every_control(session, server):
    page = open_page(session, server)
    expect(page.locator("#screen-discover")).to_be_visible()
    expect(page.locator(".genre-card")).to_have_count(10)
    expect(page.locator(".genre-card", has_text="Rock").locator(".clip")).to_have_count(2)

    page.click("a[data-screen=create]")
    expect(page.locator("#screen-create")).to_be_visible()
    expect(page.locator("input[name=genre]")).to_have_count(10)
    assert page.locator("input[name=instruments]").count() >= 10
    expect(page.locator("#tempo-presets button")).to_have_count(4)
    # every mode is listed; the ones without a checkpoint are disabled and say why
    expect(page.locator("input[name=mode]")).to_have_count(5)
    expect(page.locator("input[name=mode][value=rave]")).to_be_disabled()
    expect(page.locator("label.mode", has_text="RAVE")).to_contain_text("no trained checkpoint")
    # capabilities: the library remix cannot choose instruments, and its MIDI is a transcription
    page.locator("label.mode", has_text="Library remix").click()
    expect(page.locator("#instruments-note")).to_contain_text("Ignored by this mode")
    expect(page.locator("#summary")).to_contain_text("transcription")
    if page.locator("input[name=mode][value=compose]").is_enabled():
        page.locator("label.mode", has_text="Composer").click()
        expect(page.locator("#instruments-note")).to_be_hidden()
        # the SoundFont compose requests render through, as /api/health names it
        font = page.request.get(f"{server}/api/health").json()["soundfont"]["name"]
        expect(page.locator("#mode-compose-font")).to_contain_text(f"SoundFont: {font}")
    # a tempo preset moves the slider
    page.locator("#tempo-presets button", has_text="Slow").click()
    expect(page.locator("#tempo")).to_have_value("70")
    # every form control has a name a screen reader can read
    unnamed = page.evaluate("""(sel) => [...document.querySelectorAll(sel)].filter(el =>
        !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
        .map(el => el.outerHTML)""", "#generate-form input, #generate-form button, #player-card input, #player-card button")
    assert unnamed == []
    assert session.console_errors == [], session.console_errors
    assert_clean(session)


def test_generate_play_see_and_download(session, server, artifacts):
    page = open_page(session, server, "#create")
    fill_request(page, genre="Rock", length=6, tempo=110, seed=7)
    page.click("#generate")
    page.wait_for_url(LISTEN_URL, timeout=30_000)
    page.wait_for_function(f"{AUDIO}.duration > 0 && !{AUDIO}.paused", timeout=20_000)

    # the audio is the requested length and plays
    assert abs(page.evaluate(f"{AUDIO}.duration") - 6.0) <= 0.1
    t0 = page.evaluate(f"{AUDIO}.currentTime")
    page.wait_for_timeout(600)
    assert page.evaluate(f"{AUDIO}.currentTime") > t0

    # the visualizer is drawn from the analyser: its pixels change while playing
    frames = []
    for _ in range(4):
        frames.append(page.evaluate("document.getElementById('visualizer').toDataURL()"))
        page.wait_for_timeout(150)
    assert len(set(frames)) > 1, "the visualizer did not change while playing"

    # the waveform is drawn from the decoded audio, and a click seeks (the library's click tracks
    # are all peak: the limiter keeps their peaks, so most of the drawing is the clicks' thin spikes)
    page.wait_for_function("""(() => { const c = document.getElementById('waveform');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let lit = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) lit++;
        return lit > d.length / 4 * 0.02; })()""")
    page.evaluate(f"{AUDIO}.pause()")
    box = page.locator("#waveform").bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    assert abs(page.evaluate(f"{AUDIO}.currentTime") - 3.0) < 0.3

    # Space plays and pauses when focus is not in a field
    page.evaluate("document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Space")
    page.wait_for_function(f"!{AUDIO}.paused")
    page.keyboard.press("Space")
    page.wait_for_function(f"{AUDIO}.paused")

    # what the track is
    info = page.locator("#info-card")
    expect(info).to_contain_text("Genre fit unavailable")
    expect(info).to_contain_text("110 BPM")          # requested
    expect(info).to_contain_text("Detected tempo")
    expect(info).to_contain_text("Library remix")
    expect(page.locator("#track-info")).to_contain_text("7")  # the seed
    expect(page.locator("#similar-status")).to_contain_text("unavailable")
    expect(page.locator("#file-notes")).to_contain_text("MIDI is a transcription")
    expect(page.locator("#history .history-item").first).to_contain_text("Rock")
    shot(page, str(artifacts / "player-desktop.png"), full_page=True)

    # one download link per format of the server's table, in its order, named by its label
    formats = page.request.get(f"{server}/api/options").json()["formats"]
    links = page.locator("#player-card .downloads a.dl")
    expect(links).to_have_count(len(formats))
    expect(links).to_have_text([f["label"] for f in formats])
    paths = [urlsplit(h).path for h in links.evaluate_all("(els) => els.map(a => a.getAttribute('href'))")]
    assert [p.rsplit(".", 1)[1] for p in paths] == [f["extension"] for f in formats] == ["wav", "mp3", "mid"]
    history_links = page.locator("#history .history-item").first.locator(".history-dl a")
    expect(history_links).to_have_text([f["label"] for f in formats])

    # each download is a real file of its type, with the server's file name
    magic = {"wav": (b"RIFF", "audio/wav"), "mp3": (None, "audio/mpeg"), "mid": (b"MThd", "audio/midi")}
    for ext, (head, mime) in magic.items():
        with page.expect_download() as info_:
            page.click(f"#dl-{ext}")
        download = info_.value
        assert download.suggested_filename == f"melodymaker-rock-dataset-7.{ext}"
        data = open(download.path(), "rb").read()
        if ext == "mp3":
            assert data[:3] == b"ID3" or (data[0] == 0xFF and data[1] & 0xE0 == 0xE0), data[:4]
        else:
            assert data[:4] == head
        if ext == "wav":
            assert data[8:12] == b"WAVE"
        href = page.get_attribute(f"#dl-{ext}", "href")
        content_type = page.evaluate("(u) => fetch(u).then(r => r.headers.get('content-type'))", href)
        assert content_type.startswith(mime)
    assert_clean(session)


def test_form_limits_come_from_the_server(session, server):
    """The inputs' ranges, defaults and the random seed follow /api/options, not the page's own numbers."""
    page = open_page(session, server, "#create")
    options = page.request.get(f"{server}/api/options").json()
    assert options["length"]["min"] == 1
    for name in ("tempo", "length"):
        for selector in (f"#{name}", f"#{name}-range"):
            assert page.get_attribute(selector, "min") == str(options[name]["min"]), selector
            assert page.get_attribute(selector, "max") == str(options[name]["max"]), selector
    expect(page.locator("#length")).to_have_value(str(options["length"]["default"]))
    assert page.get_attribute("#candidates", "min") == str(options["candidates"]["min"])
    assert page.get_attribute("#candidates", "max") == str(options["candidates"]["max"])
    # the hint gives the server's range, or (once health arrives) says best-of-N needs the classifier,
    # which this server lacks: check the sentence the page ends on, not whichever came first
    if options["classifier"]["available"]:
        expect(page.locator("#candidates-hint")).to_contain_text(
            f"{options['candidates']['min']}–{options['candidates']['max']} versions")
    else:
        expect(page.locator("#candidates-hint")).to_contain_text("Needs the genre classifier")
    # the shortest length the server allows can be typed without the browser calling it invalid
    page.fill("#length", "1")
    assert page.evaluate("document.getElementById('length').validity.valid")
    seeds = []
    for _ in range(5):
        page.click("#surprise")
        seeds.append(int(page.input_value("#seed")))
    assert all(options["seed"]["min"] <= n <= options["seed"]["max"] for n in seeds), seeds
    expect(page.locator("#format-names")).to_have_text("WAV, MP3 or MIDI")
    assert_clean(session)


def test_form_follows_other_limits(session, server):
    """A server with other limits gets other inputs: the page has no numbers of its own."""
    page = session.page

    def narrower(route):
        response = route.fetch()
        body = response.json()
        body["seed"] = {"min": 10, "max": 12}
        body["length"] = {**body["length"], "min": 2, "max": 90, "default": 45}
        body["candidates"] = {"min": 1, "max": 3}
        route.fulfill(response=response, json=body)

    page.route(re.compile(r"/api/options$"), narrower)
    open_page(session, server, "#create")
    assert page.get_attribute("#length", "min") == "2"
    assert page.get_attribute("#length-range", "max") == "90"
    expect(page.locator("#length")).to_have_value("45")
    assert page.get_attribute("#candidates", "max") == "3"
    seeds = set()
    for _ in range(30):
        page.click("#surprise")
        seeds.add(int(page.input_value("#seed")))
    assert seeds <= {10, 11, 12} and len(seeds) > 1, seeds
    assert_clean(session)


def test_the_key_control_lists_the_servers_keys_and_says_which_modes_approximate(session, server):
    """The key menu is /api/options' keys after Auto; a mode that cannot write in a key is marked
    approximated (the field, its card, the note, the summary); the composer writes in it, and the
    track says which key was asked for and which was heard."""
    page = open_page(session, server, "#create")
    options = page.request.get(f"{server}/api/options").json()
    values = page.locator("#key option").evaluate_all("(os) => os.map(o => o.value)")
    assert values == [options["key"]["default"], *options["key"]["keys"]] and len(values) == 25
    expect(page.locator("#key")).to_have_value("auto")
    expect(page.locator("#summary")).to_contain_text("the genre's choice")
    page.select_option("#key", "A minor")

    page.locator("label.mode", has_text="Library remix").click()
    expect(page.locator("label.mode", has_text="Library remix")).to_contain_text("Key: approximated")
    expect(page.locator("#key-note")).to_contain_text("Approximated: Library remix cannot write in a key")
    expect(page.locator("#key-note")).to_contain_text("at most 6 semitones")
    expect(page.locator("#field-key")).to_have_class(re.compile(r"\bapproximated\b"))
    expect(page.locator("#summary")).to_contain_text("A minor (approximated)")

    page.locator("label.mode", has_text="Composer").click()
    expect(page.locator("label.mode", has_text="Composer")).to_contain_text("Key ✓")
    expect(page.locator("#key-note")).to_be_hidden()
    expect(page.locator("#field-key")).not_to_have_class(re.compile(r"\bapproximated\b"))
    expect(page.locator("#summary dd", has_text=re.compile(r"^A minor$"))).to_have_count(1)

    page.locator("label.genre-tile", has_text=re.compile("^Rock")).click()
    page.fill("#length", "6")
    with page.expect_request(re.compile(r"/api/tracks$")) as sent:
        page.click("#generate")
    assert sent.value.post_data_json["key"] == "A minor"
    page.wait_for_url(LISTEN_URL, timeout=30_000)
    info = page.locator("#track-info")
    expect(info.locator("div", has_text="Requested key")).to_contain_text("A minor")
    expect(info.locator("div", has_text="Detected key")).to_contain_text(re.compile(r"[A-G][#b]? (major|minor)"))

    # the choice is remembered, and a key the server refuses is explained next to the menu
    page.goto(f"{server}/#create")
    page.wait_for_selector("body.ready")
    expect(page.locator("#key")).to_have_value("A minor")
    page.evaluate("""() => { const o = document.createElement('option');
        o.value = o.textContent = 'H minor'; document.getElementById('key').append(o); }""")
    page.select_option("#key", "H minor")
    page.click("#generate")
    expect(page.locator("#key-error")).to_contain_text("Key 'H minor' is not understood")
    expect(page.locator("#key-error")).to_contain_text("C#/Db")
    expect(page.locator("#key")).to_have_attribute("aria-invalid", "true")
    assert_clean(session)


def test_the_meter_and_loop_controls_follow_the_server_and_the_mode(session, server):
    """The meter menu is /api/options' meters (4/4 first) with what the tempo counts; the loop is a
    switch. A mode that cannot write them is marked (meter ignored, loop approximated: the field, its
    card, the note, the summary); the Composer says when a genre has no such meter; a composed loop
    plays round, says its bars, and offers its stems; the choices are remembered, and a meter the
    server refuses is explained next to the menu."""
    page = open_page(session, server, "#create")
    options = page.request.get(f"{server}/api/options").json()
    values = page.locator("#meter option").evaluate_all("(os) => os.map(o => o.value)")
    assert values == [m["name"] for m in options["meter"]["meters"]] == ["4/4", "3/4", "6/8"]
    expect(page.locator("#meter")).to_have_value("4/4")
    expect(page.locator("#meter-hint")).to_contain_text("dotted quarter notes in 6/8")
    expect(page.locator("#loop")).not_to_be_checked()
    page.select_option("#meter", "3/4")
    page.check("#loop")

    remix = page.locator("label.mode", has_text="Library remix")
    remix.click()
    expect(remix).to_contain_text("Meter: ignored")
    expect(remix).to_contain_text("Loop: approximated")
    expect(remix).to_contain_text("Stems: none")
    expect(page.locator("#meter-note")).to_contain_text("Ignored: Library remix plays in its own meter")
    expect(page.locator("#loop-note")).to_contain_text("Approximated: Library remix cannot write a loop")
    for field in ("#field-meter", "#field-loop"):
        expect(page.locator(field)).to_have_class(re.compile(r"\bapproximated\b"))
    expect(page.locator("#summary")).to_contain_text("3/4 (ignored)")
    expect(page.locator("#summary")).to_contain_text("yes, whole bars (approximated)")

    composer = page.locator("label.mode", has_text="Composer")
    composer.click()
    for cap in ("Meter ✓", "Loop ✓", "Stems ✓"):
        expect(composer).to_contain_text(cap)
    expect(page.locator("#loop-note")).to_be_hidden()
    for field in ("#field-meter", "#field-loop"):
        expect(page.locator(field)).not_to_have_class(re.compile(r"\bapproximated\b"))
    page.locator("label.genre-tile", has_text=re.compile("^Disco")).click()
    expect(page.locator("#meter-note")).to_contain_text("Not written for Disco")
    expect(page.locator("#meter-note")).to_contain_text("The Composer writes Disco in 4/4")
    page.locator("label.genre-tile", has_text=re.compile("^Jazz")).click()
    expect(page.locator("#meter-note")).to_be_hidden()
    expect(page.locator("#summary dd", has_text=re.compile(r"^3/4$"))).to_have_count(1)
    page.fill("#length", "4")
    page.fill("#tempo", "90")
    with page.expect_request(re.compile(r"/api/tracks$")) as sent:
        page.click("#generate")
    body = sent.value.post_data_json
    assert body["meter"] == "3/4" and body["loop"] is True
    page.wait_for_url(LISTEN_URL, timeout=30_000)
    info = page.locator("#track-info")
    expect(info.locator("div", has_text="Meter")).to_contain_text("3/4")
    expect(info.locator("div", has_text="Loop")).to_contain_text("2 bars")  # 4 s of 2-second bars
    expect(page.locator("#audio")).to_have_js_property("loop", True)
    stems = page.locator("#dl-stems")
    expect(stems).to_be_visible()
    answer = page.request.get(server + stems.get_attribute("href"))
    assert answer.status == 200 and answer.headers["content-type"] == "application/zip"

    # the choices are remembered, and a meter the server refuses is explained next to the menu
    page.goto(f"{server}/#create")
    page.wait_for_selector("body.ready")
    expect(page.locator("#meter")).to_have_value("3/4")
    expect(page.locator("#loop")).to_be_checked()
    page.evaluate("""() => { const o = document.createElement('option');
        o.value = o.textContent = '5/4'; document.getElementById('meter').append(o); }""")
    page.select_option("#meter", "5/4")
    page.click("#generate")
    expect(page.locator("#meter-error")).to_contain_text("4/4, 3/4, 6/8")
    expect(page.locator("#meter")).to_have_attribute("aria-invalid", "true")
    assert_clean(session)


def test_errors_are_shown_in_the_page(session, server):
    page = open_page(session, server, "#create")

    # 400 from the server, next to the field it names
    fill_request(page, genre="Rock", length=6, seed=99999999999)
    page.click("#generate")
    expect(page.locator("#seed-error")).to_contain_text("must be a whole number from 0 to 2147483647")
    expect(page.locator("#form-error")).to_be_visible()
    expect(page.locator("#generate")).to_be_enabled()

    # a job that fails: the library has no metal clips (503 inside the job)
    page.fill("#seed", "")
    expect(page.locator("#seed-error")).to_be_hidden()
    fill_request(page, genre="Metal", length=6)
    page.click("#generate")
    expect(page.locator("#genre-error")).to_contain_text(re.compile("the library has no metal clips", re.I))

    # best-of-N without a classifier: 503 up front, next to the candidates field
    fill_request(page, genre="Rock", length=6, candidates=3)
    page.click("#generate")
    expect(page.locator("#candidates-error")).to_contain_text("classifier")
    assert_clean(session)


def make_track(session, server, **request) -> str:
    """A finished track made through the API (not the page), for tests that start on the player."""
    api = session.page.request
    track_id = api.post(f"{server}/api/tracks", data=request).json()["id"]
    for _ in range(200):
        state = api.get(f"{server}/api/tracks/{track_id}").json()
        if state["status"] == "done":
            return track_id
        assert state["status"] in ("queued", "running"), state
        session.page.wait_for_timeout(100)
    raise AssertionError("the track was not made in time")


def test_genre_fit_and_similar_clips_when_the_classifier_answers(session, server, artifacts):
    """Without a classifier here, the server's answers are stood in for; the page must show them."""
    page = session.page
    track_id = make_track(session, server, genre="rock", length=5, mode="dataset", seed=11)
    fit = {"genre": "rock", "probability": 0.82, "rank": 1, "top3": [
        {"genre": "rock", "probability": 0.82}, {"genre": "metal", "probability": 0.11},
        {"genre": "blues", "probability": 0.04}]}

    def with_fit(route):
        response = route.fetch()
        body = response.json()
        body["meta"]["genre_fit"] = fit
        route.fulfill(response=response, json=body)

    similar = [{"genre": "jazz", "name": "jazz 00000.flac", "url": "/api/library/jazz/jazz 00000.flac",
                "score": 0.91, "duration": 10.0, "tempo": 100.0},
               {"genre": "rock", "name": "rock.00001.wav", "url": "/api/library/rock/rock.00001.wav",
                "score": 0.77, "duration": 12.0, "tempo": 100.0}]
    page.route(re.compile(rf"/api/tracks/{track_id}$"), with_fit)
    page.route(re.compile(rf"/api/tracks/{track_id}/similar"),
               lambda route: route.fulfill(json={"id": track_id, "similar": similar}))
    open_page(session, server, f"#listen/{track_id}")
    expect(page.locator("#genre-fit")).to_contain_text("82%")
    expect(page.locator("#genre-fit .fit-bars li")).to_have_count(3)
    expect(page.locator("#similar .clip")).to_have_count(2)
    expect(page.locator("#similar")).to_contain_text("91% match")
    page.locator("#similar .clip button").first.click()
    page.wait_for_function("document.getElementById('preview').currentTime > 0.2")
    shot(page, str(artifacts / "player-with-genre-fit.png"), full_page=True)
    assert session.console_errors == [], session.console_errors
    assert_clean(session)


def test_cancel_stops_a_generation(session, server):
    page = open_page(session, server, "#create")
    fill_request(page, genre="Jazz", length=300)
    page.click("#generate")
    expect(page.locator("#job")).to_be_visible()
    page.click("#cancel")
    expect(page.locator("#form-status")).to_contain_text("Cancelled", timeout=20_000)
    expect(page.locator("#job")).to_be_hidden()
    assert LISTEN_URL.search(page.url) is None
    assert_clean(session)


def test_phone_width_history_and_demos(phone, server, artifacts):
    page = open_page(phone, server, "#listen")
    # history survives a reload: the tracks made before are listed and the newest is loaded
    items = page.locator("#history .history-item")
    expect(items.first).to_be_visible()
    page.wait_for_function(f"{AUDIO}.duration > 0")
    items.first.locator("button").click()
    page.wait_for_function(f"!{AUDIO}.paused && {AUDIO}.currentTime > 0.2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, str(artifacts / "player-phone.png"), full_page=True)

    page.click("a[data-screen=create]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    shot(page, str(artifacts / "create-phone.png"), full_page=True)

    # a library demo plays (as WAV from /api/library), even one whose name has a space
    page.click("a[data-screen=discover]")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.locator(".genre-card", has_text="Jazz").locator(".clip button").first.click()
    page.wait_for_function("document.getElementById('preview').currentTime > 0.2")
    assert page.evaluate(f"{AUDIO}.paused"), "a demo should pause the player"
    assert_clean(phone)

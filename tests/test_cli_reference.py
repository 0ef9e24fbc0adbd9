"""The command line's `generate --like CLIP`, `generate --keep` and `extend TRACK_ID`, through
melodymaker.cli.main as `python -m melodymaker` runs it, on the small composed library and judges."""
import json
import re

import pytest
import soundfile as sf

from melodymaker.cli import main

CLIP = ("disco", "disco.00001")


@pytest.fixture()
def env(monkeypatch, tiny_models, tmp_path):
    """The server's environment: its models and its var folder (so its store), here temporary."""
    monkeypatch.setenv("MELODYMAKER_MODELS_DIR", str(tiny_models))
    monkeypatch.setenv("MELODYMAKER_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("MELODYMAKER_STORE_DIR", raising=False)
    monkeypatch.delenv("MELODYMAKER_QUEUE", raising=False)
    return tmp_path


def test_generate_like_a_clip_takes_its_genre_tempo_key_and_length(env, composed_library, capsys):
    clip = composed_library / CLIP[0] / f"{CLIP[1]}.au"
    truth = json.loads(clip.with_suffix(".json").read_text())
    out = env / "like.wav"
    rc = main(["generate", "--like", str(clip), "--genres", str(composed_library), "--mode", "compose",
               "--seed", "1", "-q", "-o", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert f"heard in {clip.name}: genre disco" in printed and f"key {truth['key']}" in printed
    assert "taken from the clip: genre, tempo, key, length" in printed
    tempo = float(re.search(r"tempo ([\d.]+) BPM", printed).group(1))
    assert tempo == pytest.approx(truth["tempo"], rel=0.03)
    y, sr = sf.read(out)
    assert len(y) == 8 * sr and "disco, mode compose" in printed and f"tempo {tempo}," in printed
    # options given win over what is heard
    rc = main(["generate", "--like", str(clip), "--genres", str(composed_library), "--mode", "compose",
               "--genre", "reggae", "--length", "3", "-q", "-o", str(out)])
    printed = capsys.readouterr().out
    assert rc == 0 and "taken from the clip: tempo, key" in printed and "reggae, mode compose" in printed
    y, sr = sf.read(out)
    assert len(y) == 3 * sr


def test_generate_like_refuses_a_missing_or_unreadable_clip(env, composed_library, capsys):
    rc = main(["generate", "--like", str(env / "nothing.mp3"), "-o", str(env / "x.wav")])
    assert rc == 2 and "error (like): no file" in capsys.readouterr().err
    text = env / "notes.mp3"
    text.write_text("not audio at all" * 20)
    rc = main(["generate", "--like", str(text), "--genres", str(composed_library), "-o", str(env / "x.wav")])
    err = capsys.readouterr().err
    assert rc == 2 and "not readable audio" in err and "Traceback" not in err


def test_keep_then_extend_a_track_of_the_servers_store(env, composed_library, capsys):
    first = env / "first.wav"
    rc = main(["generate", "--genre", "reggae", "--mode", "compose", "--length", "6", "--seed", "2",
               "--genres", str(composed_library), "--keep", "-q", "-o", str(first)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    track_id = re.search(r"kept as track ([0-9a-f]{32})", printed).group(1)
    longer = env / "longer.mp3"
    rc = main(["extend", track_id, "--seconds", "4", "--genres", str(composed_library), "-q", "-o", str(longer)])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    new_id = re.search(r"kept as track ([0-9a-f]{32})", printed).group(1)
    info = sf.info(longer)
    assert info.format == "MP3" and info.duration == pytest.approx(10.0, abs=0.1)
    # both are the server's tracks: its routes serve them
    from app import create_app
    from melodymaker.settings import Settings
    app = create_app(Settings.from_env(genres_dir=composed_library))
    try:
        client = app.test_client()
        assert client.get(f"/api/tracks/{track_id}").json["meta"]["length"] == 6.0
        meta = client.get(f"/api/tracks/{new_id}").json["meta"]
        assert meta["parent"] == track_id and meta["length"] == 10.0
        y, sr = sf.read(first)
        stored, _ = sf.read(app.extensions["melodymaker"].track_file(track_id, "wav")[0])
        assert (y == stored).all()      # the file written is the stored track
    finally:
        app.extensions["melodymaker"].close()
    rc = main(["extend", "0" * 32, "--seconds", "4", "--genres", str(composed_library), "-o", str(longer)])
    assert rc == 2 and "no track" in capsys.readouterr().err
    rc = main(["extend", track_id, "--seconds", "400", "--genres", str(composed_library), "-o", str(longer)])
    assert rc == 2 and "error (seconds)" in capsys.readouterr().err

"""The library: formats, rates, channels, case-insensitive folders, skipped files, the on-disk cache."""
import os

import numpy as np
import soundfile as sf

from melodymaker import audio
from melodymaker.library import Library
from melodymaker.options import SAMPLE_RATE
from conftest import CLICK_BPM, click_track


def test_scan_indexes_every_format_and_skips_broken(library_dir, tmp_path):
    lib = Library(library_dir, tmp_path / "cache").scan()
    assert lib.counts()["rock"] == 2 and lib.counts()["jazz"] == 2 and lib.counts()["blues"] == 1
    names = {c.name for c in lib.all_clips()}
    assert {"rock.00000.au", "rock.00001.wav", "jazz 00000.flac", "jazz.00001.ogg"} <= names
    reasons = {s.path: s.reason for s in lib.skipped}
    assert "no audio header" in reasons["blues/broken.au"]
    assert reasons["blues/empty.wav"] == "empty file"


def test_clips_load_as_22050_mono_float32(library_dir):
    lib = Library(library_dir).scan()
    ogg = lib.find("jazz", "jazz.00001.ogg")   # 44.1 kHz stereo on disk
    y = lib.load(ogg)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) / SAMPLE_RATE - 10.0) < 0.01


def test_analysis_is_cached_and_reused_until_the_file_changes(tmp_path):
    root = tmp_path / "genres" / "rock"
    root.mkdir(parents=True)
    path = root / "a.wav"
    sf.write(path, click_track(CLICK_BPM, 10), SAMPLE_RATE)
    cache = tmp_path / "cache"
    lib = Library(tmp_path / "genres", cache).scan()
    clip = lib.analyse(lib.find("rock", "a.wav"))
    assert abs(clip.tempo - CLICK_BPM) / CLICK_BPM < 0.03
    again = Library(tmp_path / "genres", cache).scan().find("rock", "a.wav")
    assert again.tempo == clip.tempo and again.beats == clip.beats   # from the cache, no re-analysis
    sf.write(path, click_track(140, 10), SAMPLE_RATE)
    os.utime(path, ns=(clip.mtime_ns + 10**9, clip.mtime_ns + 10**9))
    changed = Library(tmp_path / "genres", cache).scan().find("rock", "a.wav")
    assert changed.tempo is None   # stale analysis dropped


def test_damaged_cache_is_rebuilt(tmp_path, library_dir):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "library.json").write_text("{ not json")
    lib = Library(library_dir, cache).scan()
    assert len(lib) == 5


def test_symlink_out_of_the_library_is_not_followed(tmp_path):
    outside = tmp_path / "secret.wav"
    sf.write(outside, click_track(100, 2), SAMPLE_RATE)
    root = tmp_path / "genres" / "pop"
    root.mkdir(parents=True)
    (root / "link.wav").symlink_to(outside)
    lib = Library(tmp_path / "genres").scan()
    assert lib.counts()["pop"] == 0
    assert any("outside" in s.reason for s in lib.skipped)


def test_tempo_estimate_on_click_track():
    for bpm in (80, 100, 128):
        tempo, beats = audio.estimate_tempo(click_track(bpm, 15), SAMPLE_RATE)
        assert abs(tempo - bpm) / bpm < 0.02, (bpm, tempo)

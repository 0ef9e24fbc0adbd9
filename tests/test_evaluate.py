"""evaluate, the benchmark: its request set, the silence measure, the ceilings, the sheet, the CLI."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf

from conftest import SR, make_library, noise_bursts, tone
from melodymaker import options as opt
from melodymaker.evaluate import ROW_KEYS, main, markdown, summarise
from melodymaker.evaluate import ceilings
from melodymaker.evaluate.requests import RESERVED_SEEDS, TEMPI, request_set
from melodymaker.evaluate.silence import silent_edges


# -- the silence measure ------------------------------------------------------------------------------
def test_silence_of_a_tone_with_and_without_a_second_of_zeros():
    y = tone(220, 3.0)
    lead, tail = silent_edges(y, SR)
    assert lead == 0 and tail < 10
    padded = np.concatenate([np.zeros(SR // 2, np.float32), y, np.zeros(SR, np.float32)])
    lead, tail = silent_edges(padded, SR)
    assert lead == pytest.approx(500, abs=10) and tail == pytest.approx(1000, abs=10)


def test_silence_of_real_music_counts_only_the_edges(library_dir):
    """A library clip (noise bursts over a tone) has no silent edges; its quiet gaps between bursts
    are not counted, and a second of near-silence below -60 dBFS (not digital zero) is."""
    y, sr = sf.read(library_dir / "blues" / "blues.00000.wav", dtype="float32")
    assert max(silent_edges(y, sr)) < 10
    hiss = np.random.default_rng(0).standard_normal(sr).astype(np.float32) * 10 ** (-66 / 20)
    assert silent_edges(np.concatenate([y, hiss]), sr)[1] == pytest.approx(1000, abs=10)
    assert silent_edges(np.zeros(sr, np.float32), sr) == (1000.0, 1000.0)


# -- the request set ----------------------------------------------------------------------------------
def test_the_request_set_is_ten_per_genre_from_reserved_seeds_and_fixed():
    reqs = request_set("ddim")
    assert len(reqs) == 10 * len(opt.GENRES) >= 100
    assert reqs == request_set("ddim")
    assert {r["genre"] for r in reqs} == set(opt.GENRES)
    assert all(sum(r["genre"] == g for r in reqs) == 10 for g in opt.GENRES)
    seeds = [r["seed"] for r in reqs]
    assert len(set(seeds)) == len(seeds) and all(s in RESERVED_SEEDS for s in seeds)
    assert min(RESERVED_SEEDS) > 1000 * 1000 + len(opt.GENRES)  # above what trainers have used
    assert all(70 <= r["tempo"] <= 160 and r["length"] == 10.0 and r["mode"] == "ddim" for r in reqs)
    assert set(TEMPI) == {r["tempo"] for r in reqs}  # the whole range is visited
    assert {r["key"] for r in reqs} == set(opt.KEYS)   # and every key, both modes
    # every mode gets the same seeds and tempi; a smaller run is a prefix of each genre's requests
    strip = lambda rs: [(r["genre"], r["seed"], r["tempo"], r["key"]) for r in rs]
    assert strip(request_set("rave")) == strip(reqs)
    small = strip(request_set("ddim", per_genre=2))
    assert all(s in strip(reqs) for s in small)
    with pytest.raises(ValueError):
        request_set("ddim", per_genre=0)
    # --keys auto: the same requests without a key (the set the figures before keys were measured on)
    plain = request_set("ddim", keys=False)
    assert all("key" not in r for r in plain)
    assert [{k: v for k, v in r.items() if k != "key"} for r in reqs] == plain


def test_key_accuracy_counts_the_usual_confusions_apart():
    from melodymaker.evaluate.summary import key_accuracy
    cells = key_accuracy(["exact"] * 6 + ["fifth", "relative", "parallel", "other", None])
    assert cells == {"key_tracks": 10, "key_exact": 0.6, "key_fifth": 0.1, "key_relative": 0.1,
                     "key_parallel": 0.1, "key_score": 0.7}  # MIREX: (6 + .5 + .3 + .2) / 10
    assert key_accuracy([None, None]) == {}


# -- the ceilings ---------------------------------------------------------------------------------------
def _music(seconds: float = 3.0) -> np.ndarray:
    return (noise_bursts(120, seconds) + tone(330, seconds)).astype(np.float32)


def test_ddims_mdct_round_trip_is_exact_so_its_ceiling_distance_is_zero():
    import torch
    model = SimpleNamespace(hop=256, alpha=0.5, sr=SR,
                            bin_std=torch.linspace(0.2, 3.0, 256))  # a real normalisation, not unity
    clips = [("jazz", _music()), (opt.GENRES.index("rock"), _music(2.0) * 0.5)]
    result = ceilings.ceiling("ddim", clips, None, model=model)
    path = result["paths"][result["primary"]]
    assert result["clips"] == 2 and path["mrstft"] < 1e-3
    assert path["fit_cnn"] is None and path["genre_fit"] is None and result["judges_reason"]
    assert ceilings.ceiling("library", clips, None)["paths"]["untouched"]["mrstft"] == 0
    # the distance does see a change: half the level, or a dull low-passed copy
    y = _music()
    assert ceilings.mrstft_distance(0.5 * y, y) > 0.2
    assert ceilings.mrstft_distance(np.convolve(y, np.ones(8) / 8, "same"), y) > 0.2


def _clip_with_sidecar(folder, genre: str, index: int, seed: int = 0):
    d = folder / genre
    d.mkdir(parents=True, exist_ok=True)
    name = f"{genre}.{index:05d}"
    sf.write(d / f"{name}.wav", tone(220, 0.2), SR)
    (d / f"{name}.json").write_text(json.dumps({"library_seed": seed, "index": index, "genre": genre}))
    return f"{genre}/{name}.wav"


def test_ceiling_clips_are_held_out_from_the_judges_and_every_model(tmp_path):
    from melodymaker.library import Library
    root = tmp_path / "genres"
    keys = [_clip_with_sidecar(root, g, i) for g in ("jazz", "rock") for i in range(6)]
    library = Library(root).scan()
    judges_info = {"split": {"train_clips": keys[:2] + keys[6:8], "test_clips": keys[2:6] + keys[8:]}}
    assert ceilings.judges_held_out(judges_info, keys) == set(keys[2:6] + keys[8:])
    assert ceilings.judges_held_out({"split": {"train_clips": keys[:3]}}, keys) == set(keys[3:])
    assert ceilings.judges_held_out({}, keys) is None
    builtin = {"library": {"library_seed": 0, "per_genre": 4}}           # saw clips 0-3
    listed = {"split": {"train_clips": ["jazz/jazz.00004.wav"]}}         # saw jazz 4
    clips, facts = ceilings.held_out_clips(library, judges_info, {"rave": builtin, "ddim": listed},
                                           per_genre=10)
    assert [c.key for c in clips] == ["jazz/jazz.00005.wav", "rock/rock.00004.wav", "rock/rock.00005.wav"]
    assert facts["held_out_by_judges"] == 8 and facts["clips"] == 3
    assert ceilings.held_out_clips(library, judges_info, {"rave": builtin}, per_genre=1)[1]["clips"] == 2
    # another library seed is other music: the built-in rule keeps it
    other = {"library": {"library_seed": 7, "per_genre": 4}}
    assert len(ceilings.held_out_clips(library, judges_info, {"rave": other}, per_genre=10)[0]) == 8
    # a card that records its split: its library less the held-out keys
    split = {"library": {"library_seed": 0, "per_genre": 5,
                         "split": {"held_out": ["jazz/jazz.00003.wav", "rock/rock.00002.wav"]}}}
    assert [c.key for c in ceilings.held_out_clips(library, judges_info, {"ddim": split}, per_genre=10)[0]
            ] == ["jazz/jazz.00003.wav", "jazz/jazz.00005.wav", "rock/rock.00002.wav", "rock/rock.00005.wav"]
    # a model whose card does not say what it trained on leaves no clip it could have seen
    clips, facts = ceilings.held_out_clips(library, judges_info, {"melgan": None}, per_genre=10)
    assert clips == [] and "no library clip" in facts["reason"]


# -- the rows and the table -------------------------------------------------------------------------------
def test_an_unavailable_mode_is_a_row_with_its_reason():
    row = summarise("rave", {"unavailable": "no trained checkpoint: models/rave"}, {}, None)
    assert set(row) == set(ROW_KEYS) and row["available"] is False
    table = markdown([row])
    assert "rave (unavailable)" in table and "no trained checkpoint" in table


# -- the command, end to end, on the test library with no judges ------------------------------------------
@pytest.fixture()
def small_library(tmp_path):
    return make_library(tmp_path / "genres")


def test_evaluate_end_to_end_on_a_tiny_run(small_library, tmp_path, monkeypatch):
    import matplotlib.image
    from melodymaker.evaluate.sheet import sheet_size
    monkeypatch.setenv("MELODYMAKER_GENRES_DIR", str(small_library))
    monkeypatch.setenv("MELODYMAKER_MODELS_DIR", str(tmp_path / "models"))  # empty: no judges
    monkeypatch.setenv("MELODYMAKER_VAR_DIR", str(tmp_path / "var"))
    out, png = tmp_path / "results.json", tmp_path / "sheet.png"
    assert main(["--modes", "dataset", "--per-genre", "1", "--length", "3", "--json", str(out),
                 "--sheet", str(png), "-q"]) == 0
    report = json.loads(out.read_text())
    (row,) = report["summary"]
    assert set(row) == set(ROW_KEYS) and row["mode"] == "dataset" and row["available"]
    assert row["requests"] == len(opt.GENRES) and row["tracks"] >= 3  # blues, jazz, rock have clips
    assert row["failed"] == row["requests"] - row["tracks"]
    assert row["length_error_max_ms"] < 1 and row["realtime_factor_median"] > 0
    assert row["tails_over_limit"] is not None and row["peak_memory_mb"] > 0
    assert row["key_tracks"] == row["tracks"] and 0 <= row["key_exact"] <= row["key_score"] <= 1
    # no judges in an empty models folder: the columns say why instead of a number
    assert row["genre_fit"] is None and row["fit_cnn"] is None and row["judges_reason"]
    assert row["frechet_distance"] is None and row["frechet_reason"]
    assert "judges:" in report["markdown"]
    tracks = report["details"]["dataset"]["tracks"]
    assert all(r["seed"] in RESERVED_SEEDS for r in tracks)
    assert all("tail_ms" in r and "lead_ms" in r for r in tracks if "error" not in r)
    # the sheet: one row per genre, the library and the mode side by side
    height, width = matplotlib.image.imread(png).shape[:2]
    assert (width, height) == sheet_size(len(opt.GENRES), 2)


def test_evaluate_with_real_judges_scores_by_both_and_measures_the_library(
        composed_library, tiny_models, tmp_path, monkeypatch):
    """Tiny judges trained on the composed library through their CLI: every fit column is a
    number, genre fit is the lower judge, and the reference is the judges' held-out clips."""
    load_judges = pytest.importorskip("melodymaker.classify.judges",
                                      reason="the two judges are not in this tree yet").load_judges
    monkeypatch.setenv("MELODYMAKER_MODELS_DIR", str(tiny_models))
    monkeypatch.setenv("MELODYMAKER_VAR_DIR", str(tmp_path / "var"))
    out = tmp_path / "results.json"
    assert main(["--modes", "dataset", "--per-genre", "1", "--length", "4", "--genres",
                 str(composed_library), "--json", str(out), "-q"]) == 0
    report = json.loads(out.read_text())
    (row,) = report["summary"]
    assert row["tracks"] == 4 and row["judges_reason"] is None   # the four genres the library has
    assert 0 <= row["fit_cnn"] <= 1 and 0 <= row["fit_features"] <= 1
    assert row["genre_fit"] == min(row["fit_cnn"], row["fit_features"])
    assert 0 < row["mean_p_combined"] <= 1
    assert row["frechet_distance"] is not None and row["frechet_floor"] is not None
    held = load_judges(tiny_models / "classifier").info["split"]["held_out"]
    assert sorted(report["reference"]["keys"]) == sorted(held)
    (untouched,) = report["ceilings"]
    path = untouched["paths"]["untouched"]
    assert untouched["mode"] == "library" and untouched["clips"] == len(held)
    assert path["mrstft"] == 0 and 0 <= path["genre_fit"] <= 1
    tracks = report["details"]["dataset"]["tracks"]
    assert all(r["cnn_top1"] in opt.GENRES and 0 <= r["combined_p"] <= 1 for r in tracks if "error" not in r)
    # each track judged again without its fade-out (0.32 s of 4 s): a column of its own
    assert all(r["before_fade_features_top1"] in opt.GENRES for r in tracks if "error" not in r)
    assert 0 <= row["genre_fit_before_fade"] <= 1 and "before fade-out (lower)" in report["markdown"]


def test_a_mode_whose_process_fails_is_a_row_with_its_reason():
    row = summarise("ddim", {"crashed": "BrokenProcessPool: killed"}, {}, None)
    assert set(row) == set(ROW_KEYS) and row["tracks"] is None
    assert "ddim (failed)" in markdown([row]) and "BrokenProcessPool" in markdown([row])


def test_spread_ratio_tells_a_collapsed_mode_from_a_varied_one():
    from melodymaker.evaluate.summary import spread_ratio
    rng = np.random.default_rng(0)
    genres = ["jazz"] * 20 + ["rock"] * 20
    centres = {"jazz": np.zeros(16), "rock": np.full(16, 5.0)}
    library = np.stack([centres[g] + rng.normal(size=16) for g in genres])
    varied = np.stack([centres[g] + rng.normal(size=16) for g in genres])
    collapsed = np.stack([centres[g] + 0.05 * rng.normal(size=16) for g in genres])
    assert 0.8 < spread_ratio(genres, varied, genres, library) < 1.25
    assert spread_ratio(genres, collapsed, genres, library) < 0.1
    assert spread_ratio(genres, varied, [], None) is None

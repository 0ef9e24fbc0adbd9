"""Variations: with candidates N every candidate is kept as a track of its own under one group id,
the best is the one returned, and the store's track limit prunes a group as a whole and never a
track that a kept track extends."""
from __future__ import annotations


import numpy as np

from conftest import SR, click_track, wait_done

from melodymaker.store import DirectoryStore, new_id
from melodymaker.track import Track


def test_every_candidate_is_kept_under_one_group_and_the_best_is_returned(tiny_models, composed_library, tmp_path):
    from app import create_app
    from melodymaker.settings import Settings
    app = create_app(Settings(genres_dir=composed_library, models_dir=tiny_models, var_dir=tmp_path / "var",
                              workers=2, max_queue=8))
    try:
        client = app.test_client()
        r = client.post("/api/tracks", json={"genre": "disco", "mode": "compose", "length": 3, "seed": 4,
                                             "candidates": 3})
        assert r.status_code == 202
        best_id = r.json["id"]
        best = wait_done(client, best_id)
        group = best["group"]
        assert group["chosen"] == best_id and len(group["tracks"]) == 3
        ids = [t["id"] for t in group["tracks"]]
        assert best_id in ids and len(set(ids)) == 3
        fits = [t["genre_fit"] for t in group["tracks"]]
        assert fits == sorted(fits, reverse=True) and fits[0] == best["genre_fit"]["probability"]
        seeds = {t["seed"] for t in group["tracks"]}
        assert len(seeds) == 3 and 4 in seeds
        for member in group["tracks"]:      # each is a finished track with its own audio, seed and fit
            meta = client.get(f"/api/tracks/{member['id']}").json["meta"]
            assert meta["group"]["id"] == group["id"] and meta["seed"] == member["seed"]
            assert meta["genre_fit"]["probability"] == member["genre_fit"]
            wav = client.get(f"/api/tracks/{member['id']}/audio.wav")
            assert wav.status_code == 200 and len(wav.data) > 3 * SR
        listed = {t["id"] for t in client.get("/api/tracks").json["tracks"]}
        assert set(ids) <= listed
        # keeping a variation marks it (the page then lists it in the history); a lone track has none
        other = next(i for i in ids if i != best_id)
        r = client.post(f"/api/tracks/{other}/keep")
        assert r.status_code == 200 and r.json["kept"] is True
        assert client.get(f"/api/tracks/{other}").json["meta"]["kept"] is True
        assert "kept" not in client.get(f"/api/tracks/{best_id}").json["meta"]
        lone = client.post("/api/tracks", json={"genre": "disco", "mode": "compose", "length": 2}).json["id"]
        wait_done(client, lone)
        r = client.post(f"/api/tracks/{lone}/keep")
        assert r.status_code == 409 and r.json["field"] == "id"
        assert client.post("/api/tracks/0123456789abcdef0123456789abcdef/keep").status_code == 404
        # a variation that was not chosen can be extended like any track
        r = client.post(f"/api/tracks/{other}/extend", json={"seconds": 2})
        assert r.status_code == 202
        extended = wait_done(client, r.json["id"])
        assert extended["parent"] == other and extended["length"] == 5
        assert extended["seed"] == client.get(f"/api/tracks/{other}").json["meta"]["seed"]
    finally:
        app.extensions["melodymaker"].close()


def _save(store: DirectoryStore, **meta) -> str:
    y = click_track(120, 1.0)
    return store.save(Track(y, SR), {"genre": "rock", "mode": "dataset", "seed": 0, "length": 1.0, **meta})


def test_the_track_limit_prunes_a_group_as_one_and_keeps_what_kept_tracks_extend(tmp_path):
    store = DirectoryStore(tmp_path / "tracks", max_tracks=3)
    old_parent = _save(store)
    group = {"id": new_id()}
    members = [_save(store, group=group) for _ in range(3)]        # one unit of three
    child = _save(store, parent=old_parent)                        # extends the oldest track
    alone = _save(store)
    kept = {m["id"] for m in store.list(100)}
    # three units are kept (alone, child, the group); the oldest track stays because child extends it
    assert kept == {alone, child, *members, old_parent}
    newest = _save(store)
    kept = {m["id"] for m in store.list(100)}
    # the group is now the oldest unit and goes as a whole; child (kept) still holds its parent
    assert kept == {newest, alone, child, old_parent}
    assert not set(members) & kept
    assert np.asarray(store.track(old_parent).audio).size == SR

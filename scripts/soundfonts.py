"""TimGM6mb beside FluidR3_GM (or any fonts): the same 10 scores, one per genre, through each.

    python scripts/soundfonts.py [--fonts A.sf2 B.sf2] [--length 20] [--json out.json] [--markdown out.md]

Per font, in a fresh process (honest memory): each genre's score (compose request, seed 1, no key
or tempo asked, so the score is the same for every font) rendered and finished by the service as a
compose request is, and measured: render time, loudness range (the spread of 3 s short-term
loudness, 95th minus 10th percentile, as EBU R128's LRA), spectral centroid and flatness (means),
and what both genre judges say. Then the server's memory: `python app.py` with every engine
loaded, the font set by MELODYMAKER_SOUNDFONT, warmed up, and two 30 s compose requests at once;
its peak resident set (VmHWM) is read from /proc. Linux only for the memory figure.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def measure_font(font: str, length: float, models: str, genres: str) -> dict:
    """Runs in a child process: the ten scores through `font`, measured."""
    import librosa
    import numpy as np

    from melodymaker import audio
    from melodymaker.evaluate.scoring import judge, load_judges
    from melodymaker.options import GENRES
    from melodymaker.request import GenerationRequest
    from melodymaker.service import Service
    from melodymaker.settings import Settings
    service = Service(Settings.from_env(soundfont=Path(font), models_dir=Path(models),
                                        genres_dir=Path(genres), queue=""),
                      modes=["compose"], with_store=False)
    judges, reason = load_judges(models)
    rows = {}
    for genre in GENRES:
        t0 = time.perf_counter()
        track, meta = service.generate_one(GenerationRequest.parse(
            {"genre": genre, "mode": "compose", "length": length, "seed": 1}))
        seconds = time.perf_counter() - t0
        y, sr = track.audio, track.sr
        hop = int(0.5 * sr)
        short = [audio.loudness(y[i:i + 3 * sr], sr) for i in range(0, len(y) - 3 * sr + 1, hop)]
        short = [s for s in short if s > -70]
        row = {"render_s": round(seconds, 3),
               "lra_lu": round(float(np.percentile(short, 95) - np.percentile(short, 10)), 2) if short else None,
               "centroid_hz": round(float(np.mean(librosa.feature.spectral_centroid(y=y, sr=sr))), 1),
               "flatness": round(float(np.mean(librosa.feature.spectral_flatness(y=y))), 4),
               "loudness_lufs": meta["loudness_lufs"]}
        if judges is not None:
            verdict, _ = judge(judges, y, sr, genre)
            row.update({"cnn_top1": verdict["cnn_top1"], "features_top1": verdict["features_top1"],
                        "cnn_p": verdict["cnn_p"], "features_p": verdict["features_p"]})
        rows[genre] = row
    service.close()
    hits = {j: sum(r.get(f"{j}_top1") == g for g, r in rows.items()) / len(rows) for j in ("cnn", "features")}
    return {"font": Path(font).name, "megabytes": round(Path(font).stat().st_size / 2 ** 20, 1),
            "genres": rows, "judges_reason": reason,
            "fit_cnn": hits["cnn"] if judges else None, "fit_features": hits["features"] if judges else None,
            "genre_fit": min(hits.values()) if judges else None}


def server_memory(font: str, models: str, genres: str) -> dict:
    """The server's peak RSS with every engine loaded and two compose renders at once."""
    from loadtest import free_port, stop, wait_ready
    port = free_port()
    env = {**os.environ, "MELODYMAKER_SOUNDFONT": font, "MELODYMAKER_MODELS_DIR": models,
           "MELODYMAKER_GENRES_DIR": genres, "MELODYMAKER_NO_BROWSER": "1", "MELODYMAKER_WORKERS": "2",
           "MELODYMAKER_VAR_DIR": str(Path("/tmp") / f"melodymaker-fonts-{port}")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port),
                             "--no-browser"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT)
    try:
        wait_ready("127.0.0.1", port, 120, proc)
        time.sleep(5)   # the background warm-up (classifier, library analysis)
        before = _status(proc.pid)

        def one(seed):
            body = json.dumps({"genre": "rock", "mode": "compose", "length": 30, "seed": seed}).encode()
            req = urllib.request.Request(f"http://127.0.0.1:{port}/generate", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=300) as r:
                r.read()
        threads = [threading.Thread(target=one, args=(s,)) for s in (1, 2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = _status(proc.pid)
        return {"rss_idle_mb": before["VmRSS"], "rss_peak_mb": after["VmHWM"], "rss_after_mb": after["VmRSS"]}
    finally:
        stop(proc)


def _status(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


def markdown(results: list[dict]) -> str:
    from melodymaker.options import GENRES
    fonts = [r["font"] for r in results]
    lines = ["| genre | " + " | ".join(f"{f}: render s, LRA LU, centroid Hz, flatness, CNN / features top-1"
                                        for f in fonts) + " |",
             "| --- |" + " --- |" * len(fonts)]
    for g in GENRES:
        cells = []
        for r in results:
            row = r["genres"][g]
            cells.append(f"{row['render_s']:.2f}, {row['lra_lu']}, {row['centroid_hz']:.0f}, {row['flatness']:.4f}, "
                         f"{row.get('cnn_top1', '-')} / {row.get('features_top1', '-')}")
        lines.append(f"| {g} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("| font | MB | genre fit (lower judge) | CNN | features | server RSS idle / peak with 2 renders, MB |")
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        mem = r.get("server") or {}
        lines.append(f"| {r['font']} | {r['megabytes']} | {r['genre_fit']} | {r['fit_cnn']} | {r['fit_features']} | "
                     f"{mem.get('rss_idle_mb', '-')} / {mem.get('rss_peak_mb', '-')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from melodymaker.midi import DEFAULT_SOUNDFONT, SYSTEM_SOUNDFONTS
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--fonts", nargs="+", help="default: TimGM6mb and the first installed system font")
    p.add_argument("--length", type=float, default=20.0)
    p.add_argument("--models", default=str(ROOT / "models"))
    p.add_argument("--genres", default=str(ROOT / "genres"))
    p.add_argument("--no-server", action="store_true", help="skip the server memory measurement")
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:   # one font, measured in this fresh process
        print(json.dumps(measure_font(args.child, args.length, args.models, args.genres)))
        return 0
    fonts = args.fonts or [str(DEFAULT_SOUNDFONT)] + [str(f) for f in SYSTEM_SOUNDFONTS if f.is_file()][:1]
    results = []
    for font in fonts:
        out = subprocess.run([sys.executable, __file__, "--child", font, "--length", str(args.length),
                              "--models", args.models, "--genres", args.genres],
                             capture_output=True, text=True, check=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if not args.no_server:
            result["server"] = server_memory(font, args.models, args.genres)
        results.append(result)
        print(f"{result['font']}: genre fit {result['genre_fit']}, server {result.get('server')}", flush=True)
    table = markdown(results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.markdown:
        args.markdown.write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

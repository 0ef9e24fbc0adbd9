"""The command line and the real server, as a user starts them."""
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import soundfile as sf

from conftest import ROOT


def run_cli(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "melodymaker", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_generates_mp3_from_the_extension(tmp_path, library_dir):
    out = tmp_path / "rock.mp3"
    r = run_cli("generate", "--genre", "rock", "--tempo", "140", "--length", "15", "--mode", "dataset",
                "--seed", "3", "--genres", str(library_dir), "-o", str(out),
                env_extra={"MELODYMAKER_VAR_DIR": str(tmp_path / "var")})
    assert r.returncode == 0, r.stderr
    y, sr = sf.read(out)
    assert abs(len(y) / sr - 15) < 0.1
    assert "wrote" in r.stdout and "seed 3" in r.stdout


def test_cli_bad_input_is_a_message_not_a_traceback(tmp_path, library_dir):
    r = run_cli("generate", "--genre", "polka", "--genres", str(library_dir), "-o", str(tmp_path / "x.wav"))
    assert r.returncode == 2
    assert "genre" in r.stderr and "blues" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("generate", "--genre", "rock", "--genres", str(library_dir), "-o", str(tmp_path / "x.ogg"))
    assert r.returncode == 2 and ".mp3" in r.stderr and "Traceback" not in r.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_serves_generate_over_http(tmp_path, library_dir):
    port = free_port()
    env = {**os.environ, "MELODYMAKER_GENRES_DIR": str(library_dir), "MELODYMAKER_VAR_DIR": str(tmp_path / "var")}
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port), "--no-browser"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                health = json.load(urllib.request.urlopen(base + "/api/health", timeout=2))
                break
            except OSError:  # refused, reset or slow while the server starts
                assert time.time() < deadline and proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.3)
        assert health["library"]["clips"] == 5
        body = json.dumps({"genre": "jazz", "tempo": 96, "length": 5, "mode": "dataset"}).encode()
        req = urllib.request.Request(base + "/generate", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            assert r.headers["Content-Type"] == "audio/wav"
            y, sr = sf.read(io.BytesIO(r.read()))
        assert len(y) == 5 * sr
        bad = urllib.request.Request(base + "/generate", data=b'{"genre":"x"}',
                                     headers={"Content-Type": "application/json"})
        try:
            urllib.request.urlopen(bad, timeout=30)
            raise AssertionError("expected 400")
        except urllib.error.HTTPError as e:
            assert e.code == 400 and json.load(e)["field"] == "genre"
    finally:
        proc.terminate()
        proc.wait(timeout=10)

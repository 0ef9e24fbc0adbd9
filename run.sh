#!/usr/bin/env bash
# MelodyMaker in one command.
#   ./run.sh                 set up (venv, dependencies, default library) and serve on 127.0.0.1:8090
#   ./run.sh --port 9000 --host 127.0.0.1 --no-browser
#   ./run.sh test [ARGS]     set up, then run the test suite (ARGS go to pytest)
set -euo pipefail
cd "$(dirname "$0")"

VENV="${MELODYMAKER_VENV:-.venv}"
PY="$VENV/bin/python"
GENRES_DIR="${MELODYMAKER_GENRES_DIR:-genres}"
DEFAULT_LIBRARY_PER_GENRE="${MELODYMAKER_LIBRARY_PER_GENRE:-20}"

pick_python() {
  for candidate in "${PYTHON:-}" python3.11 python3 python; do
    if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return
    fi
  done
  echo "MelodyMaker needs Python 3.11 or newer on PATH (or set PYTHON=/path/to/python3.11)" >&2
  exit 1
}

setup() {
  if [ ! -x "$PY" ]; then
    echo "==> creating the virtual environment in $VENV"
    "$(pick_python)" -m venv "$VENV"
  fi
  local want stamp="$VENV/.requirements.sha256"
  want=$(cat requirements.txt requirements-nodeps.txt | "$PY" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())')
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "==> installing dependencies (first run takes a few minutes)"
    "$PY" -m pip install --disable-pip-version-check -q -r requirements.txt
    "$PY" -m pip install --disable-pip-version-check -q --no-deps -r requirements-nodeps.txt
    echo "==> compiling the audio analysis kernels once (numba cache)"
    "$PY" -c 'from melodymaker.audio import warm_up; warm_up()'
    echo "$want" > "$stamp"
  fi
}

library_has_audio() {
  [ -d "$GENRES_DIR" ] && find -L "$GENRES_DIR" -type f \( -iname '*.au' -o -iname '*.wav' -o -iname '*.mp3' \
    -o -iname '*.flac' -o -iname '*.ogg' \) -print -quit 2>/dev/null | grep -q .
}

build_library() {
  if library_has_audio; then return; fi
  echo "==> $GENRES_DIR has no audio: building the default library ($DEFAULT_LIBRARY_PER_GENRE clips per genre)"
  "$PY" -m melodymaker library build --out "$GENRES_DIR" --per-genre "$DEFAULT_LIBRARY_PER_GENRE" --seed 0
}

case "${1:-serve}" in
  test)
    shift
    setup
    exec "$PY" -m pytest -q tests "$@"
    ;;
  serve|--*)
    [ "${1:-}" = serve ] && shift
    setup
    build_library
    exec "$PY" app.py "$@"
    ;;
  *)
    echo "usage: ./run.sh [--host H] [--port P] [--no-browser] | ./run.sh test [pytest args]" >&2
    exit 2
    ;;
esac

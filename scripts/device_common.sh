# What the one-command GPU training scripts share (sourced by scripts/device_rave.sh and
# scripts/device_ddim.sh; not run alone). The caller sets, before sourcing:
#   TAG       the name in its log lines, e.g. device_ddim
#   DEADLINE  seconds after the start by which everything has ended
# and may set PYTHON (default python3), SKIP_WHEELS (non-empty: use the environment as it is).
# It gives: T0, PY, say, left, install_wheels, check_packages, build_library DIR PER_GENRE WORKERS,
# train_minutes END_RESERVE LOAD_RESERVE [CAP_SECONDS] (prints minutes, or fails when under 20 s).

T0=$(date +%s)
PY=${PYTHON:-python3}
OUT=${OUT:?OUT must name the folder whose files come back}
export PYTHONUNBUFFERED=1
mkdir -p "$OUT"

say() { echo "[$TAG +$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }

install_wheels() {
    # the packages the machine's image lacks travel as wheels in the git-ignored .whl/ folder
    say "machine: $(nproc) cores; $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo 'no GPU tool')"
    if [ -z "${SKIP_WHEELS:-}" ]; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
            || { say "wheel install failed"; return 1; }
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    fi
}

check_packages() {
    "$PY" -c "import sys, torch, numpy, scipy, soundfile, librosa, soxr, pretty_midi, tinysoundfont
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      'numpy', numpy.__version__, 'librosa', librosa.__version__)" 2>&1 | tee -a "$OUT/train.log" \
        || { say "a package is missing"; return 1; }
}

build_library() {  # DIR PER_GENRE WORKERS: the project's own builder, seed 0
    say "building the library: $2 clips per genre, seed 0, $3 workers -> $1"
    "$PY" -m melodymaker library build --out "$1" --per-genre "$2" --seed 0 --workers "$3" -q \
        || { say "library build failed"; return 1; }
}

train_minutes() {  # END_RESERVE LOAD_RESERVE [CAP_SECONDS]: minutes the trainer may run
    local seconds=$(( $(left) - $1 - $2 ))
    if [ -n "${3:-}" ] && [ "$3" -lt "$seconds" ]; then seconds=$3; fi
    if [ "$seconds" -lt 20 ]; then say "only $seconds s left to train: stopping" >&2; return 1; fi
    awk "BEGIN { printf \"%.2f\", $seconds / 60 }"
}

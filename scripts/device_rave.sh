#!/usr/bin/env bash
# Train RAVE on one GPU machine in ONE command of at most 600 s, and bring rave.pt back in $OUT.
#
# Run from the repository root, by the device tool (carry the git-ignored .whl/ folder of wheels:
# the packages the machine's image lacks, for Python 3.12):
#
#     bash scripts/device_rave.sh
#
# 1. installs .whl/*.whl into /tmp/site (soundfile, librosa, soxr, pretty_midi, tinysoundfont, ...);
# 2. builds the 100-per-genre library with the project's own builder into /tmp/lib100;
# 3. trains from the shipped models/rave/rave.pt (latent widened 16 -> 32, the new noise branch
#    from scratch, the low-band-weighted spectral loss; no adversarial phase in so short a run),
#    into /tmp/rave_run (never inside the repository), for whatever time the deadline leaves;
# 4. the trainer's card measures the resynthesis ceiling (MR-STFT distances, on the GPU) of the
#    new model and of the shipped one on the same held-out clips; rave.pt, card.json, README.md,
#    losses.csv and the logs go to $OUT. The judges' top-1 is measured back home (CPU-bound):
#        python -m train_rave.ceiling --checkpoint rave.pt --baseline models/rave/rave.pt --genres <lib100>
#
# Everything ends RAVE_DEADLINE (560) seconds after the start. A local dry run of the logic, on
# the CPU with a tiny budget (a fake $OUT, the project's venv, no wheels):
#
#     OUT=/tmp/fake_out PYTHON=.venv/bin/python RAVE_SKIP_WHEELS=1 RAVE_DEVICE=cpu RAVE_PER_GENRE=2 \
#         RAVE_WORKERS=2 RAVE_BATCH=2 RAVE_THREADS=2 RAVE_DEADLINE=170 RAVE_LIBRARY=/tmp/dry_lib \
#         RAVE_RUN=/tmp/dry_run bash scripts/device_rave.sh
set -uo pipefail

T0=$(date +%s)
PY=${PYTHON:-python3}
DEADLINE=${RAVE_DEADLINE:-560}        # seconds after the start by which everything has ended
END_RESERVE=${RAVE_END_RESERVE:-60}   # kept after training: the last checkpoint, the card (ceilings on the GPU), the copy
LOAD_RESERVE=${RAVE_LOAD_RESERVE:-40} # the trainer's start: imports, ~900 clips decoded, the model built
PER_GENRE=${RAVE_PER_GENRE:-100}
WORKERS=${RAVE_WORKERS:-16}
DEVICE=${RAVE_DEVICE:-cuda}
BATCH=${RAVE_BATCH:-64}
THREADS=${RAVE_THREADS:-16}
LR=${RAVE_LR:-5e-4}
LIB=${RAVE_LIBRARY:-/tmp/lib100}
RUN=${RAVE_RUN:-/tmp/rave_run}
INIT=${RAVE_INIT:-models/rave/rave.pt}
OUT=${OUT:?OUT must name the folder whose files come back}
export PYTHONUNBUFFERED=1

say() { echo "[device_rave +$(( $(date +%s) - T0 ))s] $*"; }
left() { echo $(( DEADLINE - ($(date +%s) - T0) )); }
mkdir -p "$OUT"

say "machine: $(nproc) cores; $(command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || echo 'no GPU tool')"
if [ -z "${RAVE_SKIP_WHEELS:-}" ]; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { say "wheel install failed"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
"$PY" -c "import sys, torch, numpy, scipy, soundfile, librosa, soxr, pretty_midi, tinysoundfont
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(),
      'numpy', numpy.__version__, 'librosa', librosa.__version__)" 2>&1 | tee "$OUT/env.txt" \
    || { say "a package is missing"; exit 1; }

say "building the library: $PER_GENRE clips per genre, seed 0, $WORKERS workers -> $LIB"
"$PY" -m melodymaker library build --out "$LIB" --per-genre "$PER_GENRE" --seed 0 --workers "$WORKERS" -q \
    || { say "library build failed"; exit 1; }

TRAIN_SECONDS=$(( $(left) - END_RESERVE - LOAD_RESERVE ))
if [ -n "${RAVE_TRAIN_SECONDS:-}" ] && [ "$RAVE_TRAIN_SECONDS" -lt "$TRAIN_SECONDS" ]; then
    TRAIN_SECONDS=$RAVE_TRAIN_SECONDS
fi
if [ "$TRAIN_SECONDS" -lt 20 ]; then say "only $TRAIN_SECONDS s left to train: stopping"; exit 1; fi
MAX_MINUTES=$(awk "BEGIN { printf \"%.2f\", $TRAIN_SECONDS / 60 }")
say "training for $MAX_MINUTES min on $DEVICE from $INIT -> $RUN"
rm -rf "$RUN"
# the trainer stops itself at --max-minutes; timeout is the backstop that keeps the deadline
timeout -k 5 $(( $(left) - 8 )) "$PY" -m train_rave.train --genres "$LIB" --out "$RUN" --fresh \
    --init-from "$INIT" --baseline "$INIT" --device "$DEVICE" --threads "$THREADS" \
    --batch "$BATCH" --lr "$LR" --window 16384 --channels 96,192,288,384 --latent-size 32 --noise-bands 5 \
    --loss lowband --steps 100000000 --adv-start 100000000 --holdout 10 --no-judges \
    --max-minutes "$MAX_MINUTES" --log-every 100 --save-every 1000 --no-progress 2>&1 | tee "$OUT/train.log"
status=${PIPESTATUS[0]}
say "trainer exit status $status"

for f in rave.pt card.json README.md losses.csv; do
    if [ -f "$RUN/$f" ]; then cp "$RUN/$f" "$OUT/$f"; else say "missing: $RUN/$f"; fi
done
ls -l "$OUT"
say "done; $(left) s before the deadline"
[ -f "$OUT/rave.pt" ] || exit 1
exit "$status"

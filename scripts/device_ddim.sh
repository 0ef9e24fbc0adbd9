#!/usr/bin/env bash
# Train the DDIM on one GPU machine in ONE command of at most 600 s, and bring ddim.pt back in $OUT.
#
# Run from the repository root, by the device tool (carry the git-ignored .whl/ folder of wheels:
# the packages the machine's image lacks, for Python 3.12):
#
#     bash scripts/device_ddim.sh
#
# 1. installs .whl/*.whl into /tmp/site; 2. builds the 100-per-genre library with the project's
# own builder into /tmp/lib100; 3. trains from the shipped models/ddim/ddim.pt (--init-from: its
# shape, weights and per-bin scale; --tempo-cond adds the tempo embedding if it has none, --stretch
# 0.25 adds each clip time-stretched with its tempo scaled alike), the
# clips beat-tracked on every core first, into /tmp/ddim_run (never inside the repository), for
# whatever time the deadline leaves; 4. ddim.pt, card.json, log.csv and the logs go to $OUT.
# Measure it back home, on tuning seeds first (the card says how), before it replaces the shipped one.
#
# Everything ends DDIM_DEADLINE (560) seconds after the start. A local dry run of the logic, on
# the CPU with a tiny budget (a fake $OUT, the project's venv, no wheels):
#
#     OUT=/tmp/fake_out PYTHON=.venv/bin/python DDIM_SKIP_WHEELS=1 DDIM_DEVICE=cpu DDIM_PER_GENRE=2 \
#         DDIM_WORKERS=2 DDIM_BATCH=2 DDIM_THREADS=1 DDIM_DEADLINE=150 DDIM_LIBRARY=/tmp/dry_lib \
#         DDIM_RUN=/tmp/dry_ddim bash scripts/device_ddim.sh
set -uo pipefail

TAG=device_ddim
DEADLINE=${DDIM_DEADLINE:-560}        # seconds after the start by which everything has ended
END_RESERVE=${DDIM_END_RESERVE:-30}   # kept after training: the last checkpoint, the card, the copy
LOAD_RESERVE=${DDIM_LOAD_RESERVE:-60} # the trainer's start: ~1000 clips beat-tracked and transformed
PER_GENRE=${DDIM_PER_GENRE:-100}
WORKERS=${DDIM_WORKERS:-16}
DEVICE=${DDIM_DEVICE:-cuda}
BATCH=${DDIM_BATCH:-64}
THREADS=${DDIM_THREADS:-4}
LR=${DDIM_LR:-2e-4}
FRAMES=${DDIM_FRAMES:-64}           # training window in frames: 64 of the shipped 1,024-bin network = 3 s
LIB=${DDIM_LIBRARY:-/tmp/lib100}
RUN=${DDIM_RUN:-/tmp/ddim_run}
INIT=${DDIM_INIT:-models/ddim/ddim.pt}
# how the run grows the network it starts from (diffusion_model/README.md): e.g.
# DDIM_GROW="--taps 5" (a gain filter along time in each bin) or "--taps 5 --widen --channels 320,224,320"
GROW=${DDIM_GROW:-}
SKIP_WHEELS=${DDIM_SKIP_WHEELS:-}
source "$(dirname "$0")/device_common.sh"

install_wheels || exit 1
check_packages || exit 1
build_library "$LIB" "$PER_GENRE" "$WORKERS" || exit 1
MAX_MINUTES=$(train_minutes "$END_RESERVE" "$LOAD_RESERVE" "${DDIM_TRAIN_SECONDS:-}") || exit 1
say "training for $MAX_MINUTES min on $DEVICE from $INIT ${GROW:+(grown: $GROW) }-> $RUN"
rm -rf "$RUN"
# the trainer stops itself at --max-minutes (its clock starts after the library is read, so the
# load reserve is not counted twice); timeout is the backstop that keeps the deadline
timeout -k 5 $(( $(left) - 8 )) "$PY" -m diffusion_model.train --genres "$LIB" --out "$RUN" \
    --init-from "$INIT" $GROW --tempo-cond --stretch 0.25 --device "$DEVICE" --threads "$THREADS" --workers "$WORKERS" \
    --batch-size "$BATCH" --lr "$LR" --frames "$FRAMES" --seed 3 --steps 100000000 \
    --max-minutes "$MAX_MINUTES" --log-every 100 --save-every 1000 --no-progress 2>&1 | tee -a "$OUT/train.log"
status=${PIPESTATUS[0]}
say "trainer exit status $status"

for f in ddim.pt card.json log.csv; do
    if [ -f "$RUN/$f" ]; then cp "$RUN/$f" "$OUT/$f"; else say "missing: $RUN/$f"; fi
done
ls -l "$OUT"
say "done; $(left) s before the deadline"
[ -f "$OUT/ddim.pt" ] || exit 1
exit "$status"

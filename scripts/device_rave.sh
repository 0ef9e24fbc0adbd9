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
# 3. trains from the shipped models/rave/rave.pt into /tmp/rave_run (never inside the repository),
#    for whatever time the deadline leaves, in the phase RAVE_PHASE names:
#      spectral     (the default) encoder and decoder on the low-band-weighted spectral loss;
#      adversarial  RAVE's second phase, for weights whose spectral phase has converged: the
#                   encoder frozen, the decoder against the waveform discriminators and STFT
#                   discriminators (RAVE_D_STFT FFT sizes) with feature matching, the discriminator
#                   at a lower learning rate; snapshots every RAVE_KEEP steps, of which four, spread
#                   over the run, come back beside the last (to choose by the judges at home);
# 4. the trainer's card measures the resynthesis ceiling (MR-STFT distances, on the GPU) of the
#    new model and of the shipped one on the same held-out clips; rave.pt, the snapshots, card.json,
#    losses.csv and the log go to $OUT (8 files at most come back). The judges' top-1 is measured
#    back home (CPU-bound):
#        python -m train_rave.ceiling --checkpoint rave.pt --baseline models/rave/rave.pt --genres <lib100>
#
# Everything ends RAVE_DEADLINE (560) seconds after the start. A local dry run of the logic, on
# the CPU with a tiny budget (a fake $OUT, the project's venv, no wheels):
#
#     OUT=/tmp/fake_out PYTHON=.venv/bin/python RAVE_SKIP_WHEELS=1 RAVE_DEVICE=cpu RAVE_PER_GENRE=2 \
#         RAVE_WORKERS=2 RAVE_BATCH=2 RAVE_THREADS=2 RAVE_DEADLINE=170 RAVE_LIBRARY=/tmp/dry_lib \
#         RAVE_RUN=/tmp/dry_run bash scripts/device_rave.sh
set -uo pipefail

TAG=device_rave
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
PHASE=${RAVE_PHASE:-spectral}
D_STFT=${RAVE_D_STFT:-2048,1024,512}
KEEP=${RAVE_KEEP:-1000}
read -r -a EXTRA <<< "${RAVE_EXTRA:-}"   # more trainer options, e.g. "--chroma-weight 5" or "--lr-d 1e-4"
case "$PHASE" in
    spectral) PHASE_ARGS=(--adv-start 100000000) ;;
    adversarial) PHASE_ARGS=(--adv-start 0 --adv-plateau 0 --d-stft "$D_STFT" --keep-every "$KEEP") ;;
    *) echo "RAVE_PHASE must be spectral or adversarial, got $PHASE" >&2; exit 2 ;;
esac
SKIP_WHEELS=${RAVE_SKIP_WHEELS:-}
source "$(dirname "$0")/device_common.sh"

install_wheels || exit 1
check_packages || exit 1
build_library "$LIB" "$PER_GENRE" "$WORKERS" || exit 1
MAX_MINUTES=$(train_minutes "$END_RESERVE" "$LOAD_RESERVE" "${RAVE_TRAIN_SECONDS:-}") || exit 1
say "training ($PHASE) for $MAX_MINUTES min on $DEVICE from $INIT -> $RUN"
rm -rf "$RUN"
# the trainer stops itself at --max-minutes; timeout is the backstop that keeps the deadline
timeout -k 5 $(( $(left) - 8 )) "$PY" -m train_rave.train --genres "$LIB" --out "$RUN" --fresh \
    --init-from "$INIT" --baseline "$INIT" --device "$DEVICE" --threads "$THREADS" \
    --batch "$BATCH" --lr "$LR" --window 16384 --channels 96,192,288,384 --latent-size 32 --noise-bands 5 \
    --loss lowband --steps 100000000 "${PHASE_ARGS[@]}" "${EXTRA[@]}" --holdout 10 --no-judges \
    --max-minutes "$MAX_MINUTES" --log-every 100 --save-every "$KEEP" --no-progress 2>&1 | tee -a "$OUT/train.log"
status=${PIPESTATUS[0]}
say "trainer exit status $status"

for f in rave.pt card.json losses.csv; do
    if [ -f "$RUN/$f" ]; then cp "$RUN/$f" "$OUT/$f"; else say "missing: $RUN/$f"; fi
done
# four snapshots spread over the run (the first, the last, two between), oldest first
mapfile -t SNAPS < <(ls "$RUN" | grep -E '^rave-step[0-9]+\.pt$' | sort -V)
n=${#SNAPS[@]}
if [ "$n" -gt 0 ]; then
    for i in $(printf '%s\n' 0 $(( (n - 1) / 3 )) $(( 2 * (n - 1) / 3 )) $(( n - 1 )) | sort -nu); do
        cp "$RUN/${SNAPS[$i]}" "$OUT/"
    done
fi
ls -l "$OUT"
say "done; $(left) s before the deadline"
[ -f "$OUT/rave.pt" ] || exit 1
exit "$status"

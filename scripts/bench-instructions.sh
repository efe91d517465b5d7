#!/usr/bin/env bash
# Instructions per simulated request in the steady state, counted by callgrind: the figure of
# the speed benchmark that does not depend on the machine (wall time does; see
# docs/performance.md, "The figure depends on the machine"). Beside it, the branches a request
# executes and how many of them callgrind's model predictor mispredicts: a simple one (16,384
# two-bit counters indexed by address and recent history; an indirect jump predicted to go where
# it last went), far simpler than a real core's, and its count moves with code layout, so it
# compares one program with another, not one build with the next or with what a core does.
#
#   scripts/bench-instructions.sh
#
# Each model is run for two lengths and the counts differenced, so that start-up (parsing,
# allocation) and the final report (histograms, CSV files) drop out:
#   M/M/c   benches/mmc8_10m_requests.toml, 30 and 60 simulated seconds (192 k requests apart)
#   scale   benches/scale.toml at k = 1 (the quickstart's stateful topology), 5 and 7 minutes
#           (both past its crash and the restart 90 s later)
#   loop    with RUST_BOUND=/path/to/rust-bound, the minimal event loop of the same M/M/c model,
#           100 k and 300 k requests: the ratio statesim / loop is what the wall-time ratio
#           follows, times how much faster a core runs statesim's code than the loop's
#
# Settings (environment variables):
#   RUST_BOUND=/path/to/rust-bound   also count the minimal loop (`--variant random --n N`)
#   MODELS="mmc scale"               which of statesim's models to count
#
# Needs valgrind. Takes about half a minute (callgrind runs a program some 50x slower; its branch
# model adds about a tenth).
set -euo pipefail

cd "$(dirname "$0")/.."
RUST_BOUND=${RUST_BOUND:-}
MODELS=${MODELS:-"mmc scale"}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

for model in $MODELS; do
    case "$model" in
    mmc | scale) ;;
    *)
        echo "bench-instructions: unknown model '$model' (expected mmc or scale)" >&2
        exit 2
        ;;
    esac
done
if ! command -v valgrind >/dev/null; then
    echo "bench-instructions: valgrind is not installed" >&2
    exit 2
fi
echo "building statesim (release)..." >&2
cargo build --release --quiet

# Callgrind's counts for a whole process (instructions, branches, mispredicted branches),
# its stderr left in $WORK/callgrind: run_counted COMMAND...
run_counted() {
    valgrind --tool=callgrind --branch-sim=yes --callgrind-out-file=/dev/null "$@" \
        >/dev/null 2>"$WORK/callgrind" || { cat "$WORK/callgrind" >&2; exit 1; }
    # "Collected : Ir Bc Bcm Bi Bim": conditional and indirect branches, and their misses.
    awk '/Collected :/ { print $4, $5 + $7, $6 + $8 }' "$WORK/callgrind"
}

# The counts of one statesim run and its requests (from its `--stats` line):
# statesim_count COMMAND...
statesim_count() {
    local counts requests
    counts=$(run_counted "$@" --stats)
    requests=$(awk '/^stats:/ { for (i = 2; i <= NF; i++) if ($i == "requests") print $(i - 1) }' "$WORK/callgrind")
    echo "$counts $requests"
}

# One row: model, the counts and requests of the short run, then of the long run; the
# per-request figures are the differences over the requests between them.
row() {
    awk -v model="$1" -v i1="$2" -v b1="$3" -v m1="$4" -v r1="$5" \
        -v i2="$6" -v b2="$7" -v m2="$8" -v r2="$9" 'BEGIN {
        r = r2 - r1
        printf "%-7s %14.0f %14.0f %10.0f %10.0f %12.0f %12.1f %12.2f\n", model, i1, i2, r1, r2,
            (i2 - i1) / r, (b2 - b1) / r, (m2 - m1) / r
    }'
}

printf '%-7s %14s %14s %10s %10s %12s %12s %12s\n' model "instr short" "instr long" \
    "req short" "req long" "instr/req" "branch/req" "mispred/req"
mmc_counts=""
for model in $MODELS; do
    case "$model" in
    mmc)
        args=(run benches/mmc8_10m_requests.toml --jobs 1 -q --out "$WORK/out")
        short=$(statesim_count target/release/statesim "${args[@]}" --set duration=30s)
        long=$(statesim_count target/release/statesim "${args[@]}" --set duration=60s)
        ;;
    scale)
        args=(run benches/scale.toml --jobs 1 -q --out "$WORK/out")
        short=$(statesim_count target/release/statesim "${args[@]}" --set duration=5m)
        long=$(statesim_count target/release/statesim "${args[@]}" --set duration=7m)
        ;;
    esac
    # shellcheck disable=SC2086 # each holds four numbers, split on purpose
    row "$model" $short $long
    if [ "$model" = mmc ]; then
        mmc_counts="$short $long"
    fi
done
if [ -n "$RUST_BOUND" ]; then
    short="$(run_counted "$RUST_BOUND" --variant random --n 100000) 100000"
    long="$(run_counted "$RUST_BOUND" --variant random --n 300000) 300000"
    # shellcheck disable=SC2086
    row loop $short $long
    if [ -n "$mmc_counts" ]; then
        awk -v counts="$mmc_counts $short $long" 'BEGIN {
            split(counts, c, " ")
            r = c[8] - c[4]; l = c[16] - c[12]
            for (k = 1; k <= 3; k++) ratio[k] = ((c[4 + k] - c[k]) / r) / ((c[12 + k] - c[8 + k]) / l)
            printf "M/M/c, statesim / loop, a request: %.2fx the instructions, %.2fx the branches, %.2fx the\n", ratio[1], ratio[2], ratio[3]
            printf "mispredicted branches. At 0.7x the loop'\''s speed, statesim must retire %.2fx as many\n", 0.7 * ratio[1]
            printf "instructions a cycle as the loop does\n"
        }'
    fi
fi

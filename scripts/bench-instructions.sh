#!/usr/bin/env bash
# Instructions per simulated request in the steady state, counted by callgrind: the figure of
# the speed benchmark that does not depend on the machine (wall time does; see
# docs/performance.md, "The figure depends on the machine").
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
# Needs valgrind. Takes about half a minute (callgrind runs a program some 50x slower).
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

# Instructions a whole process executed: count COMMAND...
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" \
        >/dev/null 2>"$WORK/callgrind" || { cat "$WORK/callgrind" >&2; exit 1; }
    awk '/Collected :/ { print $NF }' "$WORK/callgrind"
}

# Instructions and requests of one statesim run (the requests from its `--stats` line):
# statesim_count COMMAND...
statesim_count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" --stats \
        >/dev/null 2>"$WORK/callgrind" || { cat "$WORK/callgrind" >&2; exit 1; }
    local instructions requests
    instructions=$(awk '/Collected :/ { print $NF }' "$WORK/callgrind")
    requests=$(awk '/^stats:/ { for (i = 2; i <= NF; i++) if ($i == "requests") print $(i - 1) }' "$WORK/callgrind")
    echo "$instructions $requests"
}

# One row: model, instructions and requests of the short and the long run.
row() {
    awk -v model="$1" -v i1="$2" -v r1="$3" -v i2="$4" -v r2="$5" 'BEGIN {
        printf "%-7s %14.0f %14.0f %10.0f %10.0f %12.0f\n", model, i1, i2, r1, r2, (i2 - i1) / (r2 - r1)
    }'
}

printf '%-7s %14s %14s %10s %10s %12s\n' model "instr short" "instr long" "req short" "req long" "instr/req"
mmc_per_request=""
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
    read -r i1 r1 <<<"$short"
    read -r i2 r2 <<<"$long"
    row "$model" "$i1" "$r1" "$i2" "$r2"
    if [ "$model" = mmc ]; then
        mmc_per_request=$(awk -v i1="$i1" -v r1="$r1" -v i2="$i2" -v r2="$r2" 'BEGIN { print (i2 - i1) / (r2 - r1) }')
    fi
done
if [ -n "$RUST_BOUND" ]; then
    i1=$(count "$RUST_BOUND" --variant random --n 100000)
    i2=$(count "$RUST_BOUND" --variant random --n 300000)
    row loop "$i1" 100000 "$i2" 300000
    if [ -n "$mmc_per_request" ]; then
        loop_per_request=$(awk -v i1="$i1" -v i2="$i2" 'BEGIN { print (i2 - i1) / 200000 }')
        awk -v s="$mmc_per_request" -v l="$loop_per_request" 'BEGIN {
            printf "M/M/c: statesim executes %.2fx the loop'\''s instructions a request; at 0.7x the loop'\''s speed that\n", s / l
            printf "needs statesim to run %.2fx as many instructions a cycle as the loop does\n", 0.7 * s / l
        }'
    fi
fi

#!/usr/bin/env bash
# statesim against SimPy on the same M/M/c model (c = 8, rho = 0.8, exponential service), in
# simulated requests per second of the whole process, medians of interleaved runs.
#
#   scripts/bench-peers.sh
#
# Settings (environment variables):
#   RUNS=3                   runs of each simulator per model, interleaved (the median is shown)
#   STATESIM_REQUESTS=10000000
#   SIMPY_REQUESTS=1000000   SimPy is ~100x slower: fewer requests keep a run near 10 s
#   RUST_BOUND=/path/to/rust-bound   also run a minimal hand-written Rust event loop that takes
#                            `--variant random|mmc --n N` (the "physical limit" reference); its
#                            runs alternate with statesim's, and the ratio is also given pair by
#                            pair (the median and range of statesim's wall time over the loop's
#                            in the same run), which a noisy machine moves less than medians
#   SIMPY=0                  leave SimPy out (no Python, or no package index to install it from)
#
# SimPy is installed with pip into target/peers-venv on the first run. Needs python3 with venv.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
STATESIM_REQUESTS=${STATESIM_REQUESTS:-10000000}
SIMPY_REQUESTS=${SIMPY_REQUESTS:-1000000}
RUST_BOUND=${RUST_BOUND:-}
SIMPY=${SIMPY:-1}
SIMPY_VERSION=4.1.2
VENV=target/peers-venv
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "building statesim (release)..." >&2
cargo build --release --quiet
if [ "$SIMPY" = 1 ] && { [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import simpy" 2>/dev/null; }; then
    echo "installing SimPy $SIMPY_VERSION into $VENV..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "simpy==$SIMPY_VERSION"
fi

# Arithmetic on decimals: calc 'EXPRESSION' (awk's, so no bc is needed).
calc() { awk "BEGIN { printf \"%.6f\", $1 }"; }

# Wall seconds of a whole process (its output goes to $WORK/out, $WORK/err).
wall() {
    local start end
    start=$(date +%s.%N)
    "$@" >"$WORK/out" 2>"$WORK/err"
    end=$(date +%s.%N)
    calc "$end - $start"
    echo
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# statesim's form of the model: 8 single-worker servers behind random dispatch, or one server
# with 8 workers; arrivals at 6.4 per ms for as long as STATESIM_REQUESTS take on average.
statesim_args() {
    local variant=$1
    local seconds
    seconds=$(calc "$STATESIM_REQUESTS / 6400")
    echo run benches/mmc8_10m_requests.toml --quiet --stats --out "$WORK/results" \
        --set "duration=${seconds}s"
    if [ "$variant" = mmc ]; then
        echo --set servers.count=1 --set servers.workers=8
    fi
}

printf '%-7s %-12s %11s %9s %13s %13s\n' model simulator requests "wall s" "requests/s" "events/s"
for variant in random mmc; do
    : >"$WORK/simpy" ; : >"$WORK/statesim" ; : >"$WORK/bound"
    : >"$WORK/pairs"
    for _ in $(seq "$RUNS"); do
        if [ "$SIMPY" = 1 ]; then
            wall "$VENV/bin/python" scripts/peers/simpy_mmc.py --variant "$variant" --n "$SIMPY_REQUESTS" >>"$WORK/simpy"
        fi
        # shellcheck disable=SC2046 # word splitting of the argument list is intended
        statesim_run=$(wall target/release/statesim $(statesim_args "$variant"))
        echo "$statesim_run" >>"$WORK/statesim"
        stats=$(grep '^stats:' "$WORK/err")
        if [ -n "$RUST_BOUND" ]; then
            bound_run=$(wall "$RUST_BOUND" --variant "$variant" --n "$STATESIM_REQUESTS")
            echo "$bound_run" >>"$WORK/bound"
            calc "$statesim_run / $bound_run" >>"$WORK/pairs"
            echo >>"$WORK/pairs"
        fi
    done
    # Counts are the same in every run (fixed seeds); rates use the median wall time.
    statesim_requests=$(echo "$stats" | awk '{ for (i = 2; i <= NF; i++) if ($i == "requests") print $(i - 1) }')
    statesim_events=$(echo "$stats" | awk '{ for (i = 2; i <= NF; i++) if ($i == "events") print $(i - 1) }')
    statesim_wall=$(median <"$WORK/statesim")
    row() { # simulator requests events wall
        printf '%-7s %-12s %11d %9.3f %12.3fM %12.3fM\n' "$variant" "$1" "$2" "$4" \
            "$(calc "$2 / $4 / 1000000")" "$(calc "$3 / $4 / 1000000")"
    }
    row "statesim" "$statesim_requests" "$statesim_events" "$statesim_wall"
    statesim_rate=$(calc "$statesim_requests / $statesim_wall")
    if [ "$SIMPY" = 1 ]; then
        simpy_wall=$(median <"$WORK/simpy")
        row "SimPy" "$SIMPY_REQUESTS" $((2 * SIMPY_REQUESTS)) "$simpy_wall"
        simpy_rate=$(calc "$SIMPY_REQUESTS / $simpy_wall")
        printf '%-7s statesim / SimPy: %.0fx requests/s\n' "$variant" "$(calc "$statesim_rate / $simpy_rate")"
    fi
    if [ -n "$RUST_BOUND" ]; then
        bound_wall=$(median <"$WORK/bound")
        row "rust-bound" "$STATESIM_REQUESTS" $((2 * STATESIM_REQUESTS)) "$bound_wall"
        bound_rate=$(calc "$STATESIM_REQUESTS / $bound_wall")
        printf '%-7s statesim / rust-bound: %.2fx requests/s\n' "$variant" "$(calc "$statesim_rate / $bound_rate")"
        # Pair by pair: statesim's wall time over the loop's in the same run; in requests/s, that
        # scaled by the requests each simulated (statesim's arrivals are random, ~0.02% apart).
        pair_median=$(median <"$WORK/pairs")
        pair_range=$(sort -g "$WORK/pairs" | awk 'NR == 1 { low = $1 } { high = $1 } END { printf "%.2f-%.2f", low, high }')
        printf '%-7s paired: statesim wall / rust-bound wall, median %.3f (%s) over %d runs: %.2fx requests/s\n' \
            "$variant" "$pair_median" "$pair_range" "$RUNS" \
            "$(calc "$statesim_requests / $STATESIM_REQUESTS / $pair_median")"
    fi
done
echo "(wall s: median of $RUNS interleaved runs, whole process; $(nproc) cores)"

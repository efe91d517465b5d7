#!/usr/bin/env bash
# The cost per request as the model grows: benches/scale.toml (the quickstart's stateful topology
# alone) at k x its session rate on k x 8 servers, k = 1, 10, 100, one run at a time
# (`--jobs 1 --stats`), the sizes interleaved, medians of RUNS runs each.
#
#   scripts/bench-scale.sh
#
# Settings (environment variables):
#   RUNS=3        runs of each size (the median is shown)
#   SIZES="1 10 100"
#
# Smaller models run more replications (20 / k, at least 1) so that every run takes seconds;
# requests/s is statesim's own `--stats` figure (requests simulated over the wall time of the
# runs) and peak RSS the process's, with one simulation alive at a time.
#
# "vs k = 1" is the ratio of the medians; "paired" is each size's rate over the first size's in
# the same round (run seconds apart), its median and range over the rounds. A shared machine
# drifts by a tenth from minute to minute, which moves the paired ratio less.
set -euo pipefail

cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SIZES=${SIZES:-"1 10 100"}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

echo "building statesim (release)..." >&2
cargo build --release --quiet

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

for run in $(seq "$RUNS"); do
    for k in $SIZES; do
        replications=$(( k >= 20 ? 1 : 20 / k ))
        target/release/statesim run benches/scale.toml --jobs 1 --stats -q \
            --replications "$replications" \
            --set "workload.sessions_per_second=$(( 180 * k ))" \
            --set "servers.count=$(( 8 * k ))" \
            --out "$WORK/out" >/dev/null 2>"$WORK/err"
        stats=$(grep '^stats:' "$WORK/err")
        # "... requests (1.86 M/s); peak RSS 10.1 MiB"
        echo "$stats" | sed -E 's/.*requests \(([0-9.]+) M\/s\).*/\1/' >>"$WORK/rate-$k"
        echo "$stats" | sed -E 's/.*peak RSS ([0-9.]+) MiB.*/\1/' >>"$WORK/rss-$k"
        echo "run $run, k = $k: $stats" >&2
    done
done

first=$(echo $SIZES | cut -d' ' -f1)
base=$(median <"$WORK/rate-$first")
echo "| k | servers | requests/s simulated | vs k = $first | paired: median (range) | peak RSS |"
echo "|---|---|---|---|---|---|"
for k in $SIZES; do
    rate=$(median <"$WORK/rate-$k")
    rss=$(median <"$WORK/rss-$k")
    ratio=$(awk "BEGIN { printf \"%.2f\", $rate / $base }")
    # Round by round: this size's rate over the first size's.
    paired=$(paste "$WORK/rate-$k" "$WORK/rate-$first" | awk '{ printf "%.3f\n", $1 / $2 }')
    low=$(echo "$paired" | sort -g | head -1)
    high=$(echo "$paired" | sort -g | tail -1)
    echo "| $k | $(( 8 * k )) | $rate M | $ratio× | $(echo "$paired" | median)× ($low–$high) | $rss MiB |"
done

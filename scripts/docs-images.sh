#!/usr/bin/env bash
# Regenerates the pictures the README shows: docs/report-screenshot.png (the quickstart's
# report.html in headless Chromium) and one chart of each kind in docs/charts/. Needs a release
# build, Debian's chromium and a few minutes (load-sweep.toml is 243 runs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
statesim=target/release/statesim
work=target/docs-images
rm -rf "$work" && mkdir -p "$work" docs/charts
$statesim run --quiet --report --out "$work/quickstart" > /dev/null
$statesim run scenarios/load-sweep.toml --quiet --report --out "$work/load-sweep" > /dev/null
$statesim run scenarios/crash.toml --quiet --report --out "$work/crash" > /dev/null
$statesim run scenarios/flash-crowd.toml --quiet --report --out "$work/flash-crowd" > /dev/null
cp "$work/quickstart/report-latency.svg" docs/charts/latency.svg
cp "$work/quickstart/report-timeline-stateful.svg" docs/charts/timeline-stateful.svg
cp "$work/load-sweep/report-sweep-latency_p99.svg" docs/charts/sweep-latency_p99.svg
cp "$work/crash/report-sessions-lost.svg" docs/charts/sessions-lost.svg
cp "$work/flash-crowd/report-servers.svg" docs/charts/servers.svg
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$work/chromium" --hide-scrollbars --window-size=1000,1250 \
  --screenshot=docs/report-screenshot.png "file://$PWD/$work/quickstart/report.html" 2> /dev/null
echo "wrote docs/report-screenshot.png and docs/charts/*.svg"

#!/usr/bin/env bash
# Fuzzes statesim with cargo-fuzz (libFuzzer; needs a nightly toolchain, which this script
# installs if missing). Two targets: `load` (any bytes as a scenario: load, validate, estimate,
# messages) and `run` (a valid scenario, shortened, then a bounded run of every topology with
# the conservation laws checked). The seed corpus is every bundled scenario.
#
# Usage: scripts/fuzz.sh [RUNS] [TARGET...]   (default: 1000000 executions of each target)
# A crash is saved under fuzz/artifacts/TARGET/; reproduce it with
#   cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...
# and turn it into a regression test (tests/cli/hostile.rs) before fixing it.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=${1:-1000000}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(load run)
fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  cp scenarios/*.toml scenarios/validation/*.toml "$corpus/"
  # Safe Rust throughout: no sanitizer, so the runs go twice as fast. Scenario files are a few
  # kilobytes; a run that takes 10 s is a hang.
  cargo +nightly fuzz run --sanitizer none "$target" "$corpus" -- \
    -runs="$runs" -max_len=16384 -timeout=10 -print_final_stats=1
done

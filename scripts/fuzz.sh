#!/usr/bin/env bash
# Runs the fuzz targets under libFuzzer with AddressSanitizer.
#
#   scripts/fuzz.sh                 # every target, 600 s each
#   scripts/fuzz.sh stream 60       # one target, 60 s
#   scripts/fuzz.sh all 30          # every target, 30 s each
#
# Needs cargo-fuzz (installed here if missing, from crates.io) and a nightly
# compiler, or the stable one with RUSTC_BOOTSTRAP=1, which this script sets:
# libFuzzer's instrumentation uses unstable compiler flags. Corpora live in
# fuzz/corpus/<target> (not committed); the decrypt and stream targets start
# from the official vectors (fuzz/make-seeds.sh). A crash is saved under
# fuzz/artifacts/<target>, the script stops and exits non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${1:-all}"
seconds="${2:-600}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1

targets=(decrypt stream edks xks_request xks_body)
[ "$target" = all ] || targets=("$target")

[ -d fuzz/seeds ] || ./fuzz/make-seeds.sh >/dev/null
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  case "$t" in
    decrypt|stream) seeds=(fuzz/seeds) ;;
    *) seeds=() ;;
  esac
  echo "== $t: ${seconds} s"
  (cd fuzz && cargo fuzz run "$t" "corpus/$t" "${seeds[@]/#fuzz\//}" -- -max_total_time="$seconds" -print_final_stats=1) 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==ERROR|SUMMARY|Done [0-9]+ runs)|panicked" || true
  if ls "fuzz/artifacts/$t"/crash-* >/dev/null 2>&1; then
    echo "$t: crash saved in fuzz/artifacts/$t" >&2
    exit 1
  fi
done

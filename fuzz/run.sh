#!/usr/bin/env bash
# Builds the libFuzzer targets with the "fuzz" CMake preset (clang 14,
# ASan+UBSan) and runs each for the given number of seconds on a scratch copy
# of its seed corpus (fuzz/corpus/<target>/). Crashes are kept in
# <build>/fuzz-artifacts/. Exit status 1 if any target found a problem
# (undefined behaviour included: the preset makes UBSan reports fatal).
#
#   fuzz/run.sh 60          # CI: a minute per target
#   JOBS=4 fuzz/run.sh 600  # longer local run
set -euo pipefail
seconds="${1:-60}"
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/build/fuzz}"
targets=(criteria_compile_fuzzer rule_set_loader_fuzzer snapshot_reader_fuzzer)

cmake --preset fuzz -S "$root" -B "$build" >/dev/null
cmake --build "$build" --target "${targets[@]}" -j"${JOBS:-2}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
artifacts="$build/fuzz-artifacts"
mkdir -p "$artifacts"
status=0
for target in "${targets[@]}"; do
  mkdir -p "$work/$target"
  if [[ -d "$root/fuzz/corpus/$target" ]]; then
    cp "$root/fuzz/corpus/$target"/* "$work/$target/"
  fi
  if [[ "$target" == snapshot_reader_fuzzer ]]; then
    # A valid snapshot written by the target itself (no binary seed kept).
    TRIALMATCH_FUZZ_WRITE_SEED="$work/$target/seed.snapshot" "$build/fuzz/$target"
  fi
  echo "== $target: ${seconds}s"
  if ! "$build/fuzz/$target" -max_total_time="$seconds" -timeout=20 \
      -rss_limit_mb=2560 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$target-" "$work/$target"; then
    echo "!! $target failed; see $artifacts" >&2
    status=1
  fi
done
exit "$status"

#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang (ASan + UBSan) in a
# separate build directory and runs each for a bounded time, starting from
# the committed seeds (tests/fuzz/corpus/<target>/) and first replaying the
# committed regression inputs (tests/fuzz/regressions/<target>-*).
#   scripts/fuzz.sh --smoke              every target 8 s (the test command runs this)
#   scripts/fuzz.sh --seconds 600 [T..]  longer runs; T = target names (default: all)
# The working corpus grows in $FUZZ_BUILD_DIR/corpus/<target>, findings go to
# $FUZZ_BUILD_DIR/artifacts/. Exit 1 when any target finds a crash or leak.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
smoke=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) smoke=1; seconds=${FUZZ_SMOKE_SECONDS:-8} ;;
    --seconds) seconds=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1") ;;
  esac
  shift
done
all=(fuzz_config fuzz_plan_decode fuzz_modbus_reply fuzz_import fuzz_billing fuzz_numfmt
     fuzz_mbtcp fuzz_dlt645 fuzz_cjt188 fuzz_timeparse)
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

if ! command -v clang >/dev/null; then
  echo "fuzz.sh: clang not found, fuzzing skipped"
  [ $smoke = 1 ] && exit 0
  exit 2
fi

build=${FUZZ_BUILD_DIR:-build-fuzz}
mkdir -p "$build"
if ! { cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
         -DFUZZ=ON -DWITH_ASAN=ON &&
       cmake --build "$build" -j"$(nproc)" --target fuzzers; } >"$build/fuzz-build.log" 2>&1; then
  tail -30 "$build/fuzz-build.log"
  echo "fuzz.sh: the clang build of the fuzz targets failed (log: $build/fuzz-build.log)"
  exit 1
fi

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp:print_suppressions=0
mkdir -p "$build/artifacts"
failed=0
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz/$t
  corpus=$build/corpus/$t
  mkdir -p "$corpus"
  opts=(-timeout=10 -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1
        "-artifact_prefix=$build/artifacts/$t-")
  # The config loader and the import command report every refusal on stderr.
  case $t in fuzz_config|fuzz_import) opts+=(-close_fd_mask=3) ;; esac
  log=$build/artifacts/$t.log
  regs=(tests/fuzz/regressions/"$t"-*)
  if [ -e "${regs[0]}" ] && ! "$bin" "${opts[@]}" "${regs[@]}" >"$log" 2>&1; then
    echo "fuzz.sh: $t: a regression input fails again (log: $log)"
    failed=1
    continue
  fi
  if "$bin" "${opts[@]}" -max_total_time="$seconds" "$corpus" "tests/fuzz/corpus/$t" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    echo "fuzz.sh: $t: ok, ${runs:-?} runs in ${seconds} s, ${cov:-cov: ?}"
  else
    echo "fuzz.sh: $t: FAILED (log: $log)"
    grep -E 'ERROR|SUMMARY|Test unit written' "$log" | head -5
    failed=1
  fi
done
exit $failed

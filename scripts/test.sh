#!/usr/bin/env bash
# The test command of the README: installs what is missing, builds with
# warnings as errors, runs every unit and integration test (CTest). The
# integration tests start their own mosquitto and parkgw-sim on free
# loopback ports. With ASAN=1 the same suite runs on an ASan+UBSan build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test

build=${BUILD_DIR:-build}
args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DWERROR=ON)
if [ "${ASAN:-0}" = 1 ]; then
  build=${BUILD_DIR:-build-asan}
  args=(-DCMAKE_BUILD_TYPE=Debug -DWERROR=ON -DWITH_ASAN=ON)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi
cmake -S . -B "$build" "${args[@]}" >/dev/null
cmake --build "$build" -j"$(nproc)"
ctest --test-dir "$build" --output-on-failure -j"$(nproc)" "$@"
# Fuzz smoke on the plain pass: every libFuzzer target of tests/fuzz for
# ~8 s in its own clang build (skipped without clang; FUZZ_SMOKE=0 skips).
if [ "${ASAN:-0}" != 1 ] && [ "${FUZZ_SMOKE:-1}" = 1 ]; then
  scripts/fuzz.sh --smoke
fi

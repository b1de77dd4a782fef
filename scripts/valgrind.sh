#!/usr/bin/env bash
# valgrind.sh - the end-to-end path under valgrind memcheck: parkgw-sim
# serving the demo park (config/demo.cfg, 29 enterprises, polled at 1 s) on
# loopback, a real mosquitto, and `parkgw run` under memcheck for
# --seconds (default 20), with one SIGHUP reload halfway and one broker
# restart, then SIGTERM. Prints valgrind's error and leak summary; exit 1 on
# any memcheck error or definite/indirect leak.
#   scripts/valgrind.sh [--seconds N] [--keep]
# Binaries from $BUILD_DIR (default build; a Debug build is made if missing).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
seconds=20 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift ;;
    --keep) keep=1 ;;
    *) echo "valgrind.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
build=${BUILD_DIR:-$src/build}
if [ ! -x "$build/parkgw" ] || [ ! -x "$build/tools/sim/parkgw-sim" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Debug >/dev/null
  cmake --build "$build" -j"$(nproc)" --target parkgw parkgw-sim >/dev/null
fi
dir=$(mktemp -d /tmp/parkgw-valgrind.XXXXXX)
export PARKGW_PROFILE_DIR=$src/config
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
  [ $keep = 1 ] || rm -rf "$dir"
}
trap cleanup EXIT
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "valgrind.sh: port $1 never opened" >&2; return 1
}
base=$(( 20000 + RANDOM % 30000 )); mport=$((base + 10))
"$src/bench/scenario.sh" --dir "$dir" --park --port "$base" --mqtt-port "$mport"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mport" > "$dir/mosquitto.conf"
mosquitto -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 &
mpid=$!; pids+=($mpid)
wait_port "$mport"
"$build/tools/sim/parkgw-sim" --config "$dir/parkgw.cfg" >"$dir/sim.log" 2>&1 &
pids+=($!)
for p in $(seq "$base" $((base + 5))); do wait_port "$p"; done

valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite,indirect \
  --errors-for-leak-kinds=definite,indirect --track-origins=yes --num-callers=30 \
  --log-file="$dir/memcheck.txt" "$build/parkgw" run -c "$dir/parkgw.cfg" >"$dir/parkgw.log" 2>&1 &
vpid=$!; pids+=($vpid)
sleep $((seconds / 2))
kill -HUP "$vpid"
kill "$mpid"; wait "$mpid" 2>/dev/null || true     # broker restart
sleep 2
mosquitto -c "$dir/mosquitto.conf" >>"$dir/mosquitto.log" 2>&1 &
mpid=$!; pids+=($mpid)
sleep $((seconds - seconds / 2))
kill "$vpid"
rc=0; wait "$vpid" || rc=$?
stored=$(sqlite3 "$dir/parkgw.db" "select (select coalesce(sum(n), 0) from series) + (select coalesce(sum(n), 0) from staged)" 2>/dev/null || echo "?")
echo "valgrind.sh: parkgw exit status $rc, $stored samples stored in $seconds s, log $dir (--keep to keep it)"
grep -E 'reloaded|connected|broker' "$dir/parkgw.log" | head -5 || true
grep -E 'ERROR SUMMARY|definitely lost|indirectly lost|possibly lost|still reachable|All heap blocks' "$dir/memcheck.txt" | sed 's/^==[0-9]*== //'
errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$dir/memcheck.txt" | tail -1)
if [ "${errors:-1}" != 0 ] || [ "$rc" != 0 ]; then
  [ $keep = 1 ] || cp "$dir/memcheck.txt" /tmp/parkgw-memcheck.txt
  echo "valgrind.sh: FAILED (memcheck log: $([ $keep = 1 ] && echo "$dir/memcheck.txt" || echo /tmp/parkgw-memcheck.txt))"
  exit 1
fi
echo "valgrind.sh: ok, no memcheck errors, no definite/indirect leaks"

#!/usr/bin/env bash
# soak.sh - bounded soak of the running daemon (not in CI): the demo park
# (config/demo.cfg, 99 meters, polled at 1 s) served by parkgw-sim on
# loopback, a real mosquitto, `parkgw run` for --minutes (default 30) while
#  - the broker is restarted every --broker-every seconds (default 180; down 5 s),
#  - one meter flaps every 20 s through the sim's control FIFO (noreply,
#    none, supply off, supply on, drop, none, ...),
#  - SIGHUP reloads the config every --hup-every seconds (default 120).
# RSS, fd count and thread count are sampled every 30 s (DIR/soak.tsv) and
# printed for the start (after 60 s) and the end; exit 1 when parkgw died.
#   scripts/soak.sh [--minutes N] [--broker-every S] [--hup-every S] [--keep]
# Binaries from $BUILD_DIR (default build, RelWithDebInfo if missing).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
minutes=30 broker_every=180 hup_every=120 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) minutes=$2; shift ;;
    --broker-every) broker_every=$2; shift ;;
    --hup-every) hup_every=$2; shift ;;
    --keep) keep=1 ;;
    *) echo "soak.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
build=${BUILD_DIR:-$src/build}
if [ ! -x "$build/parkgw" ] || [ ! -x "$build/tools/sim/parkgw-sim" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"$(nproc)" --target parkgw parkgw-sim >/dev/null
fi
dir=$(mktemp -d /tmp/parkgw-soak.XXXXXX)
export PARKGW_PROFILE_DIR=$src/config
pids=()
cleanup() {
  exec 4>&- 2>/dev/null || true
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
  echo "soak.sh: port $1 never opened" >&2; return 1
}
base=$(( 20000 + RANDOM % 30000 )); mport=$((base + 10))
"$src/bench/scenario.sh" --dir "$dir" --park --port "$base" --mqtt-port "$mport"
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mport" > "$dir/mosquitto.conf"
start_broker() {
  mosquitto -c "$dir/mosquitto.conf" >>"$dir/mosquitto.log" 2>&1 &
  mpid=$!; pids+=($mpid)
  wait_port "$mport"
}
start_broker
mkfifo "$dir/control"
"$build/tools/sim/parkgw-sim" --config "$dir/parkgw.cfg" --control "$dir/control" >"$dir/sim.log" 2>&1 &
pids+=($!)
exec 4>"$dir/control"   # keep the FIFO open for the whole run
for p in $(seq "$base" $((base + 5))); do wait_port "$p"; done
"$build/parkgw" run -c "$dir/parkgw.cfg" >"$dir/parkgw.log" 2>&1 &
gpid=$!; pids+=($gpid)

snap() { # label -> one TSV line: label elapsed rss_kb hwm_kb fds threads samples
  local rss hwm fds thr
  rss=$(awk '/^VmRSS/ { print $2 }' /proc/$gpid/status)
  hwm=$(awk '/^VmHWM/ { print $2 }' /proc/$gpid/status)
  thr=$(awk '/^Threads/ { print $2 }' /proc/$gpid/status)
  fds=$(ls /proc/$gpid/fd | wc -l)
  printf '%s\t%d\t%s\t%s\t%s\t%s\n' "$1" $(( $(date +%s) - t_start )) "$rss" "$hwm" "$fds" "$thr"
}
flap=("fault chengtong-plastics/e1 noreply" "fault chengtong-plastics/e1 none"
      "supply chengtong-plastics/e1 off" "supply chengtong-plastics/e1 on"
      "fault chengtong-plastics/w1 drop" "fault chengtong-plastics/w1 none")
t_start=$(date +%s); t_end=$((t_start + minutes * 60))
printf 'label\telapsed_s\trss_kb\thwm_kb\tfds\tthreads\n' > "$dir/soak.tsv"
i=0 restarts=0 hups=0 flaps=0 start_line=
while [ "$(date +%s)" -lt "$t_end" ]; do
  sleep 10; i=$((i + 1)); el=$((i * 10))
  kill -0 "$gpid" 2>/dev/null || { echo "soak.sh: parkgw died after $el s"; tail -20 "$dir/parkgw.log"; exit 1; }
  if [ $((el % 20)) = 0 ]; then echo "${flap[$((flaps % ${#flap[@]}))]}" >&4; flaps=$((flaps + 1)); fi
  if [ $((el % hup_every)) = 0 ]; then kill -HUP "$gpid"; hups=$((hups + 1)); fi
  if [ $((el % broker_every)) = 0 ]; then
    kill "$mpid"; wait "$mpid" 2>/dev/null || true; sleep 5; start_broker; restarts=$((restarts + 1))
  fi
  if [ $((el % 30)) = 0 ]; then
    line=$(snap "t$el"); echo "$line" >> "$dir/soak.tsv"
    [ $el = 60 ] && start_line=$line
  fi
done
echo "fault * none" >&4; echo "supply * on" >&4
sleep 5
end_line=$(snap end)
echo "$end_line" >> "$dir/soak.tsv"
kill "$gpid"; rc=0; wait "$gpid" || rc=$?
samples=$(sqlite3 "$dir/parkgw.db" "select (select coalesce(sum(n), 0) from series) + (select coalesce(sum(n), 0) from staged)")
echo "soak.sh: $minutes min, $restarts broker restarts, $hups SIGHUP reloads, $flaps meter flaps; parkgw exit $rc; $samples samples stored"
echo "soak.sh: log lines: $(grep -c 'configuration reloaded' "$dir/parkgw.log") reloaded, $(grep -ci 'mqtt: connected' "$dir/parkgw.log") mqtt connects, $(grep -ci 'communication lost' "$dir/parkgw.log") comm lost, $(grep -ci 'restored\|read ok again' "$dir/parkgw.log") restored"
printf 'label\telapsed_s\trss_kb\thwm_kb\tfds\tthreads\n%s\n%s\n' "${start_line:-?}" "$end_line" | column -t
echo "soak.sh: all samples in $dir/soak.tsv$([ $keep = 1 ] || echo ' (removed; --keep keeps it)')"
[ $keep = 1 ] || cp "$dir/soak.tsv" /tmp/parkgw-soak-last.tsv
[ "$rc" = 0 ]

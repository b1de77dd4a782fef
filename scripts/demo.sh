#!/usr/bin/env bash
# The demo command of the README: installs what is missing, builds, then runs
# the simulated park end to end on this machine: a real mosquitto, parkgw-sim
# serving the 29 enterprises of config/demo.cfg, and `parkgw run` with its
# dashboard on http://127.0.0.1:8080/ (or the next free port). Live values
# stream in the terminal; Ctrl-C stops everything cleanly.
#   DEMO_SECONDS=N  stop by itself after N seconds (default: run until Ctrl-C)
#   DEMO_TOPIC=T    what to show (default park/+/+/+/+/live)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target parkgw parkgw-sim >/dev/null

run=$top/run/demo
mkdir -p "$run"
ln -sfn "$top/config/profiles" "$run/profiles"
ln -sfn "$top/config/tariffs" "$run/tariffs"
cfg=$run/demo.cfg
cp config/demo.cfg "$cfg"

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_from() { local p=$1; while in_use "$p"; do p=$((p + 1)); done; echo "$p"; }

# The demo's ports are fixed in config/demo.cfg; move any that are taken.
mqtt_port=$(grep -oE 'tcp://127\.0\.0\.1:[0-9]+' "$cfg" | head -1 | sed 's/.*://')
new=$(free_from "$mqtt_port")
[ "$new" = "$mqtt_port" ] || sed -i "s#tcp://127.0.0.1:$mqtt_port#tcp://127.0.0.1:$new#" "$cfg"
mqtt_port=$new
for p in $(grep -oE 'port *= *[0-9]+' "$cfg" | grep -oE '[0-9]+' | sort -u); do
  new=$(free_from "$p")
  [ "$new" = "$p" ] || sed -i -E "s/port *= *$p;/port = $new;/" "$cfg"
done
sed -i -E "s#path *= *\"[^\"]*\"#path = \"$run/parkgw-demo.db\"#" "$cfg"
# The operator's dashboard (docs/OPERATOR.md) on loopback.
http_port=$(free_from 8080)
sed -i "s|^gateway = {|gateway = { http = { listen = \"127.0.0.1:$http_port\"; };|" "$cfg"

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "demo: stopping"
  [ -n "${gw_pid:-}" ] && kill -TERM "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "demo: database kept at $run/parkgw-demo.db"
  echo "demo: try  build/parkgw status -c $cfg"
  today=$(TZ=$(sed -nE 's/.*timezone *= *"([^"]+)".*/\1/p' "$cfg") date +%F)
  echo "      and  build/parkgw bill -c $cfg --from $today --to $(date -d "$today + 1 day" +%F)"
}
trap cleanup INT TERM EXIT

printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$mqtt_port" > "$run/mosquitto.conf"
/usr/sbin/mosquitto -c "$run/mosquitto.conf" >"$run/mosquitto.log" 2>&1 & pids+=($!)
build/tools/sim/parkgw-sim --config "$cfg" --seed 2016 --control "$run/control" >"$run/sim.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do in_use "$mqtt_port" && grep -q listening "$run/sim.log" && break; sleep 0.1; done

build/parkgw check -c "$cfg"
echo
echo "demo: broker tcp://127.0.0.1:$mqtt_port, database $run/parkgw-demo.db, logs in $run/"
echo "demo: dashboard http://127.0.0.1:$http_port/ (metrics at /metrics)"
echo "demo: showing ${DEMO_TOPIC:-park/+/+/+/+/live}; Ctrl-C stops"
echo
mosquitto_sub -h 127.0.0.1 -p "$mqtt_port" -v -t "${DEMO_TOPIC:-park/+/+/+/+/live}" & pids+=($!)
build/parkgw run -c "$cfg" 2>"$run/parkgw.log" & gw_pid=$!

if [ -n "${DEMO_SECONDS:-}" ]; then
  sleep "$DEMO_SECONDS"
else
  wait "$gw_pid"
fi

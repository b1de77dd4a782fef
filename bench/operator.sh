#!/usr/bin/env bash
# operator.sh - what the operator surface costs the daemon: for each
# scenario (bench/scenario.sh: park = the demo park at 1 s, sN = N meters of
# 30 points at 1 s), a fresh mosquitto, parkgw-sim and `parkgw run` with its
# HTTP listener on; one measured window with nobody looking, then one with
# two dashboards open in headless chromium (each holding /api/stream) and
# Prometheus scraping /metrics every 5 s (Debian's prometheus when
# installed, else curl). Prints per window the daemon's CPU (all threads'
# on-CPU time from /proc/PID/task/*/schedstat, % of one core), its RSS at
# the end and its peak (VmHWM), and with the dashboards the stream's bytes
# per second to one page and the time of one /metrics and one /api/status.
#   bench/operator.sh [--scenarios "park s1000"] [--warmup S] [--measure S] [--out DIR]
# Binaries from $BUILD_DIR (default build). Needs chromium (scripts/deps.sh --test).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
scenarios="park s1000" warmup=10 measure=60 out=
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) scenarios=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --measure) measure=$2; shift ;;
    --out) out=$2; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "operator.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
build=${BUILD_DIR:-$src/build}
PARKGW=$build/parkgw SIM=$build/tools/sim/parkgw-sim
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
CHROMIUM=$(command -v chromium || true)
PROMETHEUS=$(command -v prometheus || true)
[ -n "$CHROMIUM" ] || { echo "operator.sh: chromium not installed (scripts/deps.sh --test)" >&2; exit 1; }
out=${out:-$(mktemp -d /tmp/parkgw-operator.XXXXXX)}
mkdir -p "$out"
export PARKGW_PROFILE_DIR=$src/config

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

free_port() {
  local used p
  used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
  while :; do
    p=$(( 20000 + RANDOM % 30000 ))
    grep -qx "$p" <<<"$used" || { echo "$p"; return; }
  done
}
free_ports() { # n consecutive
  local n=$1 base used ok
  used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
  while :; do
    base=$(( 20000 + RANDOM % 30000 )) ok=1
    for ((i = 0; i <= n; i++)); do grep -qx "$((base + i))" <<<"$used" && { ok=0; break; }; done
    [ $ok = 1 ] && { echo "$base"; return; }
  done
}
wait_port() {
  for _ in $(seq 400); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.05; done
  echo "operator.sh: port $1 never opened" >&2; return 1
}
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
kb() { awk -v k="$2" '$1 == k":" { print $2 }' /proc/"$1"/status; }
now_ms() { date +%s%3N; }

# window PID SECONDS -> "cpu_pct rss_mb hwm_mb"
window() {
  local t0 c0 t1 c1
  t0=$(now_ms); c0=$(cpu_ns "$1")
  sleep "$2"
  t1=$(now_ms); c1=$(cpu_ns "$1")
  awk -v c=$((c1 - c0)) -v w=$((t1 - t0)) -v r="$(kb "$1" VmRSS)" -v h="$(kb "$1" VmHWM)" \
    'BEGIN { printf "%.1f %.1f %.1f\n", c / 1e6 / w * 100, r / 1024, h / 1024 }'
}

printf '%-8s %7s %-28s %8s %8s %8s %14s %12s %12s\n' scenario meters window cpu_pct rss_mb \
  hwm_mb stream_B_s metrics_ms status_ms
for sc in $scenarios; do
  dir=$out/$sc; rm -rf "$dir"; mkdir -p "$dir"
  base=$(free_ports 65); mport=$((base + 64)); hport=$(free_port)
  case "$sc" in
    park) "$src/bench/scenario.sh" --dir "$dir" --port "$base" --mqtt-port "$mport" --park ;;
    s*) "$src/bench/scenario.sh" --dir "$dir" --port "$base" --mqtt-port "$mport" \
          --meters "${sc#s}" --points 30 ;;
  esac
  cfg=$dir/parkgw.cfg
  sed -i "s|^gateway = {|gateway = { http = { listen = \"127.0.0.1:$hport\"; };|" "$cfg"
  meters=$("$PARKGW" check -c "$cfg" | sed -n 's/.* enterprises, \([0-9]*\) meters.*/\1/p')
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$mport" > "$dir/mosquitto.conf"
  "$MOSQUITTO" -c "$dir/mosquitto.conf" >"$dir/mosquitto.log" 2>&1 & pids+=($!)
  wait_port "$mport"
  "$SIM" --config "$cfg" >"$dir/sim.log" 2>&1 & pids+=($!)
  for p in $(sed -n 's/.*port = \([0-9]*\);.*/\1/p' "$cfg" | sort -u); do wait_port "$p"; done
  "$PARKGW" run -c "$cfg" >"$dir/parkgw.log" 2>&1 & gw=$!; pids+=($gw)
  wait_port "$hport"
  sleep "$warmup"

  read -r cpu rss hwm < <(window "$gw" "$measure")
  printf '%-8s %7s %-28s %8s %8s %8s %14s %12s %12s\n' "$sc" "$meters" "nobody looking" \
    "$cpu" "$rss" "$hwm" - - -

  # Two dashboards and a scraper.
  for i in 1 2; do
    "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
      --user-data-dir="$dir/chromium-$i" --remote-debugging-port=0 \
      "http://127.0.0.1:$hport/" >"$dir/chromium-$i.log" 2>&1 & pids+=($!)
  done
  if [ -n "$PROMETHEUS" ]; then
    pport=$(free_port)
    printf 'global:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: parkgw\n    static_configs:\n      - targets: [%s]\n' \
      "'127.0.0.1:$hport'" > "$dir/prometheus.yml"
    "$PROMETHEUS" --config.file="$dir/prometheus.yml" --storage.tsdb.path="$dir/tsdb" \
      --web.listen-address=127.0.0.1:"$pport" >"$dir/prometheus.log" 2>&1 & pids+=($!)
    scraper="prometheus every 5 s"
  else
    (while :; do curl -s -o /dev/null "http://127.0.0.1:$hport/metrics"; sleep 5; done) & pids+=($!)
    scraper="curl every 5 s"
  fi
  sleep "$warmup"
  # One more stream, counted, through the measured window.
  (curl -sN --max-time "$measure" "http://127.0.0.1:$hport/api/stream" || true) | wc -c \
    > "$dir/stream.bytes" &
  sp=$!
  read -r cpu rss hwm < <(window "$gw" "$measure")
  wait "$sp" || true
  bps=$(awk -v b="$(cat "$dir/stream.bytes")" -v s="$measure" 'BEGIN { printf "%.0f", b / s }')
  mt=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$hport/metrics" | awk '{ printf "%.1f", $1 * 1000 }')
  st=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$hport/api/status" | awk '{ printf "%.1f", $1 * 1000 }')
  printf '%-8s %7s %-28s %8s %8s %8s %14s %12s %12s\n' "$sc" "$meters" \
    "2 dashboards + $scraper" "$cpu" "$rss" "$hwm" "$bps" "$mt" "$st"
  cleanup
done
echo "logs and configs: $out"

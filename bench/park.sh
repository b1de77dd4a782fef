#!/usr/bin/env bash
# park.sh - the park-scale benchmark, one command: for each scenario, a
# fresh mosquitto and parkgw-sim on loopback, parkgw polling every meter at
# 1 s into a fresh SQLite store, a mosquitto_sub subscriber timing the live
# messages; then the 100-meter scenario again through collectd 5.12 (modbus
# + mqtt plugins) against the same simulator and broker kind. After a
# warm-up, one measured window per run gives: points/s sustained, CPU of the
# gateway process alone (sum of its threads' on-CPU time from
# /proc/PID/task/*/schedstat; /proc/PID/stat ticks alongside), peak RSS
# (VmHWM), Modbus requests per cycle, SQLite bytes per stored sample and the
# poll-to-subscriber latency p50/p99 (the payload's poll timestamp vs the
# subscriber's receive time, mosquitto_sub -F '%U %p').
#   bench/park.sh [--scenarios "park s100 s1000 s5000"] [--warmup S] [--measure S]
#                 [--no-collectd] [--out DIR] [--period-ms MS] [--repeat N]
# Scenarios: park = config/demo.cfg (29 enterprises, 99 meters, 633 points)
# at 1 s; sN = 29 enterprises, N meters, 20 (s100) or 30 points.
# --period-ms (default 60000) is the store's chunk period for the run
# (PARKGW_STORE_PERIOD_MS, docs/STORAGE.md): with the default window of
# 60 s, one move of the staged samples into the chunked series (and their
# rollups) falls inside every measured window, so the CPU figure includes
# it (amortized over 1-minute chunks: pessimistic against the 15-minute
# default, whose per-chunk and per-rollup-row costs spread over 15x more
# samples).
# --repeat N runs the whole set (scenarios, then collectd) N times in
# rounds; the summary gives each figure's median over the rounds (a shared
# 2-core VM varies by +-20 % from one minute to the next), the ratios to
# collectd and the growth from the smallest to the largest sN scenario of
# 30-point meters from those medians.
# Binaries from $BUILD_DIR (default build, built RelWithDebInfo if missing).
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
scenarios="park s100 s1000 s5000"
warmup=10 measure=60 with_collectd=1 out= period_ms=60000 repeat=1
while [ $# -gt 0 ]; do
  case "$1" in
    --scenarios) scenarios=$2; shift ;;
    --warmup) warmup=$2; shift ;;
    --measure) measure=$2; shift ;;
    --no-collectd) with_collectd=0 ;;
    --out) out=$2; shift ;;
    --period-ms) period_ms=$2; shift ;;
    --repeat) repeat=$2; shift ;;
    -h|--help) sed -n '2,29p' "$0"; exit 0 ;;
    *) echo "park.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
build=${BUILD_DIR:-$src/build}
if [ ! -x "$build/parkgw" ] || [ ! -x "$build/tools/sim/parkgw-sim" ] ||
   [ ! -x "$build/bench/bench_count" ]; then
  cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build" -j"$(nproc)" --target parkgw parkgw-sim bench_count >/dev/null
fi
PARKGW=$build/parkgw SIM=$build/tools/sim/parkgw-sim COUNT=$build/bench/bench_count
MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
out=${out:-$(mktemp -d /tmp/parkgw-bench.XXXXXX)}
mkdir -p "$out"
export PARKGW_PROFILE_DIR=$src/config
export PARKGW_STORE_PERIOD_MS=$period_ms
hz=$(getconf CLK_TCK)

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
trap cleanup EXIT

# A base port with n consecutive free loopback ports.
free_ports() {
  local n=$1 base used
  used=$(ss -Htan | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
  for _ in $(seq 50); do
    base=$(( 20000 + RANDOM % 30000 ))
    local ok=1
    for ((i = 0; i <= n; i++)); do
      if grep -qx "$((base + i))" <<<"$used"; then ok=0; break; fi
    done
    [ $ok = 1 ] && { echo "$base"; return; }
  done
  echo "park.sh: no free port range" >&2; exit 1
}
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "park.sh: port $1 never opened" >&2; return 1
}
wait_log() { # file pattern timeout_s
  for _ in $(seq $(( $3 * 10 ))); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "park.sh: '$2' not seen in $1" >&2; return 1
}
# CPU nanoseconds of all threads of a process (on-CPU time: user + system).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'; }
# utime + stime in clock ticks (fields 14, 15).
cpu_ticks() { awk '{ print $14 + $15 }' /proc/"$1"/stat; }
hwm_kb() { awk '/^VmHWM/ { print $2 }' /proc/"$1"/status; }
now_ms() { date +%s%3N; }
pct() { # file column percentile
  sort -n -k"$2","$2" "$1" | awk -v c="$2" -v p="$3" '{ v[NR] = $c } END {
    if (!NR) { print "n/a"; exit } i = int(NR * p / 100 + 0.5); if (i < 1) i = 1; if (i > NR) i = NR; printf "%.1f", v[i] }'
}

start_broker() { # dir port
  # Nagle off on the broker's side, so the subscriber's timing is the
  # gateway's and not the broker's write coalescing with delayed ACKs.
  printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nset_tcp_nodelay true\n' "$2" > "$1/mosquitto.conf"
  "$MOSQUITTO" -c "$1/mosquitto.conf" >"$1/mosquitto.log" 2>&1 &
  pids+=($!)
  wait_port "$2"
}

results=$out/results.tsv
printf 'scenario\tgateway\tmeters\tpoints_per_cycle\treq_per_cycle\tpoints_s\tcpu_pct\tus_per_point\tcpu_s_per_1000\tticks_s_per_1000\thwm_mb\tbytes_per_sample\tlat_p50_ms\tlat_p99_ms\tsim_cpu_pct\tround\n' > "$results"

# run_one NAME GATEWAY(parkgw|collectd) SCENARIO-ARGS...
run_one() {
  local name=$1 gw=$2; shift 2
  local dir=$out/$name-$gw
  rm -rf "$dir"; mkdir -p "$dir"
  local nports=$(( 64 )) base mport
  base=$(free_ports $((nports + 1)))
  mport=$((base + nports))
  "$src/bench/scenario.sh" --dir "$dir" --port "$base" --mqtt-port "$mport" "$@"
  local cfg=$dir/parkgw.cfg
  local meters points req
  meters=$("$PARKGW" check -c "$cfg" | sed -n 's/.* enterprises, \([0-9]*\) meters.*/\1/p')
  points=$("$PARKGW" check -c "$cfg" | sed -n 's/.*profiles, \([0-9]*\) points.*/\1/p')
  req=$("$PARKGW" check -c "$cfg" | sed -n 's/^\([0-9]*\) \(Modbus \)\{0,1\}requests per cycle.*/\1/p')
  [ "$gw" = collectd ] && req=$points   # collectd's modbus plugin reads every Data block on its own

  start_broker "$dir" "$mport"
  "$SIM" --config "$cfg" >"$dir/sim.log" 2>&1 &
  local simpid=$!; pids+=($simpid)
  for p in $(sed -n 's/.*port = \([0-9]*\);.*/\1/p' "$cfg" | sort -u); do wait_port "$p"; done

  local gwpid topic
  if [ "$gw" = parkgw ]; then
    "$PARKGW" run -c "$cfg" >"$dir/parkgw.log" 2>&1 &
    gwpid=$!; pids+=($gwpid)
    wait_log "$dir/parkgw.log" "running" 120
    topic='park/+/+/+/+/live'
  else
    collectd -f -C "$dir/collectd.conf" >"$dir/collectd.log" 2>&1 &
    gwpid=$!; pids+=($gwpid)
    wait_log "$dir/collectd.log" "Initialization complete" 60
    topic='collectd/#'
  fi
  sleep "$warmup"

  # The measured window: the subscriber runs exactly for it (-W).
  mosquitto_sub -h 127.0.0.1 -p "$mport" -R -q 0 -t "$topic" -F '%U %p' -W "$measure" \
    2>/dev/null | awk -v gw="$gw" '{
      rx = $1 * 1000
      if (gw == "parkgw") {
        if (!match($0, /"ts":[0-9]+/)) next
        ts = substr($0, RSTART + 5, RLENGTH - 5)
        # points in this message: one "name":value pair per point in "values"
        v = substr($0, index($0, "\"values\":{")); n = gsub(/":/, "", v) - 1
      } else { split($2, a, ":"); ts = a[1] * 1000; n = 1 }
      printf "%.0f %.3f %d\n", rx, rx - ts, n }' > "$dir/latency.txt" &
  local subpid=$!
  local t0 c0 k0 s0 t1 c1 k1 s1 hwm
  t0=$(now_ms); c0=$(cpu_ns "$gwpid"); k0=$(cpu_ticks "$gwpid"); s0=$(cpu_ns "$simpid")
  wait "$subpid" || true
  t1=$(now_ms); c1=$(cpu_ns "$gwpid"); k1=$(cpu_ticks "$gwpid"); s1=$(cpu_ns "$simpid")
  hwm=$(hwm_kb "$gwpid")

  kill "$gwpid"; wait "$gwpid" 2>/dev/null || true
  local bytes=n/a nstored=0 pps win_ms
  win_ms=$((t1 - t0))
  if [ "$gw" = parkgw ]; then
    # stored samples whose poll fell in the window; bytes over all samples
    # (read through the store itself: bench/bench_count.c)
    local total size
    read -r nstored total size < <("$COUNT" "$dir/parkgw.db" "$t0" "$t1")
    bytes=$(awk -v s="$size" -v n="$total" 'BEGIN { printf "%.1f", n ? s / n : 0 }')
  else
    nstored=$(awk '{ s += $3 } END { print s + 0 }' "$dir/latency.txt")
  fi
  pps=$(awk -v n="$nstored" -v w="$win_ms" 'BEGIN { printf "%.0f", n * 1000 / w }')
  local cpu_pct us_pt s1000 k1000 simpct p50 p99
  cpu_pct=$(awk -v c=$((c1 - c0)) -v w="$win_ms" 'BEGIN { printf "%.1f", c / 1e6 / w * 100 }')
  us_pt=$(awk -v c=$((c1 - c0)) -v n="$nstored" 'BEGIN { printf "%.2f", n ? c / 1e3 / n : 0 }')
  s1000=$(awk -v c=$((c1 - c0)) -v n="$nstored" 'BEGIN { printf "%.5f", n ? c / 1e9 / n * 1000 : 0 }')
  k1000=$(awk -v k=$((k1 - k0)) -v n="$nstored" -v hz="$hz" 'BEGIN { printf "%.5f", n ? k / hz / n * 1000 : 0 }')
  simpct=$(awk -v c=$((s1 - s0)) -v w="$win_ms" 'BEGIN { printf "%.1f", c / 1e6 / w * 100 }')
  p50=$(pct "$dir/latency.txt" 2 50); p99=$(pct "$dir/latency.txt" 2 99)
  local hwm_mb
  hwm_mb=$(awk -v k="$hwm" 'BEGIN { printf "%.1f", k / 1024 }')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$gw" "$meters" \
    "$points" "$req" "$pps" "$cpu_pct" "$us_pt" "$s1000" "$k1000" "$hwm_mb" "$bytes" "$p50" "$p99" \
    "$simpct" "$round" >> "$results"
  local warn
  warn=$(grep -ciE 'read failed|behind|lost' "$dir/$gw.log" || true)
  printf '%-6s %-8s %5s meters %6s pts/cycle %5s req/cycle: %7s points/s, CPU %5s%% (%s us/point, %s s/1000 pts; stat ticks %s), VmHWM %s MB, %s B/sample, latency p50 %s ms p99 %s ms; sim CPU %s%%; %s warnings in log\n' \
    "$name" "$gw" "$meters" "$points" "$req" "$pps" "$cpu_pct" "$us_pt" "$s1000" "$k1000" "$hwm_mb" \
    "$bytes" "$p50" "$p99" "$simpct" "$warn"
  cleanup
}

echo "park.sh: results in $out (warm-up $warmup s, window $measure s, $repeat round(s))"
for round in $(seq "$repeat"); do
  for s in $scenarios; do
    case $s in
      park) run_one park parkgw --park ;;
      s100) run_one s100 parkgw --meters 100 --points 20 ;;
      s*) run_one "$s" parkgw --meters "${s#s}" --points 30 ;;
      *) echo "park.sh: unknown scenario $s" >&2; exit 2 ;;
    esac
  done
  if [ $with_collectd = 1 ]; then
    if command -v collectd >/dev/null; then
      run_one s100 collectd --meters 100 --points 20 --collectd
    else
      echo "park.sh: collectd not installed (apt-get install collectd-core): peer run skipped"
    fi
  fi
done

# Medians over the rounds, per scenario and gateway, in run order.
medians=$out/medians.tsv
awk -F'\t' -v OFS='\t' '
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] + 0 > t + 0; j--) a[j + 1] = a[j]; a[j + 1] = t }
    if (a[1] == "n/a") return "n/a"
    return n % 2 ? a[(n + 1) / 2] : sprintf("%.2f", (a[n / 2] + a[n / 2 + 1]) / 2)
  }
  NR == 1 { $16 = "rounds"; print; next }
  { k = $1 SUBSEP $2; if (!(k in seen)) { seen[k] = 1; order[++nk] = k; first[k] = $0 }
    runs[k]++; for (c = 6; c <= 15; c++) v[k, c] = v[k, c] " " $c }
  END { for (i = 1; i <= nk; i++) { k = order[i]; split(first[k], f, "\t")
          line = f[1] OFS f[2] OFS f[3] OFS f[4] OFS f[5]
          for (c = 6; c <= 15; c++) line = line OFS median(v[k, c])
          print line, runs[k] } }' "$results" > "$medians"

# Ratios parkgw / collectd on s100.
awk -F'\t' '$1 == "s100" && $2 == "parkgw" { pu = $8; pr = $11 }
            $1 == "s100" && $2 == "collectd" { cu = $8; cr = $11 }
            END { if (pu && cu) printf "s100 parkgw/collectd: CPU per point %.3f (collectd %.1fx more), peak RSS %.2f\n", pu / cu, cu / pu, pr / cr }' "$medians"
# Growth from the smallest to the largest sN scenario of 30-point meters.
awk -F'\t' '$2 == "parkgw" && $1 ~ /^s[0-9]+$/ && $4 == $3 * 30 {
              if (!nlo || $3 + 0 < lo[3] + 0) nlo = split($0, lo, "\t")
              if (!nhi || $3 + 0 > hi[3] + 0) nhi = split($0, hi, "\t") }
            END { if (lo[3] && hi[3] > lo[3])
                    printf "growth %s -> %s (%sx the meters): CPU per point x%.2f, peak RSS x%.2f, bytes/sample x%.2f, requests per meter %s -> %s, latency p50 %s -> %s ms, p99 %s -> %s ms\n",
                      lo[1], hi[1], hi[3] / lo[3], hi[8] / lo[8], hi[11] / lo[11], hi[12] / lo[12],
                      lo[5] / lo[3], hi[5] / hi[3], lo[13], hi[13], lo[14], hi[14] }' "$medians"
if [ "$repeat" -gt 1 ]; then
  echo "every run:"; column -t -s$'\t' "$results"
  echo "medians over $repeat rounds:"
fi
column -t -s$'\t' "$medians"

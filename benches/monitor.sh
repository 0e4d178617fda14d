#!/usr/bin/env bash
# Live-capture benchmark of `iotwatch monitor` (issue 8): home-mix.pcap is
# replayed with tcpreplay over a veth pair inside a network namespace this
# script creates (and removes), at top speed and at fixed rates. For each
# rate: packets sent, captured, dropped (kernel and internal queue), the
# daemon's CPU (percent of one core) and peak RSS. Then idle CPU and RSS.
# Sends nothing outside the namespace. Needs root, tcpreplay, curl.
#
#   ../shared/tools/make-bench-data.sh --install   # once: target/bench-data/
#   benches/monitor.sh [FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
FILE="${1:-target/bench-data/home-mix.pcap}"
cargo build --release --quiet --bin iotwatch
BIN="$PWD/target/release/iotwatch"
NS=iwbench$$
TMP=$(mktemp -d)
cleanup() { ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true; ip netns del "$NS" 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
ip netns add "$NS"
ip -n "$NS" link add mon0 type veth peer name rep0
# Room for every frame of the capture (some are larger than 1500 bytes).
ip -n "$NS" link set mon0 mtu 65535
ip -n "$NS" link set rep0 mtu 65535
ip -n "$NS" link set lo up
ip -n "$NS" link set mon0 up
ip -n "$NS" link set rep0 up
# No IPv6 chatter of our own on the pair.
ip netns exec "$NS" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }
metric() { ip netns exec "$NS" curl -s 127.0.0.1:9469/metrics | awk -v m="$1" 'index($0, m) == 1 {print $NF}'; }

start() {
  rm -f "$TMP"/db*
  ip netns exec "$NS" "$BIN" monitor -i mon0 --db "$TMP/db" --control "$TMP/sock" \
    --metrics 127.0.0.1:9469 --no-syslog 2>"$TMP/err" &
  PID=$!
  for _ in $(seq 100); do [ -S "$TMP/sock" ] && break; sleep 0.1; done
  sleep 1
}

stop() { kill -TERM "$PID"; wait "$PID" || true; }

echo "| rate (packets/s) | sent | captured | kernel drops | queue drops | achieved packets/s | daemon CPU % | peak RSS MiB |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
# rate, packets to send
for run in "10000 200000" "100000 1000000" "300000 2500000" "topspeed 2500000"; do
  set -- $run
  rate=$1 limit=$2
  start
  c0=$(cpu_ticks "$PID"); t0=$(date +%s.%N)
  if [ "$rate" = topspeed ]; then flag=(--topspeed); else flag=(--pps "$rate"); fi
  out=$(ip netns exec "$NS" tcpreplay -q -i rep0 "${flag[@]}" --limit "$limit" "$FILE" 2>&1)
  sleep 2   # the last batch and tick
  c1=$(cpu_ticks "$PID"); t1=$(date +%s.%N)
  failed=$(echo "$out" | awk '/Failed packets:/ {print $3}')
  [ "${failed:-0}" = 0 ] || echo "warning: tcpreplay failed to send $failed packets" >&2
  sent=$(echo "$out" | awk '/Actual:/ {print $2}')
  pps=$(echo "$out" | awk '/Rated:/ {for (i=1;i<=NF;i++) if ($i ~ /pps/) print $(i-1)}' | head -1)
  captured=$(metric 'iotwatch_packets_total{interface="mon0"}')
  kdrop=$(metric 'iotwatch_drops_total{interface="mon0",where="kernel"}')
  qdrop=$(metric 'iotwatch_drops_total{interface="mon0",where="queue"}')
  cpu=$(echo "($c1 - $c0) / $clk / ($t1 - $t0) * 100" | bc -l)
  printf "| %s | %s | %s | %s | %s | %s | %.0f | %s |\n" "$rate" "$sent" "$captured" "$kdrop" "$qdrop" "$pps" "$cpu" "$(hwm_mib "$PID")"
  stop
done

# Idle: a fresh daemon with no traffic, measured over 20 s.
start
sleep 5
c0=$(cpu_ticks "$PID"); sleep 20; c1=$(cpu_ticks "$PID")
printf "\nidle: CPU %.2f %% of one core over 20 s, RSS %s MiB (peak %s MiB)\n" \
  "$(echo "($c1 - $c0) / $clk / 20 * 100" | bc -l)" "$(rss_mib "$PID")" "$(hwm_mib "$PID")"
stop

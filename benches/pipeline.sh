#!/usr/bin/env bash
# Whole-pipeline benchmark: iotwatch (1 and 2 threads), the floor baseline
# (examples/floor.rs: pcap-parser + etherparse + a hash-map insert per packet)
# and ndpiReader, in one run on page-cached files. Prints packets/s (best of
# RUNS wall-clock runs, tools interleaved; ndpiReader best of 3) and peak RSS
# (/usr/bin/time -v) as a Markdown table. Below it, the two-thread speed-up
# paired by round: one thread's time over two threads' in the same round
# (they run back to back), whose median a slow stretch of a shared machine
# moves less than it moves the best times.
#
#   ../shared/tools/make-bench-data.sh --install   # once: target/bench-data/
#   benches/pipeline.sh [FILE...]                  # default: both bench captures
#   BASELINE=path/to/iotwatch benches/pipeline.sh  # also time another build with
#                                                  # 1 thread (e.g. before a feature)
#
# Needs: /usr/bin/time (Debian: time), fincore (util-linux), ndpiReader (Debian: libndpi-bin; skipped if absent).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${RUNS:-7}"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(target/bench-data/home-mix.pcap target/bench-data/mirai-scan.pcap)
cargo build --release --quiet --bin iotwatch --example floor
BIN=target/release/iotwatch
FLOOR=target/release/examples/floor

# Keeps files in the page cache until killed, by holding them mapped: some
# hosts page out cached file pages that no process maps once they look cold
# (this machine's DAMON pageout scheme: unmapped pages idle for a minute, up
# to 128 MiB/s), and a capture then read back from disk part-way through
# the rounds made some runs wait for I/O (BENCHMARKS.md, session 14).
hold() {
  local ready
  ready=$(mktemp)
  python3 -c '
import mmap, os, signal, sys
maps = []
for path in sys.argv[2:]:
    with open(path, "rb") as f:
        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    for at in range(0, len(m), 4096):
        m[at]
    maps.append(m)
open(sys.argv[1], "w").write("held")
signal.pause()
' "$ready" "$@" &
  holder=$!
  until [ -s "$ready" ]; do kill -0 "$holder" || exit 1; sleep 0.1; done
  rm -f "$ready"
}
holder=
trap '[ -z "$holder" ] || kill "$holder" 2>/dev/null' EXIT

# Whether all of a file is in the page cache.
resident() {
  [ "$(fincore --noheadings -o PAGES "$1")" -eq $(( ($(stat -c %s "$1") + 4095) / 4096 )) ]
}

# One wall-clock run: prints "seconds rss_kib". The wall clock is read
# around /usr/bin/time (whose own %e counts in hundredths, truncated: up to
# 2 % of a half-second run) and RSS is its %M (the last line of its output;
# a failing command adds one before).
once() {
  local secs
  secs=$(python3 -c '
import subprocess, sys, time
start = time.perf_counter()
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("%.4f" % (time.perf_counter() - start))
' /usr/bin/time -f "%M" -o /tmp/iotwatch-bench.time "$@")
  echo "$secs $(tail -n 1 /tmp/iotwatch-bench.time)"
}

echo "| capture | tool | seconds | packets/s | peak RSS MiB | ratio |"
echo "| --- | --- | ---: | ---: | ---: | --- |"
paired=()
for f in "${files[@]}"; do
  [ -f "$f" ] || { echo "missing $f: run ../shared/tools/make-bench-data.sh --install" >&2; exit 1; }
  # Into the page cache the way a file read from disk gets there: evicted,
  # then read back through readahead. A file still cached from the writes
  # that made it (make-bench-data.sh) sits in 4 KiB folios, which makes
  # mapping it several times dearer (BENCHMARKS.md: "The page cache").
  python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$f"
  cat "$f" >/dev/null
  hold "$f" "$BIN" "$FLOOR" ${BASELINE:+"$BASELINE"}
  pkts=$("$BIN" analyze -q --threads 1 -r "$f" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["capture"]["packets"])')
  declare -A secs=() rss=()
  ndpi_runs=0
  rounds=()
  tools=(floor iotwatch-1 iotwatch-2)
  [ -n "${BASELINE:-}" ] && tools+=(baseline-1)
  command -v ndpiReader >/dev/null && tools+=(ndpiReader)
  # Round-robin over the tools, keeping each one's best time: a burst of noise
  # on this shared machine then hits every tool alike, not one of them.
  for _ in $(seq "$RUNS"); do
    for tool in "${tools[@]}"; do
      case $tool in
        floor) cmd=("$FLOOR" "$f") ;;
        iotwatch-1) cmd=("$BIN" analyze -q --threads 1 -r "$f" --json) ;;
        iotwatch-2) cmd=("$BIN" analyze -q --threads 2 -r "$f" --json) ;;
        baseline-1) cmd=("$BASELINE" analyze -q --threads 1 -r "$f" --json) ;;
        ndpiReader) cmd=(ndpiReader -q -i "$f") ;;
      esac
      # ndpiReader takes seconds a run: its best of three is enough.
      [ "$tool" = ndpiReader ] && [ "$ndpi_runs" -ge 3 ] && continue
      [ "$tool" = ndpiReader ] && ndpi_runs=$((ndpi_runs + 1))
      read -r s r < <(once "${cmd[@]}")
      [ "$tool" = iotwatch-1 ] && one=$s
      [ "$tool" = iotwatch-2 ] && rounds+=("$(awk "BEGIN{printf \"%.3f\", $one/$s}")")
      if [ -z "${secs[$tool]:-}" ] || awk "BEGIN{exit !($s < ${secs[$tool]})}"; then secs[$tool]=$s; fi
      [ "${rss[$tool]:-0}" -lt "$r" ] && rss[$tool]=$r
    done
  done
  for tool in "${tools[@]}"; do
    s=${secs[$tool]}
    ratio=""
    case $tool in
      iotwatch-1) ratio=$(awk "BEGIN{printf \"%.2f x floor\", ${secs[floor]}/$s}") ;;
      iotwatch-2) ratio=$(awk "BEGIN{printf \"%.2f x 1 thread\", ${secs[iotwatch-1]}/$s}") ;;
      ndpiReader) ratio=$(awk "BEGIN{printf \"iotwatch-1 is %.1f x\", $s/${secs[iotwatch-1]}}") ;;
      baseline-1) ratio=$(awk "BEGIN{printf \"iotwatch-1 is %.2f x\", $s/${secs[iotwatch-1]}}") ;;
    esac
    printf '| %s | %s | %.3f | %s | %.0f | %s |\n' "$(basename "$f")" "$tool" "$s" \
      "$(awk "BEGIN{printf \"%.0f\", $pkts/$s}")" "$(awk "BEGIN{print ${rss[$tool]}/1024}")" "$ratio"
  done
  kill "$holder"; holder=
  resident "$f" || echo "warning: $f left the page cache during the runs" >&2
  paired+=("$(basename "$f"): $(printf '%s\n' "${rounds[@]}" | sort -n | awk '{v[NR]=$1} END{printf "median %.2f x (%.2f-%.2f) over %d rounds", (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[1], v[NR], NR}')")
  unset secs rss
done
echo
echo "Two threads against one, paired by round:"
printf -- '- %s\n' "${paired[@]}"

#!/usr/bin/env bash
# Issue 11's benchmark: create throughput (c=64, 8 s) of one binary with
# --metrics=true and --metrics=false, in alternating runs (the order swaps
# every round, so drift of a shared machine hits both alike).
#   on    metrics on (the default)
#   off   --metrics=false: no instrumentation, /metrics 404
# Usage: docs/bench/metrics.sh [binary] [rounds]  (default /tmp/skyring-new, 4)
# Results in /tmp/bench/metrics.txt: label, creates/s, node CPU µs per create
# (utime+stime of the node process over the run / creates: less sensitive to
# other load on a shared machine than creates/s); then the means and on/off.
set -u
bin=${1:-/tmp/skyring-new}; rounds=${2:-4}
mkdir -p /tmp/bench; out=/tmp/bench/metrics.txt; : > $out
run() { # label port metrics
  local label=$1 port=$2 metrics=$3 dir; dir=$(mktemp -d)
  $bin run -p $port --channel:port $((port+1000)) --nats:port $((port+2000)) --storage:path $dir --metrics=$metrics >/tmp/bench/node-$label.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null localhost:$port/readyz && break; sleep 0.1; done
  local c t0 t1
  t0=$(awk '{print $14+$15}' /proc/$pid/stat)
  c=$($bin bench --url http://127.0.0.1:$port -c 64 -d 8s 2>/dev/null | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['create_per_sec'], d['creates'])")
  t1=$(awk '{print $14+$15}' /proc/$pid/stat)
  set -- $c
  echo "$label $1 $(python3 -c "print(round(($t1-$t0)/$(getconf CLK_TCK)*1e6/$2, 2))")" >> $out
  kill -TERM $pid; wait $pid; rm -rf $dir
}
for r in $(seq $rounds); do
  if [ $((r%2)) = 1 ]; then run on 3471 true; run off 3472 false; else run off 3472 false; run on 3471 true; fi
done
cat $out
python3 - $out <<'PY'
import sys, statistics
d, cpu = {}, {}
for line in open(sys.argv[1]):
    k, v, c = line.split(); d.setdefault(k, []).append(float(v)); cpu.setdefault(k, []).append(float(c))
on, off = statistics.mean(d["on"]), statistics.mean(d["off"])
con, coff = statistics.mean(cpu["on"]), statistics.mean(cpu["off"])
print(f"creates/s: mean on {on:.0f}, off {off:.0f}, on/off {on/off:.3f}")
print(f"node CPU per create: mean on {con:.1f} us, off {coff:.1f} us, on/off {con/coff:.3f}")
PY

#!/usr/bin/env bash
# Issue 11's benchmark: create throughput (c=64, 8 s) of one binary with
# --metrics=true and --metrics=false, in alternating runs (the order swaps
# every round, so drift of a shared machine hits both alike).
#   on    metrics on (the default)
#   off   --metrics=false: no instrumentation, /metrics 404
# Usage: docs/bench/metrics.sh [binary] [rounds]  (default /tmp/skyring-new, 4)
# Results in /tmp/bench/metrics.txt: label, creates/s; then the mean of each
# and on/off.
set -u
bin=${1:-/tmp/skyring-new}; rounds=${2:-4}
mkdir -p /tmp/bench; out=/tmp/bench/metrics.txt; : > $out
run() { # label port metrics
  local label=$1 port=$2 metrics=$3 dir; dir=$(mktemp -d)
  $bin run -p $port --channel:port $((port+1000)) --nats:port $((port+2000)) --storage:path $dir --metrics=$metrics >/tmp/bench/node-$label.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null localhost:$port/readyz && break; sleep 0.1; done
  local c
  c=$($bin bench --url http://127.0.0.1:$port -c 64 -d 8s 2>/dev/null | tail -1 | python3 -c "import json,sys; print(json.load(sys.stdin)['create_per_sec'])")
  echo "$label $c" >> $out
  kill -TERM $pid; wait $pid; rm -rf $dir
}
for r in $(seq $rounds); do
  if [ $((r%2)) = 1 ]; then run on 3471 true; run off 3472 false; else run off 3472 false; run on 3471 true; fi
done
cat $out
python3 - $out <<'PY'
import sys, statistics
d = {}
for line in open(sys.argv[1]):
    k, v = line.split(); d.setdefault(k, []).append(float(v))
on, off = statistics.mean(d["on"]), statistics.mean(d["off"])
print(f"mean on {on:.0f}/s, off {off:.0f}/s, on/off {on/off:.3f}")
PY

#!/usr/bin/env bash
# Alternating-run scripts used for docs/benchmarks.md (fourth session). They expect
# /tmp/skyring-old and /tmp/skyring-new (go build -o ... ./cmd/skyring from the two
# commits; join.sh: /tmp/old9 a worktree of the old commit) and write to /tmp/bench.
# alternating runs: old vs new binary; create throughput (c=64, 8s) and 10k at one instant
set -u
old=/tmp/skyring-old; new=/tmp/skyring-new
out=/tmp/bench/results.txt; : > $out
run() { # bin label port
  local bin=$1 label=$2 port=$3 dir; dir=$(mktemp -d)
  # old binary: -p 0/--channel:port 0 semantics differ; use explicit ports
  $bin run -p $port --channel:port $((port+1000)) --nats:port $((port+2000)) --storage:path $dir >/tmp/bench/node-$label.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null localhost:$port/ping && break; sleep 0.1; done
  echo "== $label create" >> $out
  $new bench --url http://127.0.0.1:$port -c 64 -d 8s 2>/dev/null | tail -1 >> $out
  echo "== $label instant" >> $out
  $new bench --url http://127.0.0.1:$port --mode instant -n 10000 --lead 4s 2>/dev/null | tail -1 >> $out
  kill -TERM $pid; wait $pid; rm -rf $dir
}
for r in 1 2; do
  run $new new 3102
  run $old old 3101
done

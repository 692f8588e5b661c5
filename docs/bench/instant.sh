#!/usr/bin/env bash
# Alternating-run scripts used for docs/benchmarks.md (fourth session). They expect
# /tmp/skyring-old and /tmp/skyring-new (go build -o ... ./cmd/skyring from the two
# commits; join.sh: /tmp/old9 a worktree of the old commit) and write to /tmp/bench.
set -u
old=/tmp/skyring-old; new=/tmp/skyring-new
out=/tmp/bench/instant.txt; : > $out
run() { local bin=$1 label=$2 port=$3 dir; dir=$(mktemp -d)
  $bin run -p $port --channel:port $((port+1000)) --nats:port $((port+2000)) --storage:path $dir >/tmp/bench/node-$label.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null localhost:$port/ping && break; sleep 0.1; done
  $new bench --url http://127.0.0.1:$port --mode instant -n 10000 --lead 4s 2>/dev/null | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); print('$label', d['lateness_ms']['p50'], d['lateness_ms']['p99'], d['missing'], d['duplicates'], d['early'])" >> $out
  kill -TERM $pid; wait $pid; rm -rf $dir
}
for r in 1 2 3 4; do
  if [ $((r%2)) = 1 ]; then run $new new 3102; run $old old 3101; else run $old old 3101; run $new new 3102; fi
done

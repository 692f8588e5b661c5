#!/usr/bin/env bash
# Alternating-run scripts used for docs/benchmarks.md (fourth session). They expect
# /tmp/skyring-old and /tmp/skyring-new (go build -o ... ./cmd/skyring from the two
# commits; join.sh: /tmp/old9 a worktree of the old commit) and write to /tmp/bench.
# alternating: creates through 3 nodes (300k) and a 4th node joining; old vs new tree
set -u
out=/tmp/bench/join.txt; : > $out
run() { # tree label
  local tree=$1 label=$2
  export SKYRING_CLUSTER_DIR=/tmp/bench/lc-$label
  rm -rf $SKYRING_CLUSTER_DIR
  (cd $tree && bash compose/local-cluster.sh 3 >/dev/null 2>&1)
  sleep 2
  local res
  res=$(/tmp/skyring-new bench --url http://127.0.0.1:3000 --url http://127.0.0.1:3001 --url http://127.0.0.1:3002 -n 300000 -c 64 2>/dev/null | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['create_per_sec'], d['latency_ms']['p99'], d['create_errors'])")
  local j
  j=$(cd $tree && bash compose/bench-join.sh 4 2>&1 | tail -1)
  echo "$label creates/s p99 errors: $res | $j" >> $out
  (cd $tree && bash compose/local-cluster.sh stop >/dev/null 2>&1)
  rm -rf $SKYRING_CLUSTER_DIR
}
for r in 1 2 3 4; do
  if [ $((r%2)) = 1 ]; then run /work/main new; run /tmp/old9 old; else run /tmp/old9 old; run /work/main new; fi
done

#!/usr/bin/env bash
# Alternating-run scripts used for docs/benchmarks.md (fourth session). They expect
# /tmp/skyring-old and /tmp/skyring-new (go build -o ... ./cmd/skyring from the two
# commits; join.sh: /tmp/old9 a worktree of the old commit) and write to /tmp/bench.
# time for timers kept on a non-owner (owner killed, not yet dropped) to reach the owner once it is back
set -u
bin=${1:-/tmp/skyring-new}
d=/tmp/bench/stuck; rm -rf $d; mkdir -p $d
start() { # i
  local i=$1
  $bin run -p $((3500+i)) --channel:port $((3600+i)) --nats:port $((3700+i)) -s 127.0.0.1:3601 -s 127.0.0.1:3602 --member:timeout 30s --storage:path $d/n$i > $d/n$i.log 2>&1 &
  echo $! > $d/pid$i
}
count() { curl -s localhost:$1/cluster | python3 -c "import json,sys; print(json.load(sys.stdin)['node']['timers'])"; }
start 1; start 2; sleep 3
kill -9 $(cat $d/pid2); sleep 0.5
# creates through node 1: those owned by node 2 are kept on node 1
$bin bench --url http://127.0.0.1:3501 -n 2000 -c 16 >/dev/null 2>&1
echo "node1 holds $(count 3501) of 2000 while node2 is down"
t0=$(date +%s.%N)
start 2
while :; do c=$(count 3502 2>/dev/null || echo 0); [ -n "$c" ] && [ "$c" -gt 0 ] && [ "$(count 3501)" -lt 2000 ] && { n1=$(count 3501); sleep 0.3; [ "$(count 3501)" = "$n1" ] && break; }; sleep 0.05; done
t1=$(date +%s.%N)
echo "node2 back: node1 $(count 3501), node2 $(count 3502); settled $(echo "$t1 - $t0" | bc) s after node2's restart began"
kill $(cat $d/pid1) $(cat $d/pid2); wait 2>/dev/null

#!/usr/bin/env bash
# Issue 10's benchmark: create throughput (c=64, 8 s) and 10,000 timers due at one
# instant, alternating runs of three nodes:
#   old      the commit before bus security (/tmp/skyring-old)
#   off      this build, no authentication (/tmp/skyring-new)
#   on       this build with --http:token and --channel:secret (the bench sends the token)
# Results in /tmp/bench/auth.txt: label, creates/s, instant p50 and p99 (ms), missing, early.
set -u
old=/tmp/skyring-old; new=/tmp/skyring-new
mkdir -p /tmp/bench; out=/tmp/bench/auth.txt; : > $out
tok=bench-token-0123456789
run() { # bin label port [auth]
  local bin=$1 label=$2 port=$3 auth=${4:-} dir; dir=$(mktemp -d)
  local flags=() bflags=()
  if [ -n "$auth" ]; then
    flags=(--http:token $tok --channel:secret cluster-secret-0123456789); bflags=(--token $tok)
  fi
  $bin run -p $port --channel:port $((port+1000)) --nats:port $((port+2000)) --storage:path $dir "${flags[@]}" >/tmp/bench/node-$label.log 2>&1 &
  local pid=$!
  for i in $(seq 100); do curl -s -o /dev/null localhost:$port/ping && break; sleep 0.1; done
  local c i
  c=$($new bench --url http://127.0.0.1:$port -c 64 -d 8s "${bflags[@]}" 2>/dev/null | tail -1 | python3 -c "import json,sys; print(json.load(sys.stdin)['create_per_sec'])")
  i=$($new bench --url http://127.0.0.1:$port --mode instant -n 10000 --lead 4s "${bflags[@]}" 2>/dev/null | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['lateness_ms']['p50'], d['lateness_ms']['p99'], d['missing'], d['early'])")
  echo "$label $c $i" >> $out
  kill -TERM $pid; wait $pid; rm -rf $dir
}
for r in 1 2 3; do
  case $((r%3)) in
    1) run $old old 3101; run $new off 3102; run $new on 3103 auth;;
    2) run $new off 3102; run $new on 3103 auth; run $old old 3101;;
    0) run $new on 3103 auth; run $old old 3101; run $new off 3102;;
  esac
done
cat $out

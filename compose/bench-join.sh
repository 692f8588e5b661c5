#!/usr/bin/env bash
# Times a rebalance: starts one more node next to a cluster started by
# compose/local-cluster.sh N and reports how long after its start the timers
# it now owns had all arrived (its count in GET /cluster stopped changing).
#   compose/local-cluster.sh 3
#   skyring bench --url http://127.0.0.1:3000 --url http://127.0.0.1:3001 --url http://127.0.0.1:3002 -n 300000
#   compose/bench-join.sh 4
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SKYRING_CLUSTER_DIR:-./.local-cluster}
i=${1:-4}
http=$((3000 + i - 1))
count() { curl -s "http://127.0.0.1:$http/cluster" 2>/dev/null | sed -n 's/.*"node":{[^}]*"timers":\([0-9]*\).*/\1/p'; }
start=$(date +%s.%N)
"$dir/skyring" run -p "$http" --channel:port $((3455 + i - 1)) --nats:port $((4222 + i - 1)) \
  -s 127.0.0.1:3455 -s 127.0.0.1:3456 -s 127.0.0.1:3457 --storage:path "$dir/node-$i" > "$dir/node-$i.log" 2>&1 &
echo $! >> "$dir/pids"
last=-1; stable=0; changed=$start
while [ "$stable" -lt 20 ]; do
  c=$(count || true); c=${c:-0}
  if [ "$c" = "$last" ] && [ "$c" != 0 ]; then stable=$((stable + 1)); else stable=0; changed=$(date +%s.%N); fi
  last=$c
  sleep 0.1
done
echo "node $i holds $last timers, all there $(echo "$changed - $start" | bc) s after its start"

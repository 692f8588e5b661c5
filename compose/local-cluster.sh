#!/usr/bin/env bash
# Starts the compose layout as local processes, no Docker:
#   compose/local-cluster.sh [N]            N skyring nodes (default 5) whose embedded NATS servers
#                                           route to each other (nothing but skyring binaries)
#   compose/local-cluster.sh N --nats       N skyring nodes on a separate 3-server NATS cluster
#                                           (nats-server built from the Go module proxy)
#   compose/local-cluster.sh stop           stops what the script started
# Node i (1-based) serves HTTP on 3000+i-1, its cluster (channel) port is 3455+i-1, its
# embedded NATS client port 4222+i-1. Data and logs go to $SKYRING_CLUSTER_DIR
# (default ./.local-cluster). There is no nginx here: any node takes any request.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${SKYRING_CLUSTER_DIR:-./.local-cluster}
mkdir -p "$dir"

stop() {
  if [ -f "$dir/pids" ]; then
    while read -r pid; do kill "$pid" 2>/dev/null || true; done < "$dir/pids"
    while read -r pid; do
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    done < "$dir/pids"
    rm -f "$dir/pids"
  fi
}

if [ "${1:-}" = "stop" ]; then stop; exit 0; fi
n=${1:-5}
mode=${2:-}
stop
go build -o "$dir/skyring" ./cmd/skyring

seeds=()
for i in 1 2 3; do seeds+=(-s "127.0.0.1:$((3455 + i - 1))"); done

natsflags=()
if [ "$mode" = "--nats" ]; then
  go build -o "$dir/nats-server" github.com/nats-io/nats-server/v2
  hosts=()
  for i in 1 2 3; do
    routes=""
    for j in 1 2 3; do [ "$j" = "$i" ] || routes="$routes,nats://127.0.0.1:$((6222 + j))"; done
    "$dir/nats-server" -a 127.0.0.1 -p $((4300 + i)) --cluster_name skyring \
      --cluster "nats://127.0.0.1:$((6222 + i))" --routes "${routes#,}" > "$dir/nats-$i.log" 2>&1 &
    echo $! >> "$dir/pids"
    hosts+=("nats://127.0.0.1:$((4300 + i))")
  done
  natsflags=(--nats:hosts "$(IFS=,; echo "${hosts[*]}")")
fi

# The embedded servers authenticate their routes with a cluster secret, made
# once and kept with the data.
if [ "$mode" != "--nats" ]; then
  [ -s "$dir/secret" ] || (umask 077; od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$dir/secret")
  export SKYRING_CHANNEL_SECRET_FILE="$dir/secret"
fi

for i in $(seq "$n"); do
  "$dir/skyring" run -p $((3000 + i - 1)) --channel:port $((3455 + i - 1)) \
    --nats:port $((4222 + i - 1)) "${seeds[@]}" "${natsflags[@]}" \
    --storage:path "$dir/node-$i" > "$dir/node-$i.log" 2>&1 &
  echo $! >> "$dir/pids"
done

for i in $(seq "$n"); do
  for _ in $(seq 200); do
    curl -sf "http://127.0.0.1:$((3000 + i - 1))/ping" >/dev/null && break
    sleep 0.1
  done
done
echo "skyring: $n nodes on http://127.0.0.1:3000..$((3000 + n - 1)); logs in $dir; stop with: $0 stop"
curl -s http://127.0.0.1:3000/cluster; echo

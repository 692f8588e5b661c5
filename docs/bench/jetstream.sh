#!/usr/bin/env bash
# Issue 12 figures: the jetstream backend (R1 alone, R3 on three local nodes)
# against goleveldb, in one run, alternating the three configurations each
# round. Per configuration: creates/s and create p99 (bench create mode,
# c=64, 8 s), 10,000 timers due at one instant (p50/p99 lateness, missing,
# duplicates, early), and memory per pending timer (RSS of the node(s)
# before and after 100,000 pending timers, / 100,000).
# Usage: docs/bench/jetstream.sh [rounds]   (needs `go build -o /tmp/skyring-bench ./cmd/skyring`)
set -u
bin=${BIN:-/tmp/skyring-bench}; rounds=${1:-2}
out=${OUT:-/tmp/bench/jetstream.txt}; mkdir -p /tmp/bench; : > "$out"
pids=(); dirs=()
rss() { local s=0; for p in "${pids[@]}"; do s=$((s + $(awk '/VmRSS/{print $2}' /proc/$p/status))); done; echo $s; }
up() { for i in $(seq 300); do curl -s -o /dev/null "localhost:$1/readyz" -w '%{http_code}' | grep -q 200 && return 0; sleep 0.1; done; echo "node on $1 not ready" >&2; return 1; }
start() { # config
  pids=(); dirs=(); local seeds="--seeds 127.0.0.1:7311 --seeds 127.0.0.1:7312 --seeds 127.0.0.1:7313"
  case $1 in
  leveldb|r1) local d; d=$(mktemp -d); dirs+=("$d")
    local be=(); [ "$1" = r1 ] && be=(--storage:backend jetstream)
    "$bin" run -p 7301 --channel:port 7311 --nats:port 7321 --storage:path "$d" "${be[@]}" >/tmp/bench/js-$1.log 2>&1 & pids+=($!)
    up 7301 ;;
  r3) for i in 1 2 3; do local d; d=$(mktemp -d); dirs+=("$d")
      "$bin" run -p 730$i --channel:port 731$i --nats:port 732$i --storage:path "$d" --storage:backend jetstream $seeds >/tmp/bench/js-r3-$i.log 2>&1 & pids+=($!)
    done; up 7301 && up 7302 && up 7303 ;;
  esac
}
stop() { for p in "${pids[@]}"; do kill -TERM $p; done; for p in "${pids[@]}"; do wait $p; done; rm -rf "${dirs[@]}"; }
urls() { if [ "$1" = r3 ]; then echo "--url http://127.0.0.1:7301 --url http://127.0.0.1:7302 --url http://127.0.0.1:7303"; else echo "--url http://127.0.0.1:7301"; fi; }
measure() { # config
  # Memory first, on a fresh node (or nodes): RSS grown by earlier runs would
  # hide what the pending timers take.
  start "$1" || { stop; return; }
  local u; u=$(urls "$1")
  local before; before=$(rss)
  "$bin" bench $u --mode create -n 100000 -c 64 --timeout 1h 2>/dev/null | tail -1 >/dev/null
  sleep 2; local after; after=$(rss)
  echo "$1 memory_bytes_per_pending $(( (after - before) * 1024 / 100000 )) (rss_kb $before -> $after)" >> "$out"
  stop
  start "$1" || { stop; return; }
  "$bin" bench $u --mode create -c 64 -d 8s --cleanup 2>/dev/null | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); print('$1 create', round(d['create_per_sec']), 'p99_ms', d['latency_ms']['p99'], 'errors', d['create_errors'])" >> "$out"
  "$bin" bench $u --mode instant -n 10000 --lead 6s 2>/dev/null | tail -1 | python3 -c "import json,sys; d=json.load(sys.stdin); l=d['lateness_ms']; print('$1 instant p50_ms', l['p50'], 'p99_ms', l['p99'], 'missing', d['missing'], 'dup', d['duplicates'], 'early', d['early'])" >> "$out"
  stop
}
for r in $(seq "$rounds"); do
  case $((r % 3)) in
  1) order="leveldb r1 r3" ;; 2) order="r1 r3 leveldb" ;; *) order="r3 leveldb r1" ;;
  esac
  for c in $order; do measure "$c"; done
done
cat "$out"

#!/usr/bin/env bash
# Runs memcaslap (libmemcached-tools) against Debian's memcached and against a
# memcluster node, one after the other in one run, and prints each load's
# throughput ratio (node / memcached). The server runs on core 0 (memcached
# -t 1; the node with GOMAXPROCS=1), the load generator on core 1.
#
# Environment: BENCH_TIME (default 10s) per load, BENCH_ROUNDS (default 3)
# alternating rounds per load, MEMCLUSTER (default bin/memcluster).
set -euo pipefail
cd "$(dirname "$0")/.."

time_per_load=${BENCH_TIME:-10s}
rounds=${BENCH_ROUNDS:-3}
node_bin=${MEMCLUSTER:-bin/memcluster}
mc_port=${MC_PORT:-22311}
node_port=${NODE_PORT:-22312}

for tool in memcached memcaslap taskset; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is not installed (apt-get install memcached libmemcached-tools)" >&2; exit 1; }
done
[ -x "$node_bin" ] || { echo "bench: $node_bin missing: run make build" >&2; exit 1; }

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

wait_port() {
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "bench: nothing listens on port $1" >&2
	exit 1
}

taskset -c 0 memcached -U 0 -l 127.0.0.1 -p "$mc_port" -t 1 -m 1024 -c 4096 -u root &
pids+=($!)
GOMAXPROCS=1 taskset -c 0 "$node_bin" -U 0 -l 127.0.0.1 -p "$node_port" -t 1 -m 1024 -c 4096 &
pids+=($!)
wait_port "$mc_port"
wait_port "$node_port"

# tps PORT ARGS...: one memcaslap run's operations per second.
tps() {
	local port=$1
	shift
	taskset -c 1 memcaslap -s "127.0.0.1:$port" -T 1 -c 50 -t "$time_per_load" -X 100 "$@" 2>&1 |
		awk '/^Run time:/ { for (i = 1; i <= NF; i++) if ($i == "TPS:") print $(i+1) }'
}

printf '%-28s %12s %12s %8s\n' load memcached memcluster ratio
run_load() {
	local name=$1
	shift
	local mc_sum=0 node_sum=0
	for _ in $(seq 1 "$rounds"); do
		mc=$(tps "$mc_port" "$@")
		node=$(tps "$node_port" "$@")
		[ -n "$mc" ] && [ -n "$node" ] || { echo "bench: memcaslap gave no figure for $name" >&2; exit 1; }
		mc_sum=$((mc_sum + mc))
		node_sum=$((node_sum + node))
	done
	awk -v n="$name" -v m="$mc_sum" -v c="$node_sum" -v r="$rounds" \
		'BEGIN { printf "%-28s %12d %12d %7.2fx\n", n, m / r, c / r, c / m }'
}

run_load "text get:set 9:1"
run_load "binary get:set 9:1" -B
run_load "text 10-key multiget" -d 10

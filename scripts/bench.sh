#!/usr/bin/env bash
# Runs memcaslap (libmemcached-tools) against Debian's memcached and against a
# memcluster node, one after the other in one run, and prints each load's
# throughput ratio (node / memcached). The server runs on core 0 (memcached
# -t 1; the node with GOMAXPROCS=1), the load generator on core 1.
#
# Environment: BENCH_TIME (default 5s) per load, BENCH_ROUNDS (default 8)
# rounds per load, in each of which both servers run the load, memcached
# first in odd rounds and the node first in even ones; the ratio is of the
# mean TPS. Many short rounds rather than a few long ones, because the
# machine's noise comes and goes in bursts of seconds: alternating often
# spreads a burst over both servers. The "rounds" column counts the rounds
# in which the node's TPS was at least memcached's. Beside it, each server's CPU time (user and system) per
# operation, and their ratio (memcached / node: above 1 the node spends
# less), which the machine's noise moves less than throughput, and the
# read system calls each makes per operation (memcached's and the node's):
# above 1, reads that found nothing yet, a cost memcached's epoll avoids.
# MEMCLUSTER (default bin/memcluster).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

time_per_load=${BENCH_TIME:-5s}
rounds=${BENCH_ROUNDS:-8}
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

taskset -c 0 memcached -U 0 -l 127.0.0.1 -p "$mc_port" -t 1 -m 1024 -c 4096 -u root &
mc_pid=$!
pids+=("$mc_pid")
GOMAXPROCS=1 taskset -c 0 "$node_bin" -U 0 -l 127.0.0.1 -p "$node_port" -t 1 -m 1024 -c 4096 &
node_pid=$!
pids+=("$node_pid")
wait_port "$mc_port"
wait_port "$node_port"

# cpu_ticks PID: the user and system CPU time PID has used, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# read_calls PID: the read system calls PID has made, failed ones too.
read_calls() { awk '/^syscr:/ { print $2 }' "/proc/$1/io"; }

# run PORT PID ARGS...: one memcaslap run against the server on PORT (whose
# process is PID): "TPS operations CPU-ticks".
run() {
	local port=$1 pid=$2 before reads out
	shift 2
	before=$(cpu_ticks "$pid") reads=$(read_calls "$pid")
	out=$(taskset -c 1 memcaslap -s "127.0.0.1:$port" -T 1 -c 50 -t "$time_per_load" -X 100 "$@" 2>&1)
	awk -v ticks=$(($(cpu_ticks "$pid") - before)) -v reads=$(($(read_calls "$pid") - reads)) '/^Run time:/ {
		for (i = 1; i <= NF; i++) { if ($i == "TPS:") tps = $(i+1); if ($i == "Ops:") ops = $(i+1) }
		print tps, ops, ticks, reads }' <<<"$out"
}

hz=$(getconf CLK_TCK)
printf '%-24s %10s %10s %7s %7s %10s %10s %7s %10s  %s\n' load memcached memcluster ratio rounds "mc us/op" "node us/op" "cpu" "reads/op" "target 1.0x"
run_load() {
	local name=$1 mc node
	shift
	local mc_tps=0 mc_ops=0 mc_ticks=0 mc_reads=0 node_tps=0 node_ops=0 node_ticks=0 node_reads=0 won=0 mt
	for round in $(seq 1 "$rounds"); do
		# Alternate which server goes first, so that neither always
		# meets the machine's state the other left.
		if [ $((round % 2)) = 1 ]; then
			mc=$(run "$mc_port" "$mc_pid" "$@")
			node=$(run "$node_port" "$node_pid" "$@")
		else
			node=$(run "$node_port" "$node_pid" "$@")
			mc=$(run "$mc_port" "$mc_pid" "$@")
		fi
		[ -n "$mc" ] && [ -n "$node" ] || { echo "bench: memcaslap gave no figure for $name" >&2; exit 1; }
		read -r t o k n <<<"$mc"
		mc_tps=$((mc_tps + t)) mc_ops=$((mc_ops + o)) mc_ticks=$((mc_ticks + k)) mc_reads=$((mc_reads + n)) mt=$t
		read -r t o k n <<<"$node"
		node_tps=$((node_tps + t)) node_ops=$((node_ops + o)) node_ticks=$((node_ticks + k)) node_reads=$((node_reads + n))
		[ "$t" -ge "$mt" ] && won=$((won + 1))
	done
	awk -v n="$name" -v r="$rounds" -v w="$won" -v hz="$hz" -v mt="$mc_tps" -v nt="$node_tps" \
		-v mo="$mc_ops" -v mk="$mc_ticks" -v no="$node_ops" -v nk="$node_ticks" -v mr="$mc_reads" -v nr="$node_reads" 'BEGIN {
		mu = mk * 1e6 / hz / mo; nu = nk * 1e6 / hz / no
		printf "%-24s %10d %10d %6.2fx %7s %10.2f %10.2f %6.2fx %4.2f/%4.2f  %s\n", n, mt / r, nt / r, nt / mt, w "/" r, mu, nu, mu / nu, mr / mo, nr / no,
			(nt >= mt ? "met" : "NOT MET") }'
}

run_load "text get:set 9:1"
run_load "binary get:set 9:1" -B
run_load "text 10-key multiget" -d 10

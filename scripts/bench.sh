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
#
# Then the loads of issue 19 with mcload latency (internal/cmd/mcload), a
# closed loop of BENCH_CONNS (default 50) connections with one request in
# flight each, gets:sets 10:1 over keys all set beforehand, on fresh servers
# at -m 1024 for each load: 100 B, 4 KiB, 100 KiB and 500 KiB values over
# TCP, and 100 B over TLS (-Z, a throwaway self-signed certificate made with
# openssl). Keys per load: BENCH_DATA_MIB (default 500) MiB of values, at
# most 100,000. The same alternating rounds; the columns: each server's mean
# ops/s and their ratio (node / memcached), the rounds the node's ops/s was
# at least memcached's, each server's CPU time per request (µs, from
# /proc/PID/stat over the round's requests) and their ratio (memcached /
# node: above 1 the node spends less), each server's p99 and p99.9 latency
# (µs, the median over rounds of each round's figure, as mcload measured it),
# "sat": the rounds in which mcload used at least BENCH_SAT (default 0.90)
# of its core in either server's run, flagged SAT: then the generator set the
# pace and the ops/s ratio says little, CPU per request still does; and
# "miss": gets that missed, which a fully stored load should not have.
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

for tool in memcached memcaslap taskset openssl go; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is not installed (apt-get install memcached libmemcached-tools)" >&2; exit 1; }
done
[ -x "$node_bin" ] || { echo "bench: $node_bin missing: run make build" >&2; exit 1; }

load_bin=bin/mcload
go build -o "$load_bin" ./internal/cmd/mcload
start_cleanup

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

# The latency loads, on fresh servers each (start_servers: new ports).
conns=${BENCH_CONNS:-50}
data_mib=${BENCH_DATA_MIB:-500}
sat_share=${BENCH_SAT:-0.90}
stop_servers
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
	-addext subjectAltName=IP:127.0.0.1 -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null

# field NAME: the value after NAME in mcload's "name value …" line on stdin.
field() { awk -v n="$1" '{ for (i = 1; i < NF; i++) if ($i == n) print $(i+1) }'; }
# median: the median of the numbers on stdin, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2) }'; }

# latency_run PORT PID CLIENT-FLAG…: one mcload latency round against the
# server on PORT (process PID): "ops ops/s ticks misses p99 p99.9 cpu-share".
latency_run() {
	local port=$1 pid=$2 before out
	shift 2
	before=$(cpu_ticks "$pid")
	out=$(taskset -c 1 "$load_bin" latency -s "127.0.0.1:$port" -conns "$conns" -fill=false -duration "$time_per_load" "$@")
	echo "$(field ops <<<"$out") $(field ops/s <<<"$out") $(($(cpu_ticks "$pid") - before)) $(field misses <<<"$out")" \
		"$(field p99_us <<<"$out") $(field p999_us <<<"$out") $(field cpu <<<"$out")"
}

# saturated SHARE: whether mcload's CPU share SHARE reaches BENCH_SAT.
saturated() { awk -v c="$1" -v s="$sat_share" 'BEGIN { exit !(c >= s) }'; }

# latency_load NAME VALUE-BYTES [tls]: fresh servers, every key set on
# each, then the load's rounds and its line of the table.
latency_load() {
	local name=$1 value=$2 keys tls_client=() srv_flags=() batch=100
	keys=$((data_mib * 1048576 / value))
	keys=$((keys > 100000 ? 100000 : keys < 1 ? 1 : keys))
	if [ "${3:-}" = tls ]; then
		srv_flags=(-Z -o "ssl_chain_cert=$tmp/cert.pem,ssl_key=$tmp/key.pem")
		tls_client=(-tls -tls-ca "$tmp/cert.pem")
		batch=1 # memcached stalls on pipelined small requests over TLS
	fi
	start_servers -m 1024 -c 4096 ${srv_flags[@]+"${srv_flags[@]}"}
	local port out
	for port in "$mc_port" "$node_port"; do
		out=$(taskset -c 1 "$load_bin" fill -s "127.0.0.1:$port" -n "$keys" -key 16 -value "$value" -conns 4 -batch "$batch" \
			${tls_client[@]+"${tls_client[@]}"})
		grep -q 'failed 0 ' <<<"$out" || { echo "bench: filling port $port for $name: $out" >&2; exit 1; }
	done
	local client=(-keys "$keys" -key 16 -value "$value" ${tls_client[@]+"${tls_client[@]}"})
	local mc_ops=0 mc_rate=0 mc_ticks=0 node_ops=0 node_rate=0 node_ticks=0 won=0 sat=0 misses=0
	local mc_p99=() node_p99=() mc_p999=() node_p999=() mc node o r k m p q c mr msat round
	for round in $(seq 1 "$rounds"); do
		if [ $((round % 2)) = 1 ]; then
			mc=$(latency_run "$mc_port" "$mc_pid" "${client[@]}")
			node=$(latency_run "$node_port" "$node_pid" "${client[@]}")
		else
			node=$(latency_run "$node_port" "$node_pid" "${client[@]}")
			mc=$(latency_run "$mc_port" "$mc_pid" "${client[@]}")
		fi
		read -r o r k m p q c <<<"$mc"
		mc_ops=$((mc_ops + o)) mc_rate=$((mc_rate + r)) mc_ticks=$((mc_ticks + k)) misses=$((misses + m)) mr=$r
		mc_p99+=("$p") mc_p999+=("$q") msat=$c
		read -r o r k m p q c <<<"$node"
		node_ops=$((node_ops + o)) node_rate=$((node_rate + r)) node_ticks=$((node_ticks + k)) misses=$((misses + m))
		node_p99+=("$p") node_p999+=("$q")
		[ "$r" -ge "$mr" ] && won=$((won + 1))
		if saturated "$msat" || saturated "$c"; then sat=$((sat + 1)); fi
	done
	awk -v n="$name" -v r="$rounds" -v w="$won" -v hz="$hz" \
		-v mt="$mc_rate" -v nt="$node_rate" -v mo="$mc_ops" -v mk="$mc_ticks" -v no="$node_ops" -v nk="$node_ticks" \
		-v mp="$(printf '%s\n' "${mc_p99[@]}" | median)" -v np="$(printf '%s\n' "${node_p99[@]}" | median)" \
		-v mq="$(printf '%s\n' "${mc_p999[@]}" | median)" -v nq="$(printf '%s\n' "${node_p999[@]}" | median)" \
		-v sat="$sat" -v miss="$misses" 'BEGIN {
		mu = mk * 1e6 / hz / mo; nu = nk * 1e6 / hz / no
		printf "%-16s %9d %9d %6.2fx %5s %8.2f %8.2f %6.2fx %8.0f %8.0f %8.0f %8.0f %5s%s %5d\n", n, mt / r, nt / r, nt / mt,
			w "/" r, mu, nu, mu / nu, mp, np, mq, nq, sat "/" r, (sat > 0 ? " SAT" : "    "), miss }'
}

echo
printf '%-16s %9s %9s %7s %5s %8s %8s %7s %8s %8s %8s %8s %9s %5s\n' "mcload 10:1 x$conns" "mc ops/s" "node" ratio won "mc us/rq" "node" cpu "mc p99" node "mc p99.9" node sat miss
latency_load "100 B" 100
latency_load "4 KiB" 4096
latency_load "100 KiB" 102400
latency_load "500 KiB" 512000
latency_load "100 B TLS" 100 tls

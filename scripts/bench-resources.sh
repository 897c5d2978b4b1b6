#!/usr/bin/env bash
# Measures what connections and overfill cost in resident memory, a
# memcluster node side by side with Debian's memcached in one run, and
# prints each figure with its ratio (node / memcached). Servers run on core
# 0 (memcached -t 1; the node with GOMAXPROCS=1 -t 1), both with -c 20000;
# the load (internal/cmd/mcconns, internal/cmd/mcload) runs on core 1.
#
#   idle connections: IDLE_CONNS connections opened and left idle; bytes
#       per connection = (RSS after settling SETTLE - RSS before) / IDLE_CONNS;
#       then the same after one "version" on each connection.
#   large requests:   at -m 2048 -I 2m, LARGE_CONNS items of LARGE_VALUE
#       bytes stored over one connection (RSS "items alone"); then
#       LARGE_CONNS connections each set one of them again and get it back,
#       in turn, and go idle; bytes per connection above the items alone
#       after each of LARGE_IDLE, and again LARGE_CLOSED after the
#       connections closed.
#   overfill:         at -m 64 -I 1m, a fresh pair per value size (100 B,
#       10 KiB, 500 KiB), ten times 64 MiB of sets of 16-byte keys; the
#       sets refused, RSS after (SETTLE later) and peak (VmHWM), against
#       the bound 1.1 x 64 MiB + 32 MiB.
#
# The two servers are measured at once, each by its own mcconns process, so
# each process needs IDLE_CONNS open files: the script raises `ulimit -n`.
# A summary of targets follows the table: the node's bytes per connection
# at most 1.25 x memcached's + 2 KiB (issue 15's resting size) and its peak
# RSS in overfill within the bound. A target not met does not fail the run.
#
# Environment: IDLE_CONNS (default 10000), LARGE_CONNS (1024), LARGE_VALUE
# (1048576), LARGE_IDLE (10s,30s), LARGE_CLOSED (10s), SETTLE (3s),
# MEMCLUSTER (default bin/memcluster). About two minutes at the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

idle_conns=${IDLE_CONNS:-10000}
large_conns=${LARGE_CONNS:-1024}
large_value=${LARGE_VALUE:-1048576}
large_idle=${LARGE_IDLE:-10s,30s}
large_closed=${LARGE_CLOSED:-10s}
settle=${SETTLE:-3s}
node_bin=${MEMCLUSTER:-bin/memcluster}
conns_bin=bin/mcconns
load_bin=bin/mcload
max_conns=20000

fail() { echo "bench-resources: $*" >&2; exit 1; }

for tool in memcached taskset go; do
	command -v "$tool" >/dev/null || fail "$tool is not installed"
done
[ -x "$node_bin" ] || fail "$node_bin missing: run make build"
[ "$idle_conns" -lt "$max_conns" ] && [ "$large_conns" -lt "$max_conns" ] ||
	fail "IDLE_CONNS and LARGE_CONNS must be below the servers' -c $max_conns"
# Each mcconns holds its connections and a few files of its own.
want_files=$((idle_conns + 64))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_files" ]; then
	ulimit -n "$want_files" 2>/dev/null ||
		fail "needs ulimit -n $want_files (the hard limit is $(ulimit -Hn)); lower IDLE_CONNS"
fi
go build -o "$conns_bin" ./internal/cmd/mcconns
go build -o "$load_bin" ./internal/cmd/mcload

start_cleanup
began=$SECONDS

# conns_both MODE FLAG…: mcconns MODE against memcached and the node at
# once; their outputs in $tmp/mc.out and $tmp/node.out.
conns_both() {
	local mode=$1 a b
	shift
	taskset -c 1 "$conns_bin" "$mode" -s "127.0.0.1:$mc_port" -pid "$mc_pid" "$@" >"$tmp/mc.out" &
	a=$!
	taskset -c 1 "$conns_bin" "$mode" -s "127.0.0.1:$node_port" -pid "$node_pid" "$@" >"$tmp/node.out" &
	b=$!
	wait "$a" || fail "mcconns $mode against memcached failed"
	wait "$b" || fail "mcconns $mode against the node failed (its log: $(tail -3 "$tmp/node.log"))"
}

# field NAME FILE: the value of an mcconns "NAME value" line.
field() { awk -v f="$1" '$1 == f { print $2 }' "$2"; }

# per_conn FILE FIGURE BASE: bytes per connection from figure BASE to
# figure FIGURE of an mcconns output.
per_conn() {
	awk -v f="${2}_kib" -v b="${3}_kib" '
		{ v[$1] = $2 }
		END { printf "%.0f\n", (v[f] - v[b]) * 1024 / v["conns"] }' "$1"
}

row() { printf '%-72s %12s %12s %8s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 <= 0) print "-"; else printf "%.2fx\n", b / a }'; }

results=()
add() { results+=("$(row "$1" "$2" "$3" "$(ratio "$2" "$3")")"); }

# target NAME VALUE CONDITION: a line of the summary, "met" if the awk
# CONDITION (on v, the VALUE) holds.
targets=()
target() {
	local verdict
	verdict=$(awk -v v="$2" "BEGIN { print (($3) ? \"met\" : \"NOT MET\") }")
	targets+=("$(printf '%-72s %12s %8s' "$1" "$2" "$verdict")")
}

# per_conn_row NAME FIGURE BASE: a row of bytes per connection from BASE to
# FIGURE of the last conns_both, and its target.
per_conn_row() {
	local mc node
	mc=$(per_conn "$tmp/mc.out" "$2" "$3")
	node=$(per_conn "$tmp/node.out" "$2" "$3")
	add "$1" "$mc" "$node"
	target "node $1 (at most $(awk -v m="$mc" 'BEGIN { printf "%.0f", 1.25 * m + 2048 }'))" "$node" "v <= 1.25 * $mc + 2048"
}

# --- idle connections ----------------------------------------------------
echo "== idle: $idle_conns connections to each server" >&2
start_servers -c "$max_conns" -m 64
conns_both idle -conns "$idle_conns" -settle "$settle"
add "RSS at start (KiB)" "$(field start_kib "$tmp/mc.out")" "$(field start_kib "$tmp/node.out")"
add "RSS with $idle_conns idle connections (KiB)" "$(field idle_kib "$tmp/mc.out")" "$(field idle_kib "$tmp/node.out")"
per_conn_row "bytes per idle connection" idle start
per_conn_row "bytes per idle connection after one version" version start

# --- large requests --------------------------------------------------------
echo "== large: $large_conns connections, a $large_value-byte set and get each" >&2
start_servers -c "$max_conns" -m 2048 -I 2m
conns_both large -conns "$large_conns" -value "$large_value" -idle "$large_idle" -closed "$large_closed"
add "RSS with the $large_conns items alone (KiB)" "$(field items_kib "$tmp/mc.out")" "$(field items_kib "$tmp/node.out")"
add "bytes per $large_value-byte item" "$(per_conn "$tmp/mc.out" items start)" "$(per_conn "$tmp/node.out" items start)"
for d in ${large_idle//,/ }; do
	add "RSS $d after $large_conns large requests (KiB)" "$(field "idle_${d}_kib" "$tmp/mc.out")" "$(field "idle_${d}_kib" "$tmp/node.out")"
	per_conn_row "bytes per connection above the items, $d idle" "idle_$d" items
done
per_conn_row "bytes per connection above the items, $large_closed after close" closed items

# --- overfill at -m 64 -----------------------------------------------------
bound=$(awk 'BEGIN { printf "%d\n", (1.1 * 64 + 32) * 1024 }')
for value in 100 10240 512000; do
	sets=$((10 * 64 * 1024 * 1024 / (16 + value)))
	echo "== overfill: -m 64, $sets sets of $value-byte values" >&2
	start_servers -c "$max_conns" -m 64 -I 1m
	refused=()
	for port in "$mc_port" "$node_port"; do
		out=$(taskset -c 1 "$load_bin" fill -s "127.0.0.1:$port" -n "$sets" -key 16 -value "$value" -conns 4) ||
			fail "mcload fill against port $port failed"
		echo "$out" >&2
		refused+=("$(awk '{ for (i = 1; i < NF; i++) if ($i == "failed") print $(i+1) }' <<<"$out")")
	done
	add "overfill $value B: sets refused (SERVER_ERROR)" "${refused[@]}"
	sleep "${settle%s}"
	add "overfill $value B: RSS after (KiB; bound $bound)" "$(kib "$mc_pid" VmRSS)" "$(kib "$node_pid" VmRSS)"
	add "overfill $value B: peak RSS, VmHWM (KiB; bound $bound)" "$(kib "$mc_pid" VmHWM)" "$(kib "$node_pid" VmHWM)"
	target "node peak RSS in overfill of $value B (KiB; at most $bound)" "$(kib "$node_pid" VmHWM)" "v <= $bound"
done
stop_servers

row figure memcached memcluster ratio
printf '%s\n' "${results[@]}"
echo
printf '%-72s %12s %8s\n' target value verdict
printf '%s\n' "${targets[@]}"
echo "bench-resources: $((SECONDS - began)) s"

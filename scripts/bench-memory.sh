#!/usr/bin/env bash
# Measures memory, overfill, hit ratio and GC of a memcluster node side by side
# with Debian's memcached, in one run, and prints each figure with its ratio
# (node / memcached). Servers run on core 0 (memcached -t 1; the node with
# GOMAXPROCS=1 -t 1), the load generator (internal/cmd/mcload) on core 1.
#
#   memory:    resident bytes per item after FILL_ITEMS sets of 16-byte keys
#              and 100-byte values (RSS after minus RSS right after start).
#   overfill:  at -m 64, ten times 64 MiB of such sets; RSS after, and peak
#              (VmHWM), against the bound 1.1 x 64 MiB + 32 MiB.
#   hit ratio: at -m 64, lazy loading (get; on a miss, set) of Zipf(0.99)
#              keys over a million keys, values of 100 to 1300 bytes.
#   GC:        the node's gctrace (GODEBUG=gctrace=1) during its fill to
#              FILL_ITEMS, on to GC_ITEMS items, and while GC_OVERWRITE of
#              them are set again: collections ended in the window, longest
#              stop-the-world pause, longest concurrent mark, and GC CPU
#              (without idle-time marking) over the window's wall time x P.
#
# Environment: FILL_ITEMS (default 1000000), GC_ITEMS (default 10000000; 0
# skips the second fill), GC_OVERWRITE (default 3000000: items then set
# again with 200-byte values, so that a collection runs with GC_ITEMS live; 0 skips), HIT_WARMUP
# (default 1000000) and HIT_REQUESTS (default 1500000) per server,
# MEMCLUSTER (default bin/memcluster). gctrace prints a cycle when it ends:
# one still marking when its window closes counts in no window.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

fill_items=${FILL_ITEMS:-1000000}
gc_items=${GC_ITEMS:-10000000}
gc_overwrite=${GC_OVERWRITE:-3000000}
hit_warmup=${HIT_WARMUP:-1000000}
hit_requests=${HIT_REQUESTS:-1500000}
node_bin=${MEMCLUSTER:-bin/memcluster}
load_bin=bin/mcload

for tool in memcached taskset go; do
	command -v "$tool" >/dev/null || { echo "bench-memory: $tool is not installed" >&2; exit 1; }
done
[ -x "$node_bin" ] || { echo "bench-memory: $node_bin missing: run make build" >&2; exit 1; }
go build -o "$load_bin" ./internal/cmd/mcload

start_cleanup
began=$SECONDS

# The node's gctrace goes to $tmp/node.log (see start_servers).
node_env=(GODEBUG=gctrace=1)

load() { taskset -c 1 "$load_bin" "$@"; }

# fill PORT N START [all [VALUE]]: sets items START … START+N-1 (16-byte
# keys, VALUE-byte values, default 100) and, given "all", fails unless the
# server stored them all.
fill() {
	local out
	out=$(load fill -s "127.0.0.1:$1" -n "$2" -start "$3" -key 16 -value "${5:-100}" -conns 4)
	echo "$out" >&2
	fill_rate=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "sets/s") print $(i+1) }' <<<"$out")
	fill_failed=$(awk '{ for (i = 1; i <= NF; i++) if ($i == "failed") print $(i+1) }' <<<"$out")
	if [ "${4:-}" = all ] && ! grep -q 'failed 0 ' <<<"$out"; then
		echo "bench-memory: the server on port $1 did not store every item: $out" >&2
		exit 1
	fi
}

# gc_window FROM TO WALL: the gctrace lines FROM+1 … TO, summarised as
# "collections max-pause-ms max-mark-ms gc-cpu-fraction" over WALL seconds.
gc_window() {
	sed -n "$(($1 + 1)),$2p" "$tmp/node.log" | grep '^gc ' | awk -v wall="$3" '
		{
			# gc N @T% X%: a+b+c ms clock, d+e/f/g+h ms cpu, ..., P P
			for (i = 1; i <= NF; i++) {
				if ($(i+1) == "ms" && $(i+2) == "clock,") split($i, clk, "+")
				if ($(i+1) == "ms" && $(i+2) == "cpu,") { split($i, cpu, "+"); split(cpu[2], conc, "/") }
				if ($(i+1) == "P") p = $i
			}
			n++
			if (clk[1] > pause) pause = clk[1]
			if (clk[3] > pause) pause = clk[3]
			if (clk[2] > mark) mark = clk[2]
			# sweep termination + assist + background + mark termination;
			# not idle-time marking, which only uses a CPU nothing else wanted.
			gc += cpu[1] + conc[1] + conc[2] + cpu[3]
		}
		END { if (n == 0) { print "0 - - -"; exit } if (p == 0) p = 1; printf "%d %.3f %.0f %.4f\n", n, pause, mark, gc / 1000 / (wall * p) }'
}

gclines() { wc -l <"$tmp/node.log"; }

now() { date +%s.%N; }

row() { printf '%-60s %12s %12s %8s\n' "$@"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 == 0) print "-"; else printf "%.2fx\n", b / a }'; }

results=()
add() { results+=("$(row "$1" "$2" "$3" "$(ratio "$2" "$3")")"); }
add_node() { results+=("$(row "$1" "-" "$2" "-")"); }

# target NAME VALUE CONDITION: a line of the summary, "met" if the awk
# CONDITION (on v, the VALUE) holds.
targets=()
target() {
	local verdict
	verdict=$(awk -v v="$2" "BEGIN { print (($3) ? \"met\" : \"NOT MET\") }")
	targets+=("$(printf '%-60s %12s %8s' "$1" "$2" "$verdict")")
}

# --- memory per item, and the node's GC while it fills --------------------
echo "== memory: $fill_items items, then the node on to $gc_items" >&2
start_servers -m 4096 -c 4096
mc0=$(kib "$mc_pid" VmRSS)
node0=$(kib "$node_pid" VmRSS)
fill "$mc_port" "$fill_items" 0 all
mc_rate=$fill_rate
g0=$(gclines)
t0=$(now)
fill "$node_port" "$fill_items" 0 all
t1=$(now)
add "sets/s, fill 0 to $fill_items" "$mc_rate" "$fill_rate"
g1=$(gclines)
mc1=$(kib "$mc_pid" VmRSS)
node1=$(kib "$node_pid" VmRSS)
per() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f\n", (b - a) * 1024 / n }'; }
add "RSS at start (KiB)" "$mc0" "$node0"
add "RSS after $fill_items sets (KiB)" "$mc1" "$node1"
mc_per=$(per "$mc0" "$mc1" "$fill_items")
node_per=$(per "$node0" "$node1" "$fill_items")
add "bytes per item" "$mc_per" "$node_per"
target "bytes per item, node / memcached (at most 0.80)" "$(awk -v a="$mc_per" -v b="$node_per" 'BEGIN { printf "%.3f", b / a }')" "v <= 0.80"
read -r n pause mark frac < <(gc_window "$g0" "$g1" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
add_node "node GCs, fill 0 to $fill_items" "$n"
add_node "node max GC pause (ms), fill 0 to $fill_items" "$pause"
add_node "node longest GC mark phase (ms), fill 0 to $fill_items" "$mark"
add_node "node GC CPU fraction, fill 0 to $fill_items" "$frac"
frac_small=$frac
if [ "$gc_items" -gt "$fill_items" ]; then
	t0=$(now)
	fill "$node_port" "$((gc_items - fill_items))" "$fill_items" all
	t1=$(now)
	g2=$(gclines)
	node2=$(kib "$node_pid" VmRSS)
	read -r n pause mark frac < <(gc_window "$g1" "$g2" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
	add_node "node GCs, fill $fill_items to $gc_items" "$n"
	add_node "node max GC pause (ms), fill $fill_items to $gc_items" "$pause"
	add_node "node longest GC mark phase (ms), fill $fill_items to $gc_items" "$mark"
	add_node "node sets/s, fill $fill_items to $gc_items" "$fill_rate"
	add_node "node GC CPU fraction, fill $fill_items to $gc_items" "$frac"
	target "max GC pause (ms) filling to $gc_items items (at most 1)" "$pause" "v <= 1"
	target "GC CPU fraction, to $gc_items / to $fill_items items (<= 1 or < 0.005)" \
		"$(awk -v a="$frac_small" -v b="$frac" 'BEGIN { if (a > 0) printf "%.2f", b / a; else print b }')" \
		"v <= 1 || $frac < 0.005"
	add_node "node bytes per item at $gc_items" "$(per "$node0" "$node2" "$gc_items")"
	# The pacer may finish the fill without a cycle that sees every item:
	# overwrite some with values of another size (same-size overwrites may
	# reuse the item's bytes and allocate nothing), so that one runs with
	# GC_ITEMS live.
	if [ "$gc_overwrite" -gt 0 ]; then
		t0=$(now)
		fill "$node_port" "$gc_overwrite" 0 all 200
		t1=$(now)
		g3=$(gclines)
		read -r n pause mark frac < <(gc_window "$g2" "$g3" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
		add_node "node GCs, $gc_overwrite overwrites at $gc_items" "$n"
		add_node "node max GC pause (ms), overwrites at $gc_items" "$pause"
		add_node "node longest GC mark phase (ms), overwrites at $gc_items" "$mark"
		add_node "node GC CPU fraction, overwrites at $gc_items" "$frac"
		target "max GC pause (ms) overwriting at $gc_items items (at most 1)" "$pause" "v <= 1"
		add_node "node sets/s, overwrites at $gc_items" "$fill_rate"
	fi
	last=$(grep '^gc ' "$tmp/node.log" | tail -1 || true)
	if [ -n "$last" ]; then
		echo "node's last gctrace line: $last" >&2
		add_node "node live heap after its last GC (MB)" \
			"$(awk '{ for (i = 1; i <= NF; i++) if ($(i+1) ~ /^MB/ && $i ~ /->/) { n = split($i, h, "->"); print h[n]; exit } }' <<<"$last")"
	fi
fi

# --- tenfold overfill at -m 64 ---------------------------------------------
over=$((10 * 64 * 1024 * 1024 / (16 + 100)))
echo "== overfill: -m 64, $over sets" >&2
start_servers -m 64 -c 4096
fill "$mc_port" "$over" 0
mc_failed=$fill_failed
fill "$node_port" "$over" 0
add "sets refused (SERVER_ERROR) in overfill" "$mc_failed" "$fill_failed"
bound=$(awk 'BEGIN { printf "%d\n", (1.1 * 64 + 32) * 1024 }')
add "RSS after overfill (KiB; bound $bound)" "$(kib "$mc_pid" VmRSS)" "$(kib "$node_pid" VmRSS)"
add "peak RSS, VmHWM (KiB; bound $bound)" "$(kib "$mc_pid" VmHWM)" "$(kib "$node_pid" VmHWM)"
target "node peak RSS in overfill (KiB; at most $bound)" "$(kib "$node_pid" VmHWM)" "v <= $bound"

# --- hit ratio at -m 64 --------------------------------------------------
echo "== hit ratio: -m 64, $hit_warmup warm-up + $hit_requests requests per server" >&2
start_servers -m 64 -c 4096
hit() {
	local out
	out=$(load hitratio -s "127.0.0.1:$1" -keys 1000000 -zipf 0.99 -warmup "$hit_warmup" -requests "$hit_requests" -conns 4 -batch 100)
	echo "$out" >&2
	awk '{ for (i = 1; i <= NF; i++) if ($i == "ratio") print $(i+1) }' <<<"$out"
}
mc_hit=$(hit "$mc_port")
node_hit=$(hit "$node_port")
add "hit ratio (Zipf 0.99, 1M keys, -m 64)" "$mc_hit" "$node_hit"
target "hit ratio, node - memcached (at least 0.02)" "$(awk -v a="$mc_hit" -v b="$node_hit" 'BEGIN { printf "%.4f", b - a }')" "v >= 0.02"
stop_servers

row figure memcached memcluster ratio
printf '%s\n' "${results[@]}"
echo
printf '%-60s %12s %8s\n' target value verdict
printf '%s\n' "${targets[@]}"
echo "bench-memory: $((SECONDS - began)) s"

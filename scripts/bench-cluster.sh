#!/usr/bin/env bash
# What a change of membership costs a cache-aside application on three
# memcluster nodes (internal/cmd/mcclusterbench): a node joining (3->4), a
# rolling restart of all four, a graceful scale-in (4->3, SIGTERM) and a
# kill -9, each followed by PHASE of load.
#
# Three runs of the same timeline, one after the other:
#   baseline  no events: the misses the load costs by itself (new keys);
#   on        ring.Client (a dead node's keys move at the first failure) and
#             the nodes' default --drain and --handoff;
#   off       gomemcache on ring.Selector alone, --drain=0 and --handoff=0.
# It prints each run's per-second rows and, per event, the requests that
# failed, the extra misses (the event's window's misses minus the
# baseline's for the same window) and the points of hit ratio lost over the
# 20 s from the event on (the baseline's ratio minus the run's), on and off
# side by side.
#
# Then, past this machine, a fleet of 100 in-process nodes on the in-memory
# gossip network with the daemon's default timings (TestFleetSimulation):
# how long until every node agrees after a join, a graceful leave and ten
# simultaneous failures, and the gossip bytes a node sends per second.
#
# Environment: WARMUP (default 60s, past the first minute's hand-off
# windows of a cluster just formed), PHASE (60s, so that each event starts
# from a cache recovered from the one before), KEYS (100000), WORKERS (8),
# FLEET (nodes in the simulation, 100), MEMCLUSTER (default bin/memcluster).
set -euo pipefail
cd "$(dirname "$0")/.."
node_bin=${MEMCLUSTER:-bin/memcluster}
[ -x "$node_bin" ] || { echo "bench-cluster: $node_bin missing: run make build" >&2; exit 1; }
go build -o bin/mcclusterbench ./internal/cmd/mcclusterbench
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
common=(-bin "$node_bin" -warmup "${WARMUP:-60s}" -phase "${PHASE:-60s}" -keys "${KEYS:-100000}" -workers "${WORKERS:-8}")

echo "== baseline: the same load, no events" >&2
bin/mcclusterbench "${common[@]}" -client ring -events=false | tee "$tmp/baseline"
echo "== on: ring.Client, default drain" >&2
bin/mcclusterbench "${common[@]}" -client ring | tee "$tmp/on"
echo "== off: gomemcache alone, --drain=0, --handoff=0" >&2
bin/mcclusterbench "${common[@]}" -client plain -drain 0 -handoff 0 | tee "$tmp/off"

# The summary rows: the lines after the "event failed misses" header.
summary() { awk '/^event +failed +misses +hits20s$/ { on = 1; next } on && NF { print }' "$1"; }
echo
printf '%-26s %10s %14s %12s %10s %14s %12s\n' event failed_on extra_miss_on pts_20s_on failed_off extra_miss_off pts_20s_off
paste -d'|' <(summary "$tmp/baseline") <(summary "$tmp/on") <(summary "$tmp/off") | awk -F'|' '
{
	nb = split($1, bw, " "); nn = split($2, nw, " "); nf = split($3, fw, " ")
	name = $2; sub(/ +[0-9-]+ +[0-9-]+ +[0-9.]+$/, "", name)
	printf "%-26s %10d %14d %12.2f %10d %14d %12.2f\n", name, nw[nn-2], nw[nn-1] - bw[nb-1], 100 * (bw[nb] - nw[nn]),
		fw[nf-2], fw[nf-1] - bw[nb-1], 100 * (bw[nb] - fw[nf])
}'

echo
echo "== a simulated fleet of ${FLEET:-100} nodes, default timings" >&2
MEMCLUSTER_FLEET_TEST=${FLEET:-100} go test -count=1 -run '^TestFleetSimulation$' -v ./internal/clustertest/ |
	sed -n 's/^ *fleet_test.go:[0-9]*: //p'

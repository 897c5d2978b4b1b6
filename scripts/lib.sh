# Shell functions the bench scripts share; source it, with $0 the script.

# wait_port PORT: returns once something listens on 127.0.0.1:PORT, or ends
# the script after five seconds.
wait_port() {
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "$(basename "$0" .sh): nothing listens on port $1" >&2
	exit 1
}

# start_cleanup makes a temporary directory, $tmp, and has the processes
# whose ids the script adds to pids killed, and $tmp removed, when the
# script exits.
start_cleanup() {
	tmp=$(mktemp -d)
	pids=()
	trap cleanup EXIT
}

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on, below Linux's
# default ephemeral range (32768 on), where the thousands of client sockets
# a benchmark just closed linger.
free_port() {
	local p
	for _ in $(seq 1 100); do
		p=$((20000 + RANDOM % 12000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
	done
	echo "$(basename "$0" .sh): no free port" >&2
	exit 1
}

# stop_servers kills the processes in pids and forgets them.
stop_servers() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	pids=()
}

# kib PID FIELD: a /proc/PID/status field (VmRSS, VmHWM) in KiB.
kib() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# start_servers FLAG…: a fresh memcached and node side by side on core 0
# (memcached -t 1; the node with GOMAXPROCS=1 -t 1 and the environment in
# node_env, if set), each with FLAG… besides the common ones; sets mc_pid
# mc_port node_pid node_port. The node's standard error goes to
# $tmp/node.log.
start_servers() {
	stop_servers
	mc_port=$(free_port)
	node_port=$(free_port)
	while [ "$node_port" = "$mc_port" ]; do node_port=$(free_port); done
	taskset -c 0 memcached -U 0 -l 127.0.0.1 -p "$mc_port" -t 1 -u root "$@" &
	mc_pid=$!
	pids+=("$mc_pid")
	env ${node_env[@]+"${node_env[@]}"} GOMAXPROCS=1 taskset -c 0 "$node_bin" -U 0 -l 127.0.0.1 -p "$node_port" -t 1 -u root "$@" \
		2>"$tmp/node.log" &
	node_pid=$!
	pids+=("$node_pid")
	wait_port "$mc_port"
	wait_port "$node_port"
}

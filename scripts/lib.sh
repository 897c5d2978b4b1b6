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

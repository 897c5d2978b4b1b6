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

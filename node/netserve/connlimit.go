package netserve

import (
	"github.com/memcluster/memcluster/node/config"
	"golang.org/x/sys/unix"
)

// FileReserve is how many open files a node with threads worker threads
// keeps for itself beyond its client connections: listeners, the event
// loops' epoll sets, the gossip sockets and connections, the Go runtime's
// poller, files read on reload. memcached likewise keeps 20 descriptors in
// reserve below its -c.
func FileReserve(threads int) int { return 64 + 2*threads }

// connLimit returns how many client connections a server of cfg accepts at
// once: cfg.MaxConns, or fewer if the process's limit on open files would
// not hold them and FileReserve too, so that the connection past the limit
// is always accepted and told "ERROR Too many open connections" rather
// than left waiting while accept fails for want of a descriptor. It reads
// the limit once, when the server is made.
func connLimit(cfg *config.Config) (n int, fileLimit uint64) {
	n = cfg.MaxConns
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || uint64(r.Cur) == uint64(unix.RLIM_INFINITY) {
		return n, 0
	}
	cur, reserve := uint64(r.Cur), uint64(FileReserve(cfg.Threads))
	if cur < uint64(n)+reserve {
		n = int(max(cur, reserve+1) - reserve)
	}
	return n, cur
}

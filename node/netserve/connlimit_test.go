//go:build linux

package netserve

import (
	"testing"

	"github.com/memcluster/memcluster/node/config"
	"golang.org/x/sys/unix"
)

// TestConnLimitFitsTheFileLimit checks that a connection limit larger than
// the open-file limit can hold is lowered to what it holds beside the
// node's own descriptors, and that one it holds is kept.
func TestConnLimitFitsTheFileLimit(t *testing.T) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if r.Cur == unix.RLIM_INFINITY || r.Cur <= uint64(FileReserve(4)) {
		t.Fatalf("this test needs a finite open-file limit above %d, not %d", FileReserve(4), r.Cur)
	}
	cfg := config.Config{MaxConns: int(r.Cur) + 1000, Threads: 4}
	n, limit := connLimit(&cfg)
	if limit != r.Cur || uint64(n) != r.Cur-uint64(FileReserve(4)) {
		t.Errorf("connLimit(-c %d) under a file limit of %d = %d, %d; want %d, %d", cfg.MaxConns, r.Cur, n, limit, r.Cur-uint64(FileReserve(4)), r.Cur)
	}
	cfg.MaxConns = 10
	if n, _ := connLimit(&cfg); n != 10 {
		t.Errorf("connLimit(-c 10) = %d, want 10", n)
	}
}

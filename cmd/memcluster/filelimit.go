//go:build linux

package main

import (
	"errors"

	"golang.org/x/sys/unix"
)

// errFileLimit is memcached's message when it cannot raise the open-file
// limit to its -c.
var errFileLimit = errors.New("failed to set rlimit for open files. Try starting as root or requesting smaller maxconns value.")

// raiseFileLimit raises the process's limit on open files towards want,
// the -c connections and the node's own descriptors: the soft limit as far
// as the hard limit allows (the Go runtime has already raised it that
// far), and the hard limit too where the process may. Where the limit
// stays below want, the node accepts fewer connections than -c at once
// (see node.FileReserve). As memcached, which sets its limit to -c, it
// fails only when the hard limit is below -c itself and cannot be raised.
func raiseFileLimit(want, maxConns uint64) error {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil || r.Cur >= want {
		return nil
	}
	raised := unix.Rlimit{Cur: want, Max: max(r.Max, want)}
	if unix.Setrlimit(unix.RLIMIT_NOFILE, &raised) == nil {
		return nil
	}
	if r.Max < maxConns {
		return errFileLimit
	}
	r.Cur = r.Max
	_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &r)
	return nil
}

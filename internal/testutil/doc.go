// Package testutil holds the small helpers that tests across the module
// share, one of each: a goroutine-safe buffer for captured logs
// (LockedBuffer), waiting for a condition with a deadline (WaitFor),
// waiting until a listener accepts connections (WaitAccepting), and the
// allocation-test harness (NoAllocs, and ReplayConn to drive a request
// path without a socket), and libmemcached's own placement of keys
// (LibmemcachedOwners), the oracle of the ketama ring.
//
// It is for tests only: only _test.go files and the other test-helper
// packages import it, and it imports nothing of the module, so that any
// package's tests may use it (node/store's included, which cannot import
// anything that imports the node). Its neighbours hold the helpers that
// need more room: internal/tlstest makes throwaway TLS certificates and
// writes them to files, and internal/servertest starts memcached and
// memcluster processes and talks to them byte by byte.
package testutil

// Package e2e holds end-to-end tests that run the memcluster daemon next to
// the real memcached and require the same behaviour from both: byte-level
// comparisons of the text protocol (compare_test.go) and real clients
// (clients_test.go: memccapable, gomemcache, pymemcache).
//
// Run them with
//
//	go test ./e2e
//
// Every memcluster subtest has a memcached twin run the same way as the
// control. $E2E_BACKENDS=memcached runs only the controls (the comparison
// suite still needs memcached for its expectations); $MEMCLUSTER_BIN selects
// a prebuilt daemon instead of building ./cmd/memcluster; $E2E_DUMP=1 logs
// every comparison transcript.
package e2e

package e2e

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/internal/servertest"
)

// defaultParallel is how many parallel subtests run at once unless
// -test.parallel says otherwise. The comparison cases spend most of their
// time waiting on sockets (and in the reference run's pauses), not
// computing, so more of them than cores can run together.
const defaultParallel = "8"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "test.parallel" {
			set = true
		}
	})
	if !set {
		flag.Set("test.parallel", defaultParallel)
	}
	cleanup, err := setupASCIIAuth()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	if enabled("memcluster") {
		// Build the daemon before any test starts its clock; a failed
		// build is reported by each test that needs it.
		servertest.MemclusterBinary()
	}
	code := servertest.Main(m)
	cleanup()
	os.Exit(code)
}

// backends are the servers every test runs against, the reference first:
// memcached and memcluster, or those named in $E2E_BACKENDS (comma-separated).
var backends = selectBackends(os.Getenv("E2E_BACKENDS"))

func selectBackends(env string) []string {
	all := []string{"memcached", "memcluster"}
	if env == "" {
		return all
	}
	var out []string
	for _, b := range all {
		if slices.Contains(strings.Split(env, ","), b) {
			out = append(out, b)
		}
	}
	return out
}

// enabled reports whether backend is among those selected.
func enabled(backend string) bool { return slices.Contains(backends, backend) }

// dump reports whether transcripts should be logged ($E2E_DUMP=1).
func dump() bool { return os.Getenv("E2E_DUMP") != "" }

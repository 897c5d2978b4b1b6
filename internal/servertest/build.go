package servertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// MemclusterBinEnv names the environment variable that, when set, gives the
// memcluster binary to run instead of building ./cmd/memcluster.
const MemclusterBinEnv = "MEMCLUSTER_BIN"

var build struct {
	once sync.Once
	dir  string // temporary directory holding the built binary
	bin  string
	err  error
}

// MemclusterBinary returns the path of the memcluster daemon: $MEMCLUSTER_BIN
// if set, otherwise ./cmd/memcluster of this module, built with `go build`
// the first time it is asked for in this test binary. A failed build is
// reported, with the compiler's output, to every caller.
func MemclusterBinary() (string, error) {
	if bin := os.Getenv(MemclusterBinEnv); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("$%s: %v", MemclusterBinEnv, err)
		}
		return bin, nil
	}
	build.once.Do(func() {
		build.bin, build.err = buildMemcluster()
	})
	return build.bin, build.err
}

func buildMemcluster() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building memcluster: the go command is not on PATH: %v", err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("building memcluster: go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("building memcluster: not inside the memcluster module (go env GOMOD is %q)", gomod)
	}
	root := filepath.Dir(gomod)
	dir, err := os.MkdirTemp("", "memcluster-servertest-")
	if err != nil {
		return "", fmt.Errorf("building memcluster: %v", err)
	}
	build.dir = dir
	bin := filepath.Join(dir, "memcluster")
	cmd := exec.Command(goBin, "build", "-o", bin, "./cmd/memcluster")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building memcluster: go build ./cmd/memcluster in %s: %v\n%s", root, err, out)
	}
	return bin, nil
}

// Main runs the tests of a package that uses this one and then removes the
// memcluster binary built for them. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	return code
}

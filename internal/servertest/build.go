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

// MCCTLBinEnv names the environment variable that, when set, gives the
// mcctl binary to run instead of building ./cmd/mcctl.
const MCCTLBinEnv = "MCCTL_BIN"

// A binary is one command of this module, built at most once per test
// binary.
type binary struct {
	env  string // the variable that names a prebuilt binary
	pkg  string // the package to build, relative to the module root
	once sync.Once
	bin  string
	err  error
}

var (
	memclusterBin = &binary{env: MemclusterBinEnv, pkg: "./cmd/memcluster"}
	mcctlBin      = &binary{env: MCCTLBinEnv, pkg: "./cmd/mcctl"}
)

// build holds the temporary directory the binaries are built in, created
// by the first build and removed by Main.
var build struct {
	mu  sync.Mutex // guards dir
	dir string
}

// MemclusterBinary returns the path of the memcluster daemon: $MEMCLUSTER_BIN
// if set, otherwise ./cmd/memcluster of this module, built with `go build`
// the first time it is asked for in this test binary. A failed build is
// reported, with the compiler's output, to every caller.
func MemclusterBinary() (string, error) { return memclusterBin.path() }

// MCCTLBinary returns the path of the mcctl CLI: $MCCTL_BIN if set,
// otherwise ./cmd/mcctl of this module, built with `go build` the first time
// it is asked for in this test binary. A failed build is reported, with the
// compiler's output, to every caller.
func MCCTLBinary() (string, error) { return mcctlBin.path() }

// path returns $env if set (and the file exists), otherwise the binary
// built from pkg. It is safe for concurrent use.
func (b *binary) path() (string, error) {
	if bin := os.Getenv(b.env); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("$%s: %w", b.env, err)
		}
		return bin, nil
	}
	b.once.Do(func() {
		b.bin, b.err = buildPackage(b.pkg)
	})
	return b.bin, b.err
}

// buildPackage builds the command in pkg, a path relative to the root of
// the module the go command finds from the working directory (for example
// "./cmd/mcctl"), into the build directory, and returns the binary's path.
func buildPackage(pkg string) (string, error) {
	name := filepath.Base(pkg)
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("building %s: the go command is not on PATH: %w", name, err)
	}
	out, err := exec.Command(goBin, "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("building %s: go env GOMOD: %w", name, err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("building %s: not inside the memcluster module (go env GOMOD is %q)", name, gomod)
	}
	root := filepath.Dir(gomod)
	dir, err := buildDir()
	if err != nil {
		return "", fmt.Errorf("building %s: %w", name, err)
	}
	bin := filepath.Join(dir, name)
	cmd := exec.Command(goBin, "build", "-o", bin, pkg)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building %s: go build %s in %s: %w\n%s", name, pkg, root, err, out)
	}
	return bin, nil
}

// buildDir returns the temporary directory binaries are built in, creating
// it the first time.
func buildDir() (string, error) {
	build.mu.Lock()
	defer build.mu.Unlock()
	if build.dir == "" {
		dir, err := os.MkdirTemp("", "memcluster-servertest-")
		if err != nil {
			return "", err
		}
		build.dir = dir
	}
	return build.dir, nil
}

// Main runs the tests of a package that uses this one and then removes the
// binaries built for them (memcluster, mcctl). Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(servertest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	build.mu.Lock()
	if build.dir != "" {
		os.RemoveAll(build.dir)
		build.dir = ""
	}
	build.mu.Unlock()
	return code
}

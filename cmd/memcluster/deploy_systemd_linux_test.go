package main

import (
	"debug/elf"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/node"
	"golang.org/x/sys/unix"
)

// The systemd unit and its environment file, relative to this package.
const (
	systemdUnit    = "../../deploy/systemd/memcluster.service"
	systemdEnvFile = "../../deploy/systemd/memcluster.default"
)

// readUnit returns a unit file's settings, section "." key → values in
// order (a key may repeat).
func readUnit(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	unit := make(map[string][]string)
	section := ""
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				t.Fatalf("%s: %q is no setting", path, line)
			}
			key := section + "." + strings.TrimSpace(k)
			unit[key] = append(unit[key], strings.TrimSpace(v))
		}
	}
	return unit
}

// envFileOptions returns the values of MEMCLUSTER_OPTS in the environment
// file: the one set, then those of the commented-out examples.
func envFileOptions(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for _, line := range strings.Split(string(data), "\n") {
		v, ok := strings.CutPrefix(strings.TrimPrefix(line, "#"), "MEMCLUSTER_OPTS=")
		if !ok {
			continue
		}
		s, err := strconv.Unquote(v)
		if err != nil {
			t.Fatalf("%s: %q: want a double-quoted value: %v", path, line, err)
		}
		if strings.HasPrefix(line, "#") {
			opts = append(opts, s)
		} else {
			opts = append([]string{s}, opts...)
		}
	}
	if len(opts) == 0 {
		t.Fatalf("%s sets no MEMCLUSTER_OPTS", path)
	}
	return opts
}

// TestSystemdUnit checks deploy/systemd/memcluster.service: the command
// line of ExecStart, with each MEMCLUSTER_OPTS of the environment file
// (and none, when the file is missing), as the daemon parses it; a stop
// timeout that leaves the leave, the drain and the shutdown time; reload
// by SIGHUP; the hardening options; then systemd-analyze verify on it.
func TestSystemdUnit(t *testing.T) {
	unit := readUnit(t, systemdUnit)
	get := func(key string) string {
		v := unit[key]
		if len(v) == 0 {
			return ""
		}
		return v[len(v)-1]
	}
	exec := strings.Fields(get("Service.ExecStart"))
	if len(exec) != 2 || exec[1] != "$MEMCLUSTER_OPTS" {
		t.Fatalf("ExecStart %q: want the binary and $MEMCLUSTER_OPTS", exec)
	}
	if get("Service.EnvironmentFile") != "-/etc/default/memcluster" {
		t.Errorf("EnvironmentFile %q, want -/etc/default/memcluster", get("Service.EnvironmentFile"))
	}
	stop, err := time.ParseDuration(get("Service.TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", get("Service.TimeoutStopSec"), err)
	}
	// $VAR, unbraced, is split at white space into words.
	for _, o := range append(envFileOptions(t, systemdEnvFile), "") {
		opts := parseDaemonArgs(t, "ExecStart with MEMCLUSTER_OPTS="+o, strings.Fields(o))
		if need := opts.cfg.Cluster.LeaveTimeout + opts.drain + shutdownTimeout; stop <= need {
			t.Errorf("MEMCLUSTER_OPTS=%q: TimeoutStopSec %v, want more than --leave-timeout %v + --drain %v + shutdown %v",
				o, stop, opts.cfg.Cluster.LeaveTimeout, opts.drain, shutdownTimeout)
		}
	}
	for key, want := range map[string]string{
		"Service.ExecReload":               "/bin/kill -HUP $MAINPID",
		"Service.KillSignal":               "SIGTERM",
		"Service.DynamicUser":              "yes",
		"Service.NoNewPrivileges":          "yes",
		"Service.CapabilityBoundingSet":    "",
		"Service.ProtectSystem":            "strict",
		"Service.ProtectHome":              "yes",
		"Service.PrivateTmp":               "yes",
		"Service.RestrictAddressFamilies":  "AF_INET AF_INET6 AF_UNIX",
		"Service.MemoryDenyWriteExecute":   "yes",
		"Service.LimitNOFILE":              "65536",
		"Service.RestartPreventExitStatus": fmt.Sprintf("%d %d", exitUsage, exitOSErr),
	} {
		if _, ok := unit[key]; !ok || get(key) != want {
			t.Errorf("%s=%q (set: %v), want %q", key, get(key), ok, want)
		}
	}
	if n, err := strconv.Atoi(get("Service.LimitNOFILE")); err != nil || n < node.FileReserve(4)+1024 {
		t.Errorf("LimitNOFILE %q does not hold memcached's default -c 1024", get("Service.LimitNOFILE"))
	}

	// systemd's own check, on a copy of the unit whose ExecStart names a
	// binary that exists: every key known, every value valid.
	analyze, err := execLookPath("systemd-analyze")
	if err != nil {
		t.Fatalf("systemd-analyze is needed to verify the unit (apt-get install systemd; .ci/run installs it): %v", err)
	}
	bin := buildStaticDaemon(t)
	data, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(t.TempDir(), "memcluster.service")
	text := strings.Replace(string(data), "ExecStart="+exec[0]+" ", "ExecStart="+bin+" ", 1)
	if err := os.WriteFile(copied, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := execCommand(analyze, "verify", "--man=no", copied).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// execLookPath and execCommand are os/exec's, under names that a local
// variable called exec does not shadow.
var (
	execLookPath = exec.LookPath
	execCommand  = exec.Command
)

// TestDaemonServesWithMemoryDenyWriteExecute runs the daemon as
// MemoryDenyWriteExecute=yes would: under the kernel's own
// memory-deny-write-execute (prctl PR_SET_MDWE, Linux 6.3 and later; systemd
// does the same with a seccomp filter), no mapping may become both
// writable and executable, nor executable later. The daemon must start,
// serve and stop all the same. The wrapper that sets it checks first that
// the kernel enforces it (a writable and executable mmap fails). On a
// kernel without PR_SET_MDWE the test checks only what it can: that no
// segment of the binary is both writable and executable.
func TestDaemonServesWithMemoryDenyWriteExecute(t *testing.T) {
	bin := buildStaticDaemon(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD && p.Flags&elf.PF_W != 0 && p.Flags&elf.PF_X != 0 {
			t.Errorf("%s has a writable and executable segment at %#x", bin, p.Vaddr)
		}
	}
	f.Close()
	if err := unix.Prctl(unix.PR_GET_MDWE, 0, 0, 0, 0); errors.Is(err, unix.EINVAL) {
		t.Logf("this kernel has no PR_SET_MDWE (Linux 6.3): the daemon was not run under it")
		return
	}

	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed to set the process's MDWE before exec: %v", err)
	}
	port := servertest.FreePort(t)
	// PR_SET_MDWE is 65, PR_GET_MDWE 66, PR_MDWE_REFUSE_EXEC_GAIN 1; the
	// setting lasts across execve.
	const wrapper = `import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0 or libc.prctl(66, 0, 0, 0, 0) != 1:
    sys.exit("prctl(PR_SET_MDWE): " + os.strerror(ctypes.get_errno()))
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("MDWE set, but a writable and executable mapping was made")
except OSError:
    pass
os.execv(sys.argv[1], sys.argv[1:])
`
	out := new(testutil.LockedBuffer)
	cmd := exec.Command(python, "-c", wrapper, bin, "-l", "127.0.0.1", "-p", strconv.Itoa(port), "--no-cluster")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-exited
		}
	}()

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var reply string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("the daemon exited (%v) under MDWE:\n%s", err, out.String())
		default:
		}
		reply, err = memcachedVersion(net.Dial, addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if want := "VERSION " + node.Version + "\r\n"; reply != want {
		t.Fatalf("version: %q, %v; want %q; output:\n%s", reply, err, want, out.String())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit %v after SIGTERM under MDWE, want 0; output:\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not stop within 10 s of SIGTERM")
	}
}

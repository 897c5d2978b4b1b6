package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/node"
	"golang.org/x/sys/unix"
)

// buildStaticDaemon builds this package as make build does (CGO_ENABLED=0)
// and checks that the binary is static: no program interpreter (the
// dynamic loader), no shared library. It returns the binary's path, alone
// in a directory of its own (an image's build context).
func buildStaticDaemon(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memcluster")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatalf("%s has a program interpreter: it is not static", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Fatalf("%s needs shared libraries %q (%v): it is not static", bin, libs, err)
	}
	return bin
}

// run runs a command and returns its standard output, trimmed; it fails
// the test, with the command's output, if the command fails.
func runCommand(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr)
	}
	return strings.TrimSpace(string(out))
}

// memcachedVersion asks the node at addr, dialled with dial, for its
// version.
func memcachedVersion(dial func(network, addr string) (net.Conn, error), addr string) (string, error) {
	c, err := dial("tcp", addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "version\r\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestOfflineImageServes builds the offline image (Dockerfile.scratch over
// a static binary built as make build builds it) with podman, checks its
// configuration, runs it with its default arguments and checks that the
// container serves memcached's "version" and /livez and /readyz on its
// published ports, runs as uid and gid 65532, and exits 0 on podman stop.
//
// Containers run with runc: Debian's default, crun, refuses a machine whose
// cgroups mix v1 and v2 (as the test machine's do), where runc works. The
// container's limits are modest ones, within the test's own hard limits:
// podman's defaults (a million open files) are higher than a machine
// without CAP_SYS_RESOURCE, such as the test machine, lets it set.
func TestOfflineImageServes(t *testing.T) {
	podman, err := exec.LookPath("podman")
	if err != nil {
		t.Fatalf("podman is needed to build and run the image (apt-get install podman runc; .ci/run installs them): %v", err)
	}
	if _, err := exec.LookPath("runc"); err != nil {
		t.Fatalf("runc is needed to run the container (apt-get install runc; .ci/run installs it): %v", err)
	}
	bin := buildStaticDaemon(t)
	dockerfile, err := filepath.Abs(dockerfileScratch)
	if err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("localhost/memcluster-test:%d", os.Getpid())
	runCommand(t, podman, "build", "--quiet", "--tag", tag, "--file", dockerfile, filepath.Dir(bin))
	t.Cleanup(func() { exec.Command(podman, "rmi", "--force", tag).Run() })

	var cfg struct {
		User         string
		ExposedPorts map[string]struct{}
		Entrypoint   []string
		Cmd          []string
	}
	if err := json.Unmarshal([]byte(runCommand(t, podman, "image", "inspect", "--format", "{{json .Config}}", tag)), &cfg); err != nil {
		t.Fatal(err)
	}
	st := readDockerfile(t, dockerfileScratch)
	var exposed []string
	for p := range cfg.ExposedPorts {
		exposed = append(exposed, p)
	}
	slices.Sort(exposed)
	want := slices.Sorted(slices.Values(st.expose))
	if cfg.User != st.user || !slices.Equal(exposed, want) || !slices.Equal(cfg.Entrypoint, st.entrypoint) || !slices.Equal(cfg.Cmd, st.cmd) {
		t.Errorf("image configuration %+v, want user %q, ports %q, entrypoint %q, cmd %q", cfg, st.user, want, st.entrypoint, st.cmd)
	}

	var nofile, nproc unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &nproc); err != nil {
		t.Fatal(err)
	}
	memcachedPort, metricsPort := servertest.FreePort(t), servertest.FreePort(t)
	name := fmt.Sprintf("memcluster-test-%d", os.Getpid())
	runCommand(t, podman, "--runtime", "runc", "run", "--detach", "--name", name,
		"--ulimit", fmt.Sprintf("nofile=%d:%d", min(nofile.Max, 65536), min(nofile.Max, 65536)),
		"--ulimit", fmt.Sprintf("nproc=%d:%d", min(nproc.Max, 4096), min(nproc.Max, 4096)),
		"--publish", fmt.Sprintf("127.0.0.1:%d:11211", memcachedPort),
		"--publish", fmt.Sprintf("127.0.0.1:%d:9150", metricsPort),
		tag)
	t.Cleanup(func() { exec.Command(podman, "rm", "--force", "--time", "0", name).Run() })
	logs := func() string {
		out, _ := exec.Command(podman, "logs", name).CombinedOutput()
		return string(out)
	}

	addr := fmt.Sprintf("127.0.0.1:%d", memcachedPort)
	var reply string
	for deadline := time.Now().Add(20 * time.Second); ; {
		reply, err = memcachedVersion(net.Dial, addr)
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if want := "VERSION " + node.Version + "\r\n"; reply != want {
		t.Fatalf("version through %s: %q, %v; want %q; container log:\n%s", addr, reply, err, want, logs())
	}
	for _, path := range []string{"/livez", "/readyz"} {
		if code, body := httpGet(t, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d%s", metricsPort, path)); code != http.StatusOK {
			t.Errorf("%s: %d %q, want 200", path, code, body)
		}
	}

	pid := runCommand(t, podman, "inspect", "--format", "{{.State.Pid}}", name)
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		field, ids, _ := strings.Cut(line, ":")
		if field != "Uid" && field != "Gid" {
			continue
		}
		// Real, effective, saved and file-system IDs.
		if f := strings.Fields(ids); len(f) != 4 || slices.ContainsFunc(f, func(id string) bool { return id != "65532" }) {
			t.Errorf("the container's process has %s %q, want 65532 throughout", field, ids)
		}
	}

	runCommand(t, podman, "stop", "--time", "10", name)
	if code := runCommand(t, podman, "inspect", "--format", "{{.State.ExitCode}}", name); code != "0" {
		t.Errorf("exit code %s after podman stop, want 0; container log:\n%s", code, logs())
	}
}

// httpGet returns the status and body of a GET of url, or fails the test.
func httpGet(t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, strings.TrimSpace(string(body))
}

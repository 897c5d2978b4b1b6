package servertest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFreePort(t *testing.T) {
	if p := FreePort(t); p <= 0 || p > 65535 {
		t.Fatalf("FreePort() = %d", p)
	}
}

func TestUnixSocketArg(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"-m", "64"}, ""},
		{[]string{"-s", "/tmp/x"}, "/tmp/x"},
		{[]string{"-s/tmp/y"}, "/tmp/y"},
		{[]string{"--unix-socket=/tmp/z"}, "/tmp/z"},
		{[]string{"-c", "5", "--unix-socket", "/tmp/w"}, "/tmp/w"},
	} {
		if got := unixSocketArg(tc.args); got != tc.want {
			t.Errorf("unixSocketArg(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestMemcachedTCP(t *testing.T) {
	s := StartMemcached(t, "-m", "16")
	if s.Network != "tcp" || s.Port == 0 || !strings.HasPrefix(s.Addr, "127.0.0.1:") {
		t.Fatalf("server = %+v", s)
	}
	c := s.Raw(t)
	c.RoundTrip(t, "set a 5 0 3\r\nabc\r\n", "STORED\r\n")
	c.RoundTrip(t, "get a\r\n", "VALUE a 5 3\r\nabc\r\nEND\r\n")

	// Read with Done stops at once; with Idle it collects a pipeline.
	c.SendString("version\r\nversion\r\n")
	got := c.Read(ReadOptions{Idle: 50 * time.Millisecond})
	if n := strings.Count(string(got), "VERSION "); n != 2 {
		t.Errorf("Read after two versions = %q", got)
	}
	c.SendString("get a\r\n")
	got = c.Read(ReadOptions{Done: func(b []byte) bool { return strings.HasSuffix(string(b), "END\r\n") }})
	if string(got) != "VALUE a 5 3\r\nabc\r\nEND\r\n" {
		t.Errorf("Read(Done) = %q", got)
	}
	// Nothing to read: Read returns nothing after First.
	if got := c.Read(ReadOptions{First: 20 * time.Millisecond}); len(got) != 0 {
		t.Errorf("idle Read = %q", got)
	}
	if c.Closed() {
		t.Fatal("connection closed")
	}

	c.SendString("quit\r\n")
	if extra, closed := c.WaitClosed(5 * time.Second); !closed || len(extra) != 0 {
		t.Errorf("after quit: extra %q, closed %v", extra, closed)
	}

	st := s.Stop()
	if st == nil || !st.Success() {
		t.Fatalf("Stop() = %v", st)
	}
	t.Logf("memcached exit status after SIGTERM: %v", st)
	if !s.Exited() {
		t.Error("Exited() = false after Stop")
	}
}

func TestMemcachedUnix(t *testing.T) {
	path := SocketPath(t)
	s := StartMemcached(t, "-s", path)
	if s.Network != "unix" || s.Addr != path || s.SocketPath != path || s.Port != 0 {
		t.Fatalf("server = %+v", s)
	}
	c := s.Raw(t)
	c.RoundTrip(t, "version\r\n", "VERSION ")
	if l, err := c.ReadLine(time.Second); err != nil || !strings.HasSuffix(l, "\r\n") {
		t.Fatalf("version line rest = %q, %v", l, err)
	}
	s.Kill()
	if !s.Exited() {
		t.Fatal("Exited() = false after Kill")
	}
}

func TestTwoServersDistinctPorts(t *testing.T) {
	a := StartMemcached(t)
	b := StartMemcached(t)
	if a.Port == b.Port {
		t.Fatalf("both on port %d", a.Port)
	}
	a.Raw(t).RoundTrip(t, "set k 0 0 1\r\na\r\n", "STORED\r\n")
	b.Raw(t).RoundTrip(t, "get k\r\n", "END\r\n")
}

func TestStartFailureReportsOutput(t *testing.T) {
	// A server that cannot start fails the test with its output; run it
	// in a fake T to see the message.
	ft := &fakeT{T: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartMemcached(ft, "-Z-not-a-flag")
	}()
	<-done
	if !ft.failed || !strings.Contains(ft.msg, "exited before accepting connections") {
		t.Fatalf("failed=%v msg=%q", ft.failed, ft.msg)
	}
}

// fakeT records Fatalf instead of ending the real test.
type fakeT struct {
	*testing.T
	failed bool
	msg    string
}

func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = true
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fakeT) Logf(format string, args ...any) {}

func (f *fakeT) Failed() bool { return f.failed }

// A server that cannot bind its port, taken by another, is not mistaken
// for ready because the other answers; the failure says to retry.
func TestLaunchDetectsTakenPort(t *testing.T) {
	other := StartMemcached(t)
	s := &Server{Name: "memcached", t: t, bin: MemcachedPath, Network: "tcp", Port: other.Port, Addr: other.Addr}
	s.Args = []string{"-U", "0", "-l", "127.0.0.1", "-p", strconv.Itoa(other.Port)}
	if os.Geteuid() == 0 {
		s.Args = append(s.Args, "-u", "root")
	}
	retry, err := s.launch()
	if err == nil {
		s.kill()
		t.Fatal("launch on a taken port succeeded")
	}
	if !retry {
		t.Errorf("launch on a taken port: retry = false, err = %v", err)
	}
}

// TestBinaryEnv checks that $MEMCLUSTER_BIN and $MCCTL_BIN name the
// binaries to run, and that one naming no file is an error.
func TestBinaryEnv(t *testing.T) {
	for _, tc := range []struct {
		env string
		get func() (string, error)
	}{
		{MemclusterBinEnv, MemclusterBinary},
		{MCCTLBinEnv, MCCTLBinary},
	} {
		t.Run(tc.env, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "prebuilt")
			if err := os.WriteFile(bin, nil, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Setenv(tc.env, bin)
			if got, err := tc.get(); err != nil || got != bin {
				t.Errorf("with $%s=%s: got %q, %v; want %q, nil", tc.env, bin, got, err, bin)
			}
			missing := bin + "-missing"
			t.Setenv(tc.env, missing)
			if got, err := tc.get(); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("with $%s=%s: got %q, %v; want an error wrapping fs.ErrNotExist", tc.env, missing, got, err)
			}
		})
	}
}

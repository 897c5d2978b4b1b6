package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
)

// returned tells testutil.WaitAccepting that run, reporting on done, has
// returned before serving.
func returned(done <-chan int) func() error {
	return func() error {
		select {
		case code := <-done:
			return fmt.Errorf("run returned %d before serving", code)
		default:
			return nil
		}
	}
}

// keepGlobals restores what run changes for the whole process.
func keepGlobals(t *testing.T) {
	procs, logger := runtime.GOMAXPROCS(0), slog.Default()
	t.Cleanup(func() {
		runtime.GOMAXPROCS(procs)
		slog.SetDefault(logger)
	})
}

func TestRunPrintsAndExits(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // a prefix of it
		stderr string
	}{
		{[]string{"-h"}, 0, "memcluster " + version + ", a memcached-compatible cache node\nUsage: memcluster [options]\n", ""},
		{[]string{"--help"}, 0, "memcluster " + version, ""},
		{[]string{"-V"}, 0, "memcluster " + version + "\n", ""},
		{[]string{"-i"}, 0, "memcluster " + version + "\n\n", ""},
		{[]string{"--bogus"}, exitUsage, "", "memcluster: unrecognized option '--bogus'\nTry 'memcluster --help' for more information.\n"},
		{[]string{"-j"}, exitUsage, "", "memcluster: invalid option -- 'j'\nTry 'memcluster --help' for more information.\n"},
		{[]string{"-U", "1"}, exitUsage, "", "memcluster: -U 1: memcluster does not serve UDP; leave -U out or give -U 0\nTry 'memcluster --help' for more information.\n"},
		{[]string{"-I", "2000m"}, exitUsage, "", "memcluster: Cannot set item size limit higher than 1/2 of memory max.\nTry 'memcluster --help' for more information.\n"},
		{[]string{"-Z"}, exitUsage, "", "memcluster: Error loading the certificate chain: no file given; name it with -o ssl_chain_cert=<file>\nTry 'memcluster --help' for more information.\n"},
		// As memcached, a -Y file that cannot be read stops the start with status 1.
		{[]string{"-Y", "/nonexistent/memcached.auth", "--no-cluster"}, exitFailure, "", "memcluster: node: credentials: sasl: open /nonexistent/memcached.auth: no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), context.Background(), tt.args, nil, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit status %d, want %d", code, tt.code)
			}
			if !strings.HasPrefix(stdout.String(), tt.stdout) || (tt.stdout == "" && stdout.Len() > 0) {
				t.Errorf("stdout:\n%s\nwant it to begin with:\n%s", stdout.String(), tt.stdout)
			}
			if got := stderr.String(); got != tt.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, tt.stderr)
			}
		})
	}
}

// TestRunServesUntilCanceled runs the daemon on a unix socket and stops it
// as a signal does.
func TestRunServesUntilCanceled(t *testing.T) {
	keepGlobals(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "mc.sock")
	pidFile := filepath.Join(dir, "mc.pid")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr testutil.LockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, context.Background(), []string{"-s", sock, "-P", pidFile, "-t", "3", "-v", "-d"}, nil, &stdout, &stderr)
	}()

	if err := testutil.WaitAccepting("unix", sock, 10*time.Second, returned(done)); err != nil {
		t.Fatalf("%v; stderr:\n%s", err, stderr.String())
	}

	if b, err := os.ReadFile(pidFile); err != nil || string(b) != fmt.Sprintf("%d\n", os.Getpid()) {
		t.Errorf("pid file holds %q (%v), want %d", b, err, os.Getpid())
	}
	if got := runtime.GOMAXPROCS(0); got != 3 {
		t.Errorf("GOMAXPROCS = %d, want 3 (-t 3)", got)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status %d after the signal, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatalf("run did not return after the signal; stderr:\n%s", stderr.String())
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file still there after exit (%v)", err)
	}
	logged := stderr.String()
	for _, want := range []string{"level=WARN", "option=-d", "level=INFO", "signal received"} {
		if !strings.Contains(logged, want) {
			t.Errorf("stderr does not hold %q:\n%s", want, logged)
		}
	}
	if stdout.String() != "" {
		t.Errorf("stdout = %q, want nothing", stdout.String())
	}
}

func TestRunListenFailure(t *testing.T) {
	keepGlobals(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	var stdout, stderr testutil.LockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), context.Background(), []string{"-l", "127.0.0.1", "-p", port}, nil, &stdout, &stderr)
	}()
	select {
	case code := <-done:
		if code != exitFailure {
			t.Errorf("exit status %d, want %d", code, exitFailure)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return on a port in use")
	}
	if got := stderr.String(); !strings.HasPrefix(got, "memcluster: ") || !strings.Contains(got, "address already in use") {
		t.Errorf("stderr = %q, want the listen error", got)
	}
}

func TestRunPIDFileFailure(t *testing.T) {
	keepGlobals(t)
	pidFile := filepath.Join(t.TempDir(), "no", "such", "dir", "mc.pid")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), context.Background(), []string{"-s", "/nonexistent/mc.sock", "-P", pidFile}, nil, &stdout, &stderr)
	if code != exitFailure {
		t.Errorf("exit status %d, want %d", code, exitFailure)
	}
	if got := stderr.String(); !strings.HasPrefix(got, "memcluster: pid file: ") || !strings.Contains(got, pidFile) {
		t.Errorf("stderr = %q, want the pid file error", got)
	}
}

func TestNewLogger(t *testing.T) {
	tests := []struct {
		verbosity int
		lowest    slog.Level
	}{
		{0, slog.LevelInfo},
		{1, levelVerbose},
		{2, slog.LevelDebug},
		{3, slog.LevelDebug},
	}
	for _, tt := range tests {
		log := newLogger(&bytes.Buffer{}, tt.verbosity, "")
		for _, l := range []slog.Level{slog.LevelDebug, levelVerbose, slog.LevelInfo, slog.LevelWarn, slog.LevelError} {
			if got, want := log.Enabled(context.Background(), l), l >= tt.lowest; got != want {
				t.Errorf("verbosity %d: level %v enabled = %v, want %v", tt.verbosity, l, got, want)
			}
		}
	}
	var b bytes.Buffer
	newLogger(&b, 0, "text").Warn("hello", "k", 1)
	if got := b.String(); !strings.Contains(got, "level=WARN msg=hello k=1") {
		t.Errorf("logged %q: want slog's text format", got)
	}
	b.Reset()
	newLogger(&b, 1, "text").Log(context.Background(), levelVerbose, "probe failed")
	if got := b.String(); !strings.Contains(got, "level=VERBOSE msg=\"probe failed\"") {
		t.Errorf("logged %q at -v's level: want level=VERBOSE", got)
	}
	b.Reset()
	newLogger(&b, 0, "json").Info("hello", "k", 1)
	var rec map[string]any
	if err := json.Unmarshal(b.Bytes(), &rec); err != nil || rec["level"] != "INFO" || rec["msg"] != "hello" || rec["k"] != 1.0 {
		t.Errorf("logged %q (%v): want a JSON record with level INFO, msg hello and k 1", b.String(), err)
	}
}

func TestWritePIDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mc.pid")
	tests := []struct {
		old  string
		warn bool
	}{
		{"", false},
		{"not a pid\n", false},
		{strconv.Itoa(os.Getpid()) + "\n", false},
		{strconv.Itoa(os.Getppid()) + "\n", true}, // a running process
	}
	for _, tt := range tests {
		os.Remove(path)
		if tt.old != "" {
			if err := os.WriteFile(path, []byte(tt.old), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		if err := writePIDFile(path, slog.New(slog.NewTextHandler(&b, nil))); err != nil {
			t.Fatalf("writePIDFile over %q: %v", tt.old, err)
		}
		if got, _ := os.ReadFile(path); string(got) != fmt.Sprintf("%d\n", os.Getpid()) {
			t.Errorf("writePIDFile over %q: file holds %q", tt.old, got)
		}
		if warned := strings.Contains(b.String(), "running process"); warned != tt.warn {
			t.Errorf("writePIDFile over %q: warned %v, want %v (%q)", tt.old, warned, tt.warn, b.String())
		}
	}
	removePIDFile(path, slog.Default())
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("removePIDFile: file still there (%v)", err)
	}
}

// TestLicenseText checks that -i prints the LICENSE file the source is
// released under, which must exist.
func TestLicenseText(t *testing.T) {
	want, err := os.ReadFile("../../LICENSE")
	if err != nil {
		t.Fatalf("the LICENSE file -i names: %v", err)
	}
	var out bytes.Buffer
	writeLicense(&out)
	if !strings.HasSuffix(out.String(), "\n\n"+string(want)) {
		t.Errorf("-i prints:\n%s\nwant it to end with the LICENSE file:\n%s", out.String(), want)
	}
}

// TestRunLogFormat starts the daemon at the default level with each
// --log-format: the command line's warnings and the start-up line come in
// that format, and the start-up line gives the addresses, the memory and
// the cluster's name.
func TestRunLogFormat(t *testing.T) {
	keepGlobals(t)
	saved := defaultGossipAddr
	defaultGossipAddr = "0.0.0.0:0"
	defer func() { defaultGossipAddr = saved }()
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			port := freePort(t)
			addr := net.JoinHostPort("127.0.0.1", port)
			logged := runServing(t, addr, "-l", "127.0.0.1", "-p", port, "-m", "32", "-d", "--name", "cache-0",
				"--gossip-addr", "127.0.0.1:0", "--log-format="+format)
			var warned, started bool
			for line := range strings.Lines(logged) {
				if format == "text" {
					warned = warned || strings.Contains(line, "level=WARN") && strings.Contains(line, "option=-d")
					started = started || strings.Contains(line, `level=INFO msg="memcluster starting" version=`+version) &&
						strings.Contains(line, "addrs=["+addr+"]") && strings.Contains(line, "name=cache-0") &&
						strings.Contains(line, "memory_limit_mb=32")
					continue
				}
				var rec map[string]any
				if err := json.Unmarshal([]byte(line), &rec); err != nil {
					t.Fatalf("a line that is not JSON: %q: %v", line, err)
				}
				warned = warned || rec["level"] == "WARN" && rec["option"] == "-d"
				addrs, _ := rec["addrs"].([]any)
				started = started || rec["msg"] == "memcluster starting" && rec["level"] == "INFO" &&
					len(addrs) == 1 && addrs[0] == addr && rec["name"] == "cache-0" && rec["memory_limit_mb"] == 32.0
			}
			if !warned || !started {
				t.Errorf("warned about -d %v, logged the start-up %v; want both:\n%s", warned, started, logged)
			}
		})
	}
}

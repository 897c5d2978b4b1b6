// Command memcluster runs a memcluster node: a memcached-compatible cache
// daemon that takes memcached's command-line options.
//
// It serves in the foreground until SIGTERM or SIGINT, then leaves the
// cluster (its peers drop it at once) and, if it had peers, drains: it
// serves on for --drain, out of the cluster's view, while ring clients move
// its keys away. It then stops accepting connections, lets the requests
// under way finish (for up to shutdownTimeout), and exits 0. A second
// signal ends the drain early; a third ends the process at once. SIGHUP reloads the files the node loaded
// (the TLS certificates of -Z, the gossip keys) and logs the outcome; a
// component whose files fail to load keeps what it had.
//
// Exit status: 0 after a signal, -h, -V or -i; 64 (EX_USAGE) for a bad
// command line, which includes TLS files that cannot be loaded at start,
// as in memcached; 71 (EX_OSERR) when the hard limit on open files is
// below -c and cannot be raised, as in memcached; 1 when the node cannot
// start or stops on an error.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/memcluster/memcluster/internal/buildinfo"
	"github.com/memcluster/memcluster/node"
	"golang.org/x/sys/unix"
)

// version is memcluster's release, printed by -V. (node.Version is the
// memcached version the node reports to clients, not this.)
const version = buildinfo.Version

// shutdownTimeout bounds how long a signalled node waits for its
// connections to finish their requests before it closes them.
const shutdownTimeout = 5 * time.Second

// Exit statuses.
const (
	exitFailure = 1  // the node could not start, or stopped on an error
	exitUsage   = 64 // a bad command line (sysexits' EX_USAGE)
	exitOSErr   = 71 // the open-file limit is below -c and cannot be raised (EX_OSERR), as in memcached
)

// ownsProcess is set when the daemon runs as its own process, not in a
// test's: then it manages the process's runtime (its memory limit).
var ownsProcess bool

func main() {
	ownsProcess = true
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, unix.SIGTERM)
	ctx, stop := context.WithCancel(context.Background())
	hurry, endDrain := context.WithCancel(context.Background())
	go func() {
		<-sigs
		stop()
		<-sigs
		endDrain()
		signal.Reset(os.Interrupt, unix.SIGTERM) // a third signal ends the process at once
	}()
	code := run(ctx, hurry, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	os.Exit(code)
}

// run is the daemon: it parses args, serves until ctx is done, drains (see
// node.Server.Drain) until the drain is over or hurry is done, shuts the
// node down and returns the exit status. Help and version go to stdout;
// logs and errors to stderr. stdin is read only by --sasl-verifier; it may
// be nil.
func run(ctx, hurry context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	// SIGHUP reloads. It is caught from the start, so that it never ends
	// the process (its default), and until run returns.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, unix.SIGHUP)
	defer signal.Stop(hup)

	opts, err := parseArgs(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "memcluster: %v\nTry 'memcluster --help' for more information.\n", err)
		return exitUsage
	}
	switch {
	case opts.help:
		writeUsage(stdout)
		return 0
	case opts.version:
		writeVersion(stdout)
		return 0
	case opts.license:
		writeLicense(stdout)
		return 0
	}
	if opts.verifierUser != "" {
		if err := writeVerifierEntry(opts.verifierUser, stdin, stdout); err != nil {
			fmt.Fprintf(stderr, "memcluster: %v\n", err)
			return exitUsage
		}
		return 0
	}

	cfg := opts.cfg
	if cfg.SASL && cfg.SASLPasswordFile == "" {
		cfg.SASLPasswordFile = os.Getenv(saslPasswordEnv)
	}
	log := newLogger(stderr, cfg.Verbosity, opts.logFormat)
	slog.SetDefault(log)
	cfg.Logger = log
	cfg.RuntimeMemoryLimit = ownsProcess
	runtime.GOMAXPROCS(cfg.Threads)
	if err := raiseFileLimit(uint64(cfg.MaxConns+node.FileReserve(cfg.Threads)), uint64(cfg.MaxConns)); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return exitOSErr
	}

	if opts.pidFile != "" {
		if err := writePIDFile(opts.pidFile, log); err != nil {
			fmt.Fprintf(stderr, "memcluster: %v\n", err)
			return exitFailure
		}
		defer removePIDFile(opts.pidFile, log)
	}

	srv := node.New(cfg)
	ls, err := srv.Listen()
	if err != nil {
		var fe *node.TLSFileError
		if errors.As(err, &fe) {
			// memcached's message and status (EX_USAGE).
			fmt.Fprintf(stderr, "memcluster: %v\n", fe)
			return exitUsage
		}
		fmt.Fprintf(stderr, "memcluster: %v\n", err)
		return exitFailure
	}
	if err := srv.StartCluster(ctx, ls); err != nil {
		if ctx.Err() != nil {
			// A stop signal came while the cluster started (its name
			// lookups end with ctx): stop, as asked, not as a failure.
			for _, l := range ls {
				l.Close()
			}
			return 0
		}
		if opts.gossipChosen {
			for _, l := range ls {
				l.Close()
			}
			fmt.Fprintf(stderr, "memcluster: %v\n", err)
			return exitFailure
		}
		log.Warn("cannot gossip on the default address; running as a single node "+
			"(give --gossip-addr to form a cluster, or --no-cluster)", "err", err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeListeners(ls) }()
	addrs := make([]string, len(ls))
	for i, l := range ls {
		addrs[i] = l.Addr().String()
	}
	nodeName := "none" // a node that gossips with no one has no name
	if name := srv.NodeName(); name != "" {
		nodeName = name
	}
	started := []any{"version", version}
	if b := buildinfo.Summary(buildinfo.Read()); b != "" {
		started = append(started, "build", b)
	}
	log.Info("memcluster starting", append(started, "addrs", addrs, "name", nodeName,
		"memory_limit_mb", cfg.MemoryLimit>>20, "max_conns", cfg.MaxConns, "threads", cfg.Threads)...)

wait:
	for {
		select {
		case err := <-served:
			if !errors.Is(err, node.ErrServerClosed) {
				fmt.Fprintf(stderr, "memcluster: %v\n", err)
				return exitFailure
			}
			shutdown(srv, log)
			return 0
		case <-srv.Done():
			// A client's "shutdown" command (-A): let the requests under way
			// finish, as after a signal.
			log.Info("shutdown requested by a client")
			break wait
		case <-ctx.Done():
			if opts.drain > 0 {
				log.Info("signal received; draining", "drain", opts.drain)
				if srv.Drain(hurry, opts.drain) {
					log.Info("drained")
				}
			}
			log.Info("shutting down", "timeout", shutdownTimeout)
			break wait
		case <-hup:
			reload(srv, log)
		}
	}
	shutdown(srv, log)
	if err := <-served; err != nil && !errors.Is(err, node.ErrServerClosed) {
		log.Warn("server stopped with an error", "err", err)
	}
	return 0
}

// reload reloads srv's files on SIGHUP and logs the outcome.
func reload(srv *node.Server, log *slog.Logger) {
	if err := srv.Reload(); err != nil {
		log.Error("SIGHUP: reload failed; keeping what was loaded before", "err", err)
		return
	}
	log.Info("SIGHUP: reloaded")
}

// shutdown stops srv, waiting at most shutdownTimeout for its connections.
func shutdown(srv *node.Server, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("connections did not finish in time and were closed", "err", err)
	}
}

// levelVerbose is the level of what -v adds: memberlist's warnings and
// errors, and connections that fail their TLS handshake (node/cluster and
// node/netserve log them at this level). Connections opening and closing
// and every command come with -vv, at debug, as in memcached.
const levelVerbose = slog.LevelInfo - 2

// newLogger returns the daemon's logger on w: slog's text handler, or its
// JSON handler for format "json"; at level Info (start-up, membership,
// reloads, the drain, warnings), levelVerbose with -v, Debug with -vv and
// more.
func newLogger(w io.Writer, verbosity int, format string) *slog.Logger {
	level := slog.LevelInfo
	switch {
	case verbosity >= 2:
		level = slog.LevelDebug
	case verbosity == 1:
		level = levelVerbose
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: nameLevels}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// nameLevels names levelVerbose VERBOSE in the log, rather than DEBUG+2.
func nameLevels(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l == levelVerbose {
			a.Value = slog.StringValue("VERBOSE")
		}
	}
	return a
}

// writePIDFile writes this process's ID to path, warning first, as
// memcached does, if the file names another process that is running.
func writePIDFile(path string, log *slog.Logger) error {
	if b, err := os.ReadFile(path); err == nil {
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil && pid > 0 && pid != os.Getpid() && processRunning(pid) {
			log.Warn("the pid file names a running process; overwriting it", "file", path, "pid", pid)
		}
	}
	if err := os.WriteFile(path, fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		return fmt.Errorf("pid file: %w", err)
	}
	return nil
}

// removePIDFile removes the pid file at exit.
func removePIDFile(path string, log *slog.Logger) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		log.Warn("could not remove the pid file", "err", err)
	}
}

// processRunning reports whether a process with this ID exists.
func processRunning(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

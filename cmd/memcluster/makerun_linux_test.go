package main

import (
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// TestMakeRunListensOnLoopbackOnly starts the daemon as `make run` does
// (-l 127.0.0.1 -p <port>, gossip on by default) and checks, from /proc,
// that the process holds no socket on an address other than loopback:
// neither memcached's listener nor gossip's TCP listener and UDP socket.
//
// The daemon is built for the test with one link-time change, its default
// gossip port 0 instead of 7946 (main.defaultGossipAddr): other tests' nodes
// and a developer's `make run` take port 7946, and a node that finds its
// default taken runs without gossip, which would leave nothing to check.
func TestMakeRunListensOnLoopbackOnly(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "memcluster")
	build := exec.Command("go", "build", "-ldflags=-X=main.defaultGossipAddr=0.0.0.0:0", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// servertest runs it with -U 0 -l 127.0.0.1 -p <port>: make run's
	// options, and -U 0, which memcluster's default already is.
	srv := servertest.StartMemclusterBinary(t, bin)

	// Gossip starts after the memcached listener, which is already
	// accepting: wait for its sockets.
	var socks []servertest.Socket
	var gossipTCP, gossipUDP bool
	for deadline := time.Now().Add(10 * time.Second); ; {
		var err error
		socks, err = srv.Sockets()
		if err != nil {
			t.Fatal(err)
		}
		gossipTCP, gossipUDP = false, false
		for _, s := range socks {
			if s.Local.Port() == uint16(srv.Port) {
				continue
			}
			gossipTCP = gossipTCP || s.Listening
			gossipUDP = gossipUDP || strings.HasPrefix(s.Proto, "udp")
		}
		if gossipTCP && gossipUDP || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !gossipTCP || !gossipUDP {
		t.Fatalf("no gossip sockets (TCP listener %v, UDP %v) among %+v; output:\n%s", gossipTCP, gossipUDP, socks, srv.Output())
	}
	var memcached bool
	for _, s := range socks {
		memcached = memcached || s.Listening && s.Local.String() == "127.0.0.1:"+strconv.Itoa(srv.Port)
		if !s.Local.Addr().IsLoopback() {
			t.Errorf("%s socket on %v, not loopback", s.Proto, s.Local)
		}
	}
	if !memcached {
		t.Errorf("no memcached listener on 127.0.0.1:%d among %+v", srv.Port, socks)
	}
	// The default level logs where gossip started, and must not warn
	// about it (unencrypted gossip beyond loopback).
	for line := range strings.Lines(srv.Output()) {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "gossip") {
			t.Errorf("the node warned about gossip: %s", line)
		}
	}
	if st := srv.Stop(); !st.Success() {
		t.Errorf("exit status %v after SIGTERM; output:\n%s", st, srv.Output())
	}
}

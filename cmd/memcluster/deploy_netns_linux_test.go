package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/testutil"
	"golang.org/x/sys/unix"
)

// netns is a network namespace made for a test with ip netns, with
// /etc/netns/<name>/hosts, which ip netns exec mounts over /etc/hosts.
type netns struct {
	name string
	fd   int // /run/netns/<name>, for setns
}

// newNetns makes a network namespace whose /etc/hosts is hosts, brings its
// loopback interface up, and removes both when the test ends. It needs
// root and ip (iproute2); without them it fails the test with the reason.
func newNetns(t *testing.T, hosts string) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("this test makes a network namespace with ip netns, which needs root (uid %d)", os.Geteuid())
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Fatalf("this test makes a network namespace with ip netns: apt-get install iproute2: %v", err)
	}
	ns := &netns{name: fmt.Sprintf("memcluster-test-%d", os.Getpid())}
	etc := filepath.Join("/etc/netns", ns.name)
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatalf("ip netns exec reads the namespace's hosts file from %s: %v", etc, err)
	}
	t.Cleanup(func() { os.RemoveAll(etc) })
	if err := os.WriteFile(filepath.Join(etc, "hosts"), []byte(hosts), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v\n%s(network namespaces are needed: root with CAP_SYS_ADMIN, a kernel with CONFIG_NET_NS)", ns.name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "delete", ns.name).CombinedOutput(); err != nil {
			t.Errorf("ip netns delete %s: %v\n%s", ns.name, err, out)
		}
	})
	if out, err := exec.Command("ip", "netns", "exec", ns.name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("bringing lo up in %s: %v\n%s", ns.name, err, out)
	}
	fd, err := unix.Open(filepath.Join("/run/netns", ns.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	ns.fd = fd
	return ns
}

// dial connects to addr from inside the namespace: on an OS thread of its
// own, moved into the namespace, where the socket is made. The thread is
// never moved back: its goroutine ends locked to it, and the runtime
// discards it.
func (ns *netns) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			done <- result{nil, fmt.Errorf("setns %s: %w", ns.name, err)}
			return
		}
		c, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, network, addr)
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// netnsNode is a daemon run with ip netns exec.
type netnsNode struct {
	ip     string // its own loopback address: its pod's IP
	cmd    *exec.Cmd
	out    *testutil.LockedBuffer
	exited chan error
}

// TestKubernetesPodsJoinByHeadlessName runs three nodes as the
// StatefulSet runs its pods: with its arguments, the downward API's
// $(POD_IP) and $(POD_NAME) filled in, joining the headless Service's name
// at the gossip port. They run in a network namespace of their own, whose
// /etc/hosts gives that name three addresses, 127.0.0.1 to 127.0.0.3, as a
// headless Service's DNS gives the pods' IPs; each binds its own (the
// pods' "every interface", 0.0.0.0, would be the same one for all three
// here) with the manifest's ports. The test checks that the three agree on
// a three-member view of their advertised addresses and that /readyz
// answers 200 on each; then that a node stopped as Kubernetes stops a pod
// (SIGTERM) drains (/readyz 503) out of the others' view, and exits 0.
func TestKubernetesPodsJoinByHeadlessName(t *testing.T) {
	m := loadManifests(t, kubernetesDir)
	c := &m.statefulSet.Spec.Template.Spec.Containers[0]
	sample, err := expandPodArgs(c, podFieldSamples)
	if err != nil {
		t.Fatal(err)
	}
	opts := parseDaemonArgs(t, "StatefulSet", sample)
	joinHost, _, err := net.SplitHostPort(opts.cfg.Cluster.Join[0])
	if err != nil {
		t.Fatal(err)
	}
	_, metricsPort, _ := net.SplitHostPort(opts.cfg.MetricsAddr)

	const pods = 3
	hosts := "127.0.0.1 localhost\n"
	for i := 1; i <= pods; i++ {
		hosts += fmt.Sprintf("127.0.0.%d %s\n", i, joinHost)
	}
	ns := newNetns(t, hosts)
	bin := buildStaticDaemon(t)

	nodes := make([]*netnsNode, pods)
	for i := range nodes {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		args, err := expandPodArgs(c, map[string]string{
			"status.podIP":  ip,
			"metadata.name": fmt.Sprintf("%s-%d", m.statefulSet.Name, i),
		})
		if err != nil {
			t.Fatal(err)
		}
		for j, a := range args {
			args[j] = strings.ReplaceAll(a, "0.0.0.0", ip)
		}
		n := &netnsNode{ip: ip, out: new(testutil.LockedBuffer), exited: make(chan error, 1)}
		n.cmd = exec.Command("ip", append([]string{"netns", "exec", ns.name, bin}, args...)...)
		n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { n.exited <- n.cmd.Wait() }()
		t.Cleanup(func() {
			if n.cmd.ProcessState == nil {
				n.cmd.Process.Kill()
				<-n.exited
			}
			if t.Failed() {
				t.Logf("node %s:\n%s", n.ip, n.out.String())
			}
		})
		nodes[i] = n
	}

	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DialContext: ns.dial, DisableKeepAlives: true},
	}
	readyz := func(n *netnsNode) (int, string) {
		resp, err := client.Get(fmt.Sprintf("http://%s/readyz", net.JoinHostPort(n.ip, metricsPort)))
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(body))
	}
	clusterOf := func(n *netnsNode) ([]string, error) {
		return netnsClusterView(ns, net.JoinHostPort(n.ip, fmt.Sprint(opts.cfg.Port)))
	}

	// All three agree on all three, as they advertise themselves.
	var want []string
	for _, n := range nodes {
		want = append(want, fmt.Sprintf("%s|%s|%d", n.ip, n.ip, opts.cfg.Port))
	}
	waitView(t, 20*time.Second, nodes, clusterOf, want)
	// Ready once each has found every address of the name a member:
	// within a rejoin interval of the views' agreeing.
	deadline := time.Now().Add(opts.cfg.Cluster.RejoinInterval + 5*time.Second)
	for _, n := range nodes {
		for {
			code, body := readyz(n)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: /readyz %d %q, want 200", n.ip, code, body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// A pod stopped: SIGTERM. It drains, out of the others' view; a
	// second SIGTERM ends the drain, and it exits 0.
	last := nodes[pods-1]
	if err := last.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitView(t, 10*time.Second, nodes[:pods-1], clusterOf, want[:pods-1])
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, body := readyz(last)
		if code == http.StatusServiceUnavailable && strings.Contains(body, "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s draining: /readyz %d %q, want 503 draining", last.ip, code, body)
		}
	}
	for _, n := range nodes[:pods-1] {
		if code, body := readyz(n); code != http.StatusOK {
			t.Errorf("node %s: /readyz %d %q after another left, want 200", n.ip, code, body)
		}
	}
	if err := last.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, last)
	for _, n := range nodes[:pods-1] {
		stopNetnsNode(t, n)
	}
}

// waitView waits until every node's "config get cluster" lists want.
func waitView(t *testing.T, timeout time.Duration, nodes []*netnsNode, view func(*netnsNode) ([]string, error), want []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range nodes {
		for {
			got, err := view(n)
			if err == nil && slices.Equal(got, want) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s: config get cluster %q (%v), want %q", n.ip, got, err, want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// netnsClusterView returns the entries of "config get cluster" from the
// node at addr in ns, sorted.
func netnsClusterView(ns *netns, addr string) ([]string, error) {
	c, err := ns.dial(context.Background(), "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, "config get cluster\r\n"); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	var lines []string
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "END" {
			break
		}
		lines = append(lines, line)
	}
	// CONFIG cluster 0 <len>, the version, the entries, an empty line.
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "CONFIG cluster ") {
		return nil, fmt.Errorf("config get cluster: %q", lines)
	}
	entries := strings.Fields(lines[2])
	slices.Sort(entries)
	return entries, nil
}

// stopNetnsNode stops n as Kubernetes stops a pod, SIGTERM, and, if it is
// still draining a moment later, sends a second SIGTERM, which ends the
// drain; it waits for the exit and checks that it is 0.
func stopNetnsNode(t *testing.T, n *netnsNode) {
	t.Helper()
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.exited:
		n.exited <- err
	case <-time.After(500 * time.Millisecond):
		if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Fatal(err)
		}
	}
	waitExit(t, n)
}

// waitExit waits for n to exit and checks that it exits 0.
func waitExit(t *testing.T, n *netnsNode) {
	t.Helper()
	select {
	case err := <-n.exited:
		if err != nil {
			t.Errorf("node %s: %v after SIGTERM, want exit 0", n.ip, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("node %s still running 15 s after SIGTERM", n.ip)
	}
}

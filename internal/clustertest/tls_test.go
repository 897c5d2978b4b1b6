package clustertest_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	"github.com/bradfitz/gomemcache/memcache"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/testutil"
	"github.com/memcluster/memcluster/internal/tlstest"
	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/ring"
)

// TestSelectorOverTLS checks that a Go client follows a cluster that
// serves only TLS: ring.Selector with a tls.Dialer finds the members,
// and gomemcache on it, dialing with TLS too, stores each key on its owner.
func TestSelectorOverTLS(t *testing.T) {
	files := tlstest.NewFiles(t, "cluster CA")
	c := clustertest.New(t)
	for _, name := range []string{"a", "b", "c"} {
		cfg := node.Config{
			TLS:     &node.TLSConfig{CertFile: files.CertFile, KeyFile: files.KeyFile},
			Cluster: clustertest.FastTiming,
		}
		cfg.Cluster.Join = c.Seeds()
		c.AddConfig(name, cfg)
	}
	view := clustertest.WaitAgree(t, agreeTimeout, c.Nodes...)
	dialer := &tls.Dialer{Config: files.ClientConfig(nil)}
	sel, err := ring.NewSelector([]string{c.Nodes[0].Addr}, ring.Config{Dialer: dialer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sel.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := sel.Refresh(ctx); err != nil {
		t.Fatalf("Refresh over TLS: %v", err)
	}
	version, r := sel.Current()
	if version != view.Version || r.Len() != 3 {
		t.Fatalf("the Selector holds version %d with %d members, want the nodes' %d with 3", version, r.Len(), view.Version)
	}
	mc := memcache.NewFromSelector(sel)
	mc.Timeout = 2 * time.Second
	mc.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	for i := range 100 {
		k := fmt.Sprintf("tls-%d", i)
		if err := mc.Set(&memcache.Item{Key: k, Value: []byte(k)}); err != nil {
			t.Fatalf("set %s over TLS: %v", k, err)
		}
		direct := memcache.New(r.OwnerString(k).Addr())
		direct.DialContext = mc.DialContext
		if it, err := direct.Get(k); err != nil || string(it.Value) != k {
			t.Fatalf("%s on its owner %s: %v, %v", k, r.OwnerString(k).Addr(), itemValue(it), err)
		}
	}
}

// TestSelectorSASL checks Auto Discovery on a cluster whose nodes run
// with -S and serve no text command: ring.Selector logs in with SASL PLAIN
// and asks for the config, and the ring mode (ketama here), over the
// binary protocol, follows a join by polling, and a wrong password is
// refused.
func TestSelectorSASL(t *testing.T) {
	pwdb := t.TempDir() + "/pwdb"
	if err := os.WriteFile(pwdb, []byte("app:apppw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := clustertest.New(t)
	add := func(name string) *clustertest.Node {
		cfg := node.Config{SASL: true, SASLPasswordFile: pwdb, Cluster: clustertest.FastTiming}
		cfg.Cluster.Join = c.Seeds()
		cfg.Cluster.Ring = ring.ModeKetama
		return c.AddConfig(name, cfg)
	}
	for _, name := range []string{"a", "b", "c"} {
		add(name)
	}
	view := clustertest.WaitAgree(t, agreeTimeout, c.Nodes...)
	newSelector := func(password string, poll time.Duration) *ring.Selector {
		sel, err := ring.NewSelector([]string{c.Nodes[0].Addr}, ring.Config{
			SASL:         &ring.SASLLogin{User: "app", Password: password},
			PollInterval: poll,
			Logger:       slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { sel.Close() })
		return sel
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := newSelector("guess", -1).Refresh(ctx); !errors.Is(err, ring.ErrLogin) {
		t.Fatalf("Refresh with a wrong password: %v, want ErrLogin", err)
	}
	sel := newSelector("apppw", 200*time.Millisecond)
	if err := sel.Refresh(ctx); err != nil {
		t.Fatalf("Refresh with SASL: %v", err)
	}
	if version, r := sel.Current(); version != view.Version || r.Len() != 3 || r.Mode() != ring.ModeKetama {
		t.Fatalf("the Selector holds version %d with %d members in mode %v, want the nodes' %d with 3 in ketama", version, r.Len(), r.Mode(), view.Version)
	}
	add("d")
	view = clustertest.WaitAgree(t, agreeTimeout, c.Live()...)
	testutil.WaitFor(t, agreeTimeout, "the Selector on the 4-node view", func() bool {
		version, r := sel.Current()
		return version == view.Version && r.Len() == 4 && r.Mode() == ring.ModeKetama
	})
}

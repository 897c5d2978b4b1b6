package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/ring"
)

func TestMetaRoundTrip(t *testing.T) {
	tests := []struct {
		m     ring.Member
		epoch uint64
	}{
		{ring.Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: 11211}, 1},
		{ring.Member{Host: "cache-0.cache.default.svc.cluster.local", IP: "10.1.2.3", Port: 1}, 1 << 63},
		{ring.Member{Host: strings.Repeat("h", ring.MaxHostLen), IP: "2001:db8::1", Port: 65535}, 0},
		{ring.Member{Host: "only-a-host", Port: 7}, 42},
	}
	for _, tt := range tests {
		b := encodeMeta(nodeMeta{member: tt.m, epoch: tt.epoch, leaving: tt.epoch == 42})
		if len(b) > 512 {
			t.Errorf("%v: %d bytes of metadata, over memberlist's 512", tt.m, len(b))
		}
		nm, err := decodeMeta(b)
		if err != nil || nm != (nodeMeta{member: tt.m, epoch: tt.epoch, leaving: tt.epoch == 42}) {
			t.Errorf("decodeMeta(encodeMeta(%v, %d)) = %+v, %v", tt.m, tt.epoch, nm, err)
		}
		// Every strict prefix and any trailing byte is refused.
		for i := range len(b) {
			if _, err := decodeMeta(b[:i]); err == nil {
				t.Errorf("%v: prefix of %d bytes accepted", tt.m, i)
			}
		}
		if _, err := decodeMeta(append(b, 0)); err == nil {
			t.Errorf("%v: trailing byte accepted", tt.m)
		}
	}
	for _, bad := range []ring.Member{
		{Host: "a b", IP: "127.0.0.1", Port: 1},
		{Host: "h", IP: "not-an-ip", Port: 1},
		{Host: "h", IP: "127.0.0.1", Port: 0},
		{},
	} {
		if _, err := decodeMeta(encodeMeta(nodeMeta{member: bad, epoch: 1})); err == nil {
			t.Errorf("invalid member %v accepted", bad)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add(encodeMeta(nodeMeta{member: ring.Member{Host: "127.0.0.1", IP: "127.0.0.1", Port: 11211}, epoch: 3}))
	f.Add(encodeMeta(nodeMeta{member: ring.Member{Host: "node", Port: 1}, leaving: true}))
	f.Add([]byte{})
	f.Add([]byte{metaFormat, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		nm, err := decodeMeta(b)
		if err != nil {
			return
		}
		if err := nm.member.Validate(); err != nil {
			t.Fatalf("decoded an invalid member %v: %v", nm.member, err)
		}
		nm2, err := decodeMeta(encodeMeta(nm))
		if err != nil || nm2 != nm {
			t.Fatalf("round trip of %+v: %+v, %v", nm, nm2, err)
		}
	})
}

func TestMemberlistLogGoesToDebug(t *testing.T) {
	var b bytes.Buffer
	w := memberlistLog{slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	w.Write([]byte("[WARN] memberlist: Was able to connect to n2 over TCP but UDP probes failed\n"))
	got := b.String()
	for _, want := range []string{"level=DEBUG", `msg="Was able to connect to n2 over TCP but UDP probes failed"`, "memberlist_level=WARN"} {
		if !strings.Contains(got, want) {
			t.Errorf("logged %q, want it to hold %q", got, want)
		}
	}
}

// TestBindIP checks what memberlist is told to bind for each gossip host:
// never a name or a scoped address, which memberlist would take for every
// interface.
func TestBindIP(t *testing.T) {
	for _, tc := range []struct{ host, want string }{
		{"", "0.0.0.0"},
		{"0.0.0.0", "0.0.0.0"},
		{"::", "0.0.0.0"},
		{"[::]", "0.0.0.0"},
		{"127.0.0.1", "127.0.0.1"},
		{"10.0.0.5", "10.0.0.5"},
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"::ffff:127.0.0.1", "127.0.0.1"},
		{"localhost", "127.0.0.1"}, // IPv4 first, as net.Listen
	} {
		got, err := bindIP(context.Background(), tc.host)
		if err != nil || got != tc.want {
			t.Errorf("bindIP(%q) = %q, %v; want %q", tc.host, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ host, want string }{
		{"fe80::1%lo", "memberlist cannot bind the scoped address fe80::1%lo"},
		{"no such host!", "resolving no such host!: "},
	} {
		got, err := bindIP(context.Background(), tc.host)
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("bindIP(%q) = %q, %v; want the error %q", tc.host, got, err, tc.want)
		}
	}
}

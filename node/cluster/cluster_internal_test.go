package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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

// TestMemberlistLogLevels checks where memberlist's lines go: its
// warnings and errors to the -v level, its info and debug lines to debug,
// and its lines about dropped messages to a counted, rate-limited warning.
func TestMemberlistLogLevels(t *testing.T) {
	var b bytes.Buffer
	var dropped atomic.Uint64
	w := &memberlistLog{log: slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})), dropped: &dropped, every: time.Hour}
	for _, tt := range []struct{ line, want string }{
		{"[WARN] memberlist: Was able to connect to n2 over TCP but UDP probes failed\n",
			`level=DEBUG+2 msg="Was able to connect to n2 over TCP but UDP probes failed" source=memberlist memberlist_level=WARN`},
		{"[ERR] memberlist: Failed to send ack: EOF from=1.2.3.4:5\n", `level=DEBUG+2 msg="Failed to send ack: EOF from=1.2.3.4:5"`},
		{"[DEBUG] memberlist: Stream connection from=127.0.0.1:1\n", `level=DEBUG msg="Stream connection from=127.0.0.1:1"`},
		{"[INFO] memberlist: Marking n2 as failed, suspect timeout reached (0 peer confirmations)\n", "level=DEBUG"},
	} {
		b.Reset()
		w.Write([]byte(tt.line))
		if got := b.String(); !strings.Contains(got, tt.want) {
			t.Errorf("%q: logged %q, want it to hold %q", tt.line, got, tt.want)
		}
	}
	if n := dropped.Load(); n != 0 {
		t.Errorf("%d drops counted for lines that are not drops", n)
	}

	drops := []string{
		"[ERR] memberlist: msg type (106) not supported from=127.0.0.1:9\n",
		"[ERR] memberlist: Failed to decode ping request: EOF from=127.0.0.1:9\n",
		"[ERR] memberlist: Decrypt packet failed: no installed keys could decrypt the message from=127.0.0.1:9\n",
		"[ERR] memberlist: failed to receive: encryption is configured but remote state is not encrypted from=127.0.0.1:9\n",
		"[WARN] memberlist: Got invalid checksum for UDP packet: 1, 2\n",
	}
	b.Reset()
	for _, l := range drops {
		w.Write([]byte(l))
	}
	got := b.String()
	if n := strings.Count(got, "\n"); n != 1 || !strings.Contains(got, `level=WARN msg="gossip message dropped`) ||
		!strings.Contains(got, `reason="msg type (106) not supported from=127.0.0.1:9"`) {
		t.Errorf("%d drops logged %q; want one warning, for the first", len(drops), got)
	}
	if n := dropped.Load(); n != uint64(len(drops)) {
		t.Errorf("dropped = %d, want %d", n, len(drops))
	}
	// Once the interval has passed, the next warning counts those it
	// did not tell.
	w.every = 0
	b.Reset()
	w.Write([]byte(drops[0]))
	if got := b.String(); !strings.Contains(got, "suppressed_since_last=4") || !strings.Contains(got, "dropped_total=6") {
		t.Errorf("after the interval: logged %q, want suppressed_since_last=4 and dropped_total=6", got)
	}
}

// TestSeedWarningsBackOff checks the spacing of the warnings about seeds
// that cannot be joined: none within the grace, then the first, then
// gaps doubling up to the cap; a success starts over.
func TestSeedWarningsBackOff(t *testing.T) {
	w := seedWarnings{grace: time.Second}
	start := time.Unix(1000, 0)
	var warnedAt []time.Duration
	// A failed attempt every second for an hour.
	for s := 0; s <= 3600; s++ {
		if ok, _ := w.failed(start.Add(time.Duration(s) * time.Second)); ok {
			warnedAt = append(warnedAt, time.Duration(s)*time.Second)
		}
	}
	want := []time.Duration{1 * time.Second, 11 * time.Second, 31 * time.Second, 71 * time.Second, 151 * time.Second, 311 * time.Second, 611 * time.Second}
	for at := 911 * time.Second; at <= time.Hour; at += maxSeedWarnGap {
		want = append(want, at)
	}
	if !slices.Equal(warnedAt, want) {
		t.Errorf("warned at %v, want %v", warnedAt, want)
	}
	if !w.succeeded() {
		t.Error("succeeded after warnings = false, want true")
	}
	if w.succeeded() {
		t.Error("succeeded again = true, want false: nothing was warned since")
	}
	if ok, _ := w.failed(start); ok {
		t.Error("warned at the first failure of a new run, within the grace")
	}
	if ok, n := w.failed(start.Add(2 * time.Second)); !ok || n != 2 {
		t.Errorf("after the grace: warn %v covering %d attempts, want true and 2", ok, n)
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

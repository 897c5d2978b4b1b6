package clustertest_test

import (
	"bytes"
	b64 "encoding/base64"
	"encoding/binary"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/clustertest"
	"github.com/memcluster/memcluster/internal/servertest"
	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// startForwarding starts three daemons with --forward (and args) and
// returns them with the ring of their agreed view.
func startForwarding(t *testing.T, args ...string) ([]*proc, *ring.Ring) {
	t.Helper()
	var ps []*proc
	var seeds []string
	for _, name := range []string{"a", "b", "c"} {
		p := startProc(t, name, slices.Clone(seeds), append([]string{"--forward"}, args...)...)
		ps = append(ps, p)
		seeds = append(seeds, p.gossip)
	}
	v := clustertest.WaitAgreeAddrs(t, agreeTimeout, addrs(ps...), entries(ps...))
	return ps, ringOfEntries(t, v.Entries)
}

// forwardKeys returns n keys named prefix-i of which the node at self owns
// none, and which the two others share.
func forwardKeys(t *testing.T, r *ring.Ring, self *proc, prefix string, n int) []string {
	t.Helper()
	var keys []string
	owners := map[string]int{}
	for i := 0; len(keys) < n; i++ {
		k := prefix + strconv.Itoa(i)
		if o := r.OwnerString(k).Entry(); o != self.entry() {
			keys = append(keys, k)
			owners[o]++
		}
	}
	if len(owners) != 2 {
		t.Fatalf("keys %s* land on %d other nodes, want 2", prefix, len(owners))
	}
	return keys
}

// transcript sends each request of steps to addr on one connection, each
// followed by a no-op whose reply ends what is read (a line end and mn in
// text, a Noop
// with opaque 0xfeedface in binary), and returns the replies.
func transcript(t *testing.T, addr string, bin bool, steps []string) []string {
	t.Helper()
	c := servertest.DialRaw(t, "tcp", addr)
	defer c.Close()
	noop, end := "\r\nmn\r\n", "MN\r\n"
	if bin {
		noop = string(protocol.AppendBinaryRequest(nil, protocol.OpNoop, 0xfeedface, 0, nil, nil, nil))
		end = string(protocol.AppendBinaryResponse(nil, protocol.OpNoop, protocol.StatusOK, 0xfeedface, 0, nil, nil, nil))
	}
	var out []string
	for _, s := range steps {
		c.SendString(s + noop)
		got, err := c.ReadUntil(end, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: request %q: %v after %q", addr, servertest.Abbrev(s, 80), err, servertest.Abbrev(string(got), 200))
		}
		out = append(out, string(got[:len(got)-len(end)]))
	}
	return out
}

// binReq is one binary request.
func binReq(op protocol.BinaryOpcode, opaque uint32, extras []byte, key, value string) string {
	return string(protocol.AppendBinaryRequest(nil, op, opaque, 0, extras, []byte(key), []byte(value)))
}

func storageExtras(flags, exptime uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, flags), exptime)
}

// TestForwardMatchesMemcached sends the same requests, keyed commands of
// the classic, meta and binary protocols, to memcached and, through a node
// that owns none of their keys, to a forwarding cluster: every reply must be
// memcached's, byte for byte. The keys are spread over both other nodes, so
// multi-key reads are split between owners and put back in order.
func TestForwardMatchesMemcached(t *testing.T) {
	ps, r := startForwarding(t)
	mc := servertest.StartMemcached(t)
	k := forwardKeys(t, r, ps[0], "fw-", 12)
	// A key the entry node owns, for reads that mix local and forwarded
	// keys.
	var local string
	for i := 0; local == ""; i++ {
		if s := "loc-" + strconv.Itoa(i); r.OwnerString(s).Entry() == ps[0].entry() {
			local = s
		}
	}
	big := strings.Repeat("0123456789abcdef", 40<<10) // 640 KiB
	text := []string{
		"set " + k[0] + " 5 0 3\r\none",
		"add " + k[0] + " 0 0 1\r\nx",
		"add " + k[1] + " 7 0 3\r\ntwo",
		"replace " + k[2] + " 0 0 1\r\nx",
		"set " + local + " 9 0 5\r\nlocal",
		"append " + k[0] + " 0 0 2\r\n-a",
		"prepend " + k[0] + " 0 0 2\r\np-",
		"cas " + k[1] + " 0 0 1 999999\r\nz",
		"cas " + k[3] + " 0 0 1 1\r\nz",
		"set " + k[4] + " 0 0 1 noreply\r\n5",
		"set " + k[5] + " 3 0 " + strconv.Itoa(len(big)) + "\r\n" + big,
		"get " + k[0],
		"get " + k[2],
		"get " + strings.Join([]string{k[0], k[2], local, k[1], k[4], k[5], k[0], "missing", k[3]}, " "),
		"get " + k[5] + " " + local + " " + k[5],
		"touch " + k[1] + " 100",
		"touch " + k[6] + " 100",
		"gat 100 " + k[1] + " " + local + " " + k[7],
		"incr " + k[4] + " 10",
		"decr " + k[4] + " 100",
		"incr " + k[0] + " 1",
		"incr " + k[8] + " 1",
		"incr " + k[4] + " 1 noreply",
		"get " + k[4],
		"delete " + k[1],
		"delete " + k[1],
		"delete " + k[4] + " noreply",
		"get " + k[1] + " " + k[4],
		"set " + k[9] + " 0 0 2\r\ntoolong",
		"get " + strings.Repeat("x", 251),
	}
	meta := []string{
		"ms " + k[0] + " 3 T0 F12\r\nabc",
		"ms " + k[1] + " 2 q O7\r\nhi",
		"ms " + k[2] + " 1 I\r\nx",
		"mg " + k[0] + " v f k O1",
		"mg " + k[0] + " s v q O2",
		"mg " + k[9] + " v q O3",
		"mg " + k[9] + " v O4",
		"mg " + k[9] + " v k q O5\r\nmg " + k[1] + " v k q O6\r\nmg " + local + " v q k O7",
		"ms " + base64(k[10]) + " 3 b\r\nb64",
		"mg " + base64(k[10]) + " b v k",
		"mg " + k[10] + " v",
		"ma " + k[11] + " N0 J5 v",
		"ma " + k[11] + " D3 v",
		"ma " + k[11] + " MD D100 q",
		"ma " + k[11] + " v",
		"md " + k[1] + " q",
		"md " + k[1] + " q O8",
		"md " + k[1],
		"me " + k[9],
		"mg " + k[0] + " zz",
	}
	var bin []string
	bin = append(bin,
		binReq(protocol.OpSet, 1, storageExtras(3, 0), k[0], "bin-zero"),
		binReq(protocol.OpSetQ, 2, storageExtras(4, 0), k[1], "bin-one"),
		binReq(protocol.OpAddQ, 3, storageExtras(0, 0), k[1], "exists"),
		binReq(protocol.OpGet, 4, nil, k[0], ""),
		binReq(protocol.OpGetK, 5, nil, k[9], ""),
		binReq(protocol.OpGet, 6, nil, k[9], ""),
		binReq(protocol.OpGetKQ, 7, nil, k[0], "")+binReq(protocol.OpGetKQ, 8, nil, k[9], "")+
			binReq(protocol.OpGetKQ, 9, nil, k[1], "")+binReq(protocol.OpGetKQ, 10, nil, local, "")+
			binReq(protocol.OpGetQ, 11, nil, k[5], ""),
		binReq(protocol.OpIncrement, 12, make([]byte, 20), k[11], ""),
		binReq(protocol.OpAppend, 13, nil, k[0], "+app"),
		binReq(protocol.OpDeleteQ, 14, nil, k[9], ""),
		binReq(protocol.OpDelete, 15, nil, k[1], ""),
		binReq(protocol.OpTouch, 16, binary.BigEndian.AppendUint32(nil, 100), k[0], ""),
		binReq(protocol.OpGATK, 17, binary.BigEndian.AppendUint32(nil, 100), k[0], ""),
		binReq(protocol.OpGATKQ, 18, binary.BigEndian.AppendUint32(nil, 100), k[9], ""),
	)
	for _, tc := range []struct {
		name  string
		bin   bool
		steps []string
	}{{"classic", false, text}, {"meta", false, meta}, {"binary", true, bin}} {
		t.Run(tc.name, func(t *testing.T) {
			want := transcript(t, mc.Addr, tc.bin, tc.steps)
			got := transcript(t, ps[0].srv.Addr, tc.bin, tc.steps)
			for i := range want {
				if tc.bin {
					want[i], got[i] = zeroCAS(t, want[i]), zeroCAS(t, got[i])
				}
				if got[i] != want[i] {
					t.Errorf("request %q:\n got %q\nwant %q (memcached)", servertest.Abbrev(tc.steps[i], 120),
						servertest.Abbrev(got[i], 300), servertest.Abbrev(want[i], 300))
				}
			}
		})
	}
	// Nothing was stored on the entry node but its own key: every other
	// key went to its owner.
	st, err := clustertest.Query(ps[0].srv.Addr, "stats")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(st, []byte("STAT curr_items 1\r\n")) || !bytes.Contains(st, []byte("STAT forward_errors 0\r\n")) {
		t.Errorf("entry node's stats: want curr_items 1 and forward_errors 0:\n%s", st)
	}
}

func base64(s string) string { return b64.StdEncoding.EncodeToString([]byte(s)) }

// zeroCAS returns the binary responses of b with their CAS fields zeroed:
// memcached and the node number their items differently.
func zeroCAS(t *testing.T, b string) string {
	t.Helper()
	out := []byte(b)
	for i := 0; i < len(out); {
		if len(out)-i < protocol.BinaryHeaderLen {
			t.Fatalf("a partial binary response: %q", out[i:])
		}
		clear(out[i+16 : i+24])
		i += protocol.BinaryHeaderLen + int(binary.BigEndian.Uint32(out[i+8:i+12]))
	}
	return string(out)
}

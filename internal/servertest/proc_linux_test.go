package servertest

import (
	"net"
	"net/netip"
	"os"
	"slices"
	"testing"
)

// TestProcessSockets checks that processSockets finds this process's own
// sockets, with their addresses and states, and none of another's.
func TestProcessSockets(t *testing.T) {
	tcp4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp4.Close()
	udp4, err := net.ListenPacket("udp4", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp4.Close()
	tcp6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("this test needs IPv6 loopback: %v", err)
	}
	defer tcp6.Close()
	client, err := net.Dial("tcp", tcp4.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	want := []Socket{
		{"tcp", tcp4.Addr().(*net.TCPAddr).AddrPort(), true},
		{"udp", udp4.LocalAddr().(*net.UDPAddr).AddrPort(), false},
		{"tcp6", tcp6.Addr().(*net.TCPAddr).AddrPort(), true},
		{"tcp", client.LocalAddr().(*net.TCPAddr).AddrPort(), false},
	}
	got, err := processSockets(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		want[i].Local = netip.AddrPortFrom(w.Local.Addr().Unmap(), w.Local.Port())
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("sockets %+v: want %+v among them", got, w)
		}
	}

	// Another process's sockets do not include this one's.
	parent, err := processSockets(os.Getppid())
	if err != nil {
		t.Fatalf("the parent's sockets: %v", err)
	}
	if slices.Contains(parent, want[0]) {
		t.Errorf("the parent's sockets %+v include this process's listener %+v", parent, want[0])
	}
	if _, err := processSockets(1 << 30); err == nil {
		t.Error("sockets of a process that does not exist: no error")
	}
}

// TestParseProcAddr reads addresses as a little-endian machine's kernel
// writes them (x86-64, arm64).
func TestParseProcAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0100007F:2B0B", "127.0.0.1:11019"},
		{"00000000:1F0A", "0.0.0.0:7946"},
		{"00000000000000000000000001000000:1F0A", "[::1]:7946"},
		{"00000000000000000000000000000000:0035", "[::]:53"},
		{"0000000000000000FFFF00000100007F:1F0A", "127.0.0.1:7946"}, // v4-mapped, unmapped
	} {
		got, err := parseProcAddr(tc.in)
		if err != nil || got.String() != tc.want {
			t.Errorf("parseProcAddr(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "0100007F", "0100007:2B0B", "0100007F:XYZ", "0100007F:12345"} {
		if got, err := parseProcAddr(bad); err == nil {
			t.Errorf("parseProcAddr(%q) = %v, want an error", bad, got)
		}
	}
}

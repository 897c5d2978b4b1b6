package command

import (
	"bufio"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/protocol"
	"github.com/memcluster/memcluster/ring"
)

// TestConfigGetRing checks "config get ring" for each ring mode, byte for
// byte, over the text protocol and the binary ConfigGet (key "ring"), and
// that "config get cluster" stays Auto Discovery's whatever the mode.
func TestConfigGetRing(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode ring.Mode
		want string
	}{
		{"default", 0, "CONFIG ring 0 10\r\nmemcluster\r\nEND\r\n"},
		{"memcluster", ring.ModeMemcluster, "CONFIG ring 0 10\r\nmemcluster\r\nEND\r\n"},
		{"ketama", ring.ModeKetama, "CONFIG ring 0 6\r\nketama\r\nEND\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
			cfg.ListenAddrs = []string{"127.0.0.1"}
			cfg.Cluster.Ring = tc.mode
			_, addr := serveForTest(t, cfg)
			c, r := dialForTest(t, addr)
			if got := roundTrip(t, c, r, "config get ring\r\n", 3); got != tc.want {
				t.Errorf("config get ring: %q, want %q", got, tc.want)
			}
			for _, bad := range []string{"config get ring x\r\n", "config get rings\r\n"} {
				if got := roundTrip(t, c, r, bad, 1); got != "ERROR\r\n" {
					t.Errorf("%q: %q, want ERROR", bad, got)
				}
			}
			cluster := roundTrip(t, c, r, "config get cluster\r\n", 5)
			if _, _, err := ring.ParseClusterConfig(bufio.NewReader(strings.NewReader(cluster))); err != nil {
				t.Errorf("config get cluster: %q: %v", cluster, err)
			}

			b := binDial(t, addr)
			b.check(0, binStep{
				send: binCat(binReq(protocol.OpConfigGet, 7, 0, "", "ring", ""),
					binReq(protocol.OpConfigGet, 8, 0, "", "rings", "")),
				want: [][]byte{
					binResp(protocol.OpConfigGet, protocol.StatusOK, 7, 0, "", "", tc.want),
					binErr(protocol.OpConfigGet, protocol.StatusKeyNotFound, 8),
				},
			})
		})
	}
}

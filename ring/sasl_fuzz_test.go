package ring

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/memcluster/memcluster/protocol"
)

// FuzzReadBinaryReply feeds arbitrary bytes to the reader of a node's
// binary replies (a Selector's SASL login and ConfigGet): no panic, and no
// value past the bound or outside the body.
func FuzzReadBinaryReply(f *testing.F) {
	cfg := FormatClusterConfig(3, []Member{{Host: "a", IP: "10.0.0.1", Port: 11211}})
	f.Add(protocol.AppendBinaryResponse(nil, protocol.OpConfigGet, protocol.StatusOK, 0, 0, nil, nil, cfg))
	f.Add(protocol.AppendBinaryResponse(nil, protocol.OpSASLAuth, protocol.StatusAuthError, 0, 0, nil, nil, []byte("Auth failure.")))
	f.Add(protocol.AppendBinaryResponse(nil, protocol.OpConfigGet, protocol.StatusOK, 0, 0, []byte("xxxx"), []byte("k"), nil))
	f.Add([]byte("\x81\xe2\x00\x05\x04\x00\x00\x00\x00\x00\x00\x03"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, value, err := readBinaryReply(bufio.NewReader(bytes.NewReader(data)), 64)
		if err == nil && (len(value) > 64 || len(value) > len(data)) {
			t.Fatalf("a value of %d bytes from %d bytes of input, bound 64", len(value), len(data))
		}
	})
}

package protocol

import (
	"bytes"
	"testing"
	"testing/iotest"
)

// FuzzMetaDecode checks that no input panics the meta decoder or makes it
// return a request that breaks memcached's limits (key, opaque, flag count,
// data length), and that input split at every byte boundary decodes as it
// does whole.
func FuzzMetaDecode(f *testing.F) {
	for _, seed := range []string{
		"mn\r\n",
		"mg a v k c f s t h l u q O99\r\n",
		"mg a T-1 N30 R+5 v\r\nmg a Tx z\r\n",
		"mg Zm9v b k v\r\nmg Zm9v= b\r\n",
		"ms a 3 T10 F5 c k I MS C7\r\nabc\r\n",
		"ms a 3 z\r\nbar\r\nmn\r\n",
		"ms a 2000\r\n\r\n",
		"ms a -1\r\nms a 4294967299\r\n",
		"md a q I T30 C5 k O1\r\nmd a x\r\n",
		"md a x I q E12 T5\r\nmd a x x\r\nmd a Ex\r\n",
		"mg a N30 E5 c\r\nmg a E18446744073709551616\r\nmg a E1 E2\r\n",
		"ms a 1 E99 C7 c\r\nx\r\nms a 3 E5x\r\nbar\r\n",
		"ma n E7 N0 c\r\nma n E-\r\n",
		"ma n N0 J10 D5 MD v t c\r\nma n M+ Dx\r\n",
		"me a\r\nme Zm9v b\r\nme\r\n",
		"mg a 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18\r\n",
		"mg a Oooooooooooooooooooooooooooooooooo\r\n",
		"mg a \xff\x00v\r\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := decodeChecked(t, bytes.NewReader(in), renderMeta)
		split := decodeChecked(t, iotest.OneByteReader(bytes.NewReader(in)), renderMeta)
		if !splitAgrees(in, whole, split) {
			t.Fatalf("whole input decoded %q, one byte at a time %q", whole, split)
		}
	})
}

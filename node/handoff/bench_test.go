package handoff

import (
	"bytes"
	"log/slog"
	"strconv"
	"testing"

	"github.com/memcluster/memcluster/node/store"
)

// BenchmarkSetOverwrite measures what the hand-off's tombstones cost every
// write of a cluster's node (store.Config.OnWrite): a store's overwrite of
// a 100-byte value without the hook and with it.
func BenchmarkSetOverwrite(b *testing.B) {
	for _, observed := range []bool{false, true} {
		b.Run("tombstones="+strconv.FormatBool(observed), func(b *testing.B) {
			var h *Handoff
			cfg := store.Config{MaxBytes: 1 << 30}
			if observed {
				cfg.OnWrite = func(k uint64) { h.Wrote(k) }
			}
			st := store.New(cfg)
			b.Cleanup(st.Close)
			h = New(Config{Store: st, Fetcher: &fakeFetcher{}, Logger: slog.New(slog.DiscardHandler)})
			keys := make([][]byte, 1<<16)
			val := bytes.Repeat([]byte("v"), 100)
			for i := range keys {
				keys[i] = []byte("key:" + strconv.Itoa(i))
				st.Set(store.ModeSet, keys[i], val, 0, 0, 0)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				st.Set(store.ModeSet, keys[(i*0x9E3779B1)&(len(keys)-1)], val, 0, 0, 0)
				i++
			}
		})
	}
}

package protocol

import (
	"bufio"
	"bytes"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/memcluster/memcluster/internal/testutil"
)

// stallingReader is a client that sends its bytes a packet at a time, then
// stalls: a Read once they are spent closes stalled and waits for release,
// then returns io.EOF, as when the client goes away.
type stallingReader struct {
	data    []byte
	packet  int
	stalled chan struct{}
	release chan struct{}
	once    sync.Once
}

func newStallingReader(data []byte, packet int) *stallingReader {
	return &stallingReader{data: data, packet: packet, stalled: make(chan struct{}), release: make(chan struct{})}
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p[:min(len(p), r.packet)], r.data)
		r.data = r.data[n:]
		return n, nil
	}
	r.once.Do(func() { close(r.stalled) })
	<-r.release
	return 0, io.EOF
}

// TestTextDataGrowsAsItArrives sends each command that carries a data block
// with a promise of 1 GiB (memcached's largest -I) and 64 KiB of the block,
// then stalls: the decoder must have allocated about what arrived, not what
// was promised. When the client goes, the decoder reports the cut.
func TestTextDataGrowsAsItArrives(t *testing.T) {
	const promised, delivered = 1 << 30, 64 << 10
	for _, line := range []string{
		"set k 0 0 1073741824\r\n",
		"add k 0 0 1073741824\r\n",
		"replace k 0 0 1073741824 noreply\r\n",
		"append k 0 0 1073741824\r\n",
		"prepend k 0 0 1073741824\r\n",
		"cas k 0 0 1073741824 12\r\n",
		"ms k 1073741824 T0 F5\r\n",
		"ms k 1073741824 MA q\r\n",
	} {
		name, _, _ := strings.Cut(line, "\r")
		t.Run(name, func(t *testing.T) {
			in := line + strings.Repeat("v", delivered)
			r := newStallingReader([]byte(in), 1460)
			tr := NewTextReader(bufio.NewReaderSize(r, 16<<10))
			tr.MaxValue = promised
			var before, stalled runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			decoded := make(chan error, 1)
			go func() {
				_, err := tr.Next()
				decoded <- err
			}()
			<-r.stalled
			runtime.ReadMemStats(&stalled)
			// The read buffer, the reader's own state, and a data buffer
			// that doubled up to at most twice what arrived: no more than
			// four times what arrived in all its steps.
			alloc, limit := stalled.TotalAlloc-before.TotalAlloc, uint64(4*delivered+64<<10)
			if alloc > limit {
				t.Errorf("stalled after %d of %d promised bytes, having allocated %d bytes; want at most %d",
					delivered, promised, alloc, limit)
			}
			t.Logf("allocated %d bytes for %d that arrived", alloc, delivered)
			close(r.release)
			if err := <-decoded; err != io.ErrUnexpectedEOF {
				t.Errorf("client gone inside the data block: got %v, want %v", err, io.ErrUnexpectedEOF)
			}
			if len(tr.data) != delivered {
				t.Errorf("the data buffer holds %d bytes, want the %d that arrived", len(tr.data), delivered)
			}
		})
	}
}

// TestTextDataInPackets: a data block that arrives a packet at a time, over
// many reads of the buffer's size, is decoded whole, into a buffer no larger
// than it; the next block is read into the same buffer.
func TestTextDataInPackets(t *testing.T) {
	value := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16)
	var in bytes.Buffer
	in.WriteString("set big 1 0 307200\r\n")
	in.Write(value)
	in.WriteString("\r\nms big 307200 T0\r\n")
	in.Write(value)
	in.WriteString("\r\nset small 0 0 5\r\nhello\r\nset bad 0 0 5\r\nhello!\r\n")
	tr := NewTextReader(bufio.NewReaderSize(iotestPackets(in.Bytes(), 1460), 16<<10))
	tr.MaxValue = 1 << 20

	req, err := tr.Next()
	if err != nil || req.Command != CmdSet || string(req.Key()) != "big" || !bytes.Equal(req.Data, value) {
		t.Fatalf("set big: got %v, key %q, %d bytes of data", err, req.Key(), len(req.Data))
	}
	if c := cap(tr.data); c != len(value) {
		t.Errorf("data buffer of %d bytes for a block of %d: want the value's length, its \\r\\n read apart", c, len(value))
	}
	first := &tr.data[0]
	req, err = tr.Next()
	if err != nil || req.Command != CmdMetaSet || !bytes.Equal(req.Data, value) {
		t.Fatalf("ms big: got %v, %d bytes of data", err, len(req.Data))
	}
	if &tr.data[0] != first {
		t.Errorf("a block of the same size was read into a new buffer")
	}
	req, err = tr.Next()
	if err != nil || string(req.Data) != "hello" {
		t.Fatalf("set small: got %v, data %q", err, req.Data)
	}
	if _, err := tr.Next(); err != ErrBadDataChunk {
		t.Fatalf("set bad: got %v, want %v", err, ErrBadDataChunk)
	}
}

// iotestPackets returns a reader that gives data at most packet bytes at a
// time.
func iotestPackets(data []byte, packet int) io.Reader {
	r := newStallingReader(data, packet)
	close(r.release)
	return r
}

// TestTextDataSteadyStateAllocs: once its buffers have grown, the decoder
// reads a data block without allocating, whether the block is wholly
// buffered (one copy out of the read buffer) or outgrows it.
func TestTextDataSteadyStateAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   string
	}{
		{"set", "set some:key:1234 0 0 100\r\n" + strings.Repeat("v", 100) + "\r\n"},
		{"ms", "ms some:key:1234 100 T0 F5\r\n" + strings.Repeat("v", 100) + "\r\n"},
		{"set larger than the read buffer", "set some:key:1234 0 0 102400\r\n" + strings.Repeat("v", 100<<10) + "\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufio.NewReaderSize(&testutil.ReplayConn{Requests: [][]byte{[]byte(tc.in)}, Pipelined: true, Rounds: -1}, 16<<10)
			tr := NewTextReader(br)
			tr.MaxValue = 1 << 20
			next := func() {
				if req, err := tr.Next(); err != nil || !req.Command.IsStorage() && req.Command != CmdMetaSet {
					t.Fatalf("got %v, command %v", err, req.Command)
				}
			}
			next()
			testutil.NoAllocs(t, "decoding a request with a data block", 200, next)
		})
	}
}

// TestTextReleaseLarge: ReleaseLarge drops each buffer the reader keeps
// once it has grown past the size kept, and only then; the key list of a
// get, a batch of keys, is kept.
func TestTextReleaseLarge(t *testing.T) {
	for _, tc := range []struct {
		name              string
		in                string
		keptBy, droppedBy int // sizes ReleaseLarge keeps and drops the buffer at; -1 if none
		held              func(*TextReader) bool
	}{
		{"data", "set k 0 0 200000\r\n" + strings.Repeat("v", 200000) + "\r\n", 1 << 20, 1000,
			func(tr *TextReader) bool { return tr.data != nil }},
		{"meta line", "mg k" + strings.Repeat(" ", 10000) + "v\r\n", 1 << 20, 1000,
			func(tr *TextReader) bool { return tr.metaLine != nil }},
		{"keys", "get" + strings.Repeat(" k", 500) + "\r\n", 0, -1,
			func(tr *TextReader) bool { return tr.keys != nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTextReader(bufio.NewReaderSize(strings.NewReader(tc.in), 16<<10))
			tr.MaxValue = 1 << 20
			if _, err := tr.Next(); err != nil {
				t.Fatalf("got %v", err)
			}
			if !tc.held(tr) {
				t.Fatalf("no buffer to release")
			}
			if tc.keptBy >= 0 {
				tr.ReleaseLarge(tc.keptBy)
				if !tc.held(tr) {
					t.Fatalf("ReleaseLarge(%d) dropped the buffer", tc.keptBy)
				}
			}
			if tc.droppedBy >= 0 {
				tr.ReleaseLarge(tc.droppedBy)
				if tc.held(tr) {
					t.Fatalf("ReleaseLarge(%d) kept the buffer", tc.droppedBy)
				}
			}
		})
	}
}

package testutil

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockedBuffer(t *testing.T) {
	var b LockedBuffer
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if b.Len() != 400 || b.String() != strings.Repeat("x", 400) {
		t.Errorf("after 400 writes of one byte: %d bytes", b.Len())
	}
}

func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	WaitFor(t, time.Minute, "three increments", func() bool { return n.Load() == 3 })
}

func TestWaitAccepting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := WaitAccepting("tcp", addr, time.Minute, nil); err != nil {
		t.Errorf("listening: %v", err)
	}
	l.Close()
	if err := WaitAccepting("tcp", addr, 20*time.Millisecond, nil); err == nil {
		t.Error("closed listener: no error")
	}
	exited := errors.New("exited")
	if err := WaitAccepting("tcp", addr, time.Minute, func() error { return exited }); !errors.Is(err, exited) {
		t.Errorf("gave up: %v, want it to wrap %v", err, exited)
	}
}

func TestReplayConn(t *testing.T) {
	reqs := [][]byte{[]byte("get a\r\n"), []byte("get b\r\n")}
	read := func(c *ReplayConn) []string {
		var out []string
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err == io.EOF {
				return out
			}
			out = append(out, string(buf[:n]))
		}
	}
	one := &ReplayConn{Requests: reqs, Rounds: 2}
	if got := strings.Join(read(one), "|"); got != "get a\r\n|get b\r\n|get a\r\n|get b\r\n" {
		t.Errorf("one by one: %q", got)
	}
	piped := &ReplayConn{Requests: reqs, Pipelined: true, Rounds: 2}
	if got := read(piped); len(got) != 1 || got[0] != "get a\r\nget b\r\nget a\r\nget b\r\n" {
		t.Errorf("pipelined: %q", got)
	}
	piped.Rewind(1)
	if got := read(piped); len(got) != 1 || got[0] != "get a\r\nget b\r\n" {
		t.Errorf("pipelined after Rewind(1): %q", got)
	}
	forever := bufio.NewReader(&ReplayConn{Requests: reqs, Pipelined: true, Rounds: -1})
	for i := range 1000 {
		if line, err := forever.ReadString('\n'); err != nil || line != string(reqs[i%2]) {
			t.Fatalf("line %d replayed forever: %q, %v", i, line, err)
		}
	}
	var c net.Conn = &ReplayConn{}
	if n, err := c.Write([]byte("END\r\n")); n != 5 || err != nil || c.(*ReplayConn).Written != 5 {
		t.Errorf("Write: %d, %v; Written %d", n, err, c.(*ReplayConn).Written)
	}
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("Read with no requests: %v, want EOF", err)
	}
}

func TestNoAllocs(t *testing.T) {
	buf := make([]byte, 0, 64)
	NoAllocs(t, "append within capacity", 100, func() { buf = append(buf[:0], "abc"...) })
}

package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// Replies that outgrow the socket buffers, to a client that does not read
// for a while, make the direct writes find no room: the rest must go out
// through the poller, whole and in order, and the connection must stay
// usable. Small values flush in writes the socket makes directly, large
// ones in writes it leaves to the scheduler.
func TestSocketRepliesLargerThanTheSocketBuffers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		valueBytes int
		gets       int
	}{{"small values", 8 << 10, 2048}, {"large values", 900 << 10, 20}} {
		t.Run(tc.name, func(t *testing.T) {
			testRepliesOutgrowBuffers(t, tc.valueBytes, tc.gets)
		})
	}
}

func testRepliesOutgrowBuffers(t *testing.T, valueBytes, gets int) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	value := bytes.Repeat([]byte("0123456789abcdef"), valueBytes/16)
	if got := roundTrip(t, c, r, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(value), value), 1); got != "STORED\r\n" {
		t.Fatalf("set: got %q", got)
	}
	// Some 16 MiB of replies: more than loopback's socket buffers hold.
	go func() { _, _ = io.WriteString(c, strings.Repeat("get big\r\n", gets)+"version\r\n") }()
	time.Sleep(200 * time.Millisecond) // let the server block writing
	want := fmt.Sprintf("VALUE big 0 %d\r\n%s\r\nEND\r\n", len(value), value)
	got := make([]byte, len(want))
	for i := range gets {
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatalf("get %d: %v", i, err)
		}
		if string(got) != want {
			t.Fatalf("get %d: reply differs from the value stored (%d bytes)", i, len(got))
		}
	}
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "VERSION ") {
		t.Fatalf("after the large replies: got %q, %v", line, err)
	}
}

// A request that arrives a few bytes at a time makes the direct read find
// nothing: the connection must wait for the rest through the poller.
func TestSocketRequestInPieces(t *testing.T) {
	_, addr := serveForTest(t, Config{})
	c, r := dialForTest(t, addr)
	for _, piece := range []string{"se", "t k 0 0 5\r", "\nhel", "lo\r\nget", " k\r\n"} {
		if _, err := io.WriteString(c, piece); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	want := "STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n"
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// A forced shutdown (its context done) must end a connection stuck writing
// to a client that reads nothing, without closing the descriptor under the
// connection's goroutine: Shutdown returns once the connection has ended.
func TestForcedShutdownEndsAConnectionStuckWriting(t *testing.T) {
	s, addr, served := startServer(t, Config{})
	c, r := dialForTest(t, addr)
	value := strings.Repeat("x", 512<<10)
	if got := roundTrip(t, c, r, fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", len(value), value), 1); got != "STORED\r\n" {
		t.Fatalf("set: got %q", got)
	}
	// Far more reply than the socket buffers hold, none of it read.
	if _, err := io.WriteString(c, strings.Repeat("get big\r\n", 64)); err != nil {
		t.Fatal(err)
	}
	// Replies have begun: the connection is serving the gets, and soon
	// blocked writing.
	if _, err := r.Peek(1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Shutdown(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: got %v, want the context's deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown did not return: the stuck connection was not ended")
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve: got %v, want ErrServerClosed", err)
	}
	if n := s.net.OpenConns(); n != 0 {
		t.Errorf("%d connections still open after Shutdown", n)
	}
}

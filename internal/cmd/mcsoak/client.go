package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"

	"github.com/memcluster/memcluster/internal/workload"
)

// keyLen is the length of the well-behaved clients' keys (workload.Key).
const keyLen = 16

// wellBehaved is one well-behaved client: lazy loading over one connection,
// one request at a time. After an error it starts afresh on a new
// connection.
type wellBehaved struct {
	addr   string
	nc     net.Conn // nil until dialled, and after an error
	r      *bufio.Reader
	w      *bufio.Writer
	zipf   workload.Zipf
	rng    *rand.Rand
	key    []byte
	value  []byte
	missed int64 // the rank the last get missed, to set next; or -1
}

func newWellBehaved(addr string, zipf workload.Zipf, seed uint64) *wellBehaved {
	return &wellBehaved{
		addr:   addr,
		r:      bufio.NewReaderSize(nil, 16<<10),
		w:      bufio.NewWriterSize(nil, 16<<10),
		zipf:   zipf,
		rng:    rand.New(rand.NewPCG(seed, 0x50a6)),
		key:    make([]byte, 0, keyLen),
		value:  bytes.Repeat([]byte{'w'}, workload.MaxValue),
		missed: -1,
	}
}

// close closes the client's connection, if it has one.
func (c *wellBehaved) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// step sends one request and reads its reply, by deadline: a set of the
// key the last get missed, if it did, or else a get of a key drawn from
// the Zipf mix. It returns the time from the request's write to the end of
// its reply, or, on an error, to the error. After an error, the next step
// dials a new connection.
func (c *wellBehaved) step(deadline time.Time) (took time.Duration, err error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, time.Until(deadline))
		if err != nil {
			return 0, fmt.Errorf("%w: %w", errDial, err)
		}
		c.nc = nc
		c.r.Reset(nc)
		c.w.Reset(nc)
		c.missed = -1
	}
	c.nc.SetDeadline(deadline)
	start := time.Now()
	if err := c.request(); err != nil {
		c.close()
		return time.Since(start), err
	}
	return time.Since(start), nil
}

func (c *wellBehaved) request() error {
	if c.missed >= 0 {
		rank := uint64(c.missed)
		c.missed = -1
		size := workload.ValueSize(rank)
		key := workload.Key(c.key[:0], rank, keyLen)
		fmt.Fprintf(c.w, "set %s 0 0 %d\r\n", key, size)
		c.w.Write(c.value[:size])
		c.w.WriteString("\r\n")
		if err := c.w.Flush(); err != nil {
			return err
		}
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
		// Under -M a full server may refuse; that is an answer too.
		if !bytes.Equal(line, []byte("STORED\r\n")) && !bytes.HasPrefix(line, []byte("SERVER_ERROR ")) {
			return fmt.Errorf("set %s: %w %q", key, errOdd, line)
		}
		return nil
	}
	rank := c.zipf.Draw(c.rng)
	key := workload.Key(c.key[:0], rank, keyLen)
	c.w.WriteString("get ")
	c.w.Write(key)
	c.w.WriteString("\r\n")
	if err := c.w.Flush(); err != nil {
		return err
	}
	hit, err := readGetReply(c.r, workload.ValueSize(rank))
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if !hit {
		c.missed = int64(rank)
	}
	return nil
}

var (
	errOdd  = errors.New("unexpected reply") // a reply other than the one expected
	errDial = errors.New("dial")             // a connection not made
)

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// readGetReply reads the reply to a get of one key, whose value, if any,
// must be size bytes long, and reports whether it hit.
func readGetReply(r *bufio.Reader, size int) (bool, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	if bytes.Equal(line, []byte("END\r\n")) {
		return false, nil
	}
	f := bytes.Fields(line)
	if len(f) != 4 || string(f[0]) != "VALUE" {
		return false, fmt.Errorf("%w %q", errOdd, line)
	}
	if n, err := strconv.Atoi(string(f[3])); err != nil || n != size {
		return false, fmt.Errorf("%w %q: want a %d-byte value", errOdd, line, size)
	}
	if _, err := r.Discard(size + 2); err != nil {
		return false, err
	}
	if line, err = r.ReadSlice('\n'); err != nil {
		return false, err
	}
	if !bytes.Equal(line, []byte("END\r\n")) {
		return false, fmt.Errorf("%w %q after the value", errOdd, line)
	}
	return true, nil
}

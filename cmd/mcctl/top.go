package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/memcluster/memcluster/ring"
)

// opsStats are the stats whose sum top counts as a node's operations:
// every key a get, gets or touch asked for, every store, and every delete,
// incr and decr, hit or miss.
var opsStats = []string{
	"cmd_get", "cmd_set", "cmd_touch",
	"delete_hits", "delete_misses", "incr_hits", "incr_misses", "decr_hits", "decr_misses",
}

// sample is one node's stats at one moment.
type sample struct {
	at    time.Time
	stats map[string]string
}

// num returns the stat name of s as a number, 0 if absent or not one.
func (s sample) num(name string) uint64 {
	n, _ := strconv.ParseUint(s.stats[name], 10, 64)
	return n
}

// ops returns the sum of opsStats.
func (s sample) ops() uint64 {
	var n uint64
	for _, name := range opsStats {
		n += s.num(name)
	}
	return n
}

// top prints, every lo.interval, a table of the cluster's members (the
// Selector follows them) with their operations per second and get hit
// ratio over the interval, their memory in use and its limit, and their
// connections, and the totals; on a terminal it clears the screen first.
// It returns after lo.count tables (0: when ctx ends, which is no error).
// A member that does not answer gets a row saying so.
func (c *cluster) top(ctx context.Context, w io.Writer, lo loopOptions) error {
	clear := isTerminal(w)
	_, r := c.sel.Current()
	prev := c.sampleAll(ctx, r)
	for i := 0; lo.count == 0 || i < lo.count; i++ {
		t := time.NewTimer(lo.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		version, r := c.sel.Current()
		cur := c.sampleAll(ctx, r)
		if ctx.Err() != nil {
			return nil
		}
		names := fetchNames(ctx, r, c.timeout, c.dial, c.sasl)
		var buf bytes.Buffer
		if clear {
			buf.WriteString("\x1b[H\x1b[2J")
		}
		writeTop(&buf, time.Now(), version, r, names, prev, cur)
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
		prev = cur
	}
	return nil
}

// sampleAll fetches the stats of every member of r at once; a member that
// does not answer is left out.
func (c *cluster) sampleAll(ctx context.Context, r *ring.Ring) map[string]sample {
	members := r.Members()
	res := make([]*sample, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			s, err := c.nodeStats(ctx, m.Addr())
			if err == nil {
				res[i] = &sample{at: time.Now(), stats: s}
			}
		})
	}
	wg.Wait()
	out := make(map[string]sample, len(members))
	for i, m := range members {
		if res[i] != nil {
			out[m.Entry()] = *res[i]
		}
	}
	return out
}

// writeTop writes one table of top: the members of r, by name, with the
// rates between their samples in prev and cur. Names and addresses align
// left, figures right.
func writeTop(w io.Writer, now time.Time, version uint64, r *ring.Ring, names memberNames, prev, cur map[string]sample) {
	fmt.Fprintf(w, "%s cluster version %d, %d members\n", now.UTC().Format("15:04:05"), version, r.Len())
	nameWidth, addrWidth := len("TOTAL"), len("ADDRESS")
	for _, m := range r.Members() {
		nameWidth = max(nameWidth, len(names.name(m)))
		addrWidth = max(addrWidth, len(m.Addr()))
	}
	var buf bytes.Buffer
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', tabwriter.AlignRight)
	row := func(name, addr string, cells ...string) {
		fmt.Fprintf(tw, "%-*s\t%-*s\t%s\t\n", nameWidth, name, addrWidth, addr, strings.Join(cells, "\t"))
	}
	row("NAME", "ADDRESS", "OPS/S", "HIT%", "MEMORY", "LIMIT", "CONNS")
	var totOps float64
	var totHits, totGets, totBytes, totLimit, totConns uint64
	rated := false
	for _, m := range r.Members() {
		name := names.name(m)
		now, ok := cur[m.Entry()]
		if !ok {
			row(name, m.Addr(), "unreachable", "-", "-", "-", "-")
			continue
		}
		ops, hit := "-", "-"
		if was, ok := prev[m.Entry()]; ok && now.at.After(was.at) && now.ops() >= was.ops() {
			rate := float64(now.ops()-was.ops()) / now.at.Sub(was.at).Seconds()
			ops = strconv.FormatFloat(rate, 'f', 0, 64)
			totOps += rate
			rated = true
			if now.num("get_hits") >= was.num("get_hits") && now.num("get_misses") >= was.num("get_misses") {
				hits, misses := now.num("get_hits")-was.num("get_hits"), now.num("get_misses")-was.num("get_misses")
				totHits += hits
				totGets += hits + misses
				hit = ratio(hits, hits+misses)
			}
		}
		bytes, limit, conns := now.num("bytes"), now.num("limit_maxbytes"), now.num("curr_connections")
		totBytes += bytes
		totLimit += limit
		totConns += conns
		row(name, m.Addr(), ops, hit, humanBytes(bytes), humanBytes(limit), strconv.FormatUint(conns, 10))
	}
	ops := "-"
	if rated {
		ops = strconv.FormatFloat(totOps, 'f', 0, 64)
	}
	row("TOTAL", "", ops, ratio(totHits, totGets), humanBytes(totBytes), humanBytes(totLimit), strconv.FormatUint(totConns, 10))
	tw.Flush()
	// Right alignment pads the first column too: take that back.
	for line := range strings.Lines(buf.String()) {
		io.WriteString(w, strings.TrimPrefix(line, "  "))
	}
}

// ratio returns hits/gets as a percentage with one decimal, "-" for no
// gets.
func ratio(hits, gets uint64) string {
	if gets == 0 {
		return "-"
	}
	return strconv.FormatFloat(100*float64(hits)/float64(gets), 'f', 1, 64)
}

// humanBytes writes n bytes in binary units: 512B, 1.5K, 64.0M, 2.0G.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + "B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return strconv.FormatFloat(float64(n)/float64(div), 'f', 1, 64) + string("KMGTPE"[exp])
}

// isTerminal reports whether w is a terminal, where top redraws the screen
// rather than append tables.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

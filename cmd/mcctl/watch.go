package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/memcluster/memcluster/ring"
)

// watchCheck is how often watch looks at the Selector's view. The Selector
// takes a new view the moment the node it watches has it ("config watch
// cluster"), so this is the delay watch adds.
const watchCheck = 50 * time.Millisecond

// watch prints the cluster's view and then each new one, as the Selector
// takes it, whose members differ from the last printed (the version also
// rises while the members' epochs settle after a change: that alone is not
// printed): a line with the time, the version and the number of members,
// then a line per member that joined ("+") or went ("-") since the last,
// by name and address; the first view lists every member as joined. It
// returns after count views (0: when ctx ends, which is no error).
func (c *cluster) watch(ctx context.Context, w io.Writer, count int) error {
	var prev *ring.Ring
	var prevNames memberNames
	version, r := c.sel.Current()
	for printed := 0; count == 0 || printed < count; printed++ {
		if printed > 0 {
			t := time.NewTicker(watchCheck)
			for {
				if v, next := c.sel.Current(); v > version && !sameMembers(r, next) {
					version, r = v, next
					break
				}
				select {
				case <-ctx.Done():
					t.Stop()
					return nil
				case <-t.C:
				}
			}
			t.Stop()
		}
		names := fetchNames(ctx, r, c.timeout, c.dial, c.sasl)
		if err := printChange(w, time.Now(), version, prev, prevNames, r, names); err != nil {
			return err
		}
		prev, prevNames = r, names
	}
	return nil
}

// printChange prints the view cur at version, seen at now, whose members
// go by names, as the change from prev (nil for none), whose members went
// by prevNames.
func printChange(w io.Writer, now time.Time, version uint64, prev *ring.Ring, prevNames memberNames, cur *ring.Ring, names memberNames) error {
	was := map[string]bool{}
	if prev != nil {
		for _, m := range prev.Members() {
			was[m.Entry()] = true
		}
	}
	is := map[string]bool{}
	fmt.Fprintf(w, "%s cluster version %d, %d members\n", now.UTC().Format(time.RFC3339), version, cur.Len())
	for _, m := range cur.Members() {
		is[m.Entry()] = true
		if !was[m.Entry()] {
			fmt.Fprintf(w, "  + %s %s\n", names.name(m), m.Addr())
		}
	}
	if prev != nil {
		for _, m := range prev.Members() {
			if !is[m.Entry()] {
				_, err := fmt.Fprintf(w, "  - %s %s\n", prevNames.name(m), m.Addr())
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// sameMembers reports whether a and b have the same members.
func sameMembers(a, b *ring.Ring) bool {
	if a.Len() != b.Len() {
		return false
	}
	for i := range a.Len() {
		if a.Member(i).Entry() != b.Member(i).Entry() {
			return false
		}
	}
	return true
}

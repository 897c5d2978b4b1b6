package store

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/memcluster/memcluster/internal/servertest"
)

// TestArithMatchesMemcached runs incr and decr on the same values against
// the real memcached and the store and compares replies and stored values.
func TestArithMatchesMemcached(t *testing.T) {
	c := servertest.StartMemcached(t).Dial(t) // the reference
	r := bufio.NewReader(c)
	roundTrip := func(req string, lines int) string {
		t.Helper()
		if _, err := c.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		var out []string
		for range lines {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, strings.TrimSuffix(line, "\r\n"))
		}
		return strings.Join(out, "|")
	}
	s, _ := newTestStore(t, Config{}, 4)
	// Not " " or other white space alone: memcached's strtoull then runs
	// past the value's "\r\n" into whatever the slab chunk held before.
	values := []string{"0", "1", "9", "10", "99", "100", "12345", " 5", "5 ", "\t5", "5\n",
		"+5", "-0", "-5", "-1", "5x", "x5", "", "0x10", "- 5", "+-5", "5\x00x",
		"18446744073709551615", "18446744073709551616", "-18446744073709551615",
		"-9223372036854775808", "-9223372036854775809", "00000000000000000000001",
		"99999999999999999999", "1.5", "1e3"}
	deltas := []uint64{0, 1, 5, 100, 18446744073709551615}
	for _, v := range values {
		for _, incr := range []bool{true, false} {
			for _, d := range deltas {
				cmd := "decr"
				if incr {
					cmd = "incr"
				}
				roundTrip(fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", len(v), v), 1)
				ref := roundTrip(fmt.Sprintf("%s k %d\r\n", cmd, d), 1)
				refValue := roundTrip("get k\r\n", 3)

				s.Set(ModeSet, []byte("k"), []byte(v), 0, 0, 0)
				n, _, st := s.Arith([]byte("k"), incr, d, 0, false, 0, 0)
				got := strconv.FormatUint(n, 10)
				if st == NonNumeric {
					got = "CLIENT_ERROR cannot increment or decrement non-numeric value"
				} else if st != OK {
					got = st.String()
				}
				gv, _, _ := s.Get([]byte("k"), nil)
				gotValue := fmt.Sprintf("VALUE k 0 %d|%s|END", len(gv), gv)
				if got != ref || gotValue != refValue {
					t.Errorf("%q %s %d: got %q, %q; memcached %q, %q", v, cmd, d, got, gotValue, ref, refValue)
				}
			}
		}
	}
}

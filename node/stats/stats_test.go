package stats

import "testing"

// TestC2 checks "%.2f" as C prints it.
func TestC2(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{{0.8, "0.80"}, {2, "2.00"}, {0.125, "0.12"}, {1e20, "100000000000000000000.00"}} {
		if got := C2(tc.in); got != tc.want {
			t.Errorf("C2(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

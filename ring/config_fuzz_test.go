package ring

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzParseClusterConfig checks that no input panics ParseClusterConfig or
// makes it return more than MaxMembers members or a member that fails
// Validate; that input split at every byte boundary, or delivered a byte at a
// time, parses as it does whole; and that what it accepts comes back the same
// through FormatClusterConfig. Seeds are in testdata/fuzz.
func FuzzParseClusterConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := parseChecked(t, bytes.NewReader(in))
		if got := parseChecked(t, iotest.OneByteReader(bytes.NewReader(in))); got != whole {
			t.Fatalf("whole: %s\none byte at a time: %s", whole, got)
		}
		if len(in) <= 256 {
			for k := 1; k < len(in); k++ {
				r := io.MultiReader(bytes.NewReader(in[:k]), bytes.NewReader(in[k:]))
				if got := parseChecked(t, r); got != whole {
					t.Fatalf("whole: %s\nsplit at %d: %s", whole, k, got)
				}
			}
		}
	})
}

// parseChecked parses one reply from r, checks what it returns, and renders
// it.
func parseChecked(t *testing.T, r io.Reader) string {
	t.Helper()
	v, ms, err := ParseClusterConfig(bufio.NewReaderSize(r, 16))
	var ce *ConfigError
	var se *ServerError
	switch {
	case err == nil:
	case errors.As(err, &ce), errors.As(err, &se):
		return "error " + err.Error()
	case errors.Is(err, ErrNoClusterConfig), err == io.EOF, err == io.ErrUnexpectedEOF:
		return "error " + err.Error()
	default:
		t.Fatalf("error %v (%T) is none of those documented", err, err)
	}
	if len(ms) > MaxMembers {
		t.Fatalf("%d members, over %d", len(ms), MaxMembers)
	}
	for _, m := range ms {
		if err := m.Validate(); err != nil {
			t.Fatalf("member %v: %v", m, err)
		}
		if m.Name != m.Entry() {
			t.Fatalf("member %v named %q, not by its entry %q", m, m.Name, m.Entry())
		}
	}
	v2, ms2, err := ParseClusterConfig(bufio.NewReader(bytes.NewReader(FormatClusterConfig(v, ms))))
	if err != nil {
		t.Fatalf("cannot parse back what FormatClusterConfig wrote of %d %v: %v", v, ms, err)
	}
	byName := func(a, b Member) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(ms, byName)
	slices.SortFunc(ms2, byName)
	if v2 != v || !slices.Equal(ms, ms2) {
		t.Fatalf("round trip: %d %v came back %d %v", v, ms, v2, ms2)
	}
	return fmt.Sprintf("version %d members %v", v, ms)
}

// FuzzParseRingConfig checks that no input panics ParseRingConfig; that
// input split at every byte boundary parses as it does whole; and that a
// mode it accepts comes back the same through AppendRingConfig.
func FuzzParseRingConfig(f *testing.F) {
	for _, s := range []string{"CONFIG ring 0 6\r\nketama\r\nEND\r\n", "CONFIG ring 0 10\r\nmemcluster\r\nEND\r\n", "ERROR\r\n", "CONFIG ring 0 3\r\nfoo\r\nEND\r\n", "CONFIG ring 0 6\r\nketama\nEND\r\n"} {
		f.Add([]byte(s))
	}
	parse := func(t *testing.T, r io.Reader) string {
		m, err := ParseRingConfig(bufio.NewReaderSize(r, 16))
		if err != nil {
			return "error " + err.Error()
		}
		back, err := ParseRingConfig(bufio.NewReader(bytes.NewReader(AppendRingConfig(nil, m))))
		if err != nil || back != m {
			t.Fatalf("round trip: %v came back %v, %v", m, back, err)
		}
		return m.String()
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		whole := parse(t, bytes.NewReader(in))
		for k := 1; k < len(in) && len(in) <= 128; k++ {
			if got := parse(t, io.MultiReader(bytes.NewReader(in[:k]), bytes.NewReader(in[k:]))); got != whole {
				t.Fatalf("whole: %s\nsplit at %d: %s", whole, k, got)
			}
		}
	})
}

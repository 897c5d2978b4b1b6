package ring

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

func TestFormatClusterConfig(t *testing.T) {
	for _, c := range []struct {
		name    string
		version uint64
		members []Member
		want    string
	}{
		{"ElastiCache's documented example, count recomputed", 12, []Member{
			{Host: "myCluster.pc4ldq.0002.use1.cache.amazonaws.com", IP: "10.80.249.27", Port: 11211},
			{Host: "myCluster.pc4ldq.0001.use1.cache.amazonaws.com", IP: "10.82.235.120", Port: 11211},
		}, "CONFIG cluster 0 136\r\n12\n" +
			"myCluster.pc4ldq.0001.use1.cache.amazonaws.com|10.82.235.120|11211 " +
			"myCluster.pc4ldq.0002.use1.cache.amazonaws.com|10.80.249.27|11211\n\r\nEND\r\n"},
		{"no members", 1, nil, frame("1\n\n")},
		{"ordered by name", 18446744073709551615, []Member{
			{Name: "b", Host: "h", Port: 2},
			{Name: "a", IP: "::1", Port: 65535},
		}, frame("18446744073709551615\n|::1|65535 h||2\n")},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := string(FormatClusterConfig(c.version, c.members))
			if got != c.want {
				t.Errorf("got %q, want %q", got, c.want)
			}
			if got := string(AppendClusterConfig([]byte("x"), c.version, c.members)); got != "x"+c.want {
				t.Errorf("AppendClusterConfig: got %q, want %q", got, "x"+c.want)
			}
			// The byte count is exact.
			head, rest, _ := strings.Cut(got, "\r\n")
			payload, _ := strings.CutSuffix(rest, "\r\nEND\r\n")
			if want := "CONFIG cluster 0 " + strconv.Itoa(len(payload)); head != want {
				t.Errorf("header %q, want %q", head, want)
			}
		})
	}
}

// frame puts payload in CONFIG's framing, counting its bytes.
func frame(payload string) string {
	return "CONFIG cluster 0 " + strconv.Itoa(len(payload)) + "\r\n" + payload + "\r\nEND\r\n"
}

func TestParseClusterConfig(t *testing.T) {
	in := "CONFIG cluster 0 136\r\n12\n" +
		"myCluster.pc4ldq.0001.use1.cache.amazonaws.com|10.82.235.120|11211 " +
		"myCluster.pc4ldq.0002.use1.cache.amazonaws.com|10.80.249.27|11211\n\r\nEND\r\n" +
		"next reply"
	r := bufio.NewReader(strings.NewReader(in))
	v, ms, err := ParseClusterConfig(r)
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{
		{Name: "myCluster.pc4ldq.0001.use1.cache.amazonaws.com|10.82.235.120|11211",
			Host: "myCluster.pc4ldq.0001.use1.cache.amazonaws.com", IP: "10.82.235.120", Port: 11211},
		{Name: "myCluster.pc4ldq.0002.use1.cache.amazonaws.com|10.80.249.27|11211",
			Host: "myCluster.pc4ldq.0002.use1.cache.amazonaws.com", IP: "10.80.249.27", Port: 11211},
	}
	if v != 12 || !reflect.DeepEqual(ms, want) {
		t.Errorf("got %d %v, want 12 %v", v, ms, want)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "next reply" {
		t.Errorf("read into the next reply: left %q", rest)
	}

	// Lenient on runs of spaces, an entry with no host or no ip.
	v, ms, err = ParseClusterConfig(bufio.NewReader(strings.NewReader(frame("7\n |::1|1  h||65535 \n"))))
	want = []Member{{Name: "|::1|1", IP: "::1", Port: 1}, {Name: "h||65535", Host: "h", Port: 65535}}
	if err != nil || v != 7 || !reflect.DeepEqual(ms, want) {
		t.Errorf("got %d %v %v, want 7 %v", v, ms, err, want)
	}
}

func TestParseClusterConfigErrors(t *testing.T) {
	long := strings.Repeat("x", 2000)
	for _, c := range []struct {
		in   string
		want any // an error value, or a pointer to an error type
	}{
		{"", io.EOF},
		{"CONFIG cluster 0 3\r\n1\n", io.ErrUnexpectedEOF},
		{"CONFIG cluster 0 3\r\n1\n\n\r\nEN", io.ErrUnexpectedEOF},
		{"CONFIG clus", io.ErrUnexpectedEOF},
		{"ERROR\r\n", ErrNoClusterConfig},
		{"END\r\n", ErrNoClusterConfig},
		{"SERVER_ERROR out of memory\r\n", new(*ServerError)},
		{"CLIENT_ERROR bad command line format\r\n", new(*ServerError)},
		{"CONFIG cluster 0 3\n1\n\n\r\nEND\r\n", new(*ConfigError)},     // header ends in \n
		{"CONFIG cluster 0 3\r\n1\n\n\r\nEND\n", new(*ConfigError)},     // END ends in \n
		{"CONFIG cluster 0 3\r\n1\n\n\r\nEND\r\n", nil},                 // the good one, for contrast
		{"CONFIG cluster 0 4\r\n1\n\n\r\nEND\r\n", new(*ConfigError)},   // count one too many
		{"CONFIG cluster 0 2\r\n1\n\n\r\nEND\r\n", new(*ConfigError)},   // count one too few
		{"CONFIG cluster 0 -3\r\n1\n\n\r\nEND\r\n", new(*ConfigError)},  // negative count
		{"CONFIG cluster 0 3 x\r\n1\n\n\r\nEND\r\n", new(*ConfigError)}, // extra field
		{"CONFIG owner 0 3\r\n1\n\n\r\nEND\r\n", new(*ConfigError)},     // not cluster
		{"CONFIG cluster 0 99999999\r\n", new(*ConfigError)},            // over MaxConfigSize
		{"CONFIG cluster 0 1048577\r\n", new(*ConfigError)},             // over MaxConfigSize
		{frame("1\n"), new(*ConfigError)},                               // no entry line
		{frame("x1\n\n"), new(*ConfigError)},                            // bad version
		{frame("18446744073709551616\n\n"), new(*ConfigError)},          // version overflows
		{frame("1\nh|i|1\n"), new(*ConfigError)},                        // bad ip
		{frame("1\nh||0\n"), new(*ConfigError)},                         // port 0
		{frame("1\nh||01\n"), new(*ConfigError)},                        // port not canonical
		{frame("1\nh||65536\n"), new(*ConfigError)},                     // port over 65535
		{frame("1\nh|1\n"), new(*ConfigError)},                          // two fields
		{frame("1\nh|||1\n"), new(*ConfigError)},                        // four fields
		{frame("1\n||1\n"), new(*ConfigError)},                          // no host, no ip
		{frame("1\nh||1 \th||1\n"), new(*ConfigError)},                  // tab in a host
		{frame("1\nh||1 h||1\n"), new(*ConfigError)},                    // listed twice
		{frame("1\nh||1\nh||2\n"), new(*ConfigError)},                   // three lines
		{long + "\r\n", new(*ConfigError)},
		{long, new(*ConfigError)},
	} {
		_, _, err := ParseClusterConfig(bufio.NewReaderSize(strings.NewReader(c.in), 16))
		switch want := c.want.(type) {
		case nil:
			if err != nil {
				t.Errorf("%.60q: error %v", c.in, err)
			}
		case error:
			if !errors.Is(err, want) {
				t.Errorf("%.60q: error %v, want %v", c.in, err, want)
			}
		default:
			if !errors.As(err, want) {
				t.Errorf("%.60q: error %v, want a %T", c.in, err, reflect.ValueOf(want).Elem().Interface())
			}
		}
	}
}

func TestParseClusterConfigLimits(t *testing.T) {
	many := make([]Member, MaxMembers)
	for i := range many {
		many[i] = Member{Host: "h", Port: i + 1}
	}
	if _, ms, err := ParseClusterConfig(bufio.NewReader(bytes.NewReader(FormatClusterConfig(1, many)))); err != nil || len(ms) != MaxMembers {
		t.Errorf("%d members: got %d, %v", MaxMembers, len(ms), err)
	}
	many = append(many, Member{Host: "h", Port: 65535})
	_, _, err := ParseClusterConfig(bufio.NewReader(bytes.NewReader(FormatClusterConfig(1, many))))
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("%d members: error %v, want a *ConfigError", len(many), err)
	}
}

// TestClusterConfigRoundTrip checks that what FormatClusterConfig writes,
// ParseClusterConfig reads back, delivered whole or a byte at a time.
func TestClusterConfigRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3, 100} {
		ms := families[0].members(n)
		for i := range ms {
			ms[i].Name = ""
		}
		out := FormatClusterConfig(42, ms)
		for name, r := range map[string]io.Reader{
			"whole":        bytes.NewReader(out),
			"byte by byte": iotest.OneByteReader(bytes.NewReader(out)),
			"half":         iotest.HalfReader(bytes.NewReader(out)),
		} {
			v, got, err := ParseClusterConfig(bufio.NewReaderSize(r, 16))
			if err != nil {
				t.Fatalf("%d members, %s: %v", n, name, err)
			}
			want := mustNew(t, ms).Members()
			if v != 42 || !reflect.DeepEqual(mustNew(t, got).Members(), want) {
				t.Errorf("%d members, %s: got %d %v, want 42 %v", n, name, v, got, want)
			}
		}
	}
}

// TestRingConfig checks `config get ring`'s reply: its bytes for each
// mode, read back by ParseRingConfig, and the replies ParseRingConfig
// refuses or takes for no announcement.
func TestRingConfig(t *testing.T) {
	for _, tc := range []struct {
		mode Mode
		want string
	}{
		{0, "CONFIG ring 0 10\r\nmemcluster\r\nEND\r\n"},
		{ModeMemcluster, "CONFIG ring 0 10\r\nmemcluster\r\nEND\r\n"},
		{ModeKetama, "CONFIG ring 0 6\r\nketama\r\nEND\r\n"},
	} {
		got := AppendRingConfig([]byte("x"), tc.mode)
		if string(got) != "x"+tc.want {
			t.Errorf("AppendRingConfig(%v) = %q, want %q", tc.mode, got[1:], tc.want)
		}
		r := bufio.NewReader(strings.NewReader(tc.want + "next"))
		m, err := ParseRingConfig(r)
		want := tc.mode
		if want == 0 {
			want = ModeMemcluster
		}
		if err != nil || m != want {
			t.Errorf("ParseRingConfig(%q) = %v, %v; want %v", tc.want, m, err, want)
		}
		if rest, _ := io.ReadAll(r); string(rest) != "next" {
			t.Errorf("ParseRingConfig(%q) left %q, want \"next\"", tc.want, rest)
		}
	}
	for _, tc := range []struct {
		reply string
		check func(error) bool
	}{
		{"ERROR\r\n", func(err error) bool { return errors.Is(err, ErrNoRingConfig) }},
		{"END\r\n", func(err error) bool { return errors.Is(err, ErrNoRingConfig) }},
		{"CLIENT_ERROR bad command line format\r\n", func(err error) bool { return errors.As(err, new(*ServerError)) }},
		{"CONFIG ring 0 4\r\njump\r\nEND\r\n", func(err error) bool { return err != nil && strings.Contains(err.Error(), `unknown ring mode "jump"`) }},
		{"CONFIG ring 0 5\r\nketama\r\nEND\r\n", isConfigError},
		{"CONFIG cluster 0 6\r\nketama\r\nEND\r\n", isConfigError},
		{"CONFIG ring 0 99\r\nketama\r\nEND\r\n", isConfigError},
		{"CONFIG ring 0 6\r\nketama\r\nEND", func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"CONFIG ring 0 6\r\nketama\r\nEXTRA\r\n", isConfigError},
		{"CONFIG ring 0 6\r\nketa", func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"", func(err error) bool { return err == io.EOF }},
	} {
		m, err := ParseRingConfig(bufio.NewReader(strings.NewReader(tc.reply)))
		if !tc.check(err) {
			t.Errorf("ParseRingConfig(%q) = %v, %v", tc.reply, m, err)
		}
	}
}

func isConfigError(err error) bool { return errors.As(err, new(*ConfigError)) }

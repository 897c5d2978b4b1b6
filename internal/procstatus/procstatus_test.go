package procstatus

import (
	"os"
	"testing"
)

func TestParse(t *testing.T) {
	status := "Name:\tmemcached\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1536 kB\nThreads:\t10\n"
	m, err := Parse([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	if want := (Memory{RSS: 1536 << 10, Peak: 2048 << 10}); m != want {
		t.Errorf("Parse = %+v, want %+v", m, want)
	}
	for _, bad := range []string{"Name:\tx\n", "VmRSS:\t1 kB\n", "VmRSS:\tx kB\nVmHWM:\t1 kB\n"} {
		if m, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, m)
		}
	}
}

func TestReadSelf(t *testing.T) {
	m, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS == 0 || m.Peak < m.RSS {
		t.Errorf("Read(self) = %+v: want 0 < RSS <= Peak", m)
	}
}

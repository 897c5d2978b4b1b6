package ring

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// ketamaOracle asks Debian's libmemcached (libmemcached.so.11, which
// libmemcached-tools installs) through Python's ctypes for the server index
// memcached_generate_hash gives each key, with behavior set to 1: one line
// per key of stdin, given in hex.
const ketamaOracle = `
import ctypes, sys
lib = ctypes.CDLL("libmemcached.so.11")
lib.memcached_create.restype = ctypes.c_void_p
lib.memcached_create.argtypes = [ctypes.c_void_p]
lib.memcached_server_add.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16]
lib.memcached_behavior_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint64]
lib.memcached_generate_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
lib.memcached_generate_hash.restype = ctypes.c_uint32
m = lib.memcached_create(None)
behavior = int(sys.argv[1])
for s in sys.argv[2:]:
    host, port = s.rsplit(":", 1)
    assert lib.memcached_server_add(m, host.encode(), int(port)) == 0
assert lib.memcached_behavior_set(m, behavior, 1) == 0
out = []
for line in sys.stdin:
    k = bytes.fromhex(line.strip())
    out.append(str(lib.memcached_generate_hash(m, k, len(k))))
print("\n".join(out))
`

// TestKetamaAgreesWithLibmemcached places 10,000 keys (some with bytes
// above 127) on five servers, some on memcached's default port, with
// KetamaRing and with libmemcached itself, in both modes: every key must
// land on the same server.
func TestKetamaAgreesWithLibmemcached(t *testing.T) {
	servers := []Member{
		{Host: "cache-a.example.com", IP: "10.0.0.1", Port: 11211},
		{Host: "cache-b.example.com", IP: "10.0.0.2", Port: 11211},
		{Host: "10.0.0.3", IP: "10.0.0.3", Port: 11212},
		{Host: "127.0.0.1", IP: "127.0.0.1", Port: 21211},
		{Host: "cache-e.example.com", IP: "10.0.0.5", Port: 11211},
	}
	var keys [][]byte
	var in bytes.Buffer
	for i := range 10000 {
		k := []byte("key:" + strconv.Itoa(i))
		if i%10 == 0 {
			k = fmt.Appendf(nil, "\xe9t\xe9-%d-\xff", i)
		}
		keys = append(keys, k)
		fmt.Fprintf(&in, "%x\n", k)
	}
	args := []string{"-c", ketamaOracle, ""}
	for _, s := range servers {
		args = append(args, fmt.Sprintf("%s:%d", s.Host, s.Port))
	}
	for _, tc := range []struct {
		name     string
		mode     KetamaMode
		behavior int
	}{
		{"ketama", Ketama, 3},                   // MEMCACHED_BEHAVIOR_KETAMA
		{"ketama weighted", KetamaWeighted, 16}, // MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
	} {
		t.Run(tc.name, func(t *testing.T) {
			args[2] = strconv.Itoa(tc.behavior)
			cmd := exec.Command("/usr/bin/python3", args...)
			cmd.Stdin = bytes.NewReader(in.Bytes())
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("libmemcached through python3's ctypes: %v\n%s\n(install python3 and libmemcached11, which libmemcached-tools brings)", err, stderr.String())
			}
			k := NewKetama(servers, tc.mode)
			sc := bufio.NewScanner(bytes.NewReader(out))
			counts := make([]int, len(servers))
			i := 0
			for ; sc.Scan(); i++ {
				want, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
				if err != nil {
					t.Fatal(err)
				}
				if got := k.OwnerIndex(keys[i]); got != want {
					t.Fatalf("key %q: KetamaRing gives server %d, libmemcached %d", keys[i], got, want)
				}
				counts[want]++
			}
			if i != len(keys) {
				t.Fatalf("libmemcached placed %d keys, want %d", i, len(keys))
			}
			t.Logf("%d keys agree; per server %v", i, counts)
		})
	}
}

func BenchmarkKetamaOwner(b *testing.B) {
	var ms []Member
	for i := range 30 {
		ms = append(ms, Member{Host: fmt.Sprintf("10.0.0.%d", i+1), Port: 11211})
	}
	for _, mode := range []KetamaMode{Ketama, KetamaWeighted} {
		k := NewKetama(ms, mode)
		key := []byte("user:12345:profile")
		b.Run(strconv.Itoa(int(mode)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				k.OwnerIndex(key)
			}
		})
	}
}

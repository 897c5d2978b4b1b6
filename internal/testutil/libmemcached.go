package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Behaviors of libmemcached's memcached_behavior_set, for
// LibmemcachedOwners.
const (
	LibmemcachedKetama         = 3  // MEMCACHED_BEHAVIOR_KETAMA
	LibmemcachedKetamaWeighted = 16 // MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED
)

// libmemcachedOracle asks Debian's libmemcached (libmemcached.so.11, which
// libmemcached-tools installs) through Python's ctypes for the server index
// memcached_generate_hash gives each key, with a behavior set to 1: one
// line per key of stdin, given in hex.
const libmemcachedOracle = `
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

// LibmemcachedOwners asks libmemcached itself, through python3's ctypes,
// where a client with servers (host:port each, in that order, as given to
// memcached_server_add) and behavior on places each of keys: the index in
// servers of each key's server. It needs /usr/bin/python3 and
// libmemcached.so.11 (Debian's libmemcached-tools brings it).
func LibmemcachedOwners(behavior int, servers []string, keys [][]byte) ([]int, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	var in bytes.Buffer
	for _, k := range keys {
		fmt.Fprintf(&in, "%x\n", k)
	}
	args := append([]string{"-c", libmemcachedOracle, strconv.Itoa(behavior)}, servers...)
	cmd := exec.Command("/usr/bin/python3", args...)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("libmemcached through python3's ctypes: %w\n%s\n(install python3 and libmemcached11, which libmemcached-tools brings)", err, stderr.String())
	}
	owners := make([]int, 0, len(keys))
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		i, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil || i < 0 || i >= len(servers) {
			return nil, fmt.Errorf("libmemcached: bad server index %q", sc.Text())
		}
		owners = append(owners, i)
	}
	if len(owners) != len(keys) {
		return nil, fmt.Errorf("libmemcached placed %d keys, want %d", len(owners), len(keys))
	}
	return owners, nil
}

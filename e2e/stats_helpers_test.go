package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/memcluster/memcluster/internal/servertest"
)

// statsGroup reads "stats <group>" on c into a map.
func statsGroup(t *testing.T, c *servertest.Conn, group string) map[string]string {
	t.Helper()
	c.SendString("stats " + group + "\r\n")
	b, err := c.ReadUntil("END\r\n", 5*time.Second)
	if err != nil {
		t.Fatalf("stats %s: %q: %v", group, b, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\r\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "STAT" {
			out[f[1]] = f[2]
		}
	}
	return out
}

// statInt reads one statistic of "stats" on c as a number.
func statInt(t *testing.T, c *servertest.Conn, name string) int64 {
	t.Helper()
	v, ok := statsGroup(t, c, "")[name]
	if !ok {
		t.Fatalf("stats has no %s", name)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		t.Fatalf("stats: %s %s: %v", name, v, err)
	}
	return n
}

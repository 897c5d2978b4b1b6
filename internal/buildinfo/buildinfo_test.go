package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionLine checks the version line for the build information a binary can
// carry: memcached's "memcluster <version>", then the commit, whether the
// tree was modified and the commit's time, from Go's build info.
func TestVersionLine(t *testing.T) {
	vcs := func(kv ...string) *debug.BuildInfo {
		bi := &debug.BuildInfo{}
		for i := 0; i < len(kv); i += 2 {
			bi.Settings = append(bi.Settings, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return bi
	}
	tests := []struct {
		bi   *debug.BuildInfo
		want string
	}{
		{nil, "memcluster " + Version},
		{vcs(), "memcluster " + Version},
		{vcs("vcs", "git", "vcs.revision", "abc1234def567890abc1234def567890abc12345", "vcs.time", "2026-12-07T20:00:00Z", "vcs.modified", "false"),
			"memcluster " + Version + " (commit abc1234def56, built 2026-12-07T20:00:00Z)"},
		{vcs("vcs.revision", "abc1234def567890", "vcs.time", "2026-12-07T20:00:00Z", "vcs.modified", "true"),
			"memcluster " + Version + " (commit abc1234def56, modified, built 2026-12-07T20:00:00Z)"},
		{vcs("vcs.revision", "abc12"), "memcluster " + Version + " (commit abc12)"},
	}
	for _, tt := range tests {
		if got := Line("memcluster", tt.bi); got != tt.want {
			t.Errorf("Line(memcluster, %v) = %q, want %q", tt.bi, got, tt.want)
		}
		// Scripts written for memcached -V split the line on spaces
		// and take the second field.
		if f := strings.Fields(Line("memcluster", tt.bi)); f[0] != "memcluster" || f[1] != Version {
			t.Errorf("fields %q: want memcluster, then %s", f, Version)
		}
	}
}

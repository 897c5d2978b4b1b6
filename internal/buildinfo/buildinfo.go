// Package buildinfo is memcluster's release and what the Go build info of
// a binary says of the source it was built from, for the commands' version
// lines (memcluster -V, mcctl --version).
package buildinfo

import (
	"runtime/debug"
	"strings"
)

// Version is memcluster's release. (The node reports memcached's protocol
// version to clients, not this.)
const Version = "0.1.0-dev"

// Read returns the running binary's build information, nil if it has none.
func Read() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

// Line is a command's version line for a binary with build information bi
// (which may be nil): memcached's "<name> <version>", which scripts split
// on the space, then Summary in parentheses when it says anything:
//
//	memcluster 0.1.0-dev (commit 0123456789ab, built 2026-12-07T20:00:00Z)
func Line(name string, bi *debug.BuildInfo) string {
	line := name + " " + Version
	if s := Summary(bi); s != "" {
		line += " (" + s + ")"
	}
	return line
}

// Summary says what bi records of the source the binary was built from:
// "commit 0123456789ab, modified, built 2026-12-07T20:00:00Z" (modified
// when the working tree had changes; the time is the commit's), or what of
// it there is; "" when bi has no version control information (go run, go
// test, or a build with -buildvcs=false).
func Summary(bi *debug.BuildInfo) string {
	if bi == nil {
		return ""
	}
	var revision, when string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var parts []string
	if revision != "" {
		parts = append(parts, "commit "+revision[:min(len(revision), 12)])
	}
	if modified {
		parts = append(parts, "modified")
	}
	if when != "" {
		parts = append(parts, "built "+when)
	}
	return strings.Join(parts, ", ")
}

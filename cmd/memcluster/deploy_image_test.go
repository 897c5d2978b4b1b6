package main

import (
	"encoding/json"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The container image's build files, relative to this package.
const (
	dockerfile        = "../../Dockerfile"
	dockerfileScratch = "../../Dockerfile.scratch"
)

// imageStage is the last stage of a Dockerfile: the image it makes.
type imageStage struct {
	from       string
	user       string
	expose     []string // as written: "11211/tcp"
	entrypoint []string
	cmd        []string
	run        []string // RUN instructions of the earlier stages
}

// readDockerfile reads the instructions of path's last stage (and the RUN
// lines of all stages). ENTRYPOINT and CMD must be in JSON (exec) form: a
// shell form would need a shell, which neither image has.
func readDockerfile(t *testing.T, path string) imageStage {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st imageStage
	var line string
	for _, raw := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(raw)
		if line == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			line += strings.TrimSuffix(trimmed, `\`) + " "
			continue
		}
		line += trimmed
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		line = ""
		execForm := func() []string {
			var v []string
			if err := json.Unmarshal([]byte(rest), &v); err != nil {
				t.Fatalf("%s: %s %s: want the JSON (exec) form: %v", path, instr, rest, err)
			}
			return v
		}
		switch strings.ToUpper(instr) {
		case "FROM":
			runs := st.run
			st = imageStage{from: rest, run: runs}
		case "USER":
			st.user = rest
		case "EXPOSE":
			st.expose = append(st.expose, strings.Fields(rest)...)
		case "ENTRYPOINT":
			st.entrypoint = execForm()
		case "CMD":
			st.cmd = execForm()
		case "RUN":
			st.run = append(st.run, rest)
		}
	}
	return st
}

// imageUser returns the numeric uid and gid of the image path builds,
// failing the test unless its USER is uid:gid, both numbers, not root.
func imageUser(t *testing.T, path string) (uid, gid int64) {
	t.Helper()
	st := readDockerfile(t, path)
	u, g, ok := strings.Cut(st.user, ":")
	uid, err1 := strconv.ParseInt(u, 10, 64)
	gid, err2 := strconv.ParseInt(g, 10, 64)
	if !ok || err1 != nil || err2 != nil || uid == 0 || gid == 0 {
		t.Fatalf("%s: USER %q, want a numeric uid:gid other than root's", path, st.user)
	}
	return uid, gid
}

// TestDockerfiles checks the two image builds against each other and
// against the daemon: the same user, ports, entry point and default
// arguments; a non-root numeric user, which works without /etc/passwd;
// default arguments the daemon takes, whose ports are the exposed ones;
// and a static binary in the multi-stage build.
func TestDockerfiles(t *testing.T) {
	multi := readDockerfile(t, dockerfile)
	scratch := readDockerfile(t, dockerfileScratch)
	if scratch.from != "scratch" {
		t.Errorf("%s: FROM %s, want scratch: it builds with no registry", dockerfileScratch, scratch.from)
	}
	if len(multi.run) == 0 || !slices.ContainsFunc(multi.run, func(r string) bool {
		return strings.Contains(r, "CGO_ENABLED=0") && strings.Contains(r, "go build") && strings.Contains(r, "./cmd/memcluster")
	}) {
		t.Errorf("%s: no static build of ./cmd/memcluster (CGO_ENABLED=0 go build) in %q", dockerfile, multi.run)
	}
	imageUser(t, dockerfile)
	imageUser(t, dockerfileScratch)
	if multi.user != scratch.user || !slices.Equal(multi.expose, scratch.expose) ||
		!slices.Equal(multi.entrypoint, scratch.entrypoint) || !slices.Equal(multi.cmd, scratch.cmd) {
		t.Errorf("the images differ:\n%s: %+v\n%s: %+v", dockerfile, multi, dockerfileScratch, scratch)
	}
	if len(multi.entrypoint) != 1 || !strings.HasSuffix(multi.entrypoint[0], "/memcluster") {
		t.Errorf("ENTRYPOINT %q, want the daemon alone (its arguments in CMD, which a container's arguments replace)", multi.entrypoint)
	}

	opts := parseDaemonArgs(t, "CMD", multi.cmd)
	gossipPort, _ := portOf(t, "gossip address", opts.cfg.Cluster.GossipAddr)
	metricsPort, wildcard := portOf(t, "--metrics-addr", opts.cfg.MetricsAddr)
	if !wildcard {
		t.Errorf("CMD's --metrics-addr %q is not reachable from outside the container", opts.cfg.MetricsAddr)
	}
	want := []string{
		strconv.Itoa(opts.cfg.Port) + "/tcp",
		strconv.Itoa(gossipPort) + "/tcp", strconv.Itoa(gossipPort) + "/udp",
		strconv.Itoa(metricsPort) + "/tcp",
	}
	if !slices.Equal(multi.expose, want) {
		t.Errorf("EXPOSE %q, want %q: the ports of CMD's daemon", multi.expose, want)
	}
}

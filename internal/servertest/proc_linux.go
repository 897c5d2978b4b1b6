package servertest

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr makes the kernel kill a server if the test binary dies without
// running its cleanups. (exec.Cmd.SysProcAttr is a *syscall.SysProcAttr: the
// one use of the frozen syscall package here.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: unix.SIGKILL}
}

// termSignal asks a server to shut down.
var termSignal os.Signal = unix.SIGTERM

// ownsTCPListener reports whether process pid holds a listening TCP socket
// on port. known is false when /proc does not say.
func ownsTCPListener(pid, port int) (owns, known bool) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		listeningInodes(f, port, inodes)
	}
	if len(inodes) == 0 {
		return false, false
	}
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		// The process is gone (or /proc hides it): it cannot be
		// shown to own the listener.
		_, statErr := os.Stat("/proc/" + strconv.Itoa(pid))
		return false, os.IsNotExist(statErr)
	}
	for _, e := range entries {
		link, err := os.Readlink(fdDir + "/" + e.Name())
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			return true, true
		}
	}
	return false, true
}

// listeningInodes adds to inodes the socket inodes listening on port in a
// /proc/net/tcp-format file.
func listeningInodes(file string, port int, inodes map[string]bool) {
	f, err := os.Open(file)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != "0A" { // 0A: TCP_LISTEN
			continue
		}
		i := strings.LastIndexByte(fields[1], ':')
		if i < 0 {
			continue
		}
		p, err := strconv.ParseUint(fields[1][i+1:], 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		inodes[fields[9]] = true
	}
}

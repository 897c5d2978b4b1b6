package servertest

import (
	"bufio"
	byteorder "encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
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

// processSockets returns the IP sockets process pid holds: the entries of
// its /proc/<pid>/net/{tcp,tcp6,udp,udp6} whose inode one of its file
// descriptors names.
func processSockets(pid int) ([]Socket, error) {
	proc := "/proc/" + strconv.Itoa(pid)
	entries, err := os.ReadDir(proc + "/fd")
	if err != nil {
		return nil, fmt.Errorf("servertest: the process's files: %w", err)
	}
	inodes := map[string]bool{}
	for _, e := range entries {
		link, err := os.Readlink(proc + "/fd/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		if inode, ok := strings.CutPrefix(link, "socket:["); ok {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var socks []Socket
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		b, err := os.ReadFile(proc + "/net/" + proto)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && strings.HasSuffix(proto, "6") {
				continue // no IPv6 in this kernel
			}
			return nil, fmt.Errorf("servertest: %w", err)
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		for _, line := range lines[1:] { // the first is the header
			fields := strings.Fields(line)
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			local, err := parseProcAddr(fields[1])
			if err != nil {
				return nil, fmt.Errorf("servertest: %s line %q: %w", proto, line, err)
			}
			socks = append(socks, Socket{
				Proto:     proto,
				Local:     local,
				Listening: strings.HasPrefix(proto, "tcp") && fields[3] == "0A", // TCP_LISTEN
			})
		}
	}
	return socks, nil
}

// parseProcAddr parses an address as /proc/net/tcp writes it: the IP in
// hex, one 32-bit word at a time in the machine's byte order, a colon and
// the port in hex ("0100007F:2B0B" is 127.0.0.1:11019 on a little-endian
// machine).
func parseProcAddr(s string) (netip.AddrPort, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok || (len(ipHex) != 8 && len(ipHex) != 32) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw := make([]byte, len(ipHex)/2)
	for i := 0; i < len(raw); i += 4 {
		w, err := strconv.ParseUint(ipHex[2*i:2*i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("bad address %q: %w", s, err)
		}
		byteorder.NativeEndian.PutUint32(raw[i:], uint32(w))
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q: %w", s, err)
	}
	ip, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(ip.Unmap(), uint16(port)), nil
}

// Package procstatus reads a process's memory figures from Linux's
// /proc/PID/status, for the resource benchmark and the soak
// (internal/cmd/mcconns, internal/cmd/mcsoak).
package procstatus

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
)

// Memory is a process's resident memory, in bytes.
type Memory struct {
	RSS  uint64 // VmRSS: resident now
	Peak uint64 // VmHWM: the most ever resident
}

// Read returns the memory of process pid.
func Read(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("procstatus: %w", err)
	}
	return Parse(b)
}

// Parse reads the VmRSS and VmHWM lines ("VmRSS:\t  1234 kB") of a
// /proc/PID/status file.
func Parse(status []byte) (Memory, error) {
	var m Memory
	var haveRSS, havePeak bool
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) != 3 || string(f[2]) != "kB" {
			continue
		}
		var dst *uint64
		switch string(f[0]) {
		case "VmRSS:":
			dst, haveRSS = &m.RSS, true
		case "VmHWM:":
			dst, havePeak = &m.Peak, true
		default:
			continue
		}
		kib, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("procstatus: %s %q: %w", f[0], f[1], err)
		}
		*dst = kib << 10
	}
	if !haveRSS || !havePeak {
		return Memory{}, errors.New("procstatus: no VmRSS or VmHWM line")
	}
	return m, nil
}

//go:build !linux

package servertest

import (
	"errors"
	"os"
	"syscall"
)

// The frozen syscall package stays in this file: exec.Cmd.SysProcAttr is a
// *syscall.SysProcAttr, and golang.org/x/sys/unix does not build on every
// platform this file is for (Windows), where only syscall names SIGTERM.

func sysProcAttr() *syscall.SysProcAttr { return nil }

// termSignal asks a server to shut down.
var termSignal os.Signal = syscall.SIGTERM

func ownsTCPListener(pid, port int) (owns, known bool) { return false, false }

func processSockets(pid int) ([]Socket, error) {
	return nil, errors.New("servertest: a process's sockets are read from /proc, which only Linux has")
}

//go:build !unix

package main

import (
	"os"
	"syscall"
)

// stopSignals end a command early: ^C, and the polite kill. Off Unix
// (Windows) golang.org/x/sys/unix does not build, and syscall.SIGTERM is
// the value os/signal delivers when the console is closed or the user logs
// off, so the frozen syscall package stays here.
var stopSignals = []os.Signal{os.Interrupt, syscall.SIGTERM}

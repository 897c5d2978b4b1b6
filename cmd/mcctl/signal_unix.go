//go:build unix

package main

import (
	"os"

	"golang.org/x/sys/unix"
)

// stopSignals end a command early: ^C, and the polite kill.
var stopSignals = []os.Signal{os.Interrupt, unix.SIGTERM}

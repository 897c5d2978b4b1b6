//go:build !linux

package servertest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }

func ownsTCPListener(pid, port int) (owns, known bool) { return false, false }

package servertest

import (
	"os"
	"testing"
)

// Signal sends sig to the server's process, for a test of how it handles
// signals (SIGHUP, SIGUSR1 …). It fails the test if the process cannot be
// signalled, for example because it has exited.
func (s *Server) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("servertest: sending %v to %s: %v", sig, s.Name, err)
	}
}

//go:build !linux

package node

// eventLoop is, on this system, never made: every connection waits for its
// requests in its own goroutine.
type eventLoop struct{}

func (s *Server) eventLoopFor(*conn) *eventLoop { return nil }
func (s *Server) stopEventLoops()               {}
func (l *eventLoop) hold(*conn) bool            { return false }
func (c *conn) tryFlush() bool                  { return false }

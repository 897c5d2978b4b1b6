//go:build !linux

package netserve

// eventLoop is, on this system, never made: every connection waits for its
// requests in its own goroutine.
type eventLoop struct{}

func (s *Server) eventLoopFor(*Conn) *eventLoop { return nil }
func (s *Server) stopEventLoops()               {}
func (l *eventLoop) park(*Conn) bool            { return false }
func (c *Conn) TryFlush() bool                  { return false }
func (c *Conn) appendValueNow(v []byte)         { c.Out = append(c.Out, v...) }

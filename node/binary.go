package node

// serveBinary serves the binary protocol. Until its dispatcher lands, a
// binary connection is closed at once, which clients see as a refused
// protocol rather than wrong answers.
func (c *conn) serveBinary() {
	c.srv.log.Warn("binary protocol connection refused: not served yet", "remote", c.nc.RemoteAddr().String())
}

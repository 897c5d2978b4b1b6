//go:build !unix

package peer

// open reports true: without a way to look at a socket without reading
// from it, a connection closed by its peer is found by the request that
// fails on it.
func open(*conn) bool { return true }

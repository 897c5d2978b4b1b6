package ring

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"

	"github.com/memcluster/memcluster/protocol"
)

// ErrLogin is returned when a node refuses a Selector's SASL login.
var ErrLogin = errors.New("ring: SASL login refused")

// maxConfigReply bounds the value of a ConfigGet reply: a cluster config
// of MaxMembers long entries.
const maxConfigReply = 1 << 20

// loginLocked logs in on s.conn with SASL PLAIN as Config.SASL, within
// s.conn's deadline, which is the caller's.
func (s *Selector) loginLocked() error {
	l := s.cfg.SASL
	cred := make([]byte, 0, 2+len(l.User)+len(l.Password))
	cred = append(append(append(append(cred, 0), l.User...), 0), l.Password...)
	if _, err := s.conn.Write(protocol.AppendBinaryRequest(nil, protocol.OpSASLAuth, 0, 0, nil, []byte("PLAIN"), cred)); err != nil {
		return err
	}
	status, _, err := readBinaryReply(s.br, 1<<10)
	if err != nil {
		return err
	}
	if status != protocol.StatusOK {
		return fmt.Errorf("%w: %s", ErrLogin, status)
	}
	return nil
}

// binaryConfigLocked asks for the config with a ConfigGet on s.conn, which
// has logged in, and for the ring mode with a second, pipelined, unless
// Config.Ring is set, and parses the replies. A node that answers the
// second with an error (KeyNotFound from a memcluster older than ring
// modes) announces no mode: ModeMemcluster.
func (s *Selector) binaryConfigLocked() (uint64, []Member, Mode, error) {
	req := protocol.AppendBinaryRequest(nil, protocol.OpConfigGet, 0, 0, nil, []byte("cluster"), nil)
	if s.cfg.Ring == 0 {
		req = protocol.AppendBinaryRequest(req, protocol.OpConfigGet, 0, 0, nil, []byte("ring"), nil)
	}
	if _, err := s.conn.Write(req); err != nil {
		return 0, nil, 0, err
	}
	status, value, err := readBinaryReply(s.br, maxConfigReply)
	if err != nil {
		return 0, nil, 0, err
	}
	if status != protocol.StatusOK {
		return 0, nil, 0, fmt.Errorf("ring: config get cluster over the binary protocol: %s", status)
	}
	version, members, err := ParseClusterConfig(bufio.NewReader(bytes.NewReader(value)))
	if err != nil || s.cfg.Ring != 0 {
		return version, members, s.cfg.Ring, err
	}
	status, value, err = readBinaryReply(s.br, 1<<10)
	if err != nil {
		return 0, nil, 0, err
	}
	if status != protocol.StatusOK {
		return version, members, ModeMemcluster, nil
	}
	mode, err := s.readModeLocked(bufio.NewReader(bytes.NewReader(value)))
	return version, members, mode, err
}

// readBinaryReply reads one binary response and returns its status and
// value, refusing a body longer than maxBody.
func readBinaryReply(r *bufio.Reader, maxBody int) (protocol.BinaryStatus, []byte, error) {
	h, _, _, value, err := protocol.ReadBinaryResponse(r, maxBody)
	return h.Status, value, err
}

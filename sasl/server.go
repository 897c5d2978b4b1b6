package sasl

// mechanism is one mechanism's state machine. step is called only while
// the exchange runs: never after it returned done or an error. user is the
// authentication identity, set when done is true.
type mechanism interface {
	name() string
	step(response []byte) (challenge []byte, done bool, user string, err error)
}

// server is the Server every mechanism shares: it bounds messages and keeps
// an exchange that ended ended.
type server struct {
	impl mechanism
	done bool   // the exchange succeeded
	err  error  // the exchange failed; returned by every later Step
	user string // set on success
}

var _ Server = (*server)(nil)

func (s *server) Mechanism() string { return s.impl.name() }

func (s *server) Username() string {
	if !s.done || s.err != nil {
		return ""
	}
	return s.user
}

func (s *server) Step(response []byte) ([]byte, bool, error) {
	if s.err != nil {
		return nil, false, s.err
	}
	if s.done {
		return s.fail(malformed(s.impl.name(), "message after the exchange completed"))
	}
	if len(response) > MaxMessageLen {
		return s.fail(malformed(s.impl.name(), "message too long"))
	}
	challenge, done, user, err := s.impl.step(response)
	if err != nil {
		return s.fail(err)
	}
	if done {
		s.done, s.user = true, user
	}
	return challenge, done, nil
}

func (s *server) fail(err error) ([]byte, bool, error) {
	s.err = err
	return nil, false, err
}

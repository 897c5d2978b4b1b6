package sasl

import (
	"errors"
	"strconv"
)

// Errors a Server's Step returns, alone or wrapped (test with errors.Is).
var (
	// ErrAuthFailed: the password is wrong, the user is unknown, or the
	// user's entry cannot serve the mechanism (a verifier and CRAM-MD5).
	// Step returns this very error in each of these cases, so that it
	// tells a client nothing about which users exist. A client that asks
	// to act as another user (an authorization identity) gets a
	// *MessageError that wraps it, decided from the message alone.
	ErrAuthFailed = errors.New("sasl: authentication failed")

	// ErrUnknownMechanism: NewServer was asked for a mechanism it does not
	// know.
	ErrUnknownMechanism = errors.New("sasl: unknown mechanism")

	// ErrMalformed: a client message broke its mechanism's grammar or this
	// package's limits. The error is a *MessageError.
	ErrMalformed = errors.New("sasl: malformed message")

	// ErrUnsupported: a well-formed client message asked for what the
	// server does not do (SCRAM channel binding or a mandatory extension).
	// The error is a *MessageError.
	ErrUnsupported = errors.New("sasl: unsupported")

	// ErrBusy: the exchange needed a key derivation and its Limiter
	// could not give it a turn in time (see Limiter). The client is
	// answered as for a wrong password and may try again later.
	ErrBusy = errors.New("sasl: too many key derivations waiting")
)

// MessageError is a client message that a mechanism refused. Reason says
// what was wrong and never quotes the message.
type MessageError struct {
	Mechanism string // as in Mechanisms
	Reason    string
	Err       error // ErrMalformed, ErrUnsupported or ErrAuthFailed
}

// Error returns "sasl: MECHANISM: reason".
func (e *MessageError) Error() string { return "sasl: " + e.Mechanism + ": " + e.Reason }

// Unwrap returns e.Err.
func (e *MessageError) Unwrap() error { return e.Err }

func malformed(mech, reason string) error {
	return &MessageError{Mechanism: mech, Reason: reason, Err: ErrMalformed}
}

func unsupported(mech, reason string) error {
	return &MessageError{Mechanism: mech, Reason: reason, Err: ErrUnsupported}
}

// refused is an authorization identity other than the authentication
// identity: an ErrAuthFailed decided from the message alone, before and
// whatever any secret says.
func refused(mech string) error {
	return &MessageError{Mechanism: mech,
		Reason: "authorization identity differs from authentication identity", Err: ErrAuthFailed}
}

type unknownMechanismError struct{ mech string }

func (e *unknownMechanismError) Error() string {
	m := e.mech
	if len(m) > 20 { // RFC 4422 names have at most 20 characters
		m = m[:20] + "..."
	}
	return "sasl: unknown mechanism " + strconv.Quote(m)
}

func (e *unknownMechanismError) Unwrap() error { return ErrUnknownMechanism }

func unknownMechanism(mech string) error { return &unknownMechanismError{mech: mech} }

// ParseError is a malformed credentials file or entry. It names the line
// but never quotes it, as a line holds a password.
type ParseError struct {
	File   string // the file's name, if read by ReadCredentialsFile
	Line   int    // 1-based; 0 for an entry parsed alone
	Reason string
}

// Error returns "sasl: credentials[ FILE][ line N]: reason".
func (e *ParseError) Error() string {
	s := "sasl: credentials"
	if e.File != "" {
		s += " " + e.File
	}
	if e.Line > 0 {
		s += " line " + strconv.Itoa(e.Line)
	}
	return s + ": " + e.Reason
}

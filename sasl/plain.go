package sasl

import "bytes"

// plainServer is PLAIN (RFC 4616): one client message,
//
//	[authzid] NUL authcid NUL passwd
//
// authcid and passwd not empty, no NUL inside a field, authzid empty or
// equal to authcid (no proxy authorization), lengths within MaxUsernameLen
// and MaxPasswordLen.
type plainServer struct {
	creds     Credentials
	lim       *Limiter
	waitedFor bool // an empty initial response was answered with an empty challenge
}

func (p *plainServer) name() string { return MechPLAIN }

func (p *plainServer) step(msg []byte) ([]byte, bool, string, error) {
	if len(msg) == 0 && !p.waitedFor {
		p.waitedFor = true // no initial response: ask for it
		return []byte{}, false, "", nil
	}
	authzid, authcid, passwd, err := parsePLAIN(msg)
	if err != nil {
		return nil, false, "", err
	}
	if len(authzid) > 0 && !bytes.Equal(authzid, authcid) {
		return nil, false, "", refused(MechPLAIN)
	}
	user := string(authcid)
	e, known := lookup(p.creds, user)
	match, err := e.matchPassword(user, passwd, p.lim)
	if err != nil {
		return nil, false, "", err
	}
	if !match || !known {
		return nil, false, "", ErrAuthFailed
	}
	return nil, true, user, nil
}

// parsePLAIN splits a PLAIN message into its fields, which alias msg.
func parsePLAIN(msg []byte) (authzid, authcid, passwd []byte, err error) {
	i := bytes.IndexByte(msg, 0)
	if i < 0 {
		return nil, nil, nil, malformed(MechPLAIN, "no NUL after authzid")
	}
	authzid, rest := msg[:i], msg[i+1:]
	j := bytes.IndexByte(rest, 0)
	if j < 0 {
		return nil, nil, nil, malformed(MechPLAIN, "no NUL after authcid")
	}
	authcid, passwd = rest[:j], rest[j+1:]
	switch {
	case bytes.IndexByte(passwd, 0) >= 0:
		return nil, nil, nil, malformed(MechPLAIN, "NUL inside passwd")
	case len(authcid) == 0:
		return nil, nil, nil, malformed(MechPLAIN, "empty authcid")
	case len(passwd) == 0:
		return nil, nil, nil, malformed(MechPLAIN, "empty passwd")
	case len(authzid) > MaxUsernameLen:
		return nil, nil, nil, malformed(MechPLAIN, "authzid longer than 255 bytes")
	case len(authcid) > MaxUsernameLen:
		return nil, nil, nil, malformed(MechPLAIN, "authcid longer than 255 bytes")
	case len(passwd) > MaxPasswordLen:
		return nil, nil, nil, malformed(MechPLAIN, "passwd longer than 1024 bytes")
	}
	return authzid, authcid, passwd, nil
}

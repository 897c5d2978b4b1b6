package cluster

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/memberlist"
)

// Gossip encryption: memberlist's AES-GCM keyring, read from the file
// Config.GossipKeyFile names. The file holds one key a line, base64
// (standard encoding) of 16, 24 or 32 bytes (AES-128, -192 or -256); blank
// lines and lines starting with '#' are ignored. The first key is the
// primary, which encrypts everything the node sends; every key decrypts.
// A node that holds none of the keys a message was encrypted with drops it,
// and so does a node given an unencrypted message: a node without the
// cluster's key can neither join nor change anyone's view of the cluster.
//
// Keys rotate without downtime in three reloads of every node (see
// node.Server.Reload): add the new key as a second line, then move it to the
// first, then remove the old one. At every moment each node's primary is a
// key every other node holds.

// errNoGossipKey is returned for a key file that holds no key.
var errNoGossipKey = errors.New("no key (want one base64 key a line)")

// parseGossipKeys reads a gossip key file from r: the keys in file order,
// duplicates dropped, the primary first. Its errors name the line and
// never hold the text of a key.
func parseGossipKeys(r io.Reader) ([][]byte, error) {
	var keys [][]byte
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			// The decoder's error gives an offset, not the text.
			return nil, fmt.Errorf("line %d: not base64: %w", n, err)
		}
		if err := memberlist.ValidateKey(key); err != nil {
			return nil, fmt.Errorf("line %d: the key is %d bytes, want 16, 24 or 32", n, len(key))
		}
		if !containsKey(keys, key) {
			keys = append(keys, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if len(keys) == 0 {
		return nil, errNoGossipKey
	}
	return keys, nil
}

// readGossipKeys reads and parses the gossip key file at path. Its errors
// begin "gossip key file".
func readGossipKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("gossip key file: %w", err)
	}
	keys, err := parseGossipKeys(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gossip key file %s: %w", path, err)
	}
	return keys, nil
}

func containsKey(keys [][]byte, key []byte) bool {
	for _, k := range keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// keyring is what updateKeyring needs of a *memberlist.Keyring.
type keyring interface {
	GetKeys() [][]byte
	AddKey(key []byte) error
	UseKey(key []byte) error
	RemoveKey(key []byte) error
}

var _ keyring = (*memberlist.Keyring)(nil)

// keyringChange counts what updateKeyring did, for the log.
type keyringChange struct {
	added, removed int
	primaryChanged bool
}

// updateKeyring makes kr hold exactly want, want[0] its primary, while
// memberlist uses it, so that no message is dropped for its key:
//
//   - the new primary is installed before it is used, and used before the
//     old one is removed (memberlist refuses to remove its primary);
//   - a key is only ever removed from the end of the ring. memberlist's
//     RemoveKey shifts the keys after the one removed in place, in the very
//     slice a message being decrypted reads; removing the last key shifts
//     none. A key to remove with keys to keep after it (only a file that
//     drops a key from the middle of three or more does that) takes the
//     keys after it off for a moment and puts them back.
//
// want must be non-empty and its keys valid. kr's own slices are never
// modified here.
func updateKeyring(kr keyring, want [][]byte) (keyringChange, error) {
	var ch keyringChange
	primary := want[0]
	if !containsKey(kr.GetKeys(), primary) {
		if err := kr.AddKey(primary); err != nil {
			return ch, err
		}
		ch.added++
	}
	if keys := kr.GetKeys(); !bytes.Equal(keys[0], primary) {
		if err := kr.UseKey(primary); err != nil {
			return ch, err
		}
		ch.primaryChanged = true
	}

	// The primary, at index 0, is wanted: first is the lowest index of a
	// key to remove, if any.
	have := kr.GetKeys()
	first := -1
	for i := len(have) - 1; i > 0; i-- {
		if !containsKey(want, have[i]) {
			first = i
		}
	}
	if first > 0 {
		tail := append([][]byte(nil), have[first:]...)
		for i := len(tail) - 1; i >= 0; i-- {
			if err := kr.RemoveKey(tail[i]); err != nil {
				return ch, err
			}
		}
		for _, k := range tail {
			if containsKey(want, k) {
				if err := kr.AddKey(k); err != nil {
					return ch, err
				}
			} else {
				ch.removed++
			}
		}
	}

	for _, k := range want[1:] {
		if !containsKey(kr.GetKeys(), k) {
			if err := kr.AddKey(k); err != nil {
				return ch, err
			}
			ch.added++
		}
	}
	return ch, nil
}

// Encrypted reports whether the node's gossip is encrypted: StartCluster
// read a key file. Encryption is on or off for a node's life.
func (c *Cluster) Encrypted() bool {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	return c.keyring != nil
}

// ReloadKeys re-reads the gossip key file and brings memberlist's keyring
// in line with it. A file that cannot be read or parsed leaves the keyring
// as it was and is returned as the error. Without a key file, or before
// StartCluster, it does nothing.
func (c *Cluster) ReloadKeys() error {
	c.keyMu.Lock()
	defer c.keyMu.Unlock()
	if c.keyring == nil {
		return nil
	}
	keys, err := readGossipKeys(c.cfg.GossipKeyFile)
	if err != nil {
		return err
	}
	ch, err := updateKeyring(c.keyring, keys)
	if err != nil {
		// Not reached with validated keys.
		return fmt.Errorf("updating the gossip keyring: %w", err)
	}
	c.log.Info("gossip keys reloaded", "file", c.cfg.GossipKeyFile, "keys", len(keys),
		"added", ch.added, "removed", ch.removed, "primary_changed", ch.primaryChanged)
	return nil
}

package cluster

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

// newKey returns a random key of n bytes.
func newKey(t *testing.T, n int) []byte {
	t.Helper()
	k := make([]byte, n)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

func TestParseGossipKeys(t *testing.T) {
	k16, k24, k32, k32b := newKey(t, 16), newKey(t, 24), newKey(t, 32), newKey(t, 32)
	tests := []struct {
		name string
		file string
		want [][]byte
	}{
		{"one key", b64(k32) + "\n", [][]byte{k32}},
		{"no final newline", b64(k32), [][]byte{k32}},
		{"every size", b64(k16) + "\n" + b64(k24) + "\n" + b64(k32) + "\n", [][]byte{k16, k24, k32}},
		{"the first is the primary", b64(k32b) + "\n" + b64(k32) + "\n", [][]byte{k32b, k32}},
		{"comments, blank lines, spaces and CRLF",
			"# gossip keys\r\n\r\n   \n  " + b64(k32) + "  \r\n\t# old key, remove after rotation\n" + b64(k16) + "\r\n\n",
			[][]byte{k32, k16}},
		{"duplicates dropped", b64(k32b) + "\n" + b64(k32) + "\n" + b64(k32b) + "\n", [][]byte{k32b, k32}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseGossipKeys(strings.NewReader(tt.file))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !slices.EqualFunc(got, tt.want, bytes.Equal) {
				t.Errorf("got %d keys %x, want %d keys %x", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}

func TestParseGossipKeysErrors(t *testing.T) {
	good := b64(newKey(t, 32))
	short := b64(newKey(t, 20))
	long := b64(newKey(t, 64))
	tests := []struct {
		name string
		file string
		want string // the error, exactly
	}{
		{"empty", "", "no key (want one base64 key a line)"},
		{"only comments and blanks", "# no key yet\n\n  \n", "no key (want one base64 key a line)"},
		{"bad base64", "#\n" + good + "\nnot*base64*at*all==\n", "line 3: not base64: illegal base64 data at input byte 3"},
		{"URL encoding", strings.NewReplacer("+", "-", "/", "_").Replace("+/+/" + good[4:]), "line 1: not base64: illegal base64 data at input byte 0"},
		{"trailing comment", good + " # primary\n", "line 1: not base64: illegal base64 data at input byte 44"},
		{"truncated", good[:len(good)-2] + "\n", "line 1: not base64: illegal base64 data at input byte 40"},
		{"20 bytes", good + "\n\n" + short + "\n", "line 3: the key is 20 bytes, want 16, 24 or 32"},
		{"64 bytes", long, "line 1: the key is 64 bytes, want 16, 24 or 32"},
		{"line too long", strings.Repeat("A", 70000), "reading: bufio.Scanner: token too long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := parseGossipKeys(strings.NewReader(tt.file))
			if err == nil {
				t.Fatalf("got %d keys, want error %q", len(keys), tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q, want %q", err, tt.want)
			}
			// No key text, good or bad, shows in an error.
			for _, line := range strings.Split(tt.file, "\n") {
				line = strings.TrimSpace(line)
				if len(line) >= 8 && !strings.HasPrefix(line, "#") && strings.Contains(err.Error(), line[:8]) {
					t.Errorf("error %q shows key text %q", err, line[:8])
				}
			}
		})
	}
}

func TestReadGossipKeys(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t, 16)
	good := filepath.Join(dir, "good.key")
	if err := os.WriteFile(good, []byte(b64(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := readGossipKeys(good)
	if err != nil || len(keys) != 1 || !bytes.Equal(keys[0], k) {
		t.Errorf("readGossipKeys(good) = %x, %v; want [%x]", keys, err, k)
	}

	bad := filepath.Join(dir, "bad.key")
	if err := os.WriteFile(bad, []byte("# key\n"+b64(k)[:10]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = readGossipKeys(bad)
	if want := "gossip key file " + bad + ": line 2: not base64"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("readGossipKeys(bad) error %v, want it to begin %q", err, want)
	}

	_, err = readGossipKeys(filepath.Join(dir, "missing.key"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readGossipKeys(missing) error %v, want one that is os.ErrNotExist", err)
	}
}

// watchedKeyring is a memberlist keyring that checks, at every change, what
// a node in a live cluster needs of updateKeyring.
type watchedKeyring struct {
	t  *testing.T
	kr *memberlist.Keyring
	// primaries are the keys that may be the primary at any moment.
	primaries [][]byte
	// kept are keys that must stay in the ring throughout.
	kept [][]byte
}

func (w *watchedKeyring) GetKeys() [][]byte { return w.kr.GetKeys() }

func (w *watchedKeyring) AddKey(k []byte) error { return w.check(w.kr.AddKey(k)) }
func (w *watchedKeyring) UseKey(k []byte) error { return w.check(w.kr.UseKey(k)) }

func (w *watchedKeyring) RemoveKey(k []byte) error {
	keys := w.kr.GetKeys()
	if !bytes.Equal(keys[len(keys)-1], k) {
		// memberlist would shift the later keys in place, under a
		// concurrent decryption's feet.
		w.t.Errorf("RemoveKey of a key that is not the last of %d", len(keys))
	}
	return w.check(w.kr.RemoveKey(k))
}

func (w *watchedKeyring) check(err error) error {
	keys := w.kr.GetKeys()
	if !containsKey(w.primaries, keys[0]) {
		w.t.Errorf("the primary became a key that should never encrypt")
	}
	for _, k := range w.kept {
		if !containsKey(keys, k) {
			w.t.Errorf("a key to keep left the ring for a moment")
		}
	}
	return err
}

func TestUpdateKeyring(t *testing.T) {
	k := make([][]byte, 5)
	for i := range k {
		k[i] = newKey(t, 32)
	}
	tests := []struct {
		name      string
		have      [][]byte // primary first
		want      [][]byte
		change    keyringChange
		keepsKeys bool // every key in both have and want stays throughout
	}{
		{"unchanged", [][]byte{k[0]}, [][]byte{k[0]}, keyringChange{}, true},
		{"rotation 1: install", [][]byte{k[0]}, [][]byte{k[0], k[1]}, keyringChange{added: 1}, true},
		{"rotation 2: use", [][]byte{k[0], k[1]}, [][]byte{k[1], k[0]}, keyringChange{primaryChanged: true}, true},
		{"rotation 3: remove", [][]byte{k[1], k[0]}, [][]byte{k[1]}, keyringChange{removed: 1}, true},
		{"replace at once", [][]byte{k[0]}, [][]byte{k[1]}, keyringChange{added: 1, removed: 1, primaryChanged: true}, true},
		{"primary from the middle", [][]byte{k[0], k[1], k[2]}, [][]byte{k[1], k[0], k[2]}, keyringChange{primaryChanged: true}, true},
		{"remove the last of three", [][]byte{k[0], k[1], k[2]}, [][]byte{k[0], k[1]}, keyringChange{removed: 1}, true},
		{"remove two, add two", [][]byte{k[0], k[1], k[2]}, [][]byte{k[0], k[3], k[4]}, keyringChange{added: 2, removed: 2}, true},
		// Removing a key from the middle takes the later ones off for a
		// moment: the price of not racing memberlist.
		{"remove from the middle", [][]byte{k[0], k[1], k[2]}, [][]byte{k[0], k[2]}, keyringChange{removed: 1}, false},
		{"new primary, old ones gone", [][]byte{k[0], k[1], k[2]}, [][]byte{k[3], k[2]}, keyringChange{added: 1, removed: 2, primaryChanged: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := memberlist.NewKeyring(tt.have, tt.have[0])
			if err != nil {
				t.Fatal(err)
			}
			w := &watchedKeyring{t: t, kr: kr, primaries: [][]byte{tt.have[0], tt.want[0]}}
			if tt.keepsKeys {
				for _, key := range tt.have {
					if containsKey(tt.want, key) {
						w.kept = append(w.kept, key)
					}
				}
			}
			ch, err := updateKeyring(w, tt.want)
			if err != nil {
				t.Fatalf("updateKeyring: %v", err)
			}
			if ch != tt.change {
				t.Errorf("change %+v, want %+v", ch, tt.change)
			}
			got := kr.GetKeys()
			if !bytes.Equal(got[0], tt.want[0]) {
				t.Errorf("the primary is not the file's first key")
			}
			if len(got) != len(tt.want) {
				t.Errorf("%d keys in the ring, want %d", len(got), len(tt.want))
			}
			for i, key := range tt.want {
				if !containsKey(got, key) {
					t.Errorf("key %d of the file is not in the ring", i)
				}
			}
		})
	}
}

// TestReloadKeysKeepsKeyringOnBadFile reloads a node's keys from files good
// and bad: a bad one changes nothing and is the error.
func TestReloadKeysKeepsKeyringOnBadFile(t *testing.T) {
	k1, k2 := newKey(t, 32), newKey(t, 16)
	path := filepath.Join(t.TempDir(), "gossip.key")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	kr, err := memberlist.NewKeyring(nil, k1)
	if err != nil {
		t.Fatal(err)
	}
	c := New(Config{GossipKeyFile: path}, 0, slog.New(slog.DiscardHandler))
	// reload is what the node's Reload does for the gossip keys.
	reload := func() error {
		if !c.Encrypted() {
			return nil
		}
		if err := c.ReloadKeys(); err != nil {
			return fmt.Errorf("node: reload gossip keys: %w", err)
		}
		return nil
	}

	// Before StartCluster there is no keyring to reload.
	write("garbage")
	if err := reload(); err != nil {
		t.Errorf("Reload before StartCluster: %v", err)
	}

	c.keyring = kr
	write(b64(k2) + "\n" + b64(k1) + "\n")
	if err := reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := kr.GetKeys(); len(got) != 2 || !bytes.Equal(got[0], k2) || !bytes.Equal(got[1], k1) {
		t.Fatalf("after Reload the ring holds %d keys, want k2 then k1", len(got))
	}
	for i, bad := range []string{"", "# nothing\n", b64(k2) + "\n" + b64(k1)[:20] + "\n", b64(newKey(t, 8))} {
		write(bad)
		err := reload()
		if err == nil {
			t.Errorf("bad file %d: Reload returned nil", i)
		} else if want := "node: reload gossip keys: gossip key file " + path + ": "; !strings.HasPrefix(err.Error(), want) {
			t.Errorf("bad file %d: error %q, want it to begin %q", i, err, want)
		}
		if got := kr.GetKeys(); len(got) != 2 || !bytes.Equal(got[0], k2) || !bytes.Equal(got[1], k1) {
			t.Errorf("bad file %d changed the ring: %d keys", i, len(got))
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := reload(); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Reload of a removed file: %v, want os.ErrNotExist", err)
	}
}

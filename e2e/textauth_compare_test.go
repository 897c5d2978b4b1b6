package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The comparison cases of memcached's ASCII authentication (-Y FILE).
//
// Until a connection authenticates, memcached 1.6.18 writes only the last
// reply of the lines one read brings (each overwrites the one before in its
// response object), so every step here carries at most one line that gets
// a reply; a step that sends more shows that bug, not the protocol. Two
// more of its quirks are left out on purpose: a lone "\n" is not answered
// until a second byte arrives (it waits for two bytes before looking for a
// line), and a line is cut off once more than 2048 of its bytes have
// arrived without its newline, so that a long line is answered or not
// depending on how its bytes arrive (memcluster answers any line that fits
// its 16 KiB read buffer, as memcached does when the bytes arrive together;
// see protocol.readLine).

// asciiAuthUsers is the content of the -Y file of the cases.
const asciiAuthUsers = "alice:secret\nbob:hunter2\n"

// asciiAuthFile is the path of the -Y file, written by setupASCIIAuth,
// which TestMain calls before any test runs.
var asciiAuthFile string

// setupASCIIAuth writes the -Y file and a SASL configuration for memcached
// into a new temporary directory, and points $SASL_CONF_PATH at the latter
// unless it is set already (memcached -S refuses to start without a
// memcached.conf, which Debian does not install). It returns a function that
// removes the directory.
func setupASCIIAuth() (cleanup func(), err error) {
	dir, err := os.MkdirTemp("", "memcluster-e2e-auth-")
	if err != nil {
		return nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	file := filepath.Join(dir, "auth")
	conf := filepath.Join(dir, "memcached.conf")
	err = errors.Join(
		os.WriteFile(file, []byte(asciiAuthUsers), 0o600),
		os.WriteFile(conf, []byte("mech_list: plain\n"), 0o600),
	)
	if err == nil && os.Getenv("SASL_CONF_PATH") == "" {
		err = os.Setenv("SASL_CONF_PATH", dir)
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("writing the -Y file and the SASL configuration: %w", err)
	}
	asciiAuthFile = file
	return cleanup, nil
}

// memcached's replies before authentication.
const (
	authUnauthenticated = "CLIENT_ERROR unauthenticated\r\n"
	authTermination     = "CLIENT_ERROR bad command line termination\r\n"
	authTokenFormat     = "CLIENT_ERROR bad authentication token format\r\n"
	authFailure         = "CLIENT_ERROR authentication failure\r\n"
)

// authSet returns an authentication attempt with block as its data block,
// its byte count right.
func authSet(block string) string {
	return fmt.Sprintf("set auth 0 0 %d\r\n%s\r\n", len(block), block)
}

// authBinaryHeader returns a binary-protocol request header (magic 0x80) for
// opcode with a key of keyLen bytes and a body of bodyLen bytes. Neither
// length may hold a '\n' byte, so that the header holds no line end.
func authBinaryHeader(opcode byte, keyLen, bodyLen int) string {
	return string([]byte{0x80, opcode, byte(keyLen >> 8), byte(keyLen), 0, 0, 0, 0,
		byte(bodyLen >> 24), byte(bodyLen >> 16), byte(bodyLen >> 8), byte(bodyLen),
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
}

func asciiAuthCases() []compareCase {
	if asciiAuthFile == "" {
		panic("e2e: the -Y file is not written: TestMain must call setupASCIIAuth")
	}
	yFlags := []string{"-Y", asciiAuthFile}
	// The largest block memcached's 16 KiB read buffer holds, with its
	// "\r\n".
	const maxBlock = 16<<10 - 2
	bigBlock := "alice " + strings.Repeat("x", maxBlock-len("alice "))
	saslPlain := "PLAIN\x00alice\x00secret"

	return []compareCase{
		{name: "auth_ascii_commands_before_auth", flags: yFlags, steps: []step{
			g("get a\r\n", authUnauthenticated),
			g("version\r\n", authUnauthenticated),
			g("stats\r\n", authUnauthenticated),
			s("stats settings\r\n"),
			g("mn\r\n", authUnauthenticated),
			s("mg a v\r\n"),
			s("ms a 1\r\n"),
			s("md a\r\n"),
			s("garbage\r\n"),
			g("\r\n", authUnauthenticated),
			s(" \r\n"),
			s("\x00\r\n"),
			s("setx a 0 0 1\r\n"),
			g("SET a 0 0 12\r\n", authUnauthenticated),
			s("Set a 0 0 12\r\n"),
			s("sets a 0 0 12\r\n"),
			s("add a 0 0 1\r\n"),
			s("replace a 0 0 1\r\n"),
			s("cas a 0 0 1 1\r\n"),
			s("incr a 1\r\n"),
			s("delete a\r\n"),
			g("delete a noreply\r\n", authUnauthenticated),
			s("flush_all\r\n"),
			s("flush_all noreply\r\n"),
			s("verbosity 1\r\n"),
			s("stats detail on\r\n"),
			s("shutdown\r\n"),
			s("config get cluster\r\n"),
			g("quit\r\n", authUnauthenticated), // and the connection stays open
			s("GET / HTTP/1.0\r\n"),
			s("get a\n"),
			g(strings.Repeat("x", 3000)+"\r\n", authUnauthenticated),
			s("version\r\n"),
		}},
		{name: "auth_ascii_set_too_few_args", flags: yFlags, steps: []step{
			s("set\r\n"),
			s("set a\r\n"),
			s("set a 0\r\n"),
			g("set a 0 0\r\n", authUnauthenticated),
			s("set a 0 12\r\n"),
			// Not read as the data block of the line before: a line.
			g("alice secret\r\n", authUnauthenticated),
			g("get a\r\n", authUnauthenticated),
		}},
		{name: "auth_ascii_bad_byte_count", flags: yFlags, steps: []step{
			g("set a 0 0 -1\r\n", authUnauthenticated),
			s("set a 0 0 -12\r\n"),
			s("set a 0 0 abc\r\n"),
			s("set a 0 0 1x\r\n"),
			s("set a 0 0 1.5\r\n"),
			s("set a 0 0 0x10\r\n"),
			s("set a 0 0 99999999999999999999\r\n"),
			s("set a 0 0 18446744073709551616\r\n"),
			g("get a\r\n", authUnauthenticated),
			// -0 and +12 are numbers to safe_strtoul.
			g("set a 0 0 -0\r\n", ""),
			g("\r\n", authTokenFormat),
			g("set a 0 0 +12\r\n", ""),
			g("alice secret\r\n", "STORED\r\n"),
		}},
		// memcached adds the "\r\n" to the byte count in 32 bits.
		{name: "auth_ascii_byte_count_wraps", flags: yFlags, steps: []step{
			g("set a 0 0 4294967294\r\n", authTermination), // a block of 0 bytes
			g("set a 0 0 4294967295\r\n", ""),              // a block of 1 byte
			g("x", authTermination),
			s("set a 0 0 18446744073709551615\r\n"), // 4294967295 in 32 bits
			s("y"),
			g("set a 0 0 4294967296\r\n", ""), // 0 in 32 bits: the block is "\r\n"
			g("\r\n", authTokenFormat),
			g(authSet("alice secret"), "STORED\r\n"),
		}},
		{name: "auth_ascii_block_largest", flags: yFlags, steps: []step{
			g(authSet(bigBlock), authFailure),
			s(authSet("bob " + strings.Repeat("y", maxBlock-len("bob ")))),
			g(authSet("alice secret"), "STORED\r\n"),
		}},
		// A block that cannot fit the read buffer: memcached reads until
		// the buffer is full, then closes.
		{name: "auth_ascii_block_too_big", flags: yFlags, steps: []step{
			g(fmt.Sprintf("set a 0 0 %d\r\n", maxBlock+1), ""), // still open: waiting for the block
			gc(strings.Repeat("x", maxBlock+3), ""),
		}},
		{name: "auth_ascii_block_too_big_at_once", flags: yFlags, steps: []step{
			gc(authSet(strings.Repeat("x", 20000)), ""),
		}},
		{name: "auth_ascii_bad_termination", flags: yFlags, steps: []step{
			g("set a 0 0 3\r\nabcde", authTermination),
			g("set a 0 0 12\r\nalice secretXY", authTermination),
			s("set a 0 0 12\r\nalice secret\n\n"),
			s("set a 0 0 12\r\nalice secret\r\r"),
			s("set a 0 0 12\r\nalice secret\n\r"),
			// One byte short: the block waits for it.
			g("set a 0 0 13\r\nalice secret\r\n", ""),
			g("\n", authTermination),
			g("get a\r\n", authUnauthenticated),
			g(authSet("alice secret"), "STORED\r\n"),
		}},
		{name: "auth_ascii_bad_token_format", flags: yFlags, steps: []step{
			g(authSet("alice"), authTokenFormat),
			g(authSet(""), authTokenFormat),
			s(authSet("   ")),
			s(authSet("alice ")),
			s(authSet(" alice ")),
			s(authSet("alice\tsecret")),
			g(authSet("alice\x00secret"), authTokenFormat), // a C string: it ends at the NUL
			s(authSet("\x00alice secret")),
			s(authSet("alice\r\nsecret")),
			g("get a\r\n", authUnauthenticated),
			g(authSet("alice secret"), "STORED\r\n"),
		}},
		{name: "auth_ascii_wrong_password_then_right", flags: yFlags, steps: []step{
			g(authSet("alice wrong"), authFailure),
			s(authSet("alice secreT")),
			s(authSet("alice secre")),
			s(authSet("alice secrett")),
			s(authSet("alice hunter2")),
			s(authSet("alice :secret")),
			g("get a\r\n", authUnauthenticated),
			g(authSet("alice secret"), "STORED\r\n"),
			g("get a\r\n", "END\r\n"),
		}},
		{name: "auth_ascii_nul_ends_block", flags: yFlags, steps: []step{
			g(authSet("alice secret\x00junk"), "STORED\r\n"),
			s("version\r\n"),
		}},
		{name: "auth_ascii_unknown_user", flags: yFlags, steps: []step{
			g(authSet("mallory secret"), authFailure),
			s(authSet("Alice secret")),
			s(authSet("alice:secret x")),
			s(authSet("bob: hunter2")),
			s(authSet("\xff\xfe hunter2")),
			g(authSet("bob hunter2"), "STORED\r\n"),
			s("version\r\n"),
		}},
		{name: "auth_ascii_extra_tokens", flags: yFlags, steps: []step{
			g(authSet("alice wrong secret"), authFailure), // the password is the second token
			g(authSet("alice secret extra tokens"), "STORED\r\n"),
			s("version\r\n"),
		}},
		{name: "auth_ascii_spaces", flags: yFlags, steps: []step{
			g(authSet("  alice   secret  "), "STORED\r\n"),
			s("version\r\n"),
		}},
		{name: "auth_ascii_leading_spaces_in_line", flags: yFlags, steps: []step{
			g("   set  auth  0  0  12  \r\nalice secret\r\n", "STORED\r\n"),
			s("version\r\n"),
		}},
		{name: "auth_ascii_key_flags_exptime_ignored", flags: yFlags, steps: []step{
			g("set "+strings.Repeat("k", 300)+" abc -1x 12 extra more\r\nalice secret\r\n", "STORED\r\n"),
			g("get "+strings.Repeat("k", 250)+"\r\n", "END\r\n"),
		}},
		{name: "auth_ascii_long_line", flags: yFlags, steps: []step{
			g("set "+strings.Repeat("k", 3000)+" 0 0 12\r\nalice secret\r\n", "STORED\r\n"),
			s("version\r\n"),
		}},
		{name: "auth_ascii_unterminated_line", flags: yFlags, steps: []step{
			gc(strings.Repeat("x", 20000), ""),
		}},
		// Before authentication not even a get line may outgrow the read
		// buffer.
		{name: "auth_ascii_long_get_line", flags: yFlags, steps: []step{
			gc("get "+strings.Repeat("k ", 10000)+"\r\n", ""),
		}},
		{name: "auth_ascii_noreply", flags: yFlags, steps: []step{
			g("set a 0 0 11 noreply\r\nalice wrong\r\n", authFailure),
			g("set a 0 0 5 noreply\r\nalice\r\n", authTokenFormat),
			g("set a 0 0 12 noreply\r\nalice secret\r\n", "STORED\r\n"),
			g("set a 0 0 1 noreply\r\nx\r\n", ""), // authenticated: noreply is heard
			g("get a\r\n", "VALUE a 0 1\r\nx\r\nEND\r\n"),
		}},
		{name: "auth_ascii_bare_lf", flags: yFlags, steps: []step{
			g("get a\n", authUnauthenticated),
			g("set a 0 0 12\nalice secret\r\n", "STORED\r\n"),
			g("get a\n", "END\r\n"),
		}},
		{name: "auth_ascii_bare_lf_block", flags: yFlags, steps: []step{
			// The block needs its "\r\n": with a bare "\n" it is one
			// byte short, and waits for it.
			g("set a 0 0 12\nalice secret\n", ""),
			g("\n", authTermination),
			g("set a 0 0 12\r", ""), // a line split before its "\n"
			g("\nalice secret\r\n", "STORED\r\n"),
		}},
		{name: "auth_ascii_after_success", flags: yFlags, steps: []step{
			g(authSet("alice secret"), "STORED\r\n"),
			g("set k 0 0 1\r\nx\r\n", "STORED\r\n"),
			g("get k\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n"),
			// Nothing was stored by the authentication, and a set like
			// it now stores.
			g("get auth\r\n", "END\r\n"),
			g(authSet("alice secret"), "STORED\r\n"),
			g("get auth\r\n", "VALUE auth 0 12\r\nalice secret\r\nEND\r\n"),
			g("mn\r\n", "MN\r\n"),
			s("set a 0 0 3\r\nabcde\r\n"),
			s("version\r\n"),
			s("stats settings\r\n"),
			// Another connection must authenticate on its own.
			on(1, g("get k\r\n", authUnauthenticated)),
			on(1, g(authSet("bob hunter2"), "STORED\r\n")),
			on(1, g("get k\r\n", "VALUE k 0 1\r\nx\r\nEND\r\n")),
			gc("quit\r\n", ""),
		}},
		{name: "auth_ascii_pipelined_after_auth", flags: yFlags, steps: []step{
			g(authSet("alice secret")+"set k 0 0 1\r\nx\r\nget k\r\n", "STORED\r\nSTORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n"),
		}},
		// auth_cmds counts the attempts that reach the credentials check,
		// auth_errors those that fail it.
		{name: "auth_ascii_stats", flags: yFlags, steps: []step{
			on(1, g(authSet("bob hunter2"), "STORED\r\n")),
			on(1, s("stats\r\n")),
			g(authSet("alice wrong"), authFailure),
			g(authSet("mallory x"), authFailure),
			s(authSet("alice")),
			s("set a 0 0 3\r\nabcde"),
			s("get a\r\n"),
			on(1, s("stats\r\n")),
			g(authSet("alice secret"), "STORED\r\n"),
			s("stats\r\n"),
			on(2, s(authSet("bob x"))),
			s("stats\r\n"),
			g("stats reset\r\n", "RESET\r\n"),
			s("stats\r\n"),
		}},
		// memcached reads a binary request under -Y as text: its header
		// is a line once a "\n" arrives, cut at its first NUL.
		{name: "auth_ascii_binary_request", flags: yFlags, steps: []step{
			g(authBinaryHeader(0x0b, 0, 0), ""), // version
			g("\r\n", authUnauthenticated),
			g(authBinaryHeader(0x21, len("PLAIN"), len(saslPlain))+saslPlain, ""), // SASL auth
			g("\r\n", authUnauthenticated),
			s(authBinaryHeader(0x20, 0, 0) + "\r\n"), // SASL list mechanisms
			g(authSet("alice secret"), "STORED\r\n"),
			// Still text after authentication.
			s(authBinaryHeader(0x0b, 0, 0) + "\r\n"),
			s("version\r\n"),
		}},
		// With -S as well, memcached (and memcluster's flags) end with the
		// ASCII protocol: ASCII authentication is the only way in.
		{name: "auth_ascii_with_sasl", flags: []string{"-S", "-Y", asciiAuthFile}, steps: []step{
			g("version\r\n", authUnauthenticated),
			g(authBinaryHeader(0x21, len("PLAIN"), len(saslPlain))+saslPlain, ""),
			g("\r\n", authUnauthenticated),
			g(authSet("alice wrong"), authFailure),
			g(authSet("alice secret"), "STORED\r\n"),
			g("set k 0 0 1\r\nx\r\n", "STORED\r\n"),
			s("stats settings\r\n"),
			s("stats\r\n"),
		}},
	}
}

package main

// The setters of memcached's options (see memcachedFlagDefs in flags.go):
// each parses and checks its option's value with memcached's rules and
// messages and writes it into the options; and the parsing of -l's
// listener entries.

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/memcluster/memcluster/node"
)

// atoi parses an integer value of the option opt.
func atoi(opt, val string) (int, error) {
	n, err := strconv.Atoi(val)
	if err != nil {
		return 0, valueError(opt, val, err)
	}
	return n, nil
}

// valueError is the error for a value of opt that strconv refused.
func valueError(opt, val string, err error) error {
	why := errNotInteger
	switch {
	case errors.Is(err, strconv.ErrRange):
		why = errOutOfRange
	case errors.Is(err, strconv.ErrSyntax) && strings.Contains(err.Error(), "ParseFloat"):
		why = errNotNumber
	}
	return fmt.Errorf("invalid value %q for %s: %w", val, opt, why)
}

// setPositive returns the setter of an integer option that must be above 0,
// with memcached's message for values that are not.
func setPositive(msg string, field func(*node.Config) *int) func(p *parser, opt, val string) error {
	return func(p *parser, opt, val string) error {
		n, err := atoi(opt, val)
		if err != nil {
			return err
		}
		if n <= 0 {
			return errors.New(msg)
		}
		*field(&p.o.cfg) = n
		return nil
	}
}

func setUnixMask(p *parser, opt, val string) error {
	n, err := strconv.ParseUint(val, 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("invalid value %q for %s: not an octal access mask (0 to 777)", val, opt)
	}
	p.o.cfg.UnixMask = os.FileMode(n)
	return nil
}

// setPort sets -p. memcached's -p 0 turns TCP off (the way to run on a unix
// socket alone); Config says so with a negative port.
func setPort(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("Invalid port number %d.", n)
	}
	if n == 0 {
		n = -1
	}
	p.o.cfg.Port = n
	p.portSet = true
	return nil
}

func setUnixSocket(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("option '%s' needs a file name", opt)
	}
	p.o.cfg.UnixSocket = val
	return nil
}

// setUDPPort accepts -U 0 (memcached's default since 1.5.6) and nothing
// else: memcluster does not serve UDP.
func setUDPPort(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n != 0 {
		return fmt.Errorf("%s %d: memcluster does not serve UDP; leave -U out or give -U 0", opt, n)
	}
	return nil
}

// setMemoryLimit sets -m, given in megabytes.
func setMemoryLimit(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Memory limit must be greater than 0")
	}
	if int64(n) > math.MaxInt64>>20 {
		return fmt.Errorf("invalid value %q for %s: %w", val, opt, errOutOfRange)
	}
	p.o.cfg.MemoryLimit = int64(n) << 20
	return nil
}

// setVerbose counts -v. --verbose=N sets the count to N (memcached ignores
// the N and counts one).
func setVerbose(p *parser, opt, val string) error {
	if val == "" {
		p.o.cfg.Verbosity++
		return nil
	}
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("invalid value %q for %s: %w", val, opt, errOutOfRange)
	}
	p.o.cfg.Verbosity = n
	return nil
}

func setDaemon(p *parser, opt, _ string) error {
	p.o.daemonize = true
	p.ignore(opt, "memcluster runs in the foreground; let the service manager run it in the background")
	return nil
}

func setUser(p *parser, opt, val string) error {
	p.o.user = val
	p.ignore(opt, "memcluster does not switch users; start it as the user it should run as")
	return nil
}

func setPIDFile(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("option '%s' needs a file name", opt)
	}
	p.o.pidFile = val
	return nil
}

func setGrowthFactor(p *parser, opt, val string) error {
	f, err := strconv.ParseFloat(val, 64)
	if err != nil {
		return valueError(opt, val, err)
	}
	if f <= 1 {
		return errors.New("Factor must be greater than 1")
	}
	p.ignore(opt, whySlabs)
	return nil
}

func setSlabMinSize(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Chunk size must be greater than 0")
	}
	p.ignore(opt, whySlabs)
	return nil
}

// setThreads sets -t, which the daemon makes GOMAXPROCS.
func setThreads(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Number of threads must be greater than 0")
	}
	if n > 64 {
		p.warn("Setting a high number of worker threads is not recommended. Set this value to the number of cores in your machine or less.", "option", opt, "threads", n)
	}
	p.o.cfg.Threads = n
	return nil
}

func setProtocol(p *parser, _, val string) error {
	switch val {
	case "auto", "ascii", "binary":
	default:
		return fmt.Errorf("Invalid value for binding protocol: %s -- should be one of auto, binary, or ascii", val)
	}
	p.o.cfg.Protocol = val
	p.protocolSet = true
	return nil
}

// setItemSizeMax reads -I: bytes, or kilobytes or megabytes with a k or m
// suffix (either case). The range is checked at the end, against -m.
func setItemSizeMax(p *parser, opt, val string) error {
	s, mult := val, int64(1)
	if n := len(s); n > 0 {
		switch s[n-1] {
		case 'k', 'K':
			s, mult = s[:n-1], 1<<10
		case 'm', 'M':
			s, mult = s[:n-1], 1<<20
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(s, "-"):
		n, mult = math.MinInt64, 1 // too small: said so at the end
	case errors.Is(err, strconv.ErrRange):
		n, mult = math.MaxInt64, 1 // too large: said so at the end
	case err != nil:
		return fmt.Errorf("invalid value %q for %s: want a number of bytes, optionally with a k or m suffix", val, opt)
	}
	switch {
	case n > math.MaxInt64/mult:
		p.itemSize = math.MaxInt64
	case n < math.MinInt64/mult:
		p.itemSize = math.MinInt64
	default:
		p.itemSize = n * mult
	}
	return nil
}

func setAuthFile(p *parser, opt, val string) error {
	if val == "" {
		return fmt.Errorf("option '%s' needs a file name", opt)
	}
	p.o.cfg.AuthFile = val
	return nil
}

func setNAPIIDs(p *parser, opt, val string) error {
	n, err := atoi(opt, val)
	if err != nil {
		return err
	}
	if n <= 0 {
		return errors.New("Maximum number of NAPI IDs must be greater than 0")
	}
	p.napiIDs = n
	p.ignore(opt, "memcluster does not pick a connection's thread by NAPI ID")
	return nil
}

func setDelimiter(p *parser, opt, val string) error {
	if val == "" {
		return errors.New("No delimiter specified")
	}
	p.o.cfg.PrefixDelimiter = val[0]
	return nil
}

// addListen parses one -l value: a list of entries separated by commas or
// semicolons, as memcached takes them.
func addListen(p *parser, opt, val string) error {
	added := false
	for _, e := range strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ';' }) {
		spec, err := parseListen(e)
		if err != nil {
			return err
		}
		added = true
		if spec.Proto != "" || spec.Tag != "" {
			p.warn("per-listener protocol and tag are not supported yet; the listener follows -B", "option", opt, "entry", e)
		}
		dup := false
		for _, l := range p.o.listeners {
			dup = dup || l == spec
		}
		if !dup {
			p.o.listeners = append(p.o.listeners, spec)
		}
	}
	if !added {
		return fmt.Errorf("option '%s' needs an address", opt)
	}
	return nil
}

// parseListen parses one -l entry with memcached's rules and messages: a
// host with one colon is host:port; an IPv6 address needs brackets to carry
// a port ("[::1]:11211"), and without a port may go bare ("::1"); "*" is
// every interface.
func parseListen(e string) (listenSpec, error) {
	var spec listenSpec
	p := e
	if rest, ok := strings.CutPrefix(p, "notls:"); ok {
		spec.NoTLS, p = true, rest
	}
	if rest, ok := strings.CutPrefix(p, "proto["); ok {
		name, rest, ok := strings.Cut(rest, "]")
		if !ok {
			return spec, fmt.Errorf("Invalid protocol spec: %q", p[len("proto"):])
		}
		switch name {
		case "ascii", "binary":
			spec.Proto = name
		case "negotiating", "auto":
			spec.Proto = "auto"
		case "proxy":
			return spec, fmt.Errorf("memcluster has no proxy mode: %q", e)
		default:
			return spec, fmt.Errorf("Invalid protocol spec: %q", "["+name+"]")
		}
		p = strings.TrimPrefix(rest, ":")
	}
	if rest, ok := strings.CutPrefix(p, "tag["); ok {
		tag, rest, ok := strings.Cut(rest, "]")
		if !ok {
			return spec, fmt.Errorf("Invalid tag in socket config: %q", p[len("tag"):])
		}
		if len(tag) < 1 || len(tag) > 8 {
			return spec, fmt.Errorf("Listener tags must be between 1 and 8 characters: %q", tag)
		}
		spec.Tag = tag
		p = strings.TrimPrefix(rest, ":")
	}

	host, port, hasPort := p, "", false
	if strings.HasPrefix(p, "[") {
		end := strings.IndexByte(p, ']')
		if end < 0 {
			return spec, fmt.Errorf("Invalid IPV6 address: %q", p)
		}
		host = p[1:end]
		switch rest := p[end+1:]; {
		case rest == "":
		case rest[0] == ':':
			port, hasPort = rest[1:], true
		default:
			return spec, fmt.Errorf("Invalid IPV6 address: %q", p)
		}
	} else if h, rest, ok := strings.Cut(p, ":"); ok && !strings.Contains(rest, ":") {
		host, port, hasPort = h, rest, true
	}
	if host == "*" {
		host = ""
	}
	spec.Addr = host
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 {
			return spec, fmt.Errorf("Invalid port number: %q", port)
		}
		spec.Addr = net.JoinHostPort(host, strconv.Itoa(n))
	}
	return spec, nil
}

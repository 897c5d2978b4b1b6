package main

// Reading the command line as memcached's getopt_long does (parseArgs):
// grouped short options, abbreviated long ones, values attached or in the
// next word; then the checks that depend on several options (finish), and
// the warnings for options accepted without effect. The options are
// declared in flags.go.

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/config"
)

// parser holds the state of one parseArgs call.
type parser struct {
	o        *options
	warnings []warning       // logged once the command line is known good
	warned   map[string]bool // canonical names of the options warned about
	cur      byte            // the letter of the option being applied

	protocolSet bool  // -B was given
	portSet     bool  // -p was given
	itemSize    int64 // -I in bytes; checked once -m is known
	napiIDs     int   // -N, checked against -t at the end
	gossipSet   bool  // --gossip-addr or --no-cluster was given
	noCluster   bool  // --no-cluster was given
}

// defaultConfig returns the configuration of a memcached started without
// flags, with every default written out.
func defaultConfig() node.Config {
	return node.Config{
		Port:            config.DefaultPort,
		UnixMask:        config.DefaultUnixMask,
		MaxConns:        config.DefaultMaxConns,
		Threads:         config.DefaultThreads,
		MaxReqsPerEvent: config.DefaultMaxReqsPerEvent,
		Backlog:         config.DefaultBacklog,
		MemoryLimit:     config.DefaultMemoryLimit,
		ItemSizeMax:     config.DefaultItemSizeMax,
		Protocol:        "auto",
		Cluster:         defaultClusterConfig(),
	}
}

// parseArgs parses memcached's command line (without the program name) the
// way memcached's getopt_long does: short options may be grouped and take
// their value attached or as the next word (-vv, -p11211, -m 64); long
// options take theirs after "=" or as the next word and may be abbreviated
// to any unambiguous prefix; "--" ends the options; other words are ignored
// with a warning. Options are applied in order, and -h, -V and -i stop the
// parsing where they stand, as in memcached.
//
// Warnings (options accepted without effect, values memcached frowns upon)
// are logged to stderr, in order, once the whole command line has parsed
// without error and without -h, -V or -i. A returned error is a bad command
// line; its message names the option and does not end with a newline. Where
// memcached detects the same fault, the message is memcached's, word for
// word, capitals and full stops included, so that operators and scripts
// recognise it.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	o := options{cfg: defaultConfig(), drain: defaultDrain}
	p := &parser{
		o:        &o,
		warned:   make(map[string]bool),
		itemSize: config.DefaultItemSizeMax,
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var err error
		switch {
		case a == "--":
			o.args = append(o.args, args[i+1:]...)
			i = len(args)
		case strings.HasPrefix(a, "--"):
			i, err = p.long(args, i)
		case len(a) > 1 && a[0] == '-':
			i, err = p.shorts(args, i)
		default:
			o.args = append(o.args, a)
		}
		if err != nil {
			return options{}, err
		}
		if o.help || o.version || o.license {
			return o, nil
		}
	}
	if err := p.finish(); err != nil {
		return options{}, err
	}
	log := newLogger(stderr, 0, o.logFormat)
	for _, w := range p.warnings {
		log.Warn(w.msg, w.args...)
	}
	return o, nil
}

// warning is a message for slog.Logger.Warn.
type warning struct {
	msg  string
	args []any
}

// warn records a warning, logged if the whole command line is good.
func (p *parser) warn(msg string, args ...any) {
	p.warnings = append(p.warnings, warning{msg, args})
}

// long parses the long option args[i] and returns the index of the last
// word it used.
func (p *parser) long(args []string, i int) (int, error) {
	a := args[i]
	name, val, hasVal := strings.Cut(a[2:], "=")
	def, err := lookupLong(name, a)
	if err != nil {
		return i, err
	}
	opt := "--" + def.long
	p.cur = def.short
	switch def.kind {
	case noArg:
		if hasVal {
			return i, fmt.Errorf("option '%s' doesn't allow an argument", opt)
		}
	case requiredArg:
		if !hasVal {
			if i+1 >= len(args) {
				return i, fmt.Errorf("option '%s' requires an argument", opt)
			}
			i++
			val = args[i]
		}
	}
	return i, def.set(p, opt, val)
}

// lookupLong finds the long option name (arg is the word it came from) as
// getopt_long does: an exact match, or the only option it abbreviates.
func lookupLong(name, arg string) (*flagDef, error) {
	var found []*flagDef
	for i := range flagDefs {
		d := &flagDefs[i]
		if d.long == "" {
			continue
		}
		if d.long == name {
			return d, nil
		}
		if strings.HasPrefix(d.long, name) {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return nil, fmt.Errorf("unrecognized option '%s'", arg)
	case 1:
		return found[0], nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "option '%s' is ambiguous; possibilities:", arg)
	for _, d := range found {
		fmt.Fprintf(&b, " '--%s'", d.long)
	}
	return nil, errors.New(b.String())
}

// shorts parses the group of short options args[i] and returns the index of
// the last word it used.
func (p *parser) shorts(args []string, i int) (int, error) {
	a := args[i]
	for j := 1; j < len(a); j++ {
		def := lookupShort(a[j])
		if def == nil {
			r, _ := utf8.DecodeRuneInString(a[j:])
			return i, fmt.Errorf("invalid option -- '%c'", r)
		}
		opt := "-" + string(def.short)
		p.cur = def.short
		if def.kind != requiredArg {
			if err := def.set(p, opt, ""); err != nil {
				return i, err
			}
			if p.o.help || p.o.version || p.o.license {
				return i, nil
			}
			continue
		}
		val := a[j+1:]
		if val == "" {
			if i+1 >= len(args) {
				return i, fmt.Errorf("option requires an argument -- '%c'", def.short)
			}
			i++
			val = args[i]
		}
		return i, def.set(p, opt, val)
	}
	return i, nil
}

func lookupShort(c byte) *flagDef {
	if c == 0 {
		return nil
	}
	for i := range flagDefs {
		if flagDefs[i].short == c {
			return &flagDefs[i]
		}
	}
	return nil
}

// finish checks what depends on several options, as memcached does once it
// has read them all, and completes the configuration.
func (p *parser) finish() error {
	o, cfg := p.o, &p.o.cfg
	if p.napiIDs > cfg.Threads {
		return fmt.Errorf("Number of napi_ids(%d) cannot be greater than number of threads(%d)", p.napiIDs, cfg.Threads)
	}

	// -I, in memcached's order of checks.
	switch {
	case p.itemSize < config.MinItemSizeMax:
		return errors.New("Item max size cannot be less than 1024 bytes.")
	case p.itemSize > cfg.MemoryLimit/2:
		return errors.New("Cannot set item size limit higher than 1/2 of memory max.")
	case p.itemSize > config.MaxItemSizeMax:
		return errors.New("Cannot set item size limit higher than a gigabyte.")
	}
	cfg.ItemSizeMax = int(p.itemSize)

	// memcached's SASL is binary-only and its ASCII authentication
	// ASCII-only: each picks the protocol unless -B did, and refuses
	// another.
	if cfg.SASL {
		if !p.protocolSet {
			cfg.Protocol = "binary"
		} else if cfg.Protocol != "binary" {
			return errors.New("You cannot allow the ASCII protocol while using SASL.")
		}
	}
	if cfg.AuthFile != "" {
		if !p.protocolSet {
			cfg.Protocol = "ascii"
		} else if cfg.Protocol != "ascii" {
			return errors.New("You cannot allow the BINARY protocol while using ascii authentication tokens.")
		}
	}

	tcpOff := cfg.Port < 0 || cfg.UnixSocket != ""
	if cfg.Port < 0 && cfg.UnixSocket == "" {
		return errors.New("nothing to listen on: -p 0 turns TCP off and no unix socket (-s) is given")
	}
	if o.tls.Enabled && cfg.Port < 0 {
		return errors.New("You cannot enable SSL without a TCP port.")
	}
	for _, l := range o.listeners {
		if l.NoTLS && !o.tls.Enabled {
			return errors.New("'notls' option is valid only when SSL is enabled")
		}
	}
	cfg.ListenAddrs = nil
	if len(o.listeners) > 0 {
		if tcpOff {
			p.warn("option has no effect: TCP is off (-s or -p 0); ignored", "option", "-l")
		} else {
			for _, l := range o.listeners {
				cfg.ListenAddrs = append(cfg.ListenAddrs, l.Addr)
			}
		}
	}
	if o.tls.Enabled {
		if err := p.finishTLS(tcpOff); err != nil {
			return err
		}
	}

	if err := p.finishCluster(tcpOff); err != nil {
		return err
	}

	for _, a := range o.args {
		p.warn("ignoring an argument that is not an option, as memcached does", "arg", a)
	}
	return nil
}

// ignore returns the setter of an option that is accepted without effect.
func ignore(why string) func(p *parser, opt, val string) error {
	return func(p *parser, opt, _ string) error {
		p.ignore(opt, why)
		return nil
	}
}

// ignore records that the option opt (the one being applied, or an -o key
// as "-o key") has no effect, and warns once per option however often and
// under whichever name it is given.
func (p *parser) ignore(opt, why string) {
	key := opt
	if !strings.HasPrefix(opt, "-o ") {
		key = "-" + string(p.cur)
	}
	if p.warned[key] {
		return
	}
	p.warned[key] = true
	p.o.ignored = append(p.o.ignored, opt)
	p.warn("option has no effect in memcluster; ignored", "option", opt, "reason", why)
}

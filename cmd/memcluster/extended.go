package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/memcluster/memcluster/node"
	"github.com/memcluster/memcluster/node/config"
	"github.com/memcluster/memcluster/protocol"
)

// subKind is the kind of value an -o key takes.
type subKind uint8

const (
	subFlag   subKind = iota // no value; one given is ignored, as memcached does
	subInt                   // a decimal integer
	subFloat                 // a decimal number
	subString                // any non-empty text
	subOptInt                // an integer, or nothing
)

// subDef is an -o key that is accepted without effect.
type subDef struct {
	kind subKind
	why  string
	// missing is memcached's message for the key without a value; if
	// empty, "Missing <key> argument".
	missing string
}

// ignoredSubopts are memcached's -o keys that tune its own internals.
var ignoredSubopts = map[string]subDef{
	"hashpower":            {subInt, whySlabs, "Missing numeric argument for hashpower"},
	"no_hashexpand":        {subFlag, whySlabs, ""},
	"slab_reassign":        {subFlag, whySlabs, ""},
	"no_slab_reassign":     {subFlag, whySlabs, ""},
	"slab_automove":        {subOptInt, whySlabs, ""},
	"no_slab_automove":     {subFlag, whySlabs, ""},
	"slab_automove_ratio":  {subFloat, whySlabs, ""},
	"slab_automove_window": {subInt, whySlabs, ""},
	"tail_repair_time":     {subInt, whySlabs, "Missing numeric argument for tail_repair_time"},
	"hash_algorithm":       {subString, whySlabs, ""},
	"lru_maintainer":       {subFlag, whySlabs, ""},
	"no_lru_maintainer":    {subFlag, whySlabs, ""},
	"hot_lru_pct":          {subInt, whySlabs, ""},
	"warm_lru_pct":         {subInt, whySlabs, ""},
	"hot_max_factor":       {subFloat, whySlabs, ""},
	"warm_max_factor":      {subFloat, whySlabs, ""},
	"temporary_ttl":        {subInt, whySlabs, ""},
	"slab_sizes":           {subString, whySlabs, ""},
	"slab_chunk_max":       {subInt, whySlabs, ""},
	"track_sizes":          {subFlag, whySlabs, ""},
	"no_chunked_items":     {subFlag, whySlabs, ""},
	"modern":               {subFlag, "it selects memcached's internal defaults", ""},
	"no_modern":            {subFlag, "it selects memcached's internal defaults", ""},
	"inline_ascii_resp":    {subFlag, "it is obsolete in memcached too", ""},
	"no_inline_ascii_resp": {subFlag, "it is obsolete in memcached too", ""},
	"resp_obj_mem_limit":   {subFlag, "it is obsolete in memcached too", ""},
	"read_buf_mem_limit":   {subInt, "memcluster does not pool connection buffers", ""},
	"worker_logbuf_size":   {subInt, whyLogger, ""},
	"no_maxconns_fast":     {subFlag, "memcluster always refuses connections over -c at once", ""},
	"drop_privileges":      {subFlag, "memcluster does not sandbox itself", ""},
	"no_drop_privileges":   {subFlag, "memcluster does not sandbox itself", ""},
	"sock_cookie_id":       {subOptInt, "memcluster does not set socket cookies", ""},

	"ext_path":                {subString, whyExtstore, ""},
	"ext_page_size":           {subInt, whyExtstore, ""},
	"ext_wbuf_size":           {subInt, whyExtstore, ""},
	"ext_threads":             {subInt, whyExtstore, ""},
	"ext_io_depth":            {subInt, whyExtstore, ""},
	"ext_item_size":           {subInt, whyExtstore, ""},
	"ext_item_age":            {subInt, whyExtstore, ""},
	"ext_low_ttl":             {subInt, whyExtstore, ""},
	"ext_recache_rate":        {subInt, whyExtstore, ""},
	"ext_compact_under":       {subInt, whyExtstore, ""},
	"ext_drop_under":          {subInt, whyExtstore, ""},
	"ext_max_sleep":           {subInt, whyExtstore, ""},
	"ext_max_frag":            {subFloat, whyExtstore, ""},
	"ext_drop_unread":         {subFlag, whyExtstore, ""},
	"slab_automove_freeratio": {subFloat, whyExtstore, ""},
}

// cAtoi reads s as C's atoi: white space, a sign and the digits that
// follow, whatever comes after; 0 if there are none. Values past 32 bits
// saturate.
func cAtoi(s string) int {
	i := 0
	for i < len(s) && (s[i] == ' ' || s[i] >= '\t' && s[i] <= '\r') {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	n := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		n = min(n*10+int(s[i]-'0'), math.MaxInt32)
	}
	if neg {
		return -n
	}
	return n
}

// setExtended applies one -o value: a comma-separated list of key or
// key=value, as memcached's getsubopt reads it.
func setExtended(p *parser, opt, val string) error {
	if val == "" {
		return nil
	}
	for _, item := range strings.Split(val, ",") {
		key, v, hasVal := strings.Cut(item, "=")
		if err := p.subopt(item, key, v, hasVal); err != nil {
			return err
		}
	}
	return nil
}

// subopt applies the -o item "key" or "key=v".
func (p *parser) subopt(item, key, v string, hasVal bool) error {
	cfg, t := &p.o.cfg, &p.o.tls
	missing := func(msg string) error {
		if msg == "" {
			msg = "Missing " + key + " argument"
		}
		return errors.New(msg)
	}
	unparsable := func() error { return fmt.Errorf("could not parse argument to %s", key) }
	intValue := func(missingMsg string) (int, error) {
		if !hasVal {
			return 0, missing(missingMsg)
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, unparsable()
		}
		return n, nil
	}
	stringValue := func() (string, error) {
		if !hasVal || v == "" {
			return "", missing("")
		}
		return v, nil
	}

	var err error
	switch key {
	case "maxconns_fast":
		// memcached's default, and memcluster's only behaviour.
	case "lru_crawler":
		cfg.NoLRUCrawler = false
	case "no_lru_crawler":
		cfg.NoLRUCrawler = true
	case "lru_crawler_sleep":
		if !hasVal {
			return missing("Missing lru_crawler_sleep value")
		}
		// memcached reads it with atoi: "x" is 0.
		n := cAtoi(v)
		if n < 0 || n > config.MaxLRUCrawlerSleep {
			return errors.New("LRU crawler sleep must be between 0 and 1 second")
		}
		cfg.LRUCrawlerSleep = n
		if n == 0 {
			cfg.LRUCrawlerSleep = -1 // no rest; 0 is the default
		}
	case "lru_crawler_tocrawl":
		if !hasVal {
			return missing("Missing lru_crawler_tocrawl value")
		}
		n, ok := protocol.ParseUint32([]byte(v))
		if !ok {
			return errors.New("lru_crawler_tocrawl takes a numeric 32bit value")
		}
		cfg.LRUCrawlerToCrawl = n
	case "idle_timeout":
		var n int
		if n, err = intValue("Missing numeric argument for idle_timeout"); err == nil {
			if n < 0 || int64(n) > math.MaxInt64/int64(time.Second) {
				return unparsable()
			}
			cfg.IdleTimeout = time.Duration(n) * time.Second
		}
	case "watcher_logbuf_size":
		// Kilobytes, as memcached's.
		var n int
		if n, err = intValue(""); err == nil {
			if n < 0 || n > math.MaxInt32/1024 {
				return unparsable()
			}
			cfg.WatcherBufSize = max(n*1024, 1) // 0 KiB: a buffer that holds no line
		}
	case "ssl_chain_cert":
		t.ChainCert, err = stringValue()
	case "ssl_key":
		t.Key, err = stringValue()
	case "ssl_ciphers":
		t.Ciphers, err = stringValue()
	case "ssl_ca_cert":
		t.CACert, err = stringValue()
	case "ssl_keyformat":
		t.KeyFormat, err = intValue("")
	case "ssl_verify_mode":
		var n int
		if n, err = intValue(""); err == nil {
			modes := []tls.ClientAuthType{tls.NoClientCert, tls.VerifyClientCertIfGiven, tls.RequireAndVerifyClientCert, tls.RequireAndVerifyClientCert}
			if n < 0 || n >= len(modes) {
				return errors.New("Invalid ssl_verify_mode. Use help to see valid options.")
			}
			t.ClientAuth = modes[n]
		}
	case "ssl_wbuf_size":
		var n int
		if n, err = intValue(""); err == nil {
			if n < 0 || n > math.MaxInt32/1024 {
				return unparsable()
			}
			t.WBufSize = n * 1024
		}
	case "ssl_session_cache":
		t.SessionCache = true
	case "ssl_kernel_tls":
		t.KernelTLS = true
	case "ssl_min_version":
		var n int
		if n, err = intValue(""); err == nil {
			versions := []uint16{tls.VersionTLS10, tls.VersionTLS11, tls.VersionTLS12, tls.VersionTLS13}
			if n < 0 || n >= len(versions) {
				return errors.New("Invalid ssl_min_version. Use help to see valid options.")
			}
			t.MinVersion = versions[n]
		}
	default:
		def, ok := ignoredSubopts[key]
		if !ok {
			return fmt.Errorf("Illegal suboption %q", item)
		}
		switch def.kind {
		case subInt:
			_, err = intValue(def.missing)
		case subOptInt:
			if hasVal {
				_, err = intValue(def.missing)
			}
		case subFloat:
			if !hasVal {
				return missing(def.missing)
			}
			if _, ferr := strconv.ParseFloat(v, 64); ferr != nil {
				return unparsable()
			}
		case subString:
			_, err = stringValue()
			if err == nil && key == "hash_algorithm" && v != "jenkins" && v != "murmur3" && v != "xxh3" {
				return errors.New("Unknown hash_algorithm option (jenkins, murmur3, xxh3)")
			}
		}
		if err == nil {
			p.ignore("-o "+key, def.why)
		}
	}
	return err
}

// finishTLS checks the TLS options of -Z and sets cfg.TLS. The files are
// read when the node starts: an error there is memcached's too ("Error
// loading the certificate chain: …"), from node.TLSFileError. memcached
// reads the key from ssl_key alone; memcluster also finds it in the
// ssl_chain_cert file when ssl_key is not given.
func (p *parser) finishTLS(tcpOff bool) error {
	o, t := p.o, &p.o.tls
	if t.ChainCert == "" {
		return errors.New("Error loading the certificate chain: no file given; name it with -o ssl_chain_cert=<file>")
	}
	keyFile := t.Key
	if keyFile == "" {
		keyFile = t.ChainCert
	}
	// memcached's ssl_keyformat is OpenSSL's SSL_FILETYPE_PEM (1, its
	// default) or SSL_FILETYPE_ASN1 (2).
	if t.KeyFormat != 0 && t.KeyFormat != 1 && t.KeyFormat != 2 {
		return fmt.Errorf("Error loading the key: %s : ssl_keyformat=%d is neither 1 (PEM) nor 2 (ASN.1, DER)", keyFile, t.KeyFormat)
	}
	if t.Ciphers != "" {
		p.ignore("-o ssl_ciphers", "Go's crypto/tls chooses among its own secure cipher suites; OpenSSL cipher lists do not apply")
	}
	if t.WBufSize != 0 {
		p.ignore("-o ssl_wbuf_size", "Go's crypto/tls sizes its own records and buffers")
	}
	if t.KernelTLS {
		p.ignore("-o ssl_kernel_tls", "Go's crypto/tls does not hand encryption to the kernel")
	}
	if t.ClientAuth != tls.NoClientCert && t.CACert == "" {
		p.warn("ssl_verify_mode asks for client certificates but no ssl_ca_cert is given: "+
			"no client certificate can be verified, so clients that send one are refused, as in memcached",
			"option", "-o ssl_verify_mode")
	}
	if tcpOff {
		p.warn("TLS has no effect: TCP is off (-s or -p 0) and the unix socket is never TLS", "option", "-Z")
	}
	var noTLS []string
	for _, l := range o.listeners {
		if l.NoTLS && !tcpOff {
			noTLS = append(noTLS, l.Addr)
		}
	}
	o.cfg.TLS = &node.TLSConfig{
		CertFile:     t.ChainCert,
		KeyFile:      t.Key,
		KeyDER:       t.KeyFormat == 2,
		CAFile:       t.CACert,
		ClientAuth:   t.ClientAuth,
		MinVersion:   t.MinVersion,
		SessionCache: t.SessionCache,
		NoTLSAddrs:   noTLS,
	}
	return nil
}

// tls_endpoint.go owns the TLS endpoint spellings of contract section 7: the
// server forms `tls:PORT[:interface=ADDR]` and Twisted's
// `ssl:PORT:privateKey=KEY:certKey=CERT[:extraCertChain=CHAIN][:interface=ADDR]`,
// and the client forms `tls:HOST:PORT`,
// `tls:HOST:PORT:trustRoots=PATH[:certificate=CERT:privateKey=KEY]` and
// `ssl:host=H:port=P[:caCertsDir=DIR][:certKey=CERT:privateKey=KEY]`.
//
// Syntax, as Twisted's endpoint strings: fields are separated by ':'; a
// backslash escapes the next character (`interface=\:\:1`); positional
// fields come first, then key=value fields. Because an IPv6 address has
// colons of its own, a field that is not `key=` and follows a key=value
// field continues that value (`interface=::1` works unescaped, as in
// parseServerEndpoint), and a host may be written in brackets
// (`tls:[::1]:8099`, `host=[::1]`), inside which ':' does not separate.
//
// Invariants: parsing touches no file and no network; every error names the
// spelling and what is wrong; a parsed endpoint is a plain value.
package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// tlsServerEndpoint is a parsed `tls:` or `ssl:` listening endpoint.
type tlsServerEndpoint struct {
	address   string // host:port for net.Listen; host empty for every interface
	certFile  string // "" means --tls-cert
	keyFile   string // "" means --tls-key
	chainFile string // extra certificates sent after ours; "" for none
}

// tlsClientEndpoint is a parsed `tls:` or `ssl:` endpoint to dial.
type tlsClientEndpoint struct {
	host, port string
	trustRoots string // a PEM file or a directory of *.pem; "" means --tls-ca or the system roots
	certFile   string // our certificate to present; "" means --tls-cert (if any)
	keyFile    string // its key; "" means --tls-key, or certFile when certFile is set
}

// address is host:port for net.Dial.
func (e *tlsClientEndpoint) address() string { return net.JoinHostPort(e.host, e.port) }

// isTLSEndpoint says whether s is spelt as a TLS endpoint (tls: or ssl:),
// so that the caller picks the TLS parser rather than the plain one.
func isTLSEndpoint(s string) bool {
	return strings.HasPrefix(s, "tls:") || strings.HasPrefix(s, "ssl:")
}

// tlsField is one ':'-separated field of an endpoint string, unescaped.
type tlsField struct {
	key   string // "" for a positional field
	value string
}

// tlsSplitEndpoint splits the part after "tls:"/"ssl:" into fields.
func tlsSplitEndpoint(s string) ([]tlsField, error) {
	// First pass: split on ':' that is neither escaped nor inside brackets.
	var raw []string
	var cur strings.Builder
	depth := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			if i+1 == len(s) {
				return nil, fmt.Errorf("trailing backslash")
			}
			i++
			cur.WriteByte(s[i])
		case c == '[':
			depth++
			cur.WriteByte(c)
		case c == ']':
			if depth == 0 {
				return nil, fmt.Errorf("unbalanced ']'")
			}
			depth--
			cur.WriteByte(c)
		case c == ':' && depth == 0:
			raw = append(raw, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced '['")
	}
	raw = append(raw, cur.String())
	var fields []tlsField
	sawKey := false
	for _, f := range raw {
		if k, v, ok := strings.Cut(f, "="); ok && tlsIsKey(k) {
			fields = append(fields, tlsField{k, v})
			sawKey = true
			continue
		}
		if sawKey {
			// Continues the previous value (an IPv6 address, a path with ':').
			fields[len(fields)-1].value += ":" + f
			continue
		}
		fields = append(fields, tlsField{"", f})
	}
	return fields, nil
}

// tlsIsKey says whether k can be a parameter name (Twisted's are camelCase).
func tlsIsKey(k string) bool {
	if k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// tlsUnbracket strips the brackets of an IPv6 literal.
func tlsUnbracket(h string) string {
	if len(h) >= 2 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// tlsParsePort checks a port number; min is 0 for listeners, 1 for dialling.
func tlsParsePort(p string, min int) (string, error) {
	n, err := strconv.Atoi(p)
	if err != nil || n < min || n > 65535 || strings.HasPrefix(p, "+") {
		return "", fmt.Errorf("bad port %q", p)
	}
	return strconv.Itoa(n), nil
}

// parseTLSServerEndpoint parses a listening endpoint spelt tls:... or ssl:....
// ssl: without privateKey= uses --tls-cert/--tls-key, like tls:; certKey
// defaults to privateKey (one PEM file holding both), as in Twisted.
func parseTLSServerEndpoint(s string) (*tlsServerEndpoint, error) {
	kind, rest, _ := strings.Cut(s, ":")
	want := "tls:PORT[:interface=ADDR]"
	if kind == "ssl" {
		want = "ssl:PORT:privateKey=KEY:certKey=CERT[:extraCertChain=CHAIN][:interface=ADDR]"
	} else if kind != "tls" {
		return nil, fmt.Errorf("invalid TLS endpoint %q (want tls:PORT[:interface=ADDR] or ssl:PORT:privateKey=KEY:certKey=CERT)", s)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("invalid TLS endpoint %q: %s (want %s)", s, fmt.Sprintf(format, a...), want)
	}
	fields, err := tlsSplitEndpoint(rest)
	if err != nil {
		return nil, bad("%v", err)
	}
	var port, host string
	ep := &tlsServerEndpoint{}
	havePort, havePriv := false, false
	seen := map[string]bool{}
	for _, f := range fields {
		if f.key == "" {
			if havePort {
				return nil, bad("unexpected field %q", f.value)
			}
			port, havePort = f.value, true
			continue
		}
		if seen[f.key] {
			return nil, bad("%s given twice", f.key)
		}
		seen[f.key] = true
		switch {
		case f.key == "port":
			if havePort {
				return nil, bad("port given twice")
			}
			port, havePort = f.value, true
		case f.key == "interface":
			host = tlsUnbracket(f.value)
			if host != "" && net.ParseIP(host) == nil {
				return nil, bad("interface %q is not an IP address", f.value)
			}
		case f.key == "backlog":
			// Accepted and ignored, as parseServerEndpoint does.
		case kind == "ssl" && f.key == "privateKey":
			ep.keyFile, havePriv = f.value, true
		case kind == "ssl" && f.key == "certKey":
			ep.certFile = f.value
		case kind == "ssl" && f.key == "extraCertChain":
			ep.chainFile = f.value
		default:
			return nil, bad("unknown parameter %q", f.key)
		}
	}
	if !havePort || port == "" {
		return nil, bad("no port")
	}
	if port, err = tlsParsePort(port, 0); err != nil {
		return nil, bad("%v", err)
	}
	for what, v := range map[string]string{"privateKey": ep.keyFile, "certKey": ep.certFile, "extraCertChain": ep.chainFile} {
		if seen[what] && v == "" {
			return nil, bad("empty %s", what)
		}
	}
	switch {
	case havePriv && ep.certFile == "":
		ep.certFile = ep.keyFile
	case !havePriv && ep.certFile != "":
		return nil, bad("certKey without privateKey")
	case !havePriv && ep.chainFile != "":
		return nil, bad("extraCertChain without privateKey and certKey")
	}
	ep.address = net.JoinHostPort(host, port)
	return ep, nil
}

// parseTLSClientEndpoint parses an endpoint to dial spelt tls:... or ssl:....
// A key without a certificate is an error; a certificate without a key
// means one PEM file holding both, as in Twisted.
func parseTLSClientEndpoint(s string) (*tlsClientEndpoint, error) {
	kind, rest, _ := strings.Cut(s, ":")
	want := "tls:HOST:PORT[:trustRoots=PATH][:certificate=CERT:privateKey=KEY]"
	certKey := "certificate"
	rootsKey := "trustRoots"
	if kind == "ssl" {
		want = "ssl:host=HOST:port=PORT[:caCertsDir=DIR][:certKey=CERT:privateKey=KEY]"
		certKey, rootsKey = "certKey", "caCertsDir"
	} else if kind != "tls" {
		return nil, fmt.Errorf("invalid TLS endpoint %q (want tls:HOST:PORT[:trustRoots=PATH] or ssl:host=HOST:port=PORT)", s)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("invalid TLS endpoint %q: %s (want %s)", s, fmt.Sprintf(format, a...), want)
	}
	fields, err := tlsSplitEndpoint(rest)
	if err != nil {
		return nil, bad("%v", err)
	}
	ep := &tlsClientEndpoint{}
	var positional []string
	haveHost, havePort := false, false
	seen := map[string]bool{}
	for _, f := range fields {
		if f.key == "" {
			positional = append(positional, f.value)
			continue
		}
		if seen[f.key] {
			return nil, bad("%s given twice", f.key)
		}
		seen[f.key] = true
		switch f.key {
		case "host":
			ep.host, haveHost = f.value, true
		case "port":
			ep.port, havePort = f.value, true
		case rootsKey:
			ep.trustRoots = f.value
		case certKey:
			ep.certFile = f.value
		case "privateKey":
			ep.keyFile = f.value
		default:
			return nil, bad("unknown parameter %q", f.key)
		}
	}
	for _, v := range positional {
		switch {
		case !haveHost:
			ep.host, haveHost = v, true
		case !havePort:
			ep.port, havePort = v, true
		default:
			if strings.Count(rest, ":") > 2 && !strings.Contains(rest, "[") {
				return nil, bad("too many fields (an IPv6 host goes in brackets: [::1])")
			}
			return nil, bad("unexpected field %q", v)
		}
	}
	if !haveHost || ep.host == "" {
		return nil, bad("no host")
	}
	if !havePort {
		return nil, bad("no port")
	}
	ep.host = tlsUnbracket(ep.host)
	if ep.host == "" {
		return nil, bad("no host")
	}
	if strings.ContainsAny(ep.host, "[]") || (strings.Contains(ep.host, ":") && net.ParseIP(ep.host) == nil) {
		return nil, bad("bad host %q", ep.host)
	}
	if ep.port, err = tlsParsePort(ep.port, 1); err != nil {
		return nil, bad("%v", err)
	}
	for _, k := range []string{rootsKey, certKey, "privateKey"} {
		if seen[k] {
			v := map[string]string{rootsKey: ep.trustRoots, certKey: ep.certFile, "privateKey": ep.keyFile}[k]
			if v == "" {
				return nil, bad("empty %s", k)
			}
		}
	}
	if ep.keyFile != "" && ep.certFile == "" {
		return nil, bad("privateKey without %s", certKey)
	}
	if ep.certFile != "" && ep.keyFile == "" {
		ep.keyFile = ep.certFile
	}
	return ep, nil
}

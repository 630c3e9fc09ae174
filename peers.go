// peers.go owns the peers file (--peers, contract section 7): who may take
// which role over TLS, and who may publish under which IVOID prefixes.
//
// Format, one identity a line:
//
//	IDENTITY NAME [option]...
//
// IDENTITY is a TLS pin `sha256:` + 64 hex digits (SHA-256 of the
// certificate's SubjectPublicKeyInfo) or an OpenPGP signing-key fingerprint
// `pgp:` + 40 or 64 hex digits; either case. NAME is 1 to 64 characters of
// [A-Za-z0-9._@+-], starting with a letter or digit; it names the identity in
// logs, /status and COMET_PEER. Options:
//
//	allow=author,subscriber   roles over TLS (default both; once per line)
//	ivorn-prefix=ivo://A/P    repeatable; matched at a boundary, case-insensitively
//	filter=XPATH              repeatable; an event is delivered to this subscriber
//	                          only if at least one of its filters selects it (as
//	                          Comet's own filters combine), whatever it asks
//	durable                   the spool keeps events for this subscriber (section 9)
//
// allow=, filter= and durable concern TLS identities; on a pgp: line they are
// refused. On a pgp: line ivorn-prefix= works both ways (see signerRule).
//
// A value may be double-quoted, with \" and \\ inside (any other backslash is
// kept as it is); quotes may start anywhere in a word (filter="..."). `#`
// starts a comment outside quotes. Blank lines are ignored.
//
// Invariants: a peerTable is immutable once parsed, so any goroutine may use
// it; identities and names are unique in a table; every error names the file
// and line. A nil *peerTable is an empty one.
package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Limits on a peers file.
const (
	peersMaxFileSize = 4 << 20 // bytes
	peersMaxNameLen  = 64
)

// peerIdentity is one line of the peers file, or (listed false) a TLS peer
// that verified against --tls-ca without being listed.
type peerIdentity struct {
	name            string
	pin             string // "sha256:" + lower-case hex, for a TLS identity
	pgp             string // upper-case hex fingerprint, for an OpenPGP identity
	allowAuthor     bool
	allowSubscriber bool
	prefixes        []string     // ivorn-prefix= values, as written
	filters         []*xpathExpr // compiled filter= values
	filterText      []string     // their source, in the same order
	durable         bool
	listed          bool // false for a CA-verified peer not in the file
	line            int  // line in the peers file, for messages
}

// key is the identity as the file spells it, normalised: "sha256:hex" or
// "pgp:HEX". Keep it on a live connection and look it up again after SIGHUP.
func (id *peerIdentity) key() string {
	if id.pgp != "" {
		return "pgp:" + id.pgp
	}
	return id.pin
}

// String is the name, for logs.
func (id *peerIdentity) String() string { return id.name }

// peerTable is a parsed peers file.
type peerTable struct {
	source string // file name, for messages
	ids    []*peerIdentity
	byPin  map[string]*peerIdentity
	byPGP  map[string]*peerIdentity
	byName map[string]*peerIdentity
}

// identities lists the identities in file order.
func (pt *peerTable) identities() []*peerIdentity {
	if pt == nil {
		return nil
	}
	return pt.ids
}

// lookupPin finds the TLS identity with this pin (hex in either case).
func (pt *peerTable) lookupPin(pin string) *peerIdentity {
	if pt == nil {
		return nil
	}
	norm, ok := peerNormalisePin(pin)
	if !ok {
		return nil
	}
	return pt.byPin[norm]
}

// lookupPGP finds the OpenPGP identity with this fingerprint (hex in either
// case, with or without "pgp:").
func (pt *peerTable) lookupPGP(fpr string) *peerIdentity {
	if pt == nil {
		return nil
	}
	return pt.byPGP[strings.ToUpper(strings.TrimPrefix(strings.TrimPrefix(fpr, "pgp:"), "PGP:"))]
}

// lookupKey finds an identity by its key() (or any spelling of it).
func (pt *peerTable) lookupKey(key string) *peerIdentity {
	if strings.HasPrefix(strings.ToLower(key), "pgp:") {
		return pt.lookupPGP(key)
	}
	return pt.lookupPin(key)
}

// lookupName finds an identity by name.
func (pt *peerTable) lookupName(name string) *peerIdentity {
	if pt == nil {
		return nil
	}
	return pt.byName[name]
}

// peerNormalisePin checks "sha256:" + 64 hex digits and lower-cases it.
func peerNormalisePin(s string) (string, bool) {
	if len(s) != len("sha256:")+64 || !strings.EqualFold(s[:7], "sha256:") || !peerIsHex(s[7:]) {
		return "", false
	}
	return "sha256:" + strings.ToLower(s[7:]), true
}

func peerIsHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return s != ""
}

func peerValidName(s string) bool {
	if s == "" || len(s) > peersMaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !alnum && (i == 0 || !strings.ContainsRune("._@+-", rune(c))) {
			return false
		}
	}
	return true
}

// parsePeersFile reads and parses a peers file.
func parsePeersFile(path string) (*peerTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("peers file: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, peersMaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("peers file %s: %v", path, err)
	}
	return parsePeers(data, path)
}

// peerLineError is a syntax or rule error on one line.
type peerLineError struct {
	file string
	line int
	msg  string
}

func (e *peerLineError) Error() string {
	return fmt.Sprintf("peers file %s:%d: %s", e.file, e.line, e.msg)
}

// parsePeers parses the contents of a peers file; name is used in errors.
func parsePeers(data []byte, name string) (*peerTable, error) {
	if len(data) > peersMaxFileSize {
		return nil, fmt.Errorf("peers file %s: larger than %d bytes", name, peersMaxFileSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
	pt := &peerTable{source: name, byPin: map[string]*peerIdentity{}, byPGP: map[string]*peerIdentity{}, byName: map[string]*peerIdentity{}}
	lines := bytes.Split(data, []byte("\n"))
	for i, raw := range lines {
		ln := i + 1
		fail := func(format string, a ...any) error {
			return &peerLineError{name, ln, fmt.Sprintf(format, a...)}
		}
		words, err := peerSplitLine(string(bytes.TrimSuffix(raw, []byte("\r"))))
		if err != nil {
			return nil, fail("%v", err)
		}
		if len(words) == 0 {
			continue
		}
		if len(words) < 2 {
			return nil, fail("want IDENTITY NAME [option]..., got only %q", peerTruncate(words[0]))
		}
		id := &peerIdentity{allowAuthor: true, allowSubscriber: true, listed: true, line: ln}
		ident := words[0]
		switch {
		case strings.HasPrefix(strings.ToLower(ident), "sha256:"):
			pin, ok := peerNormalisePin(ident)
			if !ok {
				return nil, fail("identity %q: a pin is sha256: and 64 hex digits", peerTruncate(ident))
			}
			id.pin = pin
		case strings.HasPrefix(strings.ToLower(ident), "pgp:"):
			h := ident[4:]
			if (len(h) != 40 && len(h) != 64) || !peerIsHex(h) {
				return nil, fail("identity %q: a fingerprint is pgp: and 40 or 64 hex digits", peerTruncate(ident))
			}
			id.pgp = strings.ToUpper(h)
		default:
			return nil, fail("identity %q: want sha256:HEX or pgp:HEX", peerTruncate(ident))
		}
		if !peerValidName(words[1]) {
			return nil, fail("name %q: want 1 to %d of A-Z a-z 0-9 . _ @ + -, starting with a letter or digit", peerTruncate(words[1]), peersMaxNameLen)
		}
		id.name = words[1]
		sawAllow := false
		for _, w := range words[2:] {
			opt, val, hasVal := strings.Cut(w, "=")
			switch opt {
			case "allow":
				if sawAllow {
					return nil, fail("allow= given twice")
				}
				sawAllow = true
				id.allowAuthor, id.allowSubscriber = false, false
				if val == "" {
					return nil, fail("allow= wants author, subscriber or both")
				}
				for _, role := range strings.Split(val, ",") {
					switch role {
					case "author":
						id.allowAuthor = true
					case "subscriber":
						id.allowSubscriber = true
					default:
						return nil, fail("allow=: unknown role %q (want author, subscriber)", peerTruncate(role))
					}
				}
			case "ivorn-prefix":
				if err := peerCheckPrefix(val); err != nil {
					return nil, fail("ivorn-prefix=%q: %v", peerTruncate(val), err)
				}
				if slices.Contains(id.prefixes, val) {
					return nil, fail("ivorn-prefix=%q given twice", peerTruncate(val))
				}
				id.prefixes = append(id.prefixes, val)
			case "filter":
				if val == "" {
					return nil, fail("filter= is empty")
				}
				x, err := compileXPath(val)
				if err != nil {
					return nil, fail("filter=%q: %v", peerTruncate(val), err)
				}
				id.filters = append(id.filters, x)
				id.filterText = append(id.filterText, val)
			case "durable":
				if hasVal {
					return nil, fail("durable takes no value")
				}
				if id.durable {
					return nil, fail("durable given twice")
				}
				id.durable = true
			default:
				return nil, fail("unknown option %q (want allow=, ivorn-prefix=, filter= or durable)", peerTruncate(opt))
			}
		}
		if id.pgp != "" && (sawAllow || id.durable || len(id.filters) > 0) {
			return nil, fail("allow=, filter= and durable apply to TLS identities (sha256:), not to pgp: keys")
		}
		if other := pt.lookupKey(id.key()); other != nil {
			return nil, fail("identity %s already listed on line %d (as %s)", peerTruncate(ident), other.line, other.name)
		}
		if other := pt.byName[id.name]; other != nil {
			return nil, fail("name %s already used on line %d", id.name, other.line)
		}
		pt.ids = append(pt.ids, id)
		pt.byName[id.name] = id
		if id.pgp != "" {
			pt.byPGP[id.pgp] = id
		} else {
			pt.byPin[id.pin] = id
		}
	}
	return pt, nil
}

// peerTruncate shortens echoed input for messages.
func peerTruncate(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// peerSplitLine splits one line into words: whitespace separates, double
// quotes group (with \" and \\), # outside quotes ends the line.
func peerSplitLine(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if inQuote {
			switch {
			case c == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\'):
				i++
				cur.WriteByte(line[i])
			case c == '"':
				inQuote = false
			default:
				cur.WriteByte(c)
			}
			continue
		}
		switch c {
		case ' ', '\t', '\v', '\f', '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case '#':
			if inWord {
				words = append(words, cur.String())
			}
			return words, nil
		case '"':
			inQuote, inWord = true, true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// peerCheckPrefix checks an ivorn-prefix= value: ivo:// and an authority.
func peerCheckPrefix(p string) error {
	if len(p) < 6 || !strings.EqualFold(p[:6], "ivo://") {
		return fmt.Errorf("want ivo://AUTHORITY[/PATH]")
	}
	rest := p[6:]
	auth, _, _ := strings.Cut(rest, "/")
	auth, _, _ = strings.Cut(auth, "#")
	if auth == "" {
		return fmt.Errorf("no authority")
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] >= 0x7f {
			return fmt.Errorf("control, space or non-ASCII character")
		}
	}
	return nil
}

// ivornPrefixAllows says whether ivorn falls under any of prefixes. A prefix
// matches at a boundary: what follows it in the IVOID is nothing, '/', '#'
// or '?', unless the prefix itself ends in '/' or '#'. The comparison ignores
// case, since the registry part of an IVOID is case-insensitive (Identifiers
// 2.0): otherwise ivo://ALICE.example/x#1 would slip past a claim on
// ivo://alice.example. No prefixes admits nothing.
func ivornPrefixAllows(prefixes []string, ivorn string) bool {
	for _, p := range prefixes {
		if len(ivorn) < len(p) || !strings.EqualFold(ivorn[:len(p)], p) {
			continue
		}
		if len(ivorn) == len(p) || strings.HasSuffix(p, "/") || strings.HasSuffix(p, "#") {
			return true
		}
		switch ivorn[len(p)] {
		case '/', '#', '?':
			return true
		}
	}
	return false
}

// authorAllows says whether this TLS identity may submit ivorn; when not,
// the reason names the identity and the rule, for the nak. A nil identity
// (an anonymous client) is not restricted here.
func (id *peerIdentity) authorAllows(ivorn string) (bool, string) {
	if id == nil {
		return true, ""
	}
	if !id.allowAuthor {
		return false, fmt.Sprintf("peer %s may not submit events (allow= lacks author)", id.name)
	}
	if len(id.prefixes) > 0 && !ivornPrefixAllows(id.prefixes, ivorn) {
		return false, fmt.Sprintf("peer %s may submit only under %s, not %s", id.name, strings.Join(id.prefixes, " "), peerTruncate(ivorn))
	}
	return true, ""
}

// allows says whether this TLS identity may take role ("author" or
// "subscriber"); check it right after the handshake and end the connection,
// with a log line naming the identity and the role, if not. nil (anonymous)
// is not restricted here.
func (id *peerIdentity) allows(role string) bool {
	switch {
	case id == nil:
		return true
	case role == "author":
		return id.allowAuthor
	case role == "subscriber":
		return id.allowSubscriber
	}
	return false
}

// subscriberAllowed says whether this TLS identity may subscribe; nil (an
// anonymous client) is not restricted here.
func (id *peerIdentity) subscriberAllowed() bool { return id == nil || id.allowSubscriber }

// filterAllows applies the identity's imposed filters to an event: true if
// it has none or at least one selects doc. The subscriber's own filters are
// applied as well, by the caller.
func (id *peerIdentity) filterAllows(doc *document) bool {
	if id == nil || len(id.filters) == 0 {
		return true
	}
	for _, x := range id.filters {
		if x.matches(doc) {
			return true
		}
	}
	return false
}

// signerRule applies the two-way pgp: rule of contract section 7 to an
// event, whatever its source: a listed key with ivorn-prefix= values may sign
// only under them, and a prefix claimed by one or more pgp: identities admits
// only events validly signed by one of them. sigValid and signerFpr are the
// signature check's verdict and the fingerprint it reports (the signing key
// or subkey; hex, either case). alsoFprs are other fingerprints of the same
// signer (its primary key's, when a subkey signed), so that a peers file may
// list either; the first listed one is the signer. When not ok, reason names
// the identity and the rule, for a nak or a drop counter.
func (pt *peerTable) signerRule(ivorn string, sigValid bool, signerFpr string, alsoFprs ...string) (ok bool, reason string) {
	if pt == nil {
		return true, ""
	}
	var signer *peerIdentity
	if sigValid && signerFpr != "" {
		for _, f := range append([]string{signerFpr}, alsoFprs...) {
			if signer = pt.lookupPGP(f); signer != nil {
				break
			}
		}
	}
	if signer != nil && len(signer.prefixes) > 0 && !ivornPrefixAllows(signer.prefixes, ivorn) {
		return false, fmt.Sprintf("key %s may sign only under %s, not %s", signer.name, strings.Join(signer.prefixes, " "), peerTruncate(ivorn))
	}
	var claimants []string
	for _, id := range pt.ids {
		if id.pgp == "" || !ivornPrefixAllows(id.prefixes, ivorn) {
			continue
		}
		if id == signer {
			return true, ""
		}
		claimants = append(claimants, id.name)
	}
	if len(claimants) > 0 {
		what := "unsigned or badly signed"
		if sigValid && signerFpr != "" {
			what = "signed by another key"
		}
		return false, fmt.Sprintf("%s is under a prefix claimed by key %s and is %s: refused as forged", peerTruncate(ivorn), strings.Join(claimants, ", "), what)
	}
	return true, ""
}

// diff compares the table before a reload (pt) with the one after: removed
// holds the old identities whose key is gone, changed the new versions of
// those whose name or options differ. Disconnect the removed at once; the
// changed apply to live connections if these look their identity up again
// by key().
func (pt *peerTable) diff(next *peerTable) (removed, changed []*peerIdentity) {
	for _, old := range pt.identities() {
		n := next.lookupKey(old.key())
		switch {
		case n == nil:
			removed = append(removed, old)
		case !peerSameOptions(old, n):
			changed = append(changed, n)
		}
	}
	return removed, changed
}

func peerSameOptions(a, b *peerIdentity) bool {
	return a.name == b.name && a.allowAuthor == b.allowAuthor && a.allowSubscriber == b.allowSubscriber &&
		a.durable == b.durable && slices.Equal(a.prefixes, b.prefixes) && slices.Equal(a.filterText, b.filterText)
}

// format writes the table back as a peers file that parses to an equal table.
func (pt *peerTable) format() []byte {
	var b bytes.Buffer
	for _, id := range pt.identities() {
		b.WriteString(id.key())
		b.WriteByte(' ')
		b.WriteString(id.name)
		if id.pin != "" && !(id.allowAuthor && id.allowSubscriber) {
			switch {
			case id.allowAuthor:
				b.WriteString(" allow=author")
			case id.allowSubscriber:
				b.WriteString(" allow=subscriber")
			}
		}
		for _, p := range id.prefixes {
			b.WriteString(" ivorn-prefix=")
			b.WriteString(peerQuote(p))
		}
		for _, f := range id.filterText {
			b.WriteString(" filter=")
			b.WriteString(peerQuote(f))
		}
		if id.durable {
			b.WriteString(" durable")
		}
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// peerQuote double-quotes a value, escaping " and \.
func peerQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

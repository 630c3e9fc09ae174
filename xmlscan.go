// xmlscan.go owns every byte-level look at XML that does not build a tree:
// the root element's span (the event's identity, VTP 2.0 section 8, and the
// bytes an OpenPGP signature covers, one function for both), the root's role
// and ivorn, the lenient ivorn scan used to name a document that did not
// parse, the XML declaration's encoding, and the libxml2 rules for the
// declaration that encoding/xml does not apply. White space here is always
// XML's four characters (isXMLSpace).
//
// Invariants: nothing here allocates in proportion to the input beyond the
// strings it returns, and every scan is linear in the input (each loop
// advances the index it searches from). Where the broker and `comet verify`
// differ (a DOCTYPE before the root: refused by the broker, skipped by
// verify), the difference is the doctypePolicy parameter of scanRootWith,
// nothing else.
package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// xmlSpaceChars are the characters of XML's S production.
const xmlSpaceChars = " \t\r\n"

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

func isXMLSpaceRune(r rune) bool { return r < 0x80 && isXMLSpace(byte(r)) }

// doctypePolicy says what a root scan does with a DOCTYPE before the root.
type doctypePolicy int

const (
	doctypeRefuse doctypePolicy = iota // the broker: errScanDoctype (contract difference 11)
	doctypeSkip                        // comet verify: the signed bytes start at the root anyway
)

// rootInfo is what the light scan learns about a message.
type rootInfo struct {
	start, end int    // byte span of the root element in the message
	name       string // qualified name of the root element as written
	role       string // the root's un-prefixed role attribute ("" if absent)
	ivorn      string // the root's un-prefixed ivorn attribute
	hasIvorn   bool
	hasRole    bool
}

// Errors of the light scan.
var (
	errNoRoot       = errors.New("no root element")
	errUnterminated = errors.New("root element not terminated")
	errScanDoctype  = errors.New("DOCTYPE not allowed")
	errBadTag       = errors.New("malformed start tag")
)

// scanRoot is scanRootWith under the broker's policy (a DOCTYPE is refused).
func scanRoot(raw []byte) (rootInfo, error) { return scanRootWith(raw, doctypeRefuse) }

// rootElementSpan is the span of the root element as `comet verify` and
// `comet sign` see it (a DOCTYPE before the root is skipped).
func rootElementSpan(raw []byte) (start, end int, err error) {
	ri, err := scanRootWith(raw, doctypeSkip)
	return ri.start, ri.end, err
}

// scanRootWith finds the root element of an XML message by a byte scan: it
// skips a byte-order mark, the declaration, comments, processing
// instructions, white space (and a DOCTYPE under doctypeSkip), reads the
// root's start tag and follows the nesting to its end tag, respecting quoted
// attribute values, comments, CDATA sections and processing instructions.
// raw[start:end] runs from the root's '<' to its closing '>'. It checks only
// what it needs to find the span; it is not a well-formedness check.
func scanRootWith(raw []byte, doctype doctypePolicy) (rootInfo, error) {
	if order, skip, ok := utf16Layout(raw); ok {
		return scanRootUTF16(raw, order, skip, doctype)
	}
	var ri rootInfo
	i, err := skipProlog(raw, doctype)
	if err != nil {
		return ri, err
	}
	ri.start = i
	name, selfClosing, next, err := scanTagFunc(raw, i, func(k, v []byte) {
		switch {
		case string(k) == "role" && !ri.hasRole:
			ri.role, ri.hasRole = unescapeAttr(v), true
		case string(k) == "ivorn" && !ri.hasIvorn:
			ri.ivorn, ri.hasIvorn = unescapeAttr(v), true
		}
	})
	if err != nil {
		return ri, err
	}
	ri.name = name
	if selfClosing {
		ri.end = next
		return ri, nil
	}
	// Follow the nesting to the matching end tag.
	depth := 1
	i = next
	for depth > 0 {
		j := bytes.IndexByte(raw[i:], '<')
		if j < 0 {
			return ri, errUnterminated
		}
		i += j
		rest := raw[i:]
		var k int
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			k = skipPast(rest, 4, "-->")
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			k = skipPast(rest, 9, "]]>")
		case bytes.HasPrefix(rest, []byte("<?")):
			k = skipPast(rest, 2, "?>")
		case bytes.HasPrefix(rest, []byte("</")):
			k = skipPast(rest, 2, ">")
			depth--
		case bytes.HasPrefix(rest, []byte("<!")):
			return ri, errScanDoctype
		default:
			sc, n, err := skipTag(raw, i)
			if err != nil {
				return ri, err
			}
			if !sc {
				depth++
			}
			k = n - i
		}
		if k < 0 {
			return ri, errUnterminated
		}
		i += k
	}
	ri.end = i
	return ri, nil
}

// utf16Layout recognises a UTF-16 document as charset.go does (a byte-order
// mark, or "<?" in either byte order) and says its byte order and how many
// bytes of mark to skip.
func utf16Layout(raw []byte) (order binary.ByteOrder, skip int, ok bool) {
	switch {
	case bytes.HasPrefix(raw, []byte{0xFE, 0xFF}):
		return binary.BigEndian, 2, true
	case bytes.HasPrefix(raw, []byte{0xFF, 0xFE}):
		return binary.LittleEndian, 2, true
	case bytes.HasPrefix(raw, []byte{0, '<', 0, '?'}):
		return binary.BigEndian, 0, true
	case bytes.HasPrefix(raw, []byte{'<', 0, '?', 0}):
		return binary.LittleEndian, 0, true
	}
	return nil, 0, false
}

// scanRootUTF16 scans a UTF-16 document: it transcodes it to UTF-8,
// remembering where each UTF-8 byte came from, scans that, and maps the
// span back, so the root element's span is in the message's own bytes
// (and so survives relaying unchanged, like any other encoding's).
func scanRootUTF16(raw []byte, order binary.ByteOrder, skip int, doctype doctypePolicy) (rootInfo, error) {
	body := raw[skip:]
	if len(body)%2 != 0 {
		return rootInfo{}, errBadTag
	}
	text := make([]byte, 0, len(body)/2)
	from := make([]int32, 0, len(body)/2) // from[k]: offset in raw of text[k]'s code unit
	for i := 0; i < len(body); i += 2 {
		r := rune(order.Uint16(body[i:]))
		n := 2
		if utf16.IsSurrogate(r) && i+4 <= len(body) {
			r = utf16.DecodeRune(r, rune(order.Uint16(body[i+2:])))
			n = 4
		}
		at := len(text)
		text = utf8.AppendRune(text, r)
		for range len(text) - at {
			from = append(from, int32(skip+i))
		}
		i += n - 2
	}
	ri, err := scanRootWith(text, doctype)
	if err != nil {
		return ri, err
	}
	// The root's '<' and '>' are one code unit (two bytes) each.
	ri.start, ri.end = int(from[ri.start]), int(from[ri.end-1])+2
	return ri, nil
}

// skipPast returns the length of b up to and including the first term at or
// after from, or -1 when there is none.
func skipPast(b []byte, from int, term string) int {
	k := bytes.Index(b[from:], []byte(term))
	if k < 0 {
		return -1
	}
	return from + k + len(term)
}

// rootAttrs reads only the prolog and the root's start tag, for the root's
// un-prefixed role and ivorn: the cheap look at a message whose end we do
// not need (an ack, an iamalive).
func rootAttrs(raw []byte) (role, ivorn string, err error) {
	i, err := skipProlog(raw, doctypeRefuse)
	if err != nil {
		return "", "", err
	}
	_, _, _, err = scanTagFunc(raw, i, func(k, v []byte) {
		switch {
		case string(k) == "role" && role == "":
			role = unescapeAttr(v)
		case string(k) == "ivorn" && ivorn == "":
			ivorn = unescapeAttr(v)
		}
	})
	return role, ivorn, err
}

// skipProlog returns where the root element's start tag begins: after a
// byte-order mark, the XML declaration, comments, processing instructions,
// white space, and under doctypeSkip a DOCTYPE (errScanDoctype otherwise).
func skipProlog(raw []byte, doctype doctypePolicy) (int, error) {
	i := 0
	if bytes.HasPrefix(raw, []byte{0xEF, 0xBB, 0xBF}) {
		i = 3
	}
	for {
		for i < len(raw) && isXMLSpace(raw[i]) {
			i++
		}
		rest := raw[i:]
		k := 0
		switch {
		case len(rest) == 0 || rest[0] != '<':
			return 0, errNoRoot
		case bytes.HasPrefix(rest, []byte("<?")):
			k = skipPast(rest, 2, "?>")
		case bytes.HasPrefix(rest, []byte("<!--")):
			k = skipPast(rest, 4, "-->")
		case bytes.HasPrefix(rest, []byte("<!DOCTYPE")) && doctype == doctypeSkip:
			k = skipDoctypeDecl(rest)
		case bytes.HasPrefix(rest, []byte("<!")):
			return 0, errScanDoctype
		default:
			return i, nil
		}
		if k < 0 {
			return 0, errNoRoot
		}
		i += k
	}
}

// skipDoctypeDecl returns the length of the DOCTYPE declaration at the start
// of b, with its internal subset, or -1 when it is not terminated.
func skipDoctypeDecl(b []byte) int {
	var quote byte
	brackets := 0
	for j := len("<!DOCTYPE"); j < len(b); j++ {
		c := b[j]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '[':
			brackets++
		case c == ']':
			brackets--
		case c == '>' && brackets <= 0:
			return j + 1
		}
	}
	return -1
}

// skipTag passes over the start tag at raw[i] without reading it: it says
// whether the tag closes itself and where it ends. A '<' outside a quoted
// value is errBadTag.
func skipTag(raw []byte, i int) (selfClosing bool, next int, err error) {
	j := i + 1
	for j < len(raw) {
		switch raw[j] {
		case '"', '\'':
			k := bytes.IndexByte(raw[j+1:], raw[j])
			if k < 0 {
				return false, 0, errUnterminated
			}
			j += k + 2
		case '<':
			return false, 0, errBadTag
		case '>':
			return raw[j-1] == '/', j + 1, nil
		default:
			j++
		}
	}
	return false, 0, errUnterminated
}

// scanTagFunc reads the start tag at raw[i] ('<'), calling attr for each
// attribute with its raw value; it returns the tag's name, whether it
// closes itself, and the index just after its '>'.
func scanTagFunc(raw []byte, i int, attr func(k, v []byte)) (name string, selfClosing bool, next int, err error) {
	j := i + 1
	for j < len(raw) && !isXMLSpace(raw[j]) && raw[j] != '>' && raw[j] != '/' {
		j++
	}
	name = string(raw[i+1 : j])
	if name == "" {
		return "", false, 0, errBadTag
	}
	for {
		for j < len(raw) && isXMLSpace(raw[j]) {
			j++
		}
		if j >= len(raw) {
			return "", false, 0, errUnterminated
		}
		switch raw[j] {
		case '>':
			return name, false, j + 1, nil
		case '/':
			if j+1 < len(raw) && raw[j+1] == '>' {
				return name, true, j + 2, nil
			}
			return "", false, 0, errBadTag
		}
		k := j
		for j < len(raw) && raw[j] != '=' && !isXMLSpace(raw[j]) && raw[j] != '>' {
			j++
		}
		key := raw[k:j]
		for j < len(raw) && isXMLSpace(raw[j]) {
			j++
		}
		if j >= len(raw) || raw[j] != '=' || len(key) == 0 {
			return "", false, 0, errBadTag
		}
		j++
		for j < len(raw) && isXMLSpace(raw[j]) {
			j++
		}
		if j >= len(raw) || (raw[j] != '"' && raw[j] != '\'') {
			return "", false, 0, errBadTag
		}
		q := raw[j]
		end := bytes.IndexByte(raw[j+1:], q)
		if end < 0 {
			return "", false, 0, errUnterminated
		}
		if attr != nil {
			attr(key, raw[j+1:j+1+end])
		}
		j += 1 + end + 1
	}
}

// unescapeAttr resolves the predefined entities and character references in
// an attribute value and applies attribute-value normalisation (a literal
// tab, CR or LF becomes a space), as the tree does.
func unescapeAttr(v []byte) string {
	if bytes.IndexByte(v, '&') < 0 && bytes.IndexAny(v, "\t\r\n") < 0 {
		return string(v)
	}
	return normalizeAttrValue(v)
}

// scanIvorn finds the plain ivorn attribute of the root element in a
// document that did not parse, so that a nak can still name the event. It
// is lenient and returns "" when it cannot tell.
func scanIvorn(raw []byte) string {
	b := bytes.TrimPrefix(raw, []byte{0xEF, 0xBB, 0xBF})
	for {
		i := bytes.IndexByte(b, '<')
		if i < 0 || i+1 >= len(b) {
			return ""
		}
		b = b[i:]
		switch {
		case b[1] == '?':
			j := bytes.Index(b, []byte("?>"))
			if j < 0 {
				return ""
			}
			b = b[j+2:]
			continue
		case bytes.HasPrefix(b, []byte("<!--")):
			j := bytes.Index(b, []byte("-->"))
			if j < 0 {
				return ""
			}
			b = b[j+3:]
			continue
		case b[1] == '!':
			// A DOCTYPE, perhaps with an internal subset in brackets.
			depth, j := 0, 2
			for ; j < len(b); j++ {
				if b[j] == '[' {
					depth++
				} else if b[j] == ']' {
					depth--
				} else if b[j] == '>' && depth <= 0 {
					break
				}
			}
			if j >= len(b) {
				return ""
			}
			b = b[j+1:]
			continue
		}
		end := bytes.IndexByte(b, '>')
		if end < 0 {
			end = len(b)
		}
		tag := b[:end]
		for k := 0; k+len(`ivorn=`) < len(tag); k++ {
			k2 := bytes.Index(tag[k:], []byte("ivorn"))
			if k2 < 0 {
				return ""
			}
			k += k2
			if k == 0 || !isXMLSpace(tag[k-1]) {
				continue
			}
			rest := bytes.TrimLeft(tag[k+len("ivorn"):], xmlSpaceChars)
			if len(rest) == 0 || rest[0] != '=' {
				continue
			}
			rest = bytes.TrimLeft(rest[1:], xmlSpaceChars)
			if len(rest) == 0 || (rest[0] != '"' && rest[0] != '\'') {
				return ""
			}
			q := bytes.IndexByte(rest[1:], rest[0])
			if q < 0 {
				return ""
			}
			return normalizeAttrValue(rest[1 : 1+q])
		}
		return ""
	}
}

// declaredEncoding reads the encoding pseudo-attribute of an XML declaration.
func declaredEncoding(b []byte) string {
	if !bytes.HasPrefix(b, []byte("<?xml")) {
		return ""
	}
	end := bytes.Index(b, []byte("?>"))
	if end < 0 {
		return ""
	}
	decl := string(b[5:end])
	i := strings.Index(decl, "encoding")
	if i < 0 {
		return ""
	}
	rest := strings.TrimLeft(decl[i+len("encoding"):], xmlSpaceChars)
	if !strings.HasPrefix(rest, "=") {
		return ""
	}
	rest = strings.TrimLeft(rest[1:], xmlSpaceChars)
	if rest == "" || (rest[0] != '"' && rest[0] != '\'') {
		return ""
	}
	q := rest[0]
	j := strings.IndexByte(rest[1:], q)
	if j < 0 {
		return ""
	}
	return strings.ToLower(rest[1 : 1+j])
}

// checkXMLDecl checks the XML declaration, if there is one, as libxml2 does
// (XML 1.0 section 2.8): version first, then optional encoding and
// standalone, nothing else. libxml2 accepts any 1.x version and parses it as
// 1.0; encoding/xml refuses anything but 1.0, so such a version is blanked
// out in a copy (the raw bytes are never changed).
func checkXMLDecl(input []byte) ([]byte, error) {
	if len(input) < 6 || !bytes.HasPrefix(input, []byte("<?xml")) || !(isXMLSpace(input[5]) || input[5] == '?') {
		return input, nil
	}
	end := bytes.Index(input, []byte("?>"))
	if end < 0 {
		return nil, &xmlError{line: 1, msg: "XML declaration not closed"}
	}
	decl := input[5:end]
	bad := func(what string) error {
		return &xmlError{line: 1, msg: "malformed XML declaration: " + what}
	}
	pos, nameStart := 0, 0
	// attr reads ws+ name ws* = ws* quoted-value, returning name and value.
	attr := func() (string, string, bool) {
		start := pos
		for pos < len(decl) && isXMLSpace(decl[pos]) {
			pos++
		}
		if pos == start || pos == len(decl) {
			pos = start
			return "", "", false
		}
		n0 := pos
		nameStart = n0
		for pos < len(decl) && decl[pos] != '=' && !isXMLSpace(decl[pos]) {
			pos++
		}
		name := string(decl[n0:pos])
		for pos < len(decl) && isXMLSpace(decl[pos]) {
			pos++
		}
		if pos == len(decl) || decl[pos] != '=' {
			return name, "", false
		}
		pos++
		for pos < len(decl) && isXMLSpace(decl[pos]) {
			pos++
		}
		if pos == len(decl) || (decl[pos] != '"' && decl[pos] != '\'') {
			return name, "", false
		}
		q := decl[pos]
		pos++
		v0 := pos
		for pos < len(decl) && decl[pos] != q {
			pos++
		}
		if pos == len(decl) {
			return name, "", false
		}
		v := string(decl[v0:pos])
		pos++
		return name, v, true
	}
	name, version, ok := attr()
	if !ok || name != "version" {
		return nil, bad("version expected first")
	}
	vstart, vend := 5+nameStart, 5+pos // version="1.x" is input[vstart:vend]
	if !validVersionNum(version) {
		return nil, bad(fmt.Sprintf("version %q", version))
	}
	if !strings.HasPrefix(version, "1.") {
		return nil, &xmlError{line: 1, msg: fmt.Sprintf("unsupported XML version %q", version)}
	}
	seen := ""
	for {
		save := pos
		name, v, ok := attr()
		if !ok {
			if name != "" {
				return nil, bad("attribute " + name)
			}
			pos = save
			break
		}
		switch {
		case name == "encoding" && seen == "" && validEncName(v):
			seen = "encoding"
		case name == "standalone" && seen != "standalone" && (v == "yes" || v == "no"):
			seen = "standalone"
		default:
			return nil, bad(fmt.Sprintf("%s=%q", name, v))
		}
	}
	for pos < len(decl) && isXMLSpace(decl[pos]) {
		pos++
	}
	if pos != len(decl) {
		return nil, bad("unexpected text")
	}
	if version != "1.0" {
		// Blank out version="1.x": same length, so offsets and lines stay.
		cp := append([]byte(nil), input...)
		for i := vstart; i < vend; i++ {
			cp[i] = ' '
		}
		return cp, nil
	}
	return input, nil
}

// validVersionNum reports whether v has the form digits.digits.
func validVersionNum(v string) bool {
	a, b, ok := strings.Cut(v, ".")
	return ok && a != "" && b != "" && strings.Trim(a, "0123456789") == "" && strings.Trim(b, "0123456789") == ""
}

// validEncName checks the EncName production of XML 1.0.
func validEncName(v string) bool {
	if v == "" || !('a' <= v[0]|0x20 && v[0]|0x20 <= 'z') {
		return false
	}
	for i := 1; i < len(v); i++ {
		c := v[i]
		if !('a' <= c|0x20 && c|0x20 <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

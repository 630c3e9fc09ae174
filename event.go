// event.go owns the event as it travels through the broker, and the light
// scan that finds a message's root element, its role and its ivorn without
// building a tree (contract section 6: no XML work for an event relayed to
// subscribers that have no filters).
//
// Invariant: event.raw is never modified after the event is made; every
// subscriber, handler and the event DB share the same slice.
package main

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// event is one VOEvent accepted (or being judged) by the broker.
type event struct {
	raw      []byte   // the message exactly as received
	root     []byte   // raw[rootStart:rootEnd]: the event's identity (VTP 2.0 section 8)
	key      eventKey // eventKeyOf(root), set by setRoot
	ivorn    string
	role     string
	from     string    // who sent it: "author 127.0.0.1:4711" or "upstream host:8099"
	received time.Time // when it arrived

	sigVerdict string // signature verdict (valid, unsigned, ...); "" if not checked
	signer     string // signer's fingerprint when the verdict is valid

	docOnce sync.Once
	doc     *document // the parsed tree, built at most once (see tree)
	docErr  error
}

// tree returns the event's parsed document, parsing it on first use (and
// counting that in parses). Many goroutines may call it; the parse happens
// once. The receiver's events come with the tree its validation built.
func (e *event) tree(parses *atomic.Int64) (*document, error) {
	e.docOnce.Do(func() {
		if e.doc == nil {
			parses.Add(1)
			e.doc, e.docErr = parseDocument(e.raw)
		}
	})
	return e.doc, e.docErr
}

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
)

// scanRoot finds the root element of an XML message by a byte scan: it skips
// the declaration, comments, processing instructions and whitespace, reads
// the root's start tag and follows the nesting to its end tag. It checks
// only what it needs to find the span; it is not a well-formedness check.
func scanRoot(raw []byte) (rootInfo, error) {
	var ri rootInfo
	i, err := skipProlog(raw)
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
		switch {
		case bytes.HasPrefix(rest, []byte("<!--")):
			k := bytes.Index(rest[4:], []byte("-->"))
			if k < 0 {
				return ri, errUnterminated
			}
			i += 4 + k + 3
		case bytes.HasPrefix(rest, []byte("<![CDATA[")):
			k := bytes.Index(rest[9:], []byte("]]>"))
			if k < 0 {
				return ri, errUnterminated
			}
			i += 9 + k + 3
		case bytes.HasPrefix(rest, []byte("<?")):
			k := bytes.Index(rest, []byte("?>"))
			if k < 0 {
				return ri, errUnterminated
			}
			i += k + 2
		case bytes.HasPrefix(rest, []byte("</")):
			k := bytes.IndexByte(rest, '>')
			if k < 0 {
				return ri, errUnterminated
			}
			i += k + 1
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
			i = n
		}
	}
	ri.end = i
	return ri, nil
}

// rootAttrs reads only the prolog and the root's start tag, for the root's
// un-prefixed role and ivorn: the cheap look at a message whose end we do
// not need (an ack, an iamalive).
func rootAttrs(raw []byte) (role, ivorn string, err error) {
	i, err := skipProlog(raw)
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
// byte-order mark, the XML declaration, comments, processing instructions
// and white space. A DOCTYPE is errScanDoctype.
func skipProlog(raw []byte) (int, error) {
	i := 0
	if bytes.HasPrefix(raw, []byte{0xEF, 0xBB, 0xBF}) {
		i = 3
	}
	for {
		for i < len(raw) && isXMLSpace(raw[i]) {
			i++
		}
		rest := raw[i:]
		var end []byte
		switch {
		case len(rest) == 0 || rest[0] != '<':
			return 0, errNoRoot
		case bytes.HasPrefix(rest, []byte("<?")):
			end = []byte("?>")
		case bytes.HasPrefix(rest, []byte("<!--")):
			end = []byte("-->")
		case bytes.HasPrefix(rest, []byte("<!")):
			return 0, errScanDoctype
		default:
			return i, nil
		}
		k := bytes.Index(rest[2:], end)
		if k < 0 {
			return 0, errNoRoot
		}
		i += 2 + k + len(end)
	}
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// skipTag passes over the start tag at raw[i] without reading it: it says
// whether the tag closes itself and where it ends.
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
		case '>':
			return raw[j-1] == '/', j + 1, nil
		default:
			j++
		}
	}
	return false, 0, errUnterminated
}

var errBadTag = errors.New("malformed start tag")

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

// voeventRoles are the root roles that make a message a VOEvent (comet-behaviour §1.2).
func isVOEventRole(role string) bool {
	switch role {
	case "observation", "prediction", "utility", "test":
		return true
	}
	return false
}

// isTransportRole reports whether role is one of the Transport roles.
func isTransportRole(role string) bool {
	switch role {
	case "iamalive", "ack", "nak", "authenticate":
		return true
	}
	return false
}

// newEventFromScan builds an event from a message and its light scan.
func newEventFromScan(raw []byte, ri rootInfo, from string, now time.Time) *event {
	ev := &event{raw: raw, ivorn: ri.ivorn, role: ri.role, from: from, received: now}
	ev.setRoot(raw[ri.start:ri.end])
	return ev
}

// setRoot sets the bytes that identify the event, and their key.
func (e *event) setRoot(root []byte) {
	e.root = root
	e.key = eventKeyOf(root)
}

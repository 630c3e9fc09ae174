// xmltree.go owns the read-only document tree that schema validation and every
// subscriber's XPath filters share: one encoding/xml pass per event builds it.
//
// Invariants: a tree is never modified after parseDocument returns, so any
// number of goroutines may read it at once; nodes are numbered in document
// order (node.order), attributes after their element and before its children.
// A document with a DOCTYPE, an unbound prefix, a duplicate attribute, more
// than one root element or text outside the root is refused: VOEvents never
// carry these, and refusing them means no entity is ever expanded.
//
// Well-formedness follows libxml2, the parser Comet uses, where it differs
// from encoding/xml (parseDocument lists the checks added); the receiver's
// verdicts depend on it (testdata/vectors/validate/README.md, "Parser").
package main

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// nodeKind is the XPath 1.0 node type of a tree node.
type nodeKind uint8

const (
	rootNode nodeKind = iota
	elementNode
	attributeNode
	namespaceNode
	textNode
	commentNode
	piNode
)

var nodeKindNames = [...]string{"root", "element", "attribute", "namespace", "text", "comment", "pi"}

func (k nodeKind) String() string {
	if int(k) < len(nodeKindNames) {
		return nodeKindNames[k]
	}
	return fmt.Sprintf("nodeKind(%d)", k)
}

// xmlNamespaceURI is the namespace the prefix xml is always bound to.
const xmlNamespaceURI = "http://www.w3.org/XML/1998/namespace"

// nsDecl is one namespace declaration made on an element (prefix "" is the
// default namespace; uri "" undeclares it).
type nsDecl struct {
	prefix, uri string
}

// node is one node of a parsed document. Which fields are used depends on kind:
//
//	root:      firstChild..lastChild
//	element:   space, prefix, local, firstAttr, ns, firstChild..lastChild
//	attribute: space, prefix, local, data (the value); siblings via next/prev
//	text:      data (CDATA sections and adjacent character data merged)
//	comment:   data
//	pi:        local (the target), data
type node struct {
	kind   nodeKind
	order  int32 // position in document order, from 0 at the root
	line   int32 // line of the start of the node, from 1 (0 when unknown)
	parent *node

	firstChild, lastChild *node
	prev, next            *node
	firstAttr             *node

	space  string // namespace URI of an element or attribute
	prefix string // prefix as written ("" for none)
	local  string // local name, or a PI's target
	data   string // text, comment, PI data or attribute value
	ns     []nsDecl
}

// name returns the qualified name as written (prefix:local).
func (n *node) name() string {
	if n.prefix == "" {
		return n.local
	}
	return n.prefix + ":" + n.local
}

// attr returns the value of the un-namespaced attribute local, and whether it exists.
func (n *node) attr(local string) (string, bool) {
	for a := n.firstAttr; a != nil; a = a.next {
		if a.space == "" && a.local == local {
			return a.data, true
		}
	}
	return "", false
}

// stringValue returns the XPath string-value of n: the concatenated text of
// an element or the root, the data of the others.
func (n *node) stringValue() string {
	switch n.kind {
	case rootNode, elementNode:
		// Fast path: a single text child.
		if c := n.firstChild; c != nil && c == n.lastChild && c.kind == textNode {
			return c.data
		}
		var b strings.Builder
		n.appendText(&b)
		return b.String()
	case namespaceNode:
		return n.data
	}
	return n.data
}

func (n *node) appendText(b *strings.Builder) {
	for c := n.firstChild; c != nil; c = c.next {
		switch c.kind {
		case textNode:
			b.WriteString(c.data)
		case elementNode:
			c.appendText(b)
		}
	}
}

// document is a parsed event.
type document struct {
	raw      []byte // the bytes as received, never modified
	root     *node  // the document node
	elem     *node  // the root element
	encoding string // declared encoding, lower case ("" if none)
	nodes    int    // number of nodes, attributes included
}

// Limits on what a document may make the parser build.
const (
	maxXMLDepth = 256     // element nesting
	maxXMLNodes = 1 << 20 // nodes of all kinds
)

// xmlError is a document that is not well-formed, or one we refuse.
// doctype is set when the refusal is a DOCTYPE declaration (the message is
// then errDoctype's), so callers can tell that case apart.
type xmlError struct {
	line    int
	msg     string
	doctype bool
}

func (e *xmlError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

var errDoctype = errors.New("DOCTYPE not allowed")

// nodeSlab hands out nodes from chunks so a document costs a few allocations.
type nodeSlab struct {
	chunk []node
}

func (s *nodeSlab) alloc() *node {
	if len(s.chunk) == cap(s.chunk) {
		n := 2 * cap(s.chunk)
		if n < 32 {
			n = 32
		}
		if n > 1024 {
			n = 1024
		}
		s.chunk = make([]node, 0, n)
	}
	s.chunk = s.chunk[:len(s.chunk)+1]
	return &s.chunk[len(s.chunk)-1]
}

// parseDocument parses raw into a tree. The error is an *xmlError for
// anything not well-formed (or refused); the message says what and where.
//
// Where encoding/xml is more lenient than libxml2 (the parser Comet uses),
// the input is checked first: the XML declaration, the character set (valid
// in the declared encoding, XML 1.0 characters only), and libxml2's habit of
// ending the document at a NUL byte that follows the root element.
func parseDocument(raw []byte) (*document, error) {
	doc := &document{raw: raw}
	input, enc, err := decodeInput(raw)
	if err != nil {
		return nil, &xmlError{msg: err.Error()}
	}
	doc.encoding = enc
	if !isUTF16Prefix(raw) {
		if input, err = toUTF8(input, enc); err != nil {
			return nil, err
		}
	}
	if input, err = checkXMLDecl(input); err != nil {
		return nil, err
	}
	nul, err := checkChars(input)
	if err != nil {
		return nil, err
	}
	if nul >= 0 {
		input = input[:nul]
	}
	p := treeParser{doc: doc, input: input}
	// Size the first chunk from the markup: tags and '=' undercount the
	// nodes of real events by about a fifth, so one chunk usually holds
	// the whole tree.
	est := bytes.Count(input, []byte("<")) + bytes.Count(input, []byte("="))
	p.slab.chunk = make([]node, 0, min(max(est+est/4+16, 32), 4096))
	if err := p.run(); err != nil {
		if nul >= 0 {
			// The NUL came before the end of the root element.
			return nil, &xmlError{line: lineAt(input, nul), msg: "illegal character code U+0000"}
		}
		return nil, err
	}
	return doc, nil
}

// isUTF16Prefix reports whether decodeInput reads raw as UTF-16.
func isUTF16Prefix(raw []byte) bool {
	return bytes.HasPrefix(raw, []byte{0xFE, 0xFF}) || bytes.HasPrefix(raw, []byte{0xFF, 0xFE}) ||
		bytes.HasPrefix(raw, []byte{0, '<', 0, '?'}) || bytes.HasPrefix(raw, []byte{'<', 0, '?', 0})
}

// toUTF8 converts input from the declared single-byte encoding, so that the
// decoder reads (and reports offsets into) the same bytes as the tree.
func toUTF8(input []byte, enc string) ([]byte, error) {
	switch enc {
	case "", "utf-8", "utf8":
		return input, nil
	}
	r, err := charsetReader(enc, bytes.NewReader(input))
	if err != nil {
		return nil, &xmlError{line: 1, msg: err.Error()}
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return nil, &xmlError{line: lineAt(out, len(out)), msg: err.Error()}
	}
	return out, nil
}

// lineAt returns the line number of offset i in b.
func lineAt(b []byte, i int) int {
	return 1 + bytes.Count(b[:min(i, len(b))], []byte{'\n'})
}

// checkChars checks that input is UTF-8 made of XML 1.0 characters
// (section 2.2). A NUL byte is reported by its offset, not as an error:
// libxml2 ends the document there, which is harmless after the root element
// and an error anywhere else (parseDocument decides). -1 means no NUL.
func checkChars(input []byte) (int, error) {
	for i := 0; i < len(input); {
		// Fast path: eight ASCII bytes, none below 0x20.
		if i+8 <= len(input) {
			x := binary.LittleEndian.Uint64(input[i:])
			if (x|(x-0x2020202020202020))&0x8080808080808080 == 0 {
				i += 8
				continue
			}
		}
		c := input[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 || c == '\n' || c == '\t' || c == '\r' {
				i++
				continue
			}
			if c == 0 {
				return i, nil
			}
			return -1, &xmlError{line: lineAt(input, i), msg: fmt.Sprintf("illegal character code %U", rune(c))}
		}
		r, size := utf8.DecodeRune(input[i:])
		if r == utf8.RuneError && size == 1 {
			return -1, &xmlError{line: lineAt(input, i), msg: "invalid UTF-8 (or bytes not valid in the declared encoding)"}
		}
		if r == 0xFFFE || r == 0xFFFF {
			return -1, &xmlError{line: lineAt(input, i), msg: fmt.Sprintf("illegal character code %U", r)}
		}
		i += size
	}
	return -1, nil
}

type treeParser struct {
	doc   *document
	input []byte
	slab  nodeSlab
	order int32
	// scopes holds the namespace bindings in force: bindings[i] applies
	// while the element stack is at least depth scopeDepth[i].
	bindings []nsDecl
	depth    int
	text     []byte // pending character data
	textNode *node
}

func (p *treeParser) newNode(kind nodeKind, parent *node, line int) (*node, error) {
	if p.doc.nodes >= maxXMLNodes {
		return nil, &xmlError{line: line, msg: fmt.Sprintf("more than %d nodes", maxXMLNodes)}
	}
	n := p.slab.alloc()
	n.kind = kind
	n.order = p.order
	n.line = int32(line)
	n.parent = parent
	p.order++
	p.doc.nodes++
	return n, nil
}

func appendChild(parent, c *node) {
	c.parent = parent
	if parent.lastChild == nil {
		parent.firstChild = c
	} else {
		parent.lastChild.next = c
		c.prev = parent.lastChild
	}
	parent.lastChild = c
}

// resolve finds the URI bound to prefix.
func (p *treeParser) resolve(prefix string) (string, bool) {
	if prefix == "xml" {
		return xmlNamespaceURI, true
	}
	for i := len(p.bindings) - 1; i >= 0; i-- {
		if p.bindings[i].prefix == prefix {
			return p.bindings[i].uri, true
		}
	}
	if prefix == "" {
		return "", true
	}
	return "", false
}

func (p *treeParser) run() error {
	d := xml.NewDecoder(bytes.NewReader(p.input))
	d.Strict = true
	// parseDocument has already converted the input to UTF-8.
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	root, _ := p.newNode(rootNode, nil, 1)
	p.doc.root = root
	cur := root
	type frame struct {
		name     xml.Name
		nbinding int
	}
	var stack []frame
	seenRoot := false
	for {
		line, _ := d.InputPos()
		offset := d.InputOffset()
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return &xmlError{line: se.Line, msg: se.Msg}
			}
			return &xmlError{line: line, msg: err.Error()}
		}
		if _, ok := tok.(xml.CharData); !ok {
			if err := p.flushText(); err != nil {
				return err
			}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if cur == root {
				if seenRoot {
					return &xmlError{line: line, msg: "extra content after the root element"}
				}
				seenRoot = true
			}
			if len(stack) >= maxXMLDepth {
				return &xmlError{line: line, msg: fmt.Sprintf("elements nested deeper than %d", maxXMLDepth)}
			}
			n, err := p.newNode(elementNode, cur, line)
			if err != nil {
				return err
			}
			if strings.IndexByte(t.Name.Local, ':') >= 0 {
				return &xmlError{line: line, msg: fmt.Sprintf("bad qualified name %q", t.Name.Local)}
			}
			if len(t.Attr) > 1 && !attrsSpaced(p.input[offset:d.InputOffset()]) {
				return &xmlError{line: line, msg: "attributes must be separated by white space"}
			}
			for i := range t.Attr {
				if strings.IndexByte(t.Attr[i].Name.Local, ':') >= 0 || t.Attr[i].Name.Local == "" {
					return &xmlError{line: line, msg: fmt.Sprintf("bad qualified attribute name %q", qname(t.Attr[i].Name))}
				}
			}
			for i := range t.Attr {
				if hasLiteralSpace(t.Attr[i].Value) {
					normalizeAttrs(p.input[offset:d.InputOffset()], t.Attr)
					break
				}
			}
			for i, a := range t.Attr {
				for _, b := range t.Attr[:i] {
					if b.Name == a.Name {
						return &xmlError{line: line, msg: fmt.Sprintf("attribute %s redefined", qname(a.Name))}
					}
				}
			}
			nb := len(p.bindings)
			for _, a := range t.Attr {
				if (a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns") && !validNSBinding(a.Name.Local, a.Value, a.Name.Space == "") {
					return &xmlError{line: line, msg: fmt.Sprintf("bad namespace declaration %s=%q", qname(a.Name), a.Value)}
				}
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					p.bindings = append(p.bindings, nsDecl{"", a.Value})
					n.ns = append(n.ns, nsDecl{"", a.Value})
				case a.Name.Space == "xmlns":
					if a.Value == "" {
						return &xmlError{line: line, msg: fmt.Sprintf("namespace prefix %s bound to an empty URI", a.Name.Local)}
					}
					p.bindings = append(p.bindings, nsDecl{a.Name.Local, a.Value})
					n.ns = append(n.ns, nsDecl{a.Name.Local, a.Value})
				}
			}
			n.prefix, n.local = t.Name.Space, t.Name.Local
			uri, ok := p.resolve(n.prefix)
			if !ok {
				return &xmlError{line: line, msg: fmt.Sprintf("namespace prefix %s on %s is not defined", n.prefix, n.local)}
			}
			n.space = uri
			var lastAttr *node
			for _, a := range t.Attr {
				if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
					continue
				}
				an, err := p.newNode(attributeNode, n, line)
				if err != nil {
					return err
				}
				an.prefix, an.local, an.data = a.Name.Space, a.Name.Local, a.Value
				if an.prefix != "" {
					uri, ok := p.resolve(an.prefix)
					if !ok {
						return &xmlError{line: line, msg: fmt.Sprintf("namespace prefix %s for %s on %s is not defined", an.prefix, an.local, n.local)}
					}
					an.space = uri
				}
				if lastAttr == nil {
					n.firstAttr = an
				} else {
					lastAttr.next = an
					an.prev = lastAttr
				}
				lastAttr = an
			}
			// Two attributes with different prefixes bound to one URI are
			// the same attribute (Namespaces in XML 1.0, section 6.3).
			for a := n.firstAttr; a != nil; a = a.next {
				for b := n.firstAttr; b != a; b = b.next {
					if a.space != "" && a.space == b.space && a.local == b.local {
						return &xmlError{line: line, msg: fmt.Sprintf("attribute %s redefined", a.name())}
					}
				}
			}
			appendChild(cur, n)
			if cur == root {
				p.doc.elem = n
			}
			stack = append(stack, frame{t.Name, nb})
			cur = n
		case xml.EndElement:
			if len(stack) == 0 {
				return &xmlError{line: line, msg: fmt.Sprintf("unexpected end element </%s>", qname(t.Name))}
			}
			top := stack[len(stack)-1]
			if top.name != t.Name {
				return &xmlError{line: line, msg: fmt.Sprintf("element <%s> closed by </%s>", qname(top.name), qname(t.Name))}
			}
			stack = stack[:len(stack)-1]
			p.bindings = p.bindings[:top.nbinding]
			cur = cur.parent
		case xml.CharData:
			if cur == root {
				if len(bytes.TrimLeft(t, " \t\r\n")) > 0 {
					return &xmlError{line: line, msg: "text outside the root element"}
				}
				continue
			}
			if len(t) == 0 {
				continue
			}
			if len(p.text) == 0 {
				n, err := p.newNode(textNode, cur, line)
				if err != nil {
					return err
				}
				appendChild(cur, n)
				p.textNode = n
			}
			p.text = append(p.text, t...)
		case xml.Comment:
			n, err := p.newNode(commentNode, cur, line)
			if err != nil {
				return err
			}
			n.data = string(normalizeNewlines(t))
			appendChild(cur, n)
		case xml.ProcInst:
			if t.Target == "xml" {
				if offset != 0 {
					return &xmlError{line: line, msg: "XML declaration allowed only at the start of the document"}
				}
				continue
			}
			if strings.EqualFold(t.Target, "xml") {
				return &xmlError{line: line, msg: fmt.Sprintf("reserved processing instruction target %q", t.Target)}
			}
			n, err := p.newNode(piNode, cur, line)
			if err != nil {
				return err
			}
			n.local = t.Target
			n.data = strings.TrimLeft(string(normalizeNewlines(t.Inst)), " \t\n")
			appendChild(cur, n)
		case xml.Directive:
			if cur == root && !seenRoot && bytes.HasPrefix(t, []byte("DOCTYPE")) {
				return &xmlError{line: line, msg: errDoctype.Error(), doctype: true}
			}
			return &xmlError{line: line, msg: "markup declaration not allowed here"}
		}
	}
	if err := p.flushText(); err != nil {
		return err
	}
	if len(stack) > 0 {
		return &xmlError{msg: fmt.Sprintf("premature end of data: <%s> not closed", qname(stack[len(stack)-1].name))}
	}
	if p.doc.elem == nil {
		return &xmlError{msg: "no root element"}
	}
	return nil
}

func (p *treeParser) flushText() error {
	if len(p.text) > 0 {
		p.textNode.data = string(p.text)
		p.text = p.text[:0]
		p.textNode = nil
	}
	return nil
}

func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// normalizeNewlines turns CR LF and lone CR into LF (XML 1.0 section 2.11),
// which encoding/xml does for text but not for comments and PIs.
func normalizeNewlines(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '\r' {
			out = append(out, '\n')
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// validNSBinding applies the constraints of Namespaces in XML 1.0 section 3
// on a declaration (prefix is "" for the default namespace).
func validNSBinding(prefix, uri string, isDefault bool) bool {
	switch {
	case isDefault:
		return uri != xmlNamespaceURI && uri != xmlnsNamespaceURI
	case prefix == "xmlns":
		return false
	case prefix == "xml":
		return uri == xmlNamespaceURI
	}
	return uri != xmlNamespaceURI && uri != xmlnsNamespaceURI
}

// xmlnsNamespaceURI is the namespace no prefix may be bound to.
const xmlnsNamespaceURI = "http://www.w3.org/2000/xmlns/"

// normalizeAttrs redoes attribute-value normalisation (XML 1.0 section
// 3.3.3) from the raw start tag, which encoding/xml skips: a literal tab,
// newline or carriage return (a CR LF pair counting as one) becomes a space,
// while the same character written as a character reference is kept. attrs
// are the decoded attributes of tag, in source order; only values that
// contain one of those characters are rewritten.
func normalizeAttrs(tag []byte, attrs []xml.Attr) {
	i := 1
	for i < len(tag) && !isXMLSpace(tag[i]) && tag[i] != '>' && tag[i] != '/' {
		i++
	}
	for k := 0; k < len(attrs); k++ {
		// Find the next quoted value.
		for i < len(tag) && tag[i] != '"' && tag[i] != '\'' {
			i++
		}
		if i >= len(tag) {
			return
		}
		q := tag[i]
		i++
		start := i
		for i < len(tag) && tag[i] != q {
			i++
		}
		if i >= len(tag) {
			return
		}
		raw := tag[start:i]
		i++
		if hasLiteralSpace(attrs[k].Value) {
			attrs[k].Value = normalizeAttrValue(raw)
		}
	}
}

// normalizeAttrValue decodes one raw attribute value, normalising literal
// white space to spaces and expanding the predefined entities and character
// references (the decoder has already checked that all of them are valid).
func normalizeAttrValue(raw []byte) string {
	var b strings.Builder
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch c {
		case '\t', '\n':
			b.WriteByte(' ')
		case '\r':
			b.WriteByte(' ')
			if i+1 < len(raw) && raw[i+1] == '\n' {
				i++
			}
		case '&':
			j := bytes.IndexByte(raw[i:], ';')
			if j < 0 {
				b.WriteByte(c)
				continue
			}
			ref := string(raw[i+1 : i+j])
			i += j
			switch {
			case strings.HasPrefix(ref, "#x"):
				n, _ := strconv.ParseUint(ref[2:], 16, 32)
				b.WriteRune(rune(n))
			case strings.HasPrefix(ref, "#"):
				n, _ := strconv.ParseUint(ref[1:], 10, 32)
				b.WriteRune(rune(n))
			default:
				b.WriteString(predefinedEntities[ref])
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

var predefinedEntities = map[string]string{"lt": "<", "gt": ">", "amp": "&", "apos": "'", "quot": "\""}

// attrsSpaced reports whether, in the raw start tag, every attribute value's
// closing quote is followed by white space, "/" or ">" (XML 1.0 production
// 40 requires white space between attributes; encoding/xml does not check).
func attrsSpaced(tag []byte) bool {
	for i := 0; i < len(tag); i++ {
		q := tag[i]
		if q != '"' && q != '\'' {
			continue
		}
		j := bytes.IndexByte(tag[i+1:], q)
		if j < 0 {
			return true
		}
		i += 1 + j // the closing quote
		if i+1 < len(tag) {
			if n := tag[i+1]; !isXMLSpace(n) && n != '/' && n != '>' {
				return false
			}
		}
	}
	return true
}

// hasLiteralSpace reports whether s holds a tab, newline or carriage return.
func hasLiteralSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && (c == '\t' || c == '\n' || c == '\r') {
			return true
		}
	}
	return false
}

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
// Cost: every step is linear, or n log n, in the input wherever attributes
// and declarations sit (issue 11): repeats in a long tag are found by
// sorting, prefixes resolve through an index once many bindings are in
// force, names are interned per document. treeParser.work counts the steps
// and xmltree_cost_test.go holds it to a constant per input byte; the one
// encoding/xml pass (RawToken, namespaces resolved here) is linear too.
// document.sizeBytes estimates the heap a tree keeps alive.
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"
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

// xname is the name of an element or attribute: its namespace URI, its
// prefix as written ("" for none) and its local name (a PI's target). The
// parser interns them per document, so nodes of one name share one xname;
// an element that declares namespaces has a private xname holding its
// declarations (ns, in source order). Nodes without a name share xnameNone.
// An xname is never modified once a node refers to it.
type xname struct {
	space, prefix, local string
	decl                 *nsScope // nil but on a declaring element
}

// nsScope holds the declarations made on one element, in source order.
// When there are nsSortedMin or more, the same array holds after them a
// copy sorted by prefix (ns[len(ns):2*len(ns)]), so that lookupNS stays
// logarithmic in the declarations of one element.
type nsScope struct {
	ns []nsDecl
}

func (sc *nsScope) sorted() []nsDecl {
	if n := len(sc.ns); n >= nsSortedMin && cap(sc.ns) == 2*n {
		return sc.ns[n : 2*n]
	}
	return nil
}

var xnameNone = &xname{}

// nsSortedMin is the number of declarations on one element from which
// lookupNS searches a sorted copy instead of scanning.
const nsSortedMin = 8

// nsDecls returns the declarations made on the element, in source order.
func (x *xname) nsDecls() []nsDecl {
	if x.decl == nil {
		return nil
	}
	return x.decl.ns
}

// lookup returns the declaration of prefix made on this element, if any.
func (x *xname) lookup(prefix string) (nsDecl, bool) {
	if x.decl == nil {
		return nsDecl{}, false
	}
	if s := x.decl.sorted(); s != nil {
		i, ok := slices.BinarySearchFunc(s, prefix, func(d nsDecl, p string) int { return strings.Compare(d.prefix, p) })
		if ok {
			return s[i], true
		}
		return nsDecl{}, false
	}
	ns := x.decl.ns
	for i := len(ns) - 1; i >= 0; i-- {
		if ns[i].prefix == prefix {
			return ns[i], true
		}
	}
	return nsDecl{}, false
}

// node is one node of a parsed document. Which fields are used depends on kind:
//
//	root:      firstChild..lastChild
//	element:   space, prefix, local, decl (from xname), firstAttr, firstChild..lastChild
//	attribute: space, prefix, local, data (the value); siblings via next/prev
//	text:      data (CDATA sections and adjacent character data merged)
//	comment:   data
//	pi:        local (the target), data
//
// The name fields are promoted from the embedded xname, never nil.
type node struct {
	kind   nodeKind
	order  int32 // position in document order, from 0 at the root
	line   int32 // line of the start of the node, from 1 (0 when unknown)
	parent *node

	firstChild, lastChild *node
	prev, next            *node
	firstAttr             *node

	*xname
	data string // text, comment, PI data or attribute value
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
	size     int    // estimate of the heap the tree keeps alive, raw excluded
}

// sizeBytes estimates the heap bytes the parsed tree keeps alive (nodes,
// names, values, text and declarations; not raw, which the caller holds),
// so that a broker can charge a parsed event against its memory budget.
// It is computed during the parse and costs nothing to call.
func (d *document) sizeBytes() int { return d.size }

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
	total int // capacity of the chunks before this one
}

// next starts a new chunk and returns its capacity: an eighth of the
// nodes handed out so far (within bounds), so that at most about an eighth
// of the slab is ever unused.
func (s *nodeSlab) next() int {
	s.total += cap(s.chunk)
	n := min(max(s.total/8, 32), 4096)
	s.chunk = make([]node, 0, n)
	return n
}

func (s *nodeSlab) alloc() *node {
	if len(s.chunk) == cap(s.chunk) {
		s.next()
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
	doc, _, err := parseDocumentWork(raw)
	return doc, err
}

// parseDocumentWork is parseDocument that also returns the parser's work
// count (treeParser.work), which tests hold to a constant per input byte.
func parseDocumentWork(raw []byte) (*document, int, error) {
	doc := &document{raw: raw}
	input, enc, err := decodeInput(raw)
	if err != nil {
		return nil, 0, &xmlError{msg: err.Error()}
	}
	doc.encoding = enc
	if !isUTF16Prefix(raw) {
		if input, err = toUTF8(input, enc); err != nil {
			return nil, 0, err
		}
	}
	if input, err = checkXMLDecl(input); err != nil {
		return nil, 0, err
	}
	nul, err := checkChars(input)
	if err != nil {
		return nil, 0, err
	}
	if nul >= 0 {
		input = input[:nul]
	}
	p := treeParser{doc: doc, input: input}
	p.reuse()
	defer p.release()
	// Size the first chunk from the markup: start tags and '=' count the
	// elements and attributes (text nodes come on top, in a smaller chunk),
	// so the slab is rarely much larger than the tree.
	est := bytes.Count(input, []byte("<")) - bytes.Count(input, []byte("</")) + bytes.Count(input, []byte("="))
	p.slab.chunk = make([]node, 0, min(max(est+16, 32), 2048))
	p.size += cap(p.slab.chunk) * nodeBytes
	if err := p.run(); err != nil {
		if nul >= 0 {
			// The NUL came before the end of the root element.
			return nil, p.work, &xmlError{line: lineAt(input, nul), msg: "illegal character code U+0000"}
		}
		return nil, p.work, err
	}
	return doc, p.work, nil
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
	// bindings holds the namespace declarations in force, innermost last;
	// each element's frame records how many were in force before it.
	// Once there are more than nsScanMax, nsIndex maps each prefix to its
	// innermost binding, and a binding's shadow to the one it hides.
	bindings []nsBinding
	nsIndex  map[string]int32
	names    map[xnameKey]*xname
	texts    map[string]string // short white-space text, interned
	scratch  []int32           // attribute indices being sorted
	text     []byte            // pending character data
	textNode *node
	// work counts the parser's steps beyond reading bytes: tokens,
	// attributes, comparisons between attributes, binding look-ups. It
	// stays within a constant times the input's length (FuzzParseCost).
	work int
	// size estimates the bytes the tree keeps alive (document.sizeBytes).
	size int
}

// parserScratch is what a parse needs only while it runs, kept for the
// next parse (unless it grew large) so that a document costs fewer
// allocations. Nothing in it outlives the parse that used it.
type parserScratch struct {
	names    map[xnameKey]*xname
	texts    map[string]string
	bindings []nsBinding
	scratch  []int32
	text     []byte
}

var parserScratchPool = sync.Pool{New: func() any {
	return &parserScratch{names: make(map[xnameKey]*xname, 64), texts: make(map[string]string, 8)}
}}

// parserScratchMax bounds the entries a pooled map may hold: clearing a map
// costs its capacity, so one grown by a large document is dropped.
const parserScratchMax = 512

func (p *treeParser) reuse() {
	sc := parserScratchPool.Get().(*parserScratch)
	p.names, p.texts, p.bindings, p.scratch, p.text = sc.names, sc.texts, sc.bindings[:0], sc.scratch[:0], sc.text[:0]
}

func (p *treeParser) release() {
	if len(p.names) > parserScratchMax || len(p.texts) > parserScratchMax || cap(p.text) > 64<<10 ||
		cap(p.bindings) > parserScratchMax || cap(p.scratch) > parserScratchMax {
		return
	}
	clear(p.names)
	clear(p.texts)
	parserScratchPool.Put(&parserScratch{p.names, p.texts, p.bindings[:0], p.scratch[:0], p.text[:0]})
	p.names, p.texts = nil, nil
}

type nsBinding struct {
	prefix, uri string
	shadow      int32 // index of the binding of the same prefix this one hides, or -1 (with nsIndex only)
}

type xnameKey struct{ prefix, local string }

// Tuning: below these sizes the simple quadratic-looking loops are bounded
// by a small constant and faster than maps or sorting.
const (
	nsScanMax   = 32 // bindings scanned linearly before nsIndex is used
	attrScanMax = 16 // attributes of one tag compared pairwise before sorting
)

// Approximate heap costs for document.sizeBytes.
const (
	nodeBytes    = int(unsafe.Sizeof(node{}))
	xnameBytes   = int(unsafe.Sizeof(xname{}))
	nsDeclBytes  = int(unsafe.Sizeof(nsDecl{}))
	nsScopeBytes = int(unsafe.Sizeof(nsScope{}))
)

// stringBytes is the heap an allocated string of n bytes occupies, size
// classes and rounding included (roughly: Go rounds up by at most 1/8).
func stringBytes(n int) int {
	switch {
	case n == 0:
		return 0
	case n <= 16:
		return n
	}
	return n + n/8
}

func (p *treeParser) newNode(kind nodeKind, parent *node, line int) (*node, error) {
	if p.doc.nodes >= maxXMLNodes {
		return nil, &xmlError{line: line, msg: fmt.Sprintf("more than %d nodes", maxXMLNodes)}
	}
	if len(p.slab.chunk) == cap(p.slab.chunk) {
		p.size += p.slab.next() * nodeBytes
	}
	n := p.slab.alloc()
	n.kind = kind
	n.order = p.order
	n.line = int32(line)
	n.parent = parent
	n.xname = xnameNone
	p.order++
	p.doc.nodes++
	p.work++
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
	if p.nsIndex != nil {
		p.work++
		if i, ok := p.nsIndex[prefix]; ok {
			return p.bindings[i].uri, true
		}
	} else {
		for i := len(p.bindings) - 1; i >= 0; i-- {
			p.work++
			if p.bindings[i].prefix == prefix {
				return p.bindings[i].uri, true
			}
		}
	}
	if prefix == "" {
		return "", true
	}
	return "", false
}

// bind puts a declaration in force.
func (p *treeParser) bind(prefix, uri string) {
	p.bindings = append(p.bindings, nsBinding{prefix, uri, -1})
	p.work++
	if p.nsIndex == nil {
		if len(p.bindings) <= nsScanMax {
			return
		}
		p.nsIndex = make(map[string]int32, 2*len(p.bindings))
		for i := range p.bindings[:len(p.bindings)-1] {
			p.index(int32(i))
		}
	}
	p.index(int32(len(p.bindings) - 1))
}

func (p *treeParser) index(i int32) {
	b := &p.bindings[i]
	if s, ok := p.nsIndex[b.prefix]; ok {
		b.shadow = s
	}
	p.nsIndex[b.prefix] = i
}

// unbind takes the declarations made since there were n out of force.
func (p *treeParser) unbind(n int) {
	if p.nsIndex != nil {
		for i := len(p.bindings) - 1; i >= n; i-- {
			p.work++
			if b := p.bindings[i]; b.shadow >= 0 {
				p.nsIndex[b.prefix] = b.shadow
			} else {
				delete(p.nsIndex, b.prefix)
			}
		}
	}
	p.bindings = p.bindings[:n]
}

// intern returns the shared xname for a name in namespace space.
func (p *treeParser) intern(prefix, local, space string) *xname {
	k := xnameKey{prefix, local}
	if x, ok := p.names[k]; ok && x.space == space {
		return x
	}
	x := &xname{space: space, prefix: prefix, local: local}
	p.names[k] = x
	p.size += xnameBytes + stringBytes(len(prefix)) + stringBytes(len(local))
	return x
}

// firstRepeat returns the smallest index i < n such that key(i) equals
// key(j) for some j < i, or -1, sorting indices (n log n) rather than
// comparing pairs. cmp orders keys.
func (p *treeParser) firstRepeat(n int, cmp func(i, j int32) int) int {
	idx := p.scratch[:0]
	for i := range n {
		idx = append(idx, int32(i))
	}
	p.scratch = idx
	slices.SortFunc(idx, func(a, b int32) int {
		p.work++
		if c := cmp(a, b); c != 0 {
			return c
		}
		return int(a - b)
	})
	first := -1
	for k := 1; k < len(idx); k++ {
		if cmp(idx[k-1], idx[k]) == 0 && (first < 0 || int(idx[k]) < first) {
			first = int(idx[k])
		}
	}
	p.work += len(idx)
	return first
}

func (p *treeParser) run() error {
	d := xml.NewDecoder(bytes.NewReader(p.input))
	d.Strict = true
	// parseDocument has already converted the input to UTF-8.
	d.CharsetReader = func(_ string, in io.Reader) (io.Reader, error) { return in, nil }
	p.size += int(unsafe.Sizeof(document{}))
	root, _ := p.newNode(rootNode, nil, 1)
	p.doc.root = root
	cur := root
	type frame struct {
		name     xml.Name
		nbinding int
	}
	var stack []frame
	var attrNodes []*node // scratch: the namespaced attributes of a tag
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
		p.work++
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
			p.work += len(t.Attr)
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
			if err := p.checkRepeats(t.Attr, line); err != nil {
				return err
			}
			nb := len(p.bindings)
			ndecl := 0
			for _, a := range t.Attr {
				if (a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns") && !validNSBinding(a.Name.Local, a.Value, a.Name.Space == "") {
					return &xmlError{line: line, msg: fmt.Sprintf("bad namespace declaration %s=%q", qname(a.Name), a.Value)}
				}
				switch {
				case a.Name.Space == "" && a.Name.Local == "xmlns":
					p.bind("", a.Value)
					ndecl++
				case a.Name.Space == "xmlns":
					if a.Value == "" {
						return &xmlError{line: line, msg: fmt.Sprintf("namespace prefix %s bound to an empty URI", a.Name.Local)}
					}
					p.bind(a.Name.Local, a.Value)
					ndecl++
				}
			}
			uri, ok := p.resolve(t.Name.Space)
			if !ok {
				return &xmlError{line: line, msg: fmt.Sprintf("namespace prefix %s on %s is not defined", t.Name.Space, t.Name.Local)}
			}
			if ndecl == 0 {
				n.xname = p.intern(t.Name.Space, t.Name.Local, uri)
			} else {
				n.xname = p.declaring(t.Name, uri, nb)
			}
			var lastAttr *node
			attrNodes = attrNodes[:0]
			// The names of a long tag are distinct: they get one array
			// rather than entries in the interning map.
			var names []xname
			if len(t.Attr) > attrScanMax {
				names = make([]xname, 0, len(t.Attr)-ndecl)
				p.size += cap(names) * xnameBytes
			}
			for _, a := range t.Attr {
				if (a.Name.Space == "" && a.Name.Local == "xmlns") || a.Name.Space == "xmlns" {
					continue
				}
				an, err := p.newNode(attributeNode, n, line)
				if err != nil {
					return err
				}
				space := ""
				if a.Name.Space != "" {
					uri, ok := p.resolve(a.Name.Space)
					if !ok {
						return &xmlError{line: line, msg: fmt.Sprintf("namespace prefix %s for %s on %s is not defined", a.Name.Space, a.Name.Local, n.local)}
					}
					space = uri
				}
				if names != nil {
					names = append(names, xname{space: space, prefix: a.Name.Space, local: a.Name.Local})
					an.xname = &names[len(names)-1]
					p.size += stringBytes(len(a.Name.Space)) + stringBytes(len(a.Name.Local))
				} else {
					an.xname = p.intern(a.Name.Space, a.Name.Local, space)
				}
				an.data = a.Value
				p.size += stringBytes(len(a.Value))
				if space != "" {
					attrNodes = append(attrNodes, an)
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
			if err := p.checkURIRepeats(attrNodes, line); err != nil {
				return err
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
			p.unbind(top.nbinding)
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
			p.size += stringBytes(len(n.data))
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
			n.xname = p.intern("", t.Target, "")
			n.data = strings.TrimLeft(string(normalizeNewlines(t.Inst)), " \t\n")
			p.size += stringBytes(len(n.data))
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
	p.doc.size = p.size
	return nil
}

// declaring builds the private xname of an element that made the
// declarations p.bindings[nb:].
func (p *treeParser) declaring(name xml.Name, uri string, nb int) *xname {
	bs := p.bindings[nb:]
	// One allocation for the usual single declaration.
	type declaringName struct {
		x   xname
		sc  nsScope
		one [1]nsDecl
	}
	dn := &declaringName{x: xname{space: uri, prefix: name.Space, local: name.Local}}
	x, sc := &dn.x, &dn.sc
	x.decl = sc
	switch {
	case len(bs) == 1:
		sc.ns = dn.one[:]
	case len(bs) < nsSortedMin:
		sc.ns = make([]nsDecl, len(bs))
		p.size += len(bs) * nsDeclBytes
	default:
		sc.ns = make([]nsDecl, len(bs), 2*len(bs))
		p.size += 2 * len(bs) * nsDeclBytes
	}
	p.size += int(unsafe.Sizeof(*dn)) + stringBytes(len(name.Space)) + stringBytes(len(name.Local))
	for i, b := range bs {
		sc.ns[i] = nsDecl{b.prefix, b.uri}
		p.size += stringBytes(len(b.prefix)) + stringBytes(len(b.uri))
	}
	if len(bs) >= nsSortedMin {
		sorted := append(sc.ns[len(bs):], sc.ns...)
		slices.SortFunc(sorted, func(a, b nsDecl) int {
			p.work++
			return strings.Compare(a.prefix, b.prefix)
		})
	}
	return x
}

// checkRepeats refuses a tag that has an attribute (or a declaration)
// twice by name as written, reporting the first repeat in source order.
func (p *treeParser) checkRepeats(attrs []xml.Attr, line int) error {
	i := -1
	if len(attrs) <= attrScanMax {
	scan:
		for k, a := range attrs {
			for _, b := range attrs[:k] {
				p.work++
				if b.Name == a.Name {
					i = k
					break scan
				}
			}
		}
	} else {
		i = p.firstRepeat(len(attrs), func(a, b int32) int {
			x, y := attrs[a].Name, attrs[b].Name
			if c := strings.Compare(x.Local, y.Local); c != 0 {
				return c
			}
			return strings.Compare(x.Space, y.Space)
		})
	}
	if i >= 0 {
		return &xmlError{line: line, msg: fmt.Sprintf("attribute %s redefined", qname(attrs[i].Name))}
	}
	return nil
}

// checkURIRepeats refuses two namespaced attributes with one local name
// and one namespace URI, reporting the first repeat in source order.
func (p *treeParser) checkURIRepeats(attrs []*node, line int) error {
	// Under one prefix, checkRepeats has already found any repeat.
	p.work += len(attrs)
	if !slices.ContainsFunc(attrs, func(a *node) bool { return a.prefix != attrs[0].prefix }) {
		return nil
	}
	i := -1
	if len(attrs) <= attrScanMax {
	scan:
		for k, a := range attrs {
			for _, b := range attrs[:k] {
				p.work++
				if a.space == b.space && a.local == b.local {
					i = k
					break scan
				}
			}
		}
	} else {
		i = p.firstRepeat(len(attrs), func(a, b int32) int {
			x, y := attrs[a], attrs[b]
			if c := strings.Compare(x.local, y.local); c != 0 {
				return c
			}
			return strings.Compare(x.space, y.space)
		})
	}
	if i >= 0 {
		return &xmlError{line: line, msg: fmt.Sprintf("attribute %s redefined", attrs[i].name())}
	}
	return nil
}

// maxInternedText is the longest white-space text the parser interns.
const maxInternedText = 64

func (p *treeParser) flushText() error {
	if len(p.text) > 0 {
		if len(p.text) <= maxInternedText && isAllXMLSpace(string(p.text)) {
			s, ok := p.texts[string(p.text)]
			if !ok {
				s = string(p.text)
				p.texts[s] = s
				p.size += stringBytes(len(s))
			}
			p.textNode.data = s
		} else {
			p.textNode.data = string(p.text)
			p.size += stringBytes(len(p.text))
		}
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

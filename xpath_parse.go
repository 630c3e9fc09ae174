// xpath_parse.go compiles XPath 1.0 filter expressions into an immutable
// syntax tree, accepting exactly what Comet's evaluator (lxml 4.9 over
// libxml2 2.9.14) accepts.
//
// The parser follows libxml2's recursive descent closely because its
// leniencies are part of the contract: exponent number literals ("1e3",
// even "1e"), "///a" read as "//a", operator names recognised without a
// word boundary ("1 ordiv" is "1 or div"), a function call whose closing
// parenthesis is missing at the very end ("true(" compiles), and, through
// libxml2's streaming-pattern shortcut, a trailing "|" on simple paths.
// Name resolution is left to evaluation: unknown functions, unbound
// prefixes and variables, and wrong argument counts are evaluation errors.
//
// Invariant: a compiled *xpathExpr is never modified, so any number of
// goroutines may evaluate it at once.
package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// xpathExpr is a compiled filter.
type xpathExpr struct {
	src  string
	root *xpNode
}

// String returns the expression as written.
func (x *xpathExpr) String() string { return x.src }

// xpathSyntaxError is an expression that does not compile (lxml's
// XPathSyntaxError). Pos is the byte offset where parsing stopped.
type xpathSyntaxError struct {
	Expr string
	Pos  int
	Msg  string
}

func (e *xpathSyntaxError) Error() string {
	return fmt.Sprintf("XPath syntax error at position %d: %s", e.Pos, e.Msg)
}

// Compile-time limits.
const (
	// xpMaxCompileDepth bounds the nesting of parenthesised expressions,
	// predicates and function arguments, counted as libxml2 does (10 per
	// level, limit 5000, so about 500 levels).
	xpMaxCompileDepth = 5000
	// xpMaxExprLen bounds the size of one expression.
	xpMaxExprLen = 1 << 16
)

// xpOp is the operation of a syntax tree node.
type xpOp uint8

const (
	opOr xpOp = iota
	opAnd
	opEq
	opNeq
	opLt
	opLe
	opGt
	opGe
	opAdd
	opSub
	opMul
	opDiv
	opMod
	opNeg   // unary minus (an odd number of '-')
	opToNum // an even number of '-': conversion to number only
	opUnion
	opNumber // literal number
	opString // literal string
	opVar    // variable reference (never bound)
	opFunc   // function call
	opFilter // primary expression with predicates
	opPath   // location path, possibly starting from a filter expression
)

// xpAxis is an XPath axis.
type xpAxis uint8

const (
	axisChild xpAxis = iota
	axisDescendant
	axisDescendantOrSelf
	axisParent
	axisAncestor
	axisAncestorOrSelf
	axisFollowingSibling
	axisPrecedingSibling
	axisFollowing
	axisPreceding
	axisAttribute
	axisNamespace
	axisSelf
)

var axisNames = map[string]xpAxis{
	"ancestor":           axisAncestor,
	"ancestor-or-self":   axisAncestorOrSelf,
	"attribute":          axisAttribute,
	"child":              axisChild,
	"descendant":         axisDescendant,
	"descendant-or-self": axisDescendantOrSelf,
	"following":          axisFollowing,
	"following-sibling":  axisFollowingSibling,
	"namespace":          axisNamespace,
	"parent":             axisParent,
	"preceding":          axisPreceding,
	"preceding-sibling":  axisPrecedingSibling,
	"self":               axisSelf,
}

// isReverse reports whether positions on the axis count backwards.
func (a xpAxis) isReverse() bool {
	switch a {
	case axisParent, axisAncestor, axisAncestorOrSelf, axisPrecedingSibling, axisPreceding:
		return true
	}
	return false
}

// xpTestKind is the kind of a node test.
type xpTestKind uint8

const (
	testName    xpTestKind = iota // QName
	testAll                       // * or prefix:*
	testNode                      // node()
	testText                      // text()
	testComment                   // comment()
	testPI                        // processing-instruction() or with a target
)

// xpStep is one location step.
type xpStep struct {
	axis   xpAxis
	test   xpTestKind
	prefix string // for testName and testAll ("" for none)
	local  string // name for testName, target for testPI ("" for any)
	preds  []*xpNode
}

// xpNode is a node of the compiled syntax tree.
type xpNode struct {
	op          xpOp
	left, right *xpNode // operands (opNeg/opToNum use left)
	num         float64 // opNumber
	str         string  // opString literal; opVar and opFunc name
	prefix      string  // opVar and opFunc prefix
	args        []*xpNode
	fn          *xpFunc   // resolved core function (nil: unknown or prefixed)
	preds       []*xpNode // opFilter
	// opPath
	absolute bool    // starts at the document root
	start    *xpNode // filter expression the path starts from, if any
	steps    []xpStep
}

// compileXPath compiles expr. The error is an *xpathSyntaxError.
func compileXPath(expr string) (x *xpathExpr, err error) {
	if len(expr) > xpMaxExprLen {
		return nil, &xpathSyntaxError{Expr: expr, Pos: xpMaxExprLen, Msg: fmt.Sprintf("expression longer than %d bytes", xpMaxExprLen)}
	}
	if pos, ok := xpValidChars(expr); !ok {
		return nil, &xpathSyntaxError{Expr: expr, Pos: pos, Msg: "Invalid character"}
	}
	if root := xpCompilePattern(expr); root != nil {
		return &xpathExpr{src: expr, root: optimize(root)}, nil
	}
	p := &xpParser{s: expr}
	defer func() {
		if r := recover(); r != nil {
			se, ok := r.(*xpathSyntaxError)
			if !ok {
				panic(r)
			}
			x, err = nil, se
		}
	}()
	root := p.expr()
	if p.cur() != 0 {
		p.fail("Invalid expression")
	}
	return &xpathExpr{src: expr, root: optimize(root)}, nil
}

// xpValidChars reports whether s is UTF-8 made only of XML characters
// (lxml refuses anything else before libxml2 sees it), and where not.
func xpValidChars(s string) (int, bool) {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size <= 1 {
				return i, false
			}
		}
		if !isXMLChar(r) {
			return i, false
		}
	}
	return 0, true
}

func isXMLChar(r rune) bool {
	switch {
	case r == 0x9 || r == 0xA || r == 0xD:
		return true
	case r >= 0x20 && r <= 0xD7FF:
		return true
	case r >= 0xE000 && r <= 0xFFFD:
		return true
	case r >= 0x10000 && r <= 0x10FFFF:
		return true
	}
	return false
}

// xpParser is the state of one compilation.
type xpParser struct {
	s     string
	pos   int
	depth int
}

func (p *xpParser) fail(msg string) {
	panic(&xpathSyntaxError{Expr: p.s, Pos: p.pos, Msg: msg})
}

func (p *xpParser) cur() byte { return p.nxt(0) }

func (p *xpParser) nxt(n int) byte {
	if p.pos+n < len(p.s) {
		return p.s[p.pos+n]
	}
	return 0
}

func (p *xpParser) next() {
	if p.pos < len(p.s) {
		p.pos++
	}
}

func (p *xpParser) skip(n int) {
	p.pos = min(p.pos+n, len(p.s))
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *xpParser) skipBlanks() {
	for p.pos < len(p.s) && isBlank(p.s[p.pos]) {
		p.pos++
	}
}

func isASCIIDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isASCIILetter(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// runeAt decodes the character at byte offset i (0 at the end).
func (p *xpParser) runeAt(i int) (rune, int) {
	if i >= len(p.s) {
		return 0, 0
	}
	return utf8.DecodeRuneInString(p.s[i:])
}

// Name characters as libxml2 classifies them: ASCII letters, digits, '.',
// '-' and '_', and beyond ASCII the XML 1.0 (fourth edition) tables of
// xpath_chars.go.
func isNameLetter(r rune) bool {
	if r < utf8.RuneSelf {
		return isASCIILetter(byte(r))
	}
	return unicode.Is(xpNameStartTable, r)
}

func isNCNameChar(r rune) bool {
	if r < utf8.RuneSelf {
		c := byte(r)
		return isASCIILetter(c) || isASCIIDigit(c) || c == '.' || c == '-' || c == '_'
	}
	return unicode.Is(xpNameCharTable, r)
}

// parseNCName reads an NCName at the cursor, or returns "" without moving.
func (p *xpParser) parseNCName() string {
	r, n := p.runeAt(p.pos)
	if !isNameLetter(r) && r != '_' {
		return ""
	}
	start := p.pos
	i := p.pos + n
	for {
		r, n = p.runeAt(i)
		if n == 0 || !isNCNameChar(r) {
			break
		}
		i += n
	}
	p.pos = i
	return p.s[start:i]
}

// parseQName reads prefix:local or local.
func (p *xpParser) parseQName() (prefix, local string) {
	local = p.parseNCName()
	if local != "" && p.cur() == ':' {
		prefix = local
		p.next()
		local = p.parseNCName()
	}
	return prefix, local
}

// scanName looks ahead at a name (colons included) without consuming it,
// to decide between a location path and a function call.
func (p *xpParser) scanName() string {
	r, n := p.runeAt(p.pos)
	if r == ' ' || r == '>' || r == '/' || (!isNameLetter(r) && r != '_' && r != ':') {
		return ""
	}
	i := p.pos
	for n > 0 && r != ' ' && r != '>' && r != '/' && (isNCNameChar(r) || r == ':') {
		i += n
		r, n = p.runeAt(i)
	}
	return p.s[p.pos:i]
}

// expr is Expr (OrExpr), with libxml2's nesting limit.
func (p *xpParser) expr() *xpNode {
	if p.depth >= xpMaxCompileDepth {
		p.fail("Recursion limit exceeded: expression nested too deeply")
	}
	p.depth += 10
	left := p.andExpr()
	p.skipBlanks()
	for p.cur() == 'o' && p.nxt(1) == 'r' {
		p.skip(2)
		p.skipBlanks()
		right := p.andExpr()
		left = &xpNode{op: opOr, left: left, right: right}
		p.skipBlanks()
	}
	p.depth -= 10
	return left
}

func (p *xpParser) andExpr() *xpNode {
	left := p.equalityExpr()
	p.skipBlanks()
	for p.cur() == 'a' && p.nxt(1) == 'n' && p.nxt(2) == 'd' {
		p.skip(3)
		p.skipBlanks()
		right := p.equalityExpr()
		left = &xpNode{op: opAnd, left: left, right: right}
		p.skipBlanks()
	}
	return left
}

func (p *xpParser) equalityExpr() *xpNode {
	left := p.relationalExpr()
	p.skipBlanks()
	for p.cur() == '=' || (p.cur() == '!' && p.nxt(1) == '=') {
		op := opEq
		if p.cur() == '!' {
			op = opNeq
			p.next()
		}
		p.next()
		p.skipBlanks()
		right := p.relationalExpr()
		left = &xpNode{op: op, left: left, right: right}
		p.skipBlanks()
	}
	return left
}

func (p *xpParser) relationalExpr() *xpNode {
	left := p.additiveExpr()
	p.skipBlanks()
	for p.cur() == '<' || p.cur() == '>' {
		var op xpOp
		strict := p.nxt(1) != '='
		switch {
		case p.cur() == '<' && strict:
			op = opLt
		case p.cur() == '<':
			op = opLe
		case strict:
			op = opGt
		default:
			op = opGe
		}
		p.next()
		if !strict {
			p.next()
		}
		p.skipBlanks()
		right := p.additiveExpr()
		left = &xpNode{op: op, left: left, right: right}
		p.skipBlanks()
	}
	return left
}

func (p *xpParser) additiveExpr() *xpNode {
	left := p.multiplicativeExpr()
	p.skipBlanks()
	for p.cur() == '+' || p.cur() == '-' {
		op := opAdd
		if p.cur() == '-' {
			op = opSub
		}
		p.next()
		p.skipBlanks()
		right := p.multiplicativeExpr()
		left = &xpNode{op: op, left: left, right: right}
		p.skipBlanks()
	}
	return left
}

func (p *xpParser) multiplicativeExpr() *xpNode {
	left := p.unaryExpr()
	p.skipBlanks()
	for {
		var op xpOp
		switch {
		case p.cur() == '*':
			op = opMul
			p.next()
		case p.cur() == 'd' && p.nxt(1) == 'i' && p.nxt(2) == 'v':
			op = opDiv
			p.skip(3)
		case p.cur() == 'm' && p.nxt(1) == 'o' && p.nxt(2) == 'd':
			op = opMod
			p.skip(3)
		default:
			return left
		}
		p.skipBlanks()
		right := p.unaryExpr()
		left = &xpNode{op: op, left: left, right: right}
		p.skipBlanks()
	}
}

func (p *xpParser) unaryExpr() *xpNode {
	minus, found := false, false
	p.skipBlanks()
	for p.cur() == '-' {
		minus = !minus
		found = true
		p.next()
		p.skipBlanks()
	}
	e := p.unionExpr()
	if found {
		if minus {
			return &xpNode{op: opNeg, left: e}
		}
		return &xpNode{op: opToNum, left: e}
	}
	return e
}

func (p *xpParser) unionExpr() *xpNode {
	left := p.pathExpr()
	p.skipBlanks()
	for p.cur() == '|' {
		p.next()
		p.skipBlanks()
		right := p.pathExpr()
		left = &xpNode{op: opUnion, left: left, right: right}
		p.skipBlanks()
	}
	return left
}

// isNodeTypeName reports whether name( starts a node test, not a call.
func isNodeTypeName(name string) bool {
	switch name {
	case "comment", "text", "node", "processing-instruction":
		return true
	}
	return false
}

// pathExpr decides, as libxml2 does, between a location path and a filter
// expression by looking at what follows a leading name.
func (p *xpParser) pathExpr() *xpNode {
	lc := true
	p.skipBlanks()
	c := p.cur()
	switch {
	case c == '$' || c == '(' || isASCIIDigit(c) || c == '\'' || c == '"' || (c == '.' && isASCIIDigit(p.nxt(1))):
		lc = false
	case c == '*' || c == '/' || c == '@' || c == '.':
		lc = true
	default:
		name := p.scanName()
		if name == "" {
			p.fail("Invalid expression")
		}
		if !strings.Contains(name, "::") {
			i := p.pos + len(name)
			for i < len(p.s) && isBlank(p.s[i]) {
				i++
			}
			if i < len(p.s) && p.s[i] == '(' && !isNodeTypeName(name) {
				lc = false
			}
		}
	}
	if lc {
		path := &xpNode{op: opPath}
		if p.cur() == '/' {
			path.absolute = true
		}
		p.locationPath(path)
		return path
	}
	f := p.filterExpr()
	if p.cur() == '/' {
		path := &xpNode{op: opPath, start: f}
		if p.nxt(1) == '/' {
			p.skip(2)
			p.skipBlanks()
			path.steps = append(path.steps, xpStep{axis: axisDescendantOrSelf, test: testNode})
		}
		p.relativeLocationPath(path)
		p.skipBlanks()
		return path
	}
	p.skipBlanks()
	return f
}

func (p *xpParser) filterExpr() *xpNode {
	e := p.primaryExpr()
	p.skipBlanks()
	if p.cur() == '[' {
		f := &xpNode{op: opFilter, left: e}
		for p.cur() == '[' {
			f.preds = append(f.preds, p.predicate())
			p.skipBlanks()
		}
		return f
	}
	return e
}

func (p *xpParser) primaryExpr() *xpNode {
	var e *xpNode
	p.skipBlanks()
	c := p.cur()
	switch {
	case c == '$':
		p.next()
		prefix, local := p.parseQName()
		if local == "" {
			p.fail("Invalid variable reference")
		}
		e = &xpNode{op: opVar, str: local, prefix: prefix}
	case c == '(':
		p.next()
		p.skipBlanks()
		e = p.expr()
		if p.cur() != ')' {
			p.fail("Invalid expression")
		}
		p.next()
	case isASCIIDigit(c) || (c == '.' && isASCIIDigit(p.nxt(1))):
		e = &xpNode{op: opNumber, num: p.number()}
	case c == '"' || c == '\'':
		e = &xpNode{op: opString, str: p.literal()}
	default:
		e = p.functionCall()
	}
	p.skipBlanks()
	return e
}

// functionCall parses name(args). As in libxml2, reaching the end of the
// expression where an argument or ')' is due ends the call.
func (p *xpParser) functionCall() *xpNode {
	prefix, local := p.parseQName()
	if local == "" {
		p.fail("Invalid expression")
	}
	p.skipBlanks()
	if p.cur() != '(' {
		p.fail("Invalid expression")
	}
	p.next()
	p.skipBlanks()
	f := &xpNode{op: opFunc, str: local, prefix: prefix}
	if p.cur() != ')' {
		for p.cur() != 0 {
			f.args = append(f.args, p.expr())
			if p.cur() == ')' {
				break
			}
			if p.cur() != ',' {
				p.fail("Invalid expression")
			}
			p.next()
			p.skipBlanks()
		}
	}
	p.next()
	if prefix == "" {
		f.fn = xpFunctions[local]
	}
	return f
}

// number parses a number literal with libxml2's arithmetic, so literals
// round exactly as they do there. The explicit float64 conversions keep
// the compiler from fusing multiply and add (it may on arm64), which
// would round differently from libxml2.
func (p *xpParser) number() float64 {
	c := p.cur()
	if c != '.' && !isASCIIDigit(c) {
		p.fail("Invalid number")
	}
	ret := 0.0
	ok := false
	for isASCIIDigit(p.cur()) {
		ret = float64(ret*10) + float64(p.cur()-'0')
		ok = true
		p.next()
	}
	if p.cur() == '.' {
		p.next()
		if !isASCIIDigit(p.cur()) && !ok {
			p.fail("Invalid number")
		}
		frac := 0
		fraction := 0.0
		for p.cur() == '0' {
			frac++
			p.next()
		}
		maxFrac := frac + 20
		for isASCIIDigit(p.cur()) && frac < maxFrac {
			fraction = float64(fraction*10) + float64(p.cur()-'0')
			frac++
			p.next()
		}
		fraction /= pow10(frac)
		ret += fraction
		for isASCIIDigit(p.cur()) {
			p.next()
		}
	}
	if p.cur() == 'e' || p.cur() == 'E' {
		p.next()
		neg := false
		if p.cur() == '-' {
			neg = true
			p.next()
		} else if p.cur() == '+' {
			p.next()
		}
		exp := 0
		for isASCIIDigit(p.cur()) {
			if exp < 1000000 {
				exp = exp*10 + int(p.cur()-'0')
			}
			p.next()
		}
		if neg {
			exp = -exp
		}
		ret *= pow10(exp)
	}
	return ret
}

func (p *xpParser) literal() string {
	q := p.cur()
	p.next()
	start := p.pos
	i := strings.IndexByte(p.s[start:], q)
	if i < 0 {
		p.pos = len(p.s)
		p.fail("Unfinished literal")
	}
	p.pos = start + i + 1
	return p.s[start : start+i]
}

func (p *xpParser) predicate() *xpNode {
	p.skipBlanks()
	if p.cur() != '[' {
		p.fail("Invalid predicate")
	}
	p.next()
	p.skipBlanks()
	e := p.expr()
	if p.cur() != ']' {
		p.fail("Invalid predicate")
	}
	p.next()
	p.skipBlanks()
	return e
}

// locationPath parses an absolute or relative location path into path.
func (p *xpParser) locationPath(path *xpNode) {
	p.skipBlanks()
	if p.cur() != '/' {
		p.relativeLocationPath(path)
		return
	}
	for p.cur() == '/' {
		if p.nxt(1) == '/' {
			p.skip(2)
			p.skipBlanks()
			path.steps = append(path.steps, xpStep{axis: axisDescendantOrSelf, test: testNode})
			p.relativeLocationPath(path)
		} else {
			p.next()
			p.skipBlanks()
			c := p.cur()
			if c != 0 && (isASCIILetter(c) || c == '_' || c == '.' || c == '@' || c == '*') {
				p.relativeLocationPath(path)
			}
		}
	}
}

func (p *xpParser) relativeLocationPath(path *xpNode) {
	p.skipBlanks()
	if p.cur() == '/' && p.nxt(1) == '/' {
		p.skip(2)
		p.skipBlanks()
		path.steps = append(path.steps, xpStep{axis: axisDescendantOrSelf, test: testNode})
	} else if p.cur() == '/' {
		p.next()
		p.skipBlanks()
	}
	p.step(path)
	p.skipBlanks()
	for p.cur() == '/' {
		if p.nxt(1) == '/' {
			p.skip(2)
			p.skipBlanks()
			path.steps = append(path.steps, xpStep{axis: axisDescendantOrSelf, test: testNode})
		} else {
			p.next()
			p.skipBlanks()
		}
		p.step(path)
		p.skipBlanks()
	}
}

// step parses one step, appending it to path ("." appends nothing).
func (p *xpParser) step(path *xpNode) {
	p.skipBlanks()
	if p.cur() == '.' && p.nxt(1) == '.' {
		p.skip(2)
		p.skipBlanks()
		path.steps = append(path.steps, xpStep{axis: axisParent, test: testNode})
		return
	}
	if p.cur() == '.' {
		p.next()
		p.skipBlanks()
		path.steps = append(path.steps, xpStep{axis: axisSelf, test: testNode})
		return
	}
	var name string
	axis := axisChild
	if p.cur() != '*' {
		name = p.parseNCName()
		if name != "" {
			if a, ok := axisNames[name]; ok {
				p.skipBlanks()
				if p.cur() == ':' && p.nxt(1) == ':' {
					p.skip(2)
					name = ""
					axis = a
				}
			}
		} else if p.cur() == '@' {
			p.next()
			axis = axisAttribute
		}
	}
	st := p.nodeTest(name)
	st.axis = axis
	p.skipBlanks()
	for p.cur() == '[' {
		st.preds = append(st.preds, p.predicate())
	}
	path.steps = append(path.steps, st)
}

// nodeTest parses a node test; name is an NCName the caller already read.
func (p *xpParser) nodeTest(name string) xpStep {
	p.skipBlanks()
	if name == "" && p.cur() == '*' {
		p.next()
		return xpStep{test: testAll}
	}
	if name == "" {
		name = p.parseNCName()
		if name == "" {
			p.fail("Invalid expression")
		}
	}
	blanks := isBlank(p.cur())
	p.skipBlanks()
	if p.cur() == '(' {
		p.next()
		var st xpStep
		switch name {
		case "comment":
			st.test = testComment
		case "node":
			st.test = testNode
		case "text":
			st.test = testText
		case "processing-instruction":
			st.test = testPI
		default:
			p.fail("Invalid expression")
		}
		p.skipBlanks()
		if st.test == testPI && p.cur() != ')' {
			if c := p.cur(); c != '"' && c != '\'' {
				p.fail("Start of literal expected")
			}
			st.local = p.literal()
			p.skipBlanks()
		}
		if p.cur() != ')' {
			p.fail("Unclosed node test")
		}
		p.next()
		return st
	}
	st := xpStep{test: testName, local: name}
	if !blanks && p.cur() == ':' {
		p.next()
		st.prefix = name
		if p.cur() == '*' {
			p.next()
			st.test = testAll
			st.local = ""
			return st
		}
		st.local = p.parseNCName()
		if st.local == "" {
			p.fail("Invalid expression")
		}
	}
	return st
}

// xpCompilePattern mirrors libxml2's streaming shortcut: an expression
// without '[', '(', '@' or ':' that compiles as a streamable pattern
// (alternatives of child and descendant name steps separated by '|', all
// absolute or all relative) is accepted even where the XPath grammar is
// stricter (a trailing '|', a non-ASCII name after '/'). It returns the
// equivalent syntax tree, or nil to fall back to the XPath parser.
func xpCompilePattern(expr string) *xpNode {
	if expr == "" || strings.ContainsAny(expr, "[(@:") {
		return nil
	}
	var union *xpNode
	kind := 0 // 1 absolute, 2 relative
	rest := expr
	for rest != "" {
		alt := rest
		if i := strings.IndexByte(rest, '|'); i >= 0 {
			alt, rest = rest[:i], rest[i+1:]
		} else {
			rest = ""
		}
		path, ok := xpPatternAlt(alt)
		if !ok {
			return nil
		}
		k := 2
		if path.absolute {
			k = 1
		}
		if kind != 0 && kind != k {
			return nil
		}
		kind = k
		if union == nil {
			union = path
		} else {
			union = &xpNode{op: opUnion, left: union, right: path}
		}
	}
	return union
}

// xpPatternAlt compiles one alternative of a streaming pattern.
func xpPatternAlt(s string) (*xpNode, bool) {
	p := &xpParser{s: s}
	path := &xpNode{op: opPath}
	desc := xpStep{axis: axisDescendantOrSelf, test: testNode}
	p.skipBlanks()
	ops := 0 // pattern operations so far: a root after the first is refused
	if p.cur() == '/' {
		path.absolute = true
	}
	if p.cur() == '/' && p.nxt(1) == '/' {
		path.steps = append(path.steps, desc)
		ops++
		p.skip(2)
	} else if p.cur() == '.' && p.nxt(1) == '/' && p.nxt(2) == '/' {
		path.steps = append(path.steps, desc)
		ops++
		p.skip(3)
		p.skipBlanks()
		if p.cur() == 0 {
			return nil, false
		}
	}
	rootOp := false
	if p.cur() == '/' {
		if ops > 0 {
			return nil, false
		}
		rootOp = true
		path.absolute = true
		p.next()
		p.skipBlanks()
		if p.cur() == 0 {
			return nil, false
		}
	}
	if !p.patternStep(path) {
		return nil, false
	}
	p.skipBlanks()
	for p.cur() == '/' {
		if p.nxt(1) == '/' {
			path.steps = append(path.steps, desc)
			p.skip(2)
			p.skipBlanks()
		} else {
			p.next()
			p.skipBlanks()
			if p.cur() == 0 {
				return nil, false
			}
		}
		if !p.patternStep(path) {
			return nil, false
		}
	}
	if p.cur() != 0 {
		return nil, false
	}
	// Patterns made only of "." and "//" stream differently from XPath:
	// relative ones (".//.") never yield the context node itself, and
	// absolute ones written with a single leading "/" ("/.//.") yield only
	// the document node, as libxml2's streaming evaluator does.
	onlySelf, hasDesc := true, false
	for _, st := range path.steps {
		switch st.axis {
		case axisSelf:
		case axisDescendantOrSelf:
			hasDesc = true
		default:
			onlySelf = false
		}
	}
	switch {
	case onlySelf && !hasDesc && (path.absolute || len(path.steps) > 1):
		// "/." or "./." compile to an empty stream, which libxml2
		// refuses; only a lone "." streams.
		return nil, false
	case !onlySelf || !hasDesc:
	case !path.absolute:
		path.steps = []xpStep{{axis: axisDescendant, test: testNode}}
	case rootOp:
		path.steps = nil
	}
	return path, true
}

func (p *xpParser) patternStep(path *xpNode) bool {
	p.skipBlanks()
	if p.cur() == '.' {
		p.next()
		path.steps = append(path.steps, xpStep{axis: axisSelf, test: testNode})
		return true
	}
	name := p.parseNCName()
	if name == "" {
		if p.cur() == '*' {
			p.next()
			path.steps = append(path.steps, xpStep{axis: axisChild, test: testAll})
			return true
		}
		return false
	}
	p.skipBlanks()
	if p.cur() == '*' {
		return false
	}
	path.steps = append(path.steps, xpStep{axis: axisChild, test: testName, local: name})
	return true
}

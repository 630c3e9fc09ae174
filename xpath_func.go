// xpath_func.go holds the 27 core functions of XPath 1.0, the number
// conversions with libxml2's exact arithmetic and formatting, and the
// compile-time rewrite of "//name[...]" into a single descendant step.
package main

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// xpFunc is a core function: its argument count range (max < 0: no limit),
// static result type and implementation. Arguments arrive evaluated.
type xpFunc struct {
	name     string
	min, max int
	result   xpathKind
	impl     func(ev *xpEval, f xpFocus, args []xpathValue) xpathValue
}

var xpFunctions map[string]*xpFunc

func init() {
	fns := []*xpFunc{
		{"last", 0, 0, xpNumber, fnLast},
		{"position", 0, 0, xpNumber, fnPosition},
		{"count", 1, 1, xpNumber, fnCount},
		{"id", 1, 1, xpNodeSet, fnID},
		{"local-name", 0, 1, xpString, fnLocalName},
		{"namespace-uri", 0, 1, xpString, fnNamespaceURI},
		{"name", 0, 1, xpString, fnName},
		{"string", 0, 1, xpString, fnString},
		{"concat", 2, -1, xpString, fnConcat},
		{"starts-with", 2, 2, xpBoolean, fnStartsWith},
		{"contains", 2, 2, xpBoolean, fnContains},
		{"substring-before", 2, 2, xpString, fnSubstringBefore},
		{"substring-after", 2, 2, xpString, fnSubstringAfter},
		{"substring", 2, 3, xpString, fnSubstring},
		{"string-length", 0, 1, xpNumber, fnStringLength},
		{"normalize-space", 0, 1, xpString, fnNormalizeSpace},
		{"translate", 3, 3, xpString, fnTranslate},
		{"boolean", 1, 1, xpBoolean, fnBoolean},
		{"not", 1, 1, xpBoolean, fnNot},
		{"true", 0, 0, xpBoolean, fnTrue},
		{"false", 0, 0, xpBoolean, fnFalse},
		{"lang", 1, 1, xpBoolean, fnLang},
		{"number", 0, 1, xpNumber, fnNumber},
		{"sum", 1, 1, xpNumber, fnSum},
		{"floor", 1, 1, xpNumber, fnFloor},
		{"ceiling", 1, 1, xpNumber, fnCeiling},
		{"round", 1, 1, xpNumber, fnRound},
	}
	xpFunctions = make(map[string]*xpFunc, len(fns))
	for _, f := range fns {
		xpFunctions[f.name] = f
	}
}

// call evaluates a function call: arguments first (as libxml2 does), then
// the lookup and the argument count.
func (ev *xpEval) call(e *xpNode, f xpFocus) xpathValue {
	base := len(ev.stack)
	for _, a := range e.args {
		v := ev.eval(a, f)
		if v.kind == xpString {
			// String functions take time in proportion to their input.
			ev.charge(len(v.str) / 64)
		}
		ev.stack = append(ev.stack, v)
	}
	args := ev.stack[base:]
	if e.prefix != "" {
		ev.fail("Undefined namespace prefix")
	}
	fn := e.fn
	if fn == nil {
		ev.fail("Unregistered function")
	}
	if len(args) < fn.min || fn.max >= 0 && len(args) > fn.max {
		ev.fail("Invalid number of arguments")
	}
	ev.charge(1)
	v := fn.impl(ev, f, args)
	clear(args)
	ev.stack = ev.stack[:base]
	return v
}

// firstNodeArg returns the first node of the node-set argument, or the
// context node when the function was called without it.
func (ev *xpEval) firstNodeArg(f xpFocus, args []xpathValue) (*node, bool) {
	if len(args) == 0 {
		return f.node, true
	}
	if args[0].kind != xpNodeSet {
		ev.fail("Invalid type")
	}
	if len(args[0].nodes) == 0 {
		return nil, false
	}
	return args[0].nodes[0], true
}

// nodeArg returns the node-set argument i, or the context node when the
// function was called without it; any other type is an error.
func (ev *xpEval) nodeArg(f xpFocus, args []xpathValue) []*node {
	if len(args) == 0 {
		return []*node{f.node}
	}
	if args[0].kind != xpNodeSet {
		ev.fail("Invalid type")
	}
	return args[0].nodes
}

// stringArg returns argument 0 as a string, or the context node's value.
func (ev *xpEval) stringArg(f xpFocus, args []xpathValue) string {
	if len(args) == 0 {
		return ev.stringOf(f.node)
	}
	return ev.toStr(args[0])
}

func fnLast(ev *xpEval, f xpFocus, _ []xpathValue) xpathValue {
	if f.size < 0 {
		ev.fail("Invalid context size")
	}
	return numValue(float64(f.size))
}

func fnPosition(ev *xpEval, f xpFocus, _ []xpathValue) xpathValue {
	if f.size < 0 {
		ev.fail("Invalid context position")
	}
	return numValue(float64(f.pos))
}

func fnCount(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	return numValue(float64(len(ev.nodeArg(f, args))))
}

// fnID finds elements by xml:id (the only IDs a document without a DTD
// has, as in libxml2); the first element with a given value wins.
func fnID(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	var tokens []string
	if args[0].kind == xpNodeSet {
		for _, n := range args[0].nodes {
			tokens = append(tokens, idTokens(ev.stringOf(n))...)
		}
	} else {
		tokens = idTokens(ev.toStr(args[0]))
	}
	if len(tokens) == 0 {
		return nodesValue(nil)
	}
	if ev.ids == nil {
		ev.ids = make(map[string]*node)
		for c := ev.doc.root.firstChild; c != nil; c = nextInSubtree(c, ev.doc.root) {
			ev.charge(1)
			for a := c.firstAttr; a != nil; a = a.next {
				if v := attrValue(a); a.prefix == "xml" && a.local == "id" && v != "" {
					if _, dup := ev.ids[v]; !dup {
						ev.ids[v] = c
					}
				}
			}
		}
	}
	var out []*node
	for _, t := range tokens {
		ev.charge(1)
		if n, ok := ev.ids[t]; ok {
			out = append(out, n)
		}
	}
	return nodesValue(ev.sortNodes(out))
}

// idTokens splits an id() argument on blanks as libxml2 does, including
// its quirk: the first token keeps the blanks that precede it (so
// id(" a") finds nothing).
func idTokens(s string) []string {
	tokens := strings.FieldsFunc(s, isBlankRune)
	if len(tokens) > 0 && isBlank(s[0]) {
		tokens[0] = s[:strings.Index(s, tokens[0])+len(tokens[0])]
	}
	return tokens
}

func isBlankRune(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

func fnLocalName(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	n, ok := ev.firstNodeArg(f, args)
	if !ok {
		return strValue("")
	}
	switch n.kind {
	case elementNode, attributeNode, piNode, namespaceNode:
		return strValue(n.local)
	}
	return strValue("")
}

func fnNamespaceURI(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	n, ok := ev.firstNodeArg(f, args)
	if !ok {
		return strValue("")
	}
	switch n.kind {
	case elementNode, attributeNode:
		return strValue(n.space)
	}
	return strValue("")
}

func fnName(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	n, ok := ev.firstNodeArg(f, args)
	if !ok {
		return strValue("")
	}
	switch n.kind {
	case elementNode, attributeNode:
		return strValue(n.name())
	case piNode, namespaceNode:
		return strValue(n.local)
	}
	return strValue("")
}

func fnString(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	return strValue(ev.stringArg(f, args))
}

func fnConcat(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	strs := make([]string, len(args))
	total := 0
	for i, a := range args {
		strs[i] = ev.toStr(a)
		total += len(strs[i])
	}
	ev.charge(total / 64) // before building: the result can be large
	return strValue(strings.Join(strs, ""))
}

func fnStartsWith(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	return boolValue(strings.HasPrefix(ev.toStr(args[0]), ev.toStr(args[1])))
}

func fnContains(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	return boolValue(strings.Contains(ev.toStr(args[0]), ev.toStr(args[1])))
}

func fnSubstringBefore(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	s, sep := ev.toStr(args[0]), ev.toStr(args[1])
	if i := strings.Index(s, sep); i >= 0 {
		return strValue(s[:i])
	}
	return strValue("")
}

func fnSubstringAfter(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	s, sep := ev.toStr(args[0]), ev.toStr(args[1])
	if i := strings.Index(s, sep); i >= 0 {
		return strValue(s[i+len(sep):])
	}
	return strValue("")
}

// fnSubstring follows libxml2's arithmetic, which gives the REC's results
// for NaN and infinite arguments: characters i..j-1, counted from 1.
func fnSubstring(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	s := ev.toStr(args[0])
	in := ev.toNum(args[1])
	i, j := 1, math.MaxInt32
	if !(in < math.MaxInt32) {
		i = math.MaxInt32
	} else if in >= 1.0 {
		i = int(in)
		if in-math.Floor(in) >= 0.5 {
			i++
		}
	}
	if len(args) == 3 {
		le := ev.toNum(args[2])
		rin := math.Floor(in)
		if in-rin >= 0.5 {
			rin++
		}
		rle := math.Floor(le)
		if le-rle >= 0.5 {
			rle++
		}
		end := rin + rle
		if !(end >= 1.0) {
			j = 1
		} else if end < math.MaxInt32 {
			j = int(end)
		}
	}
	if i >= j {
		return strValue("")
	}
	// Characters i-1 .. j-2 (0-based), clipped to the string.
	start, pos := -1, 0
	for k := range s {
		if pos == i-1 {
			start = k
		}
		if pos == j-1 {
			return strValue(s[start:k])
		}
		pos++
	}
	if start < 0 {
		return strValue("")
	}
	return strValue(s[start:])
}

func fnStringLength(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	return numValue(float64(utf8.RuneCountInString(ev.stringArg(f, args))))
}

func fnNormalizeSpace(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	return strValue(strings.Join(strings.FieldsFunc(ev.stringArg(f, args), isBlankRune), " "))
}

func fnTranslate(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	s, from, to := ev.toStr(args[0]), []rune(ev.toStr(args[1])), []rune(ev.toStr(args[2]))
	ev.charge(len(s) * (len(from) + 1) / 64)
	var b strings.Builder
	for _, r := range s {
		k := -1
		for i, fr := range from {
			if fr == r {
				k = i
				break
			}
		}
		switch {
		case k < 0:
			b.WriteRune(r)
		case k < len(to):
			b.WriteRune(to[k])
		}
	}
	return strValue(b.String())
}

func fnBoolean(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	return boolValue(ev.toBool(args[0]))
}

func fnNot(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	return boolValue(!ev.toBool(args[0]))
}

func fnTrue(*xpEval, xpFocus, []xpathValue) xpathValue  { return boolValue(true) }
func fnFalse(*xpEval, xpFocus, []xpathValue) xpathValue { return boolValue(false) }

// fnLang compares with the nearest xml:lang, case-insensitively, allowing
// a "-suffix" on the document's value.
func fnLang(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	want := ev.toStr(args[0])
	if f.node.kind == namespaceNode {
		return boolValue(false)
	}
	for n := f.node; n != nil; n = n.parent {
		ev.charge(1)
		if n.kind != elementNode {
			continue
		}
		for a := n.firstAttr; a != nil; a = a.next {
			if a.space == xmlNamespaceURI && a.local == "lang" {
				have := attrValue(a)
				if len(have) < len(want) || !strings.EqualFold(have[:len(want)], want) {
					return boolValue(false)
				}
				return boolValue(len(have) == len(want) || have[len(want)] == '-')
			}
		}
	}
	return boolValue(false)
}

func fnNumber(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	if len(args) == 0 {
		return numValue(xpStringToNumber(ev.stringOf(f.node)))
	}
	return numValue(ev.toNum(args[0]))
}

func fnSum(ev *xpEval, f xpFocus, args []xpathValue) xpathValue {
	total := 0.0
	for _, n := range ev.nodeArg(f, args) {
		total += xpStringToNumber(ev.stringOf(n))
	}
	return numValue(total)
}

func fnFloor(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	return numValue(math.Floor(ev.toNum(args[0])))
}

func fnCeiling(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	return numValue(math.Ceil(ev.toNum(args[0])))
}

// fnRound rounds half up; -0.5 <= x < 0.5 keeps the sign of x as a zero.
func fnRound(ev *xpEval, _ xpFocus, args []xpathValue) xpathValue {
	x := ev.toNum(args[0])
	if x >= -0.5 && x < 0.5 {
		return numValue(x * 0.0)
	}
	r := math.Floor(x)
	if x-r >= 0.5 {
		r++
	}
	return numValue(r)
}

// pow10tab holds correctly rounded powers of ten, as C's pow(10, n) gives.
var pow10tab = func() []float64 {
	t := make([]float64, 2*400+1)
	for i := range t {
		t[i], _ = strconv.ParseFloat("1e"+strconv.Itoa(i-400), 64)
	}
	return t
}()

func pow10(n int) float64 {
	switch {
	case n < -400:
		return 0
	case n > 400:
		return math.Inf(1)
	}
	return pow10tab[n+400]
}

// xpStringToNumber converts a string as libxml2 does: optional blanks, an
// optional '-', digits with an optional fraction, an optional exponent
// (an extension of libxml2), optional blanks; anything else is NaN.
func xpStringToNumber(s string) float64 {
	i := 0
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	at := func(k int) byte {
		if k < len(s) {
			return s[k]
		}
		return 0
	}
	if c := at(i); c != '.' && !isASCIIDigit(c) && c != '-' {
		return math.NaN()
	}
	neg := false
	if at(i) == '-' {
		neg = true
		i++
	}
	ret := 0.0
	ok := false
	for isASCIIDigit(at(i)) {
		ret = float64(ret*10) + float64(at(i)-'0')
		ok = true
		i++
	}
	if at(i) == '.' {
		i++
		if !isASCIIDigit(at(i)) && !ok {
			return math.NaN()
		}
		frac := 0
		fraction := 0.0
		for at(i) == '0' {
			frac++
			i++
		}
		maxFrac := frac + 20
		for isASCIIDigit(at(i)) && frac < maxFrac {
			fraction = float64(fraction*10) + float64(at(i)-'0')
			frac++
			i++
		}
		fraction /= pow10(frac)
		ret += fraction
		for isASCIIDigit(at(i)) {
			i++
		}
	}
	exp := 0
	if c := at(i); c == 'e' || c == 'E' {
		i++
		expNeg := false
		if at(i) == '-' {
			expNeg = true
			i++
		} else if at(i) == '+' {
			i++
		}
		for isASCIIDigit(at(i)) {
			if exp < 1000000 {
				exp = exp*10 + int(at(i)-'0')
			}
			i++
		}
		if expNeg {
			exp = -exp
		}
	}
	for i < len(s) && isBlank(s[i]) {
		i++
	}
	if i != len(s) {
		return math.NaN()
	}
	if neg {
		ret = -ret
	}
	return ret * pow10(exp)
}

// xpNumberToString formats a number as libxml2's string() does: integers
// that fit in 32 bits plainly, magnitudes in [1e-5, 1e9] with up to 15
// significant digits, others in exponent form; no trailing zeros.
func xpNumberToString(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	case f == 0:
		return "0"
	case f > math.MinInt32 && f < math.MaxInt32 && f == math.Trunc(f):
		return strconv.Itoa(int(f))
	}
	abs := math.Abs(f)
	if abs > 1e9 || abs < 1e-5 {
		s := strconv.FormatFloat(f, 'e', 14, 64)
		e := strings.IndexByte(s, 'e')
		mant := strings.TrimRight(s[:e], "0")
		mant = strings.TrimSuffix(mant, ".")
		return mant + s[e:]
	}
	ip := int(math.Log10(abs))
	fp := 15 - ip
	if ip > 0 {
		fp--
	}
	s := strconv.FormatFloat(f, 'f', fp, 64)
	if strings.IndexByte(s, '.') >= 0 {
		s = strings.TrimRight(s, "0")
		s = strings.TrimSuffix(s, ".")
	}
	return s
}

// optimize rewrites "descendant-or-self::node()/child::x[p]" (what "//x[p]"
// means) into "descendant::x[p]" when no predicate depends on position or
// can be a number, as libxml2 does for predicate-free steps: same nodes,
// far less work.
func optimize(e *xpNode) *xpNode {
	if e == nil {
		return nil
	}
	optimize(e.left)
	optimize(e.right)
	optimize(e.start)
	for _, a := range e.args {
		optimize(a)
	}
	for _, p := range e.preds {
		optimizePred(p)
	}
	for i := range e.steps {
		for _, p := range e.steps[i].preds {
			optimizePred(p)
		}
	}
	if e.op != opPath {
		return e
	}
	rewriteDescendant(e)
	return e
}

// optimizePred optimizes a predicate. A location path used directly as a
// predicate keeps its steps: it is evaluated lazily, one context node of
// its last step at a time, and that order decides (as in libxml2) which
// nested predicates run.
func optimizePred(p *xpNode) {
	if p.op != opPath {
		optimize(p)
		return
	}
	optimize(p.start)
	for i := range p.steps {
		for _, q := range p.steps[i].preds {
			optimizePred(q)
		}
	}
}

// rewriteDescendant merges "descendant-or-self::node()/child::x[p]" steps.
func rewriteDescendant(e *xpNode) {
	steps := e.steps[:0:0]
	for i := 0; i < len(e.steps); i++ {
		st := e.steps[i]
		if st.axis == axisDescendantOrSelf && st.test == testNode && len(st.preds) == 0 && i+1 < len(e.steps) {
			next := e.steps[i+1]
			if positionFree(next.preds) {
				switch next.axis {
				case axisChild, axisDescendant:
					next.axis = axisDescendant
					steps = append(steps, next)
					i++
					continue
				case axisSelf, axisDescendantOrSelf:
					next.axis = axisDescendantOrSelf
					steps = append(steps, next)
					i++
					continue
				}
			}
		}
		steps = append(steps, st)
	}
	e.steps = steps
}

// positionFree reports whether every predicate is a boolean, string or
// node-set that does not use the context position or size.
func positionFree(preds []*xpNode) bool {
	for _, p := range preds {
		switch staticType(p) {
		case xpBoolean, xpString, xpNodeSet:
		default:
			return false
		}
		if usesPosition(p) {
			return false
		}
	}
	return true
}

// staticType is the type an expression always has; xpNumber also stands
// for "could be a number" (variables, unknown functions).
func staticType(e *xpNode) xpathKind {
	switch e.op {
	case opOr, opAnd, opEq, opNeq, opLt, opLe, opGt, opGe:
		return xpBoolean
	case opUnion, opPath, opFilter:
		return xpNodeSet
	case opString:
		return xpString
	case opFunc:
		if e.fn != nil && e.prefix == "" {
			return e.fn.result
		}
	}
	return xpNumber
}

// usesPosition reports whether e reads the context position or size
// outside nested predicates; unknown functions count as doing so.
func usesPosition(e *xpNode) bool {
	if e == nil {
		return false
	}
	if e.op == opFunc && (e.fn == nil || e.prefix != "" || e.fn.name == "position" || e.fn.name == "last") {
		return true
	}
	if usesPosition(e.left) || usesPosition(e.right) || usesPosition(e.start) {
		return true
	}
	for _, a := range e.args {
		if usesPosition(a) {
			return true
		}
	}
	return false
}

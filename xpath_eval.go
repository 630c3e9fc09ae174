// xpath_eval.go evaluates compiled filters over a read-only document tree.
//
// All evaluation state lives in a per-call xpEval, so one compiled filter is
// shared by every goroutine without copying. Node-sets are slices of tree
// nodes in document order without duplicates; namespace nodes, which the
// tree does not hold, are made per evaluation.
//
// Limits: every node an axis visits, every string-value node and every
// predicate test costs one unit of a per-evaluation budget, and expression
// nesting is bounded at evaluation too; exceeding either is an evaluation
// error, so no filter can hang or exhaust the broker.
package main

import (
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// xpathKind is the type of an XPath value.
type xpathKind uint8

const (
	xpNodeSet xpathKind = iota
	xpBoolean
	xpNumber
	xpString
)

var xpathKindNames = [...]string{"nodeset", "boolean", "number", "string"}

func (k xpathKind) String() string { return xpathKindNames[k] }

// xpathValue is the result of an expression: one of the four XPath types.
type xpathValue struct {
	kind  xpathKind
	nodes []*node // xpNodeSet, in document order
	b     bool
	num   float64
	str   string
}

// xpathEvalError is an expression that fails when evaluated (lxml's
// XPathEvalError): unknown function, bad arguments, unbound variable or
// prefix, position() outside a predicate, or a limit exceeded.
type xpathEvalError struct {
	Expr string
	Msg  string
}

func (e *xpathEvalError) Error() string { return "XPath evaluation error: " + e.Msg }

// Evaluation limits.
const (
	xpEvalBudget   = 4 << 20 // node visits and tests per evaluation
	xpMaxEvalDepth = 5000    // nesting of operations during evaluation
	xpClockEvery   = 4096    // units between looks at the clock, under a deadline
)

// xpTimeExceeded is the message of an evaluation stopped by its deadline.
const xpTimeExceeded = "evaluation time budget exceeded"

// xpEval is the state of one evaluation.
type xpEval struct {
	doc    *document
	expr   string
	budget int
	depth  int
	// deadline, when set, bounds the evaluation in time too: checked
	// every xpClockEvery units (see tick), failing with errFilterTime.
	deadline time.Time
	ticks    int
	ids      map[string]*node // xml:id index, built on first use of id()
	slab     []*node          // backing store for one-node sets
	stack    []xpathValue     // function arguments being evaluated
	scratch  []*node          // nodes being collected by steps
}

// xpEvalPool recycles evaluation state (its scratch stacks) between
// evaluations; results never point into pooled memory.
var xpEvalPool = sync.Pool{New: func() any { return new(xpEval) }}

// single returns the node-set {n}, carved from a shared chunk so that the
// many one-node sets of an evaluation cost few allocations.
func (ev *xpEval) single(n *node) []*node {
	if len(ev.slab) == cap(ev.slab) {
		ev.slab = make([]*node, 0, min(2*cap(ev.slab)+8, 64))
	}
	ev.slab = append(ev.slab, n)
	i := len(ev.slab)
	return ev.slab[i-1 : i : i]
}

// xpFocus is the context: node, proximity position and size (size < 0 at
// the top level, where position() and last() are errors, as in lxml).
type xpFocus struct {
	node      *node
	pos, size int
}

// eval evaluates x with the document's root element as the context node.
func (x *xpathExpr) eval(doc *document) (xpathValue, error) {
	return x.evalBudget(doc, xpEvalBudget)
}

func (x *xpathExpr) evalBudget(doc *document, budget int) (xpathValue, error) {
	var v xpathValue
	err := x.run(doc, budget, false, func(r xpathValue) { v = r })
	return v, err
}

// run evaluates x and hands the result to use before the evaluation state
// goes back to the pool. With private, the result does not outlive use, so
// the one-node-set chunk is recycled too.
func (x *xpathExpr) run(doc *document, budget int, private bool, use func(xpathValue)) (err error) {
	return x.runUntil(doc, budget, time.Time{}, private, use)
}

// runUntil is run with a deadline (zero: none).
func (x *xpathExpr) runUntil(doc *document, budget int, deadline time.Time, private bool, use func(xpathValue)) (err error) {
	if doc == nil || doc.elem == nil {
		return &xpathEvalError{Expr: x.src, Msg: "no document"}
	}
	ev := xpEvalPool.Get().(*xpEval)
	*ev = xpEval{doc: doc, expr: x.src, budget: budget, deadline: deadline, stack: ev.stack[:0], scratch: ev.scratch[:0], slab: ev.slab[:0]}
	defer func() {
		r := recover()
		clear(ev.stack[:cap(ev.stack)])
		clear(ev.scratch[:cap(ev.scratch)])
		var slab []*node
		if private {
			clear(ev.slab[:cap(ev.slab)])
			slab = ev.slab[:0]
		}
		*ev = xpEval{stack: ev.stack[:0], scratch: ev.scratch[:0], slab: slab}
		xpEvalPool.Put(ev)
		if r != nil {
			ee, ok := r.(*xpathEvalError)
			if !ok {
				panic(r)
			}
			err = ee
		}
	}()
	use(ev.eval(x.root, xpFocus{node: doc.elem, size: -1}))
	return nil
}

// matches applies Comet's rule: a true boolean, a non-zero number (NaN
// included), a non-empty string, or a node-set with a node other than the
// document root. An evaluation error does not match.
func (x *xpathExpr) matches(doc *document) bool {
	match := false
	if err := x.run(doc, xpEvalBudget, true, func(v xpathValue) { match = v.truthy() }); err != nil {
		return false
	}
	return match
}

// matchesBefore is matches with a deadline: timedOut reports an evaluation
// stopped by it (which does not match).
func (x *xpathExpr) matchesBefore(doc *document, deadline time.Time) (match, timedOut bool) {
	err := x.runUntil(doc, xpEvalBudget, deadline, true, func(v xpathValue) { match = v.truthy() })
	if err != nil {
		var ee *xpathEvalError
		return false, errors.As(err, &ee) && ee.Msg == xpTimeExceeded
	}
	return match, false
}

func (v xpathValue) truthy() bool {
	switch v.kind {
	case xpBoolean:
		return v.b
	case xpNumber:
		return v.num != 0
	case xpString:
		return v.str != ""
	}
	for _, n := range v.nodes {
		if n.kind != rootNode {
			return true
		}
	}
	return false
}

func (ev *xpEval) fail(msg string) {
	panic(&xpathEvalError{Expr: ev.expr, Msg: msg})
}

func (ev *xpEval) charge(n int) {
	ev.budget -= n
	if ev.budget < 0 {
		ev.fail("evaluation budget exceeded")
	}
	ev.tick(n)
}

// tick counts work against the deadline, looking at the clock only every
// xpClockEvery units.
func (ev *xpEval) tick(n int) {
	if ev.deadline.IsZero() {
		return
	}
	ev.ticks += n
	if ev.ticks >= xpClockEvery {
		ev.ticks = 0
		if time.Now().After(ev.deadline) {
			ev.fail(xpTimeExceeded)
		}
	}
}

func boolValue(b bool) xpathValue      { return xpathValue{kind: xpBoolean, b: b} }
func numValue(f float64) xpathValue    { return xpathValue{kind: xpNumber, num: f} }
func strValue(s string) xpathValue     { return xpathValue{kind: xpString, str: s} }
func nodesValue(ns []*node) xpathValue { return xpathValue{kind: xpNodeSet, nodes: ns} }

func (ev *xpEval) eval(e *xpNode, f xpFocus) xpathValue {
	ev.depth++
	if ev.depth >= xpMaxEvalDepth {
		ev.fail("expression nested too deeply")
	}
	v := ev.evalOp(e, f)
	ev.depth--
	return v
}

func (ev *xpEval) evalOp(e *xpNode, f xpFocus) xpathValue {
	switch e.op {
	case opNumber:
		return numValue(e.num)
	case opString:
		return strValue(e.str)
	case opVar:
		if e.prefix != "" {
			ev.fail("Undefined namespace prefix")
		}
		ev.fail("Undefined variable")
	case opOr:
		if ev.toBool(ev.eval(e.left, f)) {
			return boolValue(true)
		}
		return boolValue(ev.toBool(ev.eval(e.right, f)))
	case opAnd:
		if !ev.toBool(ev.eval(e.left, f)) {
			return boolValue(false)
		}
		return boolValue(ev.toBool(ev.eval(e.right, f)))
	case opEq, opNeq:
		a, b := ev.eval(e.left, f), ev.eval(e.right, f)
		return boolValue(ev.equal(a, b, e.op == opNeq))
	case opLt, opLe, opGt, opGe:
		a, b := ev.eval(e.left, f), ev.eval(e.right, f)
		return boolValue(ev.compare(e.op, a, b))
	case opAdd, opSub, opMul, opDiv, opMod:
		a := ev.toNum(ev.eval(e.left, f))
		b := ev.toNum(ev.eval(e.right, f))
		switch e.op {
		case opAdd:
			return numValue(a + b)
		case opSub:
			return numValue(a - b)
		case opMul:
			return numValue(a * b)
		case opDiv:
			return numValue(a / b)
		}
		return numValue(math.Mod(a, b))
	case opNeg:
		return numValue(-ev.toNum(ev.eval(e.left, f)))
	case opToNum:
		return numValue(ev.toNum(ev.eval(e.left, f)))
	case opUnion:
		a, b := ev.eval(e.left, f), ev.eval(e.right, f)
		if a.kind != xpNodeSet || b.kind != xpNodeSet {
			ev.fail("Invalid type")
		}
		return nodesValue(ev.union(a.nodes, b.nodes))
	case opFunc:
		return ev.call(e, f)
	case opFilter:
		v := ev.eval(e.left, f)
		if v.kind != xpNodeSet {
			ev.fail("Invalid type")
		}
		ns := slices.Clone(v.nodes)
		for _, p := range e.preds {
			ns = ev.filter(ns, p)
		}
		return nodesValue(ns)
	case opPath:
		return nodesValue(ev.path(e, f))
	}
	ev.fail("Invalid expression")
	return xpathValue{}
}

// path evaluates a location path.
func (ev *xpEval) path(e *xpNode, f xpFocus) []*node {
	var set []*node
	switch {
	case e.start != nil:
		v := ev.eval(e.start, f)
		if v.kind != xpNodeSet {
			ev.fail("Invalid type")
		}
		set = v.nodes
	case e.absolute:
		set = ev.single(ev.doc.root)
	default:
		// Fast path for the common "@name" predicate operand.
		if st := &e.steps[0]; len(e.steps) == 1 && st.axis == axisAttribute && st.test == testName &&
			st.prefix == "" && len(st.preds) == 0 && f.node.kind == elementNode {
			ev.charge(1)
			for a := f.node.firstAttr; a != nil; a = a.next {
				if a.local == st.local && a.space == "" {
					return ev.single(a)
				}
			}
			return nil
		}
		set = ev.single(f.node)
	}
	for i := range e.steps {
		set = ev.step(&e.steps[i], set, f)
	}
	return set
}

// step applies one location step to every node of set. Nodes are
// collected and filtered on ev.scratch, used as a stack: predicates may
// run nested steps, which push above and pop back before returning.
func (ev *xpEval) step(st *xpStep, set []*node, f xpFocus) []*node {
	preds, rangeN := ev.stepPreds(st)
	base := len(ev.scratch)
	for _, n := range set {
		ev.stepFrom(st, n, preds, rangeN)
	}
	var out []*node
	switch k := len(ev.scratch) - base; k {
	case 0:
	case 1:
		out = ev.single(ev.scratch[base])
	default:
		out = make([]*node, k)
		copy(out, ev.scratch[base:])
	}
	clear(ev.scratch[base:])
	ev.scratch = ev.scratch[:base]
	if len(set) > 1 || st.axis.isReverse() {
		out = ev.sortNodes(out)
	}
	return out
}

// stepPreds checks st's prefix and splits off a final integer predicate:
// libxml2 evaluates "[p][n]" (n an integer literal) as a range, so p is not
// evaluated at all when fewer than n nodes are left, and not after its n-th
// match. This decides whether an error in p is ever raised.
func (ev *xpEval) stepPreds(st *xpStep) ([]*xpNode, int) {
	if st.prefix != "" && st.prefix != "xml" {
		ev.fail("Undefined namespace prefix")
	}
	preds, rangeN := st.preds, -1
	if k := len(preds); k >= 2 && preds[k-1].op == opNumber {
		if f := preds[k-1].num; f > math.MinInt32 && f < math.MaxInt32 && f == math.Trunc(f) {
			preds, rangeN = preds[:k-1], int(f)
		}
	}
	return preds, rangeN
}

// stepFrom pushes onto ev.scratch the nodes of step st from n that pass its
// predicates.
func (ev *xpEval) stepFrom(st *xpStep, n *node, preds []*xpNode, rangeN int) {
	start := len(ev.scratch)
	ev.scratch = ev.collect(st, n, ev.scratch)
	for i, p := range preds {
		if len(ev.scratch) == start {
			break
		}
		if rangeN >= 0 && i == len(preds)-1 {
			ev.scratch = ev.scratch[:ev.filterNth(start, p, rangeN)]
		} else {
			ev.scratch = ev.scratch[:ev.filterScratch(start, p)]
		}
	}
}

// exists is a location path used as a predicate: like libxml2, it evaluates
// the last step one context node at a time and stops at the first that
// yields a node, so later context nodes are never tested.
func (ev *xpEval) exists(e *xpNode, f xpFocus) bool {
	last := &e.steps[len(e.steps)-1]
	if len(e.steps) == 1 && e.start == nil && !e.absolute && last.axis == axisAttribute {
		return len(ev.path(e, f)) > 0 // the "@name" fast path
	}
	prefix := *e
	prefix.steps = e.steps[:len(e.steps)-1]
	var set []*node
	if len(prefix.steps) == 0 && prefix.start == nil {
		if e.absolute {
			set = ev.single(ev.doc.root)
		} else {
			set = ev.single(f.node)
		}
	} else {
		set = ev.path(&prefix, f)
	}
	preds, rangeN := ev.stepPreds(last)
	for _, n := range set {
		start := len(ev.scratch)
		ev.stepFrom(last, n, preds, rangeN)
		found := len(ev.scratch) > start
		clear(ev.scratch[start:])
		ev.scratch = ev.scratch[:start]
		if found {
			return true
		}
	}
	return false
}

// predTrue evaluates a predicate for the node at position pos: a number
// compares with the position, a location path is tested for existence
// lazily, anything else converts to boolean.
func (ev *xpEval) predTrue(pred *xpNode, node *node, pos, size int) bool {
	f := xpFocus{node: node, pos: pos, size: size}
	if pred.op == opPath && len(pred.steps) > 0 {
		ev.depth++
		if ev.depth >= xpMaxEvalDepth {
			ev.fail("expression nested too deeply")
		}
		ok := ev.exists(pred, f)
		ev.depth--
		return ok
	}
	v := ev.eval(pred, f)
	if v.kind == xpNumber {
		return v.num == float64(pos)
	}
	return ev.toBool(v)
}

// filterScratch applies pred to ev.scratch[start:] (positions counted in
// that order) and returns the new end of the kept nodes.
func (ev *xpEval) filterScratch(start int, pred *xpNode) int {
	size := len(ev.scratch) - start
	kept := start
	for i := 0; i < size; i++ {
		n := ev.scratch[start+i]
		ev.charge(1)
		if ev.predTrue(pred, n, i+1, size) {
			ev.scratch[kept] = n
			kept++
		}
	}
	return kept
}

// filterNth keeps only the n-th node of ev.scratch[start:] for which pred
// holds, evaluating pred no further than that, and not at all when fewer
// than n nodes are there (libxml2's xmlXPathNodeSetFilter with a range).
func (ev *xpEval) filterNth(start int, pred *xpNode, n int) int {
	size := len(ev.scratch) - start
	if size < n {
		return start
	}
	end, pos := start, 1
	for i := 0; i < size; i++ {
		node := ev.scratch[start+i]
		ev.charge(1)
		if !ev.predTrue(pred, node, i+1, size) {
			continue
		}
		if pos == n {
			ev.scratch[start] = node
			end = start + 1
			break
		}
		pos++
	}
	return end
}

// filter keeps the nodes of list (in the order positions count) for which
// pred holds, compacting list in place.
func (ev *xpEval) filter(list []*node, pred *xpNode) []*node {
	size := len(list)
	kept := 0
	for i, n := range list {
		ev.charge(1)
		if ev.predTrue(pred, n, i+1, size) {
			list[kept] = n
			kept++
		}
	}
	return list[:kept]
}

// nodeKey orders nodes in document order: a namespace node sorts after its
// element and before the element's attributes.
func nodeKey(n *node) int64 {
	if n.kind == namespaceNode {
		return int64(n.parent.order)<<20 | int64(n.line)
	}
	return int64(n.order) << 20
}

// sortNodes puts ns in document order and drops duplicates.
func (ev *xpEval) sortNodes(ns []*node) []*node {
	if len(ns) < 2 {
		return ns
	}
	sorted := true
	for i := 1; i < len(ns); i++ {
		if nodeKey(ns[i-1]) >= nodeKey(ns[i]) {
			sorted = false
			break
		}
	}
	if sorted {
		return ns
	}
	ev.charge(len(ns))
	slices.SortFunc(ns, func(a, b *node) int {
		ka, kb := nodeKey(a), nodeKey(b)
		switch {
		case ka < kb:
			return -1
		case ka > kb:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(ns, func(a, b *node) bool { return nodeKey(a) == nodeKey(b) })
}

// union merges two node-sets in document order.
func (ev *xpEval) union(a, b []*node) []*node {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	ev.charge(len(a) + len(b))
	out := make([]*node, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		ka, kb := nodeKey(a[i]), nodeKey(b[j])
		switch {
		case ka < kb:
			out = append(out, a[i])
			i++
		case ka > kb:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// test reports whether n passes the node test of st on its axis.
func (st *xpStep) matches(n *node) bool {
	switch st.test {
	case testNode:
		return true
	case testText:
		return n.kind == textNode
	case testComment:
		return n.kind == commentNode
	case testPI:
		return n.kind == piNode && (st.local == "" || n.local == st.local)
	}
	principal := elementNode
	switch st.axis {
	case axisAttribute:
		principal = attributeNode
	case axisNamespace:
		principal = namespaceNode
	}
	if n.kind != principal {
		return false
	}
	// The only prefix bound is xml (libxml2 always binds it).
	uri := ""
	if st.prefix != "" {
		uri = xmlNamespaceURI
	}
	if st.test == testAll {
		return uri == "" || n.space == uri
	}
	if principal == namespaceNode {
		return n.local == st.local
	}
	return n.local == st.local && n.space == uri
}

// collect appends to out the nodes on st's axis from n that pass the node
// test, in axis order (reverse document order on reverse axes).
func (ev *xpEval) collect(st *xpStep, n *node, out []*node) []*node {
	isAttr := n.kind == attributeNode || n.kind == namespaceNode
	switch st.axis {
	case axisSelf:
		out = ev.visit(st, n, out)
	case axisChild:
		for c := n.firstChild; c != nil; c = c.next {
			out = ev.visit(st, c, out)
		}
	case axisDescendantOrSelf:
		out = ev.visit(st, n, out)
		fallthrough
	case axisDescendant:
		for c := n.firstChild; c != nil; c = nextInSubtree(c, n) {
			out = ev.visit(st, c, out)
		}
	case axisParent:
		if n.parent != nil {
			out = ev.visit(st, n.parent, out)
		}
	case axisAncestorOrSelf:
		out = ev.visit(st, n, out)
		fallthrough
	case axisAncestor:
		for p := n.parent; p != nil; p = p.parent {
			out = ev.visit(st, p, out)
		}
	case axisFollowingSibling:
		if !isAttr {
			for c := n.next; c != nil; c = c.next {
				out = ev.visit(st, c, out)
			}
		}
	case axisPrecedingSibling:
		if !isAttr {
			for c := n.prev; c != nil; c = c.prev {
				out = ev.visit(st, c, out)
			}
		}
	case axisFollowing:
		// As libxml2 does, the following axis of an attribute or namespace
		// node starts after its element's subtree.
		cur := n
		if isAttr {
			cur = n.parent
		}
		for cur != nil {
			for cur.next == nil {
				cur = cur.parent
				if cur == nil || cur.kind == rootNode {
					return out
				}
			}
			cur = cur.next
			out = ev.visit(st, cur, out)
			for c := cur.firstChild; c != nil; c = nextInSubtree(c, cur) {
				out = ev.visit(st, c, out)
			}
		}
	case axisPreceding:
		cur := n
		if isAttr {
			cur = n.parent
		}
		anc := cur.parent
		for cur != nil {
			if cur.prev != nil {
				cur = cur.prev
				for cur.lastChild != nil {
					cur = cur.lastChild
				}
				out = ev.visit(st, cur, out)
				continue
			}
			cur = cur.parent
			if cur == nil || cur.kind == rootNode {
				break
			}
			if cur == anc {
				anc = cur.parent
				continue
			}
			out = ev.visit(st, cur, out)
		}
	case axisAttribute:
		if n.kind == elementNode {
			for a := n.firstAttr; a != nil; a = a.next {
				out = ev.visit(st, a, out)
			}
		}
	case axisNamespace:
		if n.kind == elementNode {
			for _, c := range ev.namespaceNodes(n) {
				out = ev.visit(st, c, out)
			}
		}
	}
	return out
}

// visit charges one unit and appends c to out if it passes st's test.
func (ev *xpEval) visit(st *xpStep, c *node, out []*node) []*node {
	ev.budget--
	if ev.budget < 0 {
		ev.fail("evaluation budget exceeded")
	}
	ev.tick(1)
	if st.matches(c) {
		out = append(out, c)
	}
	return out
}

// nextInSubtree is the node after c in document order within the subtree
// of top (attributes excluded), or nil.
func nextInSubtree(c, top *node) *node {
	if c.firstChild != nil {
		return c.firstChild
	}
	for c != top {
		if c.next != nil {
			return c.next
		}
		c = c.parent
	}
	return nil
}

// namespaceNodes makes the namespace nodes of element e in libxml2's
// order: xml first, then the in-scope declarations (nearest first per
// prefix) in reverse of the order they were collected walking up from e.
func (ev *xpEval) namespaceNodes(e *node) []*node {
	var decls []nsDecl
	var seen map[string]bool // prefixes collected, once there are many
	for a := e; a != nil && a.kind == elementNode; a = a.parent {
		ns := a.nsDecls()
		ev.charge(1 + len(ns))
		for _, d := range ns {
			if d.prefix == "xml" {
				continue
			}
			if seen == nil && len(decls) > 16 {
				seen = make(map[string]bool, 2*len(decls))
				for _, s := range decls {
					seen[s.prefix] = true
				}
			}
			dup := false
			if seen != nil {
				dup = seen[d.prefix]
				seen[d.prefix] = true
			} else {
				for _, s := range decls {
					if s.prefix == d.prefix {
						dup = true
						break
					}
				}
			}
			if !dup {
				decls = append(decls, d)
			}
		}
	}
	ev.charge(len(decls) + 1)
	out := make([]*node, 0, len(decls)+1)
	nodes := make([]node, len(decls)+1)
	names := make([]xname, len(decls)+1)
	add := func(prefix, uri string) {
		i := len(out)
		n := &nodes[i]
		n.kind = namespaceNode
		n.parent = e
		n.order = e.order
		n.line = int32(i + 1) // position among e's namespace nodes
		names[i].local = prefix
		n.xname = &names[i]
		n.data = uri
		out = append(out, n)
	}
	add("xml", xmlNamespaceURI)
	for i := len(decls) - 1; i >= 0; i-- {
		add(decls[i].prefix, decls[i].uri)
	}
	return out
}

// stringOf returns the string-value of n, charging the nodes it reads.
func (ev *xpEval) stringOf(n *node) string {
	switch n.kind {
	case rootNode, elementNode:
		c := n.firstChild
		if c == nil {
			ev.charge(1)
			return ""
		}
		if c == n.lastChild && c.kind == textNode {
			ev.charge(1)
			return c.data
		}
		size := 0
		for c := n.firstChild; c != nil; c = nextInSubtree(c, n) {
			ev.charge(1)
			if c.kind == textNode {
				size += len(c.data)
			}
		}
		ev.charge(size / 64)
		var b strings.Builder
		b.Grow(size)
		for c := n.firstChild; c != nil; c = nextInSubtree(c, n) {
			if c.kind == textNode {
				b.WriteString(c.data)
			}
		}
		return b.String()
	case attributeNode:
		ev.charge(1)
		return attrValue(n)
	}
	ev.charge(1)
	return n.data
}

// attrValue is an attribute's value. The tree has already applied XML
// attribute-value normalisation (a literal TAB, LF or CR becomes a space,
// a character reference keeps its character), as libxml2 does.
func attrValue(a *node) string { return a.data }

// Conversions.

func (ev *xpEval) toBool(v xpathValue) bool {
	switch v.kind {
	case xpBoolean:
		return v.b
	case xpNumber:
		return v.num != 0 && !math.IsNaN(v.num)
	case xpString:
		return v.str != ""
	}
	return len(v.nodes) > 0
}

func (ev *xpEval) toNum(v xpathValue) float64 {
	switch v.kind {
	case xpBoolean:
		if v.b {
			return 1
		}
		return 0
	case xpNumber:
		return v.num
	case xpString:
		return xpStringToNumber(v.str)
	}
	if len(v.nodes) == 0 {
		return math.NaN()
	}
	return xpStringToNumber(ev.stringOf(v.nodes[0]))
}

func (ev *xpEval) toStr(v xpathValue) string {
	switch v.kind {
	case xpBoolean:
		if v.b {
			return "true"
		}
		return "false"
	case xpNumber:
		return xpNumberToString(v.num)
	case xpString:
		return v.str
	}
	if len(v.nodes) == 0 {
		return ""
	}
	return ev.stringOf(v.nodes[0])
}

// equal implements = (and != when neq) with XPath 1.0's conversions.
func (ev *xpEval) equal(a, b xpathValue, neq bool) bool {
	if a.kind != xpNodeSet && b.kind == xpNodeSet {
		a, b = b, a
	}
	if a.kind == xpNodeSet {
		if b.kind == xpNodeSet {
			return ev.equalNodeSets(a.nodes, b.nodes, neq)
		}
		switch b.kind {
		case xpBoolean:
			return (len(a.nodes) > 0 == b.b) != neq
		case xpNumber:
			for _, n := range a.nodes {
				v := xpStringToNumber(ev.stringOf(n))
				if neq && v != b.num || !neq && v == b.num {
					return true
				}
			}
			return false
		}
		cost := len(b.str) / 64
		for _, n := range a.nodes {
			ev.charge(cost)
			if (ev.stringOf(n) == b.str) != neq {
				return true
			}
		}
		return false
	}
	var eq bool
	switch {
	case a.kind == xpBoolean || b.kind == xpBoolean:
		eq = ev.toBool(a) == ev.toBool(b)
	case a.kind == xpNumber || b.kind == xpNumber:
		eq = ev.toNum(a) == ev.toNum(b)
	default:
		eq = a.str == b.str
	}
	return eq != neq
}

func (ev *xpEval) equalNodeSets(a, b []*node, neq bool) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	sa := make([]string, len(a))
	for i, n := range a {
		sa[i] = ev.stringOf(n)
	}
	if neq {
		// Some pair differs unless every string of both sets is the same.
		first := sa[0]
		for _, s := range sa {
			if s != first {
				return true
			}
		}
		for _, n := range b {
			if ev.stringOf(n) != first {
				return true
			}
		}
		return false
	}
	set := make(map[string]struct{}, len(sa))
	for _, s := range sa {
		set[s] = struct{}{}
	}
	for _, n := range b {
		if _, ok := set[ev.stringOf(n)]; ok {
			return true
		}
	}
	return false
}

// cmpNum applies a relational operator to two numbers.
func cmpNum(op xpOp, x, y float64) bool {
	switch op {
	case opLt:
		return x < y
	case opLe:
		return x <= y
	case opGt:
		return x > y
	}
	return x >= y
}

// flip returns the operator with its operands swapped.
func flip(op xpOp) xpOp {
	switch op {
	case opLt:
		return opGt
	case opLe:
		return opGe
	case opGt:
		return opLt
	}
	return opLe
}

// compare implements < <= > >=: everything compares as numbers.
func (ev *xpEval) compare(op xpOp, a, b xpathValue) bool {
	if a.kind != xpNodeSet && b.kind == xpNodeSet {
		a, b = b, a
		op = flip(op)
	}
	if a.kind != xpNodeSet {
		return cmpNum(op, ev.toNum(a), ev.toNum(b))
	}
	if b.kind == xpBoolean {
		return cmpNum(op, ev.toNum(boolValue(len(a.nodes) > 0)), ev.toNum(b))
	}
	if b.kind == xpNodeSet {
		// Some pair satisfies op iff the extremes do (NaNs never do).
		loA, hiA, okA := ev.numRange(a.nodes)
		loB, hiB, okB := ev.numRange(b.nodes)
		if !okA || !okB {
			return false
		}
		if op == opLt || op == opLe {
			return cmpNum(op, loA, hiB)
		}
		return cmpNum(op, hiA, loB)
	}
	y := ev.toNum(b)
	for _, n := range a.nodes {
		if cmpNum(op, xpStringToNumber(ev.stringOf(n)), y) {
			return true
		}
	}
	return false
}

// numRange returns the smallest and largest non-NaN number values of ns.
func (ev *xpEval) numRange(ns []*node) (lo, hi float64, ok bool) {
	for _, n := range ns {
		v := xpStringToNumber(ev.stringOf(n))
		if math.IsNaN(v) {
			continue
		}
		if !ok || v < lo {
			lo = v
		}
		if !ok || v > hi {
			hi = v
		}
		ok = true
	}
	return lo, hi, ok
}

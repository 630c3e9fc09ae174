// cmd_filter.go is "comet filter": it evaluates XPath filters on event files
// exactly as the broker does, so users can test a filter before sending it
// with their subscription. --tsv prints the format of
// shared/vectors/xpath/expected.tsv.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func init() {
	registerCommand(&command{
		name:    "filter",
		summary: "evaluate XPath subscriber filters on event files",
		run:     runFilter,
	})
}

// exprList collects -e and --xpath in command-line order.
type exprList struct {
	exprs   []string
	stdin   io.Reader
	readErr error // first -e file that could not be read
}

type exprFileFlag struct{ l *exprList }

func (f exprFileFlag) String() string { return "" }

func (f exprFileFlag) Set(path string) error {
	var raw []byte
	var err error
	if path == "-" {
		raw, err = io.ReadAll(f.l.stdin)
	} else {
		raw, err = os.ReadFile(path)
	}
	if err != nil {
		if f.l.readErr == nil {
			f.l.readErr = err
		}
		return nil
	}
	f.l.exprs = append(f.l.exprs, readExpressions(raw)...)
	return nil
}

type exprFlag struct{ l *exprList }

func (f exprFlag) String() string { return "" }

func (f exprFlag) Set(expr string) error {
	f.l.exprs = append(f.l.exprs, expr)
	return nil
}

// readExpressions splits an expression file: one expression per line,
// taken literally, skipping blank lines and lines whose first non-blank
// character is '#'.
func readExpressions(raw []byte) []string {
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		t := strings.TrimLeft(line, " \t\r")
		if t == "" || t[0] == '#' {
			continue
		}
		out = append(out, line)
	}
	return out
}

// filterInput is one document to evaluate on.
type filterInput struct {
	name string    // base name
	doc  *document // nil when rejected
	err  error     // why the document was rejected
}

func runFilter(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("filter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := &exprList{stdin: stdin}
	tsv := fs.Bool("tsv", false, "print expression, file, type, value and verdict as TSV")
	fs.Var(exprFileFlag{list}, "e", "read expressions from `FILE`, one per line (- for stdin)")
	fs.Var(exprFlag{list}, "xpath", "evaluate `EXPR`")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: comet filter [--tsv] (-e FILE | --xpath EXPR)... PATH...")
		fmt.Fprintln(stderr, "PATH is an event file or a directory of *.xml files.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if list.readErr != nil {
		fmt.Fprintf(stderr, "comet filter: reading expressions: %v\n", list.readErr)
		return exitFail
	}
	if len(list.exprs) == 0 || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "comet filter: need at least one expression (-e or --xpath) and one PATH")
		fs.Usage()
		return exitUsage
	}
	status := exitOK
	var inputs []filterInput
	for _, path := range fs.Args() {
		files, err := expandPaths([]string{path})
		if err != nil {
			fmt.Fprintf(stderr, "comet filter: %v\n", err)
			status = exitFail
			continue
		}
		for _, file := range files {
			raw, err := os.ReadFile(file)
			if err != nil {
				fmt.Fprintf(stderr, "comet filter: %v\n", err)
				status = exitFail
				continue
			}
			in := filterInput{name: filepath.Base(file)}
			in.doc, in.err = parseDocument(raw)
			inputs = append(inputs, in)
		}
	}
	type compiled struct {
		x   *xpathExpr
		err error
	}
	exprs := make([]compiled, len(list.exprs))
	for i, e := range list.exprs {
		exprs[i].x, exprs[i].err = compileXPath(e)
	}
	w := bufio.NewWriter(stdout)
	if *tsv {
		fmt.Fprintln(w, "expression\tfile\ttype\tvalue\tverdict")
	}
	for _, in := range inputs {
		for i, c := range exprs {
			r := filterResult(list.exprs[i], c.x, c.err, in)
			if *tsv {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", tsvEscape(r.expr), tsvEscape(r.file), r.typ, r.value, r.verdict)
			} else {
				fmt.Fprintln(w, r.readable())
			}
		}
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintf(stderr, "comet filter: writing output: %v\n", err)
		return exitFail
	}
	return status
}

// filterRow is one result; value is already escaped for TSV.
type filterRow struct {
	expr, file, typ, value, verdict string
	nodes                           int      // nodeset size
	items                           []string // escaped node descriptions
	errMsg                          string
}

func filterResult(expr string, x *xpathExpr, cerr error, in filterInput) filterRow {
	r := filterRow{expr: expr, file: in.name}
	var se *xpathSyntaxError
	switch {
	case errors.As(cerr, &se):
		r.typ, r.verdict = "error", "error"
		r.errMsg = se.Error()
		r.value = tsvEscape("XPathSyntaxError: " + se.Msg)
		return r
	case in.doc == nil:
		r.typ, r.verdict = "rejected", "false"
		r.errMsg = in.err.Error()
		r.value = tsvEscape(r.errMsg)
		return r
	}
	v, err := x.eval(in.doc)
	if err != nil {
		var ee *xpathEvalError
		msg := err.Error()
		if errors.As(err, &ee) {
			msg = ee.Msg
		}
		r.typ, r.verdict = "error", "false"
		r.errMsg = err.Error()
		r.value = tsvEscape("XPathEvalError: " + msg)
		return r
	}
	r.typ = v.kind.String()
	r.verdict = strconv.FormatBool(v.truthy())
	switch v.kind {
	case xpBoolean:
		r.value = strconv.FormatBool(v.b)
	case xpNumber:
		r.value = pyRepr(v.num)
	case xpString:
		r.value = tsvEscape(v.str)
	default:
		r.nodes = len(v.nodes)
		var b strings.Builder
		b.WriteString(strconv.Itoa(len(v.nodes)))
		for _, n := range v.nodes {
			d := tsvEscape(describeNode(n))
			r.items = append(r.items, d)
			b.WriteByte('|')
			b.WriteString(d)
		}
		r.value = b.String()
	}
	return r
}

// readable is the one-line, human form of a row.
func (r filterRow) readable() string {
	var verdict, value string
	// value is escaped like a TSV field, so the line stays one line.
	switch {
	case r.verdict == "error":
		verdict, value = "invalid filter", tsvEscape(r.errMsg)
	case r.typ == "rejected":
		verdict, value = "rejected", tsvEscape("document not parsed: "+r.errMsg)
	case r.typ == "error":
		verdict, value = "no match", tsvEscape(r.errMsg)
	default:
		verdict = "no match"
		if r.verdict == "true" {
			verdict = "match"
		}
		value = r.typ + " " + r.value
		if r.typ == "nodeset" {
			const show = 5
			value = fmt.Sprintf("nodeset of %d", r.nodes)
			if r.nodes > 0 {
				value += ": " + strings.Join(r.items[:min(show, r.nodes)], ", ")
			}
			if r.nodes > show {
				value += fmt.Sprintf(", ... (%d more)", r.nodes-show)
			}
		}
	}
	return fmt.Sprintf("%s: %s: %s => %s", tsvEscape(r.file), verdict, tsvEscape(r.expr), value)
}

// describeNode is the canonical form of a node in the vectors' node-sets.
func describeNode(n *node) string {
	switch n.kind {
	case rootNode:
		return "root /"
	case elementNode:
		return "element " + elementPath(n)
	case attributeNode:
		name := n.local
		if n.space != "" {
			name = "{" + n.space + "}" + n.local
		}
		return "attribute " + elementPath(n.parent) + "/@" + name + "=" + attrValue(n)
	case namespaceNode:
		return "namespace " + n.local + "=" + n.data
	case textNode:
		return "text " + elementPath(n.parent) + "/text()[" + strconv.Itoa(siblingIndex(n)) + "]=" + n.data
	case commentNode:
		return "comment " + elementPath(n.parent) + "/comment()[" + strconv.Itoa(siblingIndex(n)) + "]=" + n.data
	case piNode:
		return "pi " + elementPath(n.parent) + "/processing-instruction(" + n.local + ")[" + strconv.Itoa(siblingIndex(n)) + "]=" + n.data
	}
	return n.kind.String()
}

// elementPath is /name[k]/... from the root element down to e ("" for the
// document node); k counts same-local-name element siblings.
func elementPath(e *node) string {
	var parts []string
	for ; e != nil && e.kind == elementNode; e = e.parent {
		parts = append(parts, "/"+e.local+"["+strconv.Itoa(siblingIndex(e))+"]")
	}
	var b strings.Builder
	for i := len(parts) - 1; i >= 0; i-- {
		b.WriteString(parts[i])
	}
	return b.String()
}

// siblingIndex counts n among its preceding siblings of the same kind
// (and local name for elements, target for PIs), from 1.
func siblingIndex(n *node) int {
	k := 1
	for s := n.prev; s != nil; s = s.prev {
		if s.kind == n.kind && (n.kind != elementNode && n.kind != piNode || s.local == n.local) {
			k++
		}
	}
	return k
}

// pyRepr formats a float64 as Python's repr() does: shortest round-trip
// digits, positional for exponents in [-4, 16), else d.ddde±XX.
func pyRepr(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	case f == 0:
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	e := strings.IndexByte(s, 'e')
	exp, _ := strconv.Atoi(s[e+1:])
	digits := strings.Replace(s[:e], ".", "", 1)
	if exp >= -4 && exp < 16 {
		var b bytes.Buffer
		b.WriteString(sign)
		if exp < 0 {
			b.WriteString("0.")
			b.WriteString(strings.Repeat("0", -exp-1))
			b.WriteString(digits)
			return b.String()
		}
		if len(digits) <= exp+1 {
			b.WriteString(digits)
			b.WriteString(strings.Repeat("0", exp+1-len(digits)))
			b.WriteString(".0")
			return b.String()
		}
		b.WriteString(digits[:exp+1])
		b.WriteByte('.')
		b.WriteString(digits[exp+1:])
		return b.String()
	}
	mant := digits[:1]
	if len(digits) > 1 {
		mant += "." + digits[1:]
	}
	es := "+"
	if exp < 0 {
		es, exp = "-", -exp
	}
	return fmt.Sprintf("%s%se%s%02d", sign, mant, es, exp)
}

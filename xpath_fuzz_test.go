package main

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// fuzzSeeds adds every expression of the public vectors as a seed.
func fuzzSeeds(f *testing.F) {
	raw, err := os.ReadFile("testdata/vectors/xpath/expressions.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range readExpressions(raw) {
		f.Add(e)
	}
	for _, e := range []string{"//Param |", "true(", "1 ordiv", "/ä", "$x", "namespace::*", "id('g1')"} {
		f.Add(e)
	}
}

// FuzzXPathCompile: compiling never panics, and either succeeds or fails
// with an *xpathSyntaxError whose position lies within the expression.
func FuzzXPathCompile(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, expr string) {
		x, err := compileXPath(expr)
		if err != nil {
			var se *xpathSyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("%q: error of type %T", expr, err)
			}
			if se.Pos < 0 || se.Pos > len(expr) {
				t.Fatalf("%q: position %d outside the expression", expr, se.Pos)
			}
			return
		}
		if x.String() != expr {
			t.Fatalf("compiled %q reports %q", expr, x.String())
		}
	})
}

// FuzzXPathEval: evaluating any compiled expression never panics, always
// ends (the budget bounds it), and matches agrees with eval.
func FuzzXPathEval(f *testing.F) {
	fuzzSeeds(f)
	doc := mustParse(f, xpTestDoc)
	f.Fuzz(func(t *testing.T, expr string) {
		x, err := compileXPath(expr)
		if err != nil {
			return
		}
		v, err := x.eval(doc)
		if err != nil {
			var ee *xpathEvalError
			if !errors.As(err, &ee) {
				t.Fatalf("%q: error of type %T", expr, err)
			}
			if x.matches(doc) {
				t.Fatalf("%q: failed evaluation matched", expr)
			}
			return
		}
		if got := x.matches(doc); got != v.truthy() {
			t.Fatalf("%q: matches %v, truthy %v", expr, got, v.truthy())
		}
		if v.kind == xpNodeSet {
			for i := 1; i < len(v.nodes); i++ {
				if nodeKey(v.nodes[i-1]) >= nodeKey(v.nodes[i]) {
					t.Fatalf("%q: node-set not in document order", expr)
				}
			}
		}
		// The TSV rendering of any result is one line of five fields.
		r := filterResult(expr, x, nil, filterInput{name: "f", doc: doc})
		if strings.ContainsAny(r.value, "\t\n") {
			t.Fatalf("%q: unescaped value %q", expr, r.value)
		}
	})
}

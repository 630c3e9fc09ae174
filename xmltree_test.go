package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func corpusFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/corpus/voevents/*.xml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	return files
}

func TestParseDocumentCorpus(t *testing.T) {
	for _, f := range corpusFiles(t) {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := parseDocument(raw)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if doc.elem == nil || doc.elem.local != "VOEvent" {
			t.Errorf("%s: root element %v", filepath.Base(f), doc.elem)
		}
		// Document order is strictly increasing in a pre-order walk.
		last := int32(-1)
		var walk func(n *node)
		walk = func(n *node) {
			if n.order <= last {
				t.Fatalf("%s: order %d after %d", filepath.Base(f), n.order, last)
			}
			last = n.order
			for a := n.firstAttr; a != nil; a = a.next {
				walk(a)
			}
			for c := n.firstChild; c != nil; c = c.next {
				walk(c)
			}
		}
		walk(doc.root)
	}
}

func TestParseDocumentTree(t *testing.T) {
	src := `<?xml version="1.0"?>
<!-- before -->
<voe:VOEvent xmlns:voe="urn:v" ivorn="ivo://a.b/c#d" role="test"><Who><![CDATA[x<]]>y&amp;z<?pi  data ?></Who><x:e xmlns:x="urn:x" x:a="1"/></voe:VOEvent>`
	doc, err := parseDocument([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	e := doc.elem
	if e.space != "urn:v" || e.prefix != "voe" || e.local != "VOEvent" || e.name() != "voe:VOEvent" {
		t.Errorf("root element: %+v", e)
	}
	if doc.root.firstChild.kind != commentNode || doc.root.firstChild.data != " before " {
		t.Errorf("comment before root: %+v", doc.root.firstChild)
	}
	if v, ok := e.attr("ivorn"); !ok || v != "ivo://a.b/c#d" {
		t.Errorf("ivorn = %q %v", v, ok)
	}
	who := e.firstChild
	if who.firstChild.kind != textNode || who.firstChild.data != "x<y&z" {
		t.Errorf("merged text = %+v", who.firstChild)
	}
	if pi := who.lastChild; pi.kind != piNode || pi.local != "pi" || pi.data != "data " {
		t.Errorf("pi = %+v", pi)
	}
	if who.stringValue() != "x<y&z" || e.stringValue() != "x<y&z" {
		t.Errorf("string values %q %q", who.stringValue(), e.stringValue())
	}
	x := e.lastChild
	if x.space != "urn:x" || x.firstAttr.space != "urn:x" || x.firstAttr.data != "1" {
		t.Errorf("namespaced element/attribute: %+v %+v", x, x.firstAttr)
	}
}

func TestParseDocumentRefused(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"doctype", `<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>`, "DOCTYPE"},
		{"undeclared entity", `<a>&e;</a>`, "entity"},
		{"unbound prefix", `<p:a/>`, "not defined"},
		{"unbound attr prefix", `<a p:x="1"/>`, "not defined"},
		{"duplicate attribute", `<a x="1" x="2"/>`, "redefined"},
		{"duplicate via prefixes", `<a xmlns:p="u" xmlns:q="u" p:x="1" q:x="2"/>`, "redefined"},
		{"two roots", `<a/><b/>`, "extra content"},
		{"text after root", `<a/>x`, "outside"},
		{"mismatched", `<a></b>`, ""},
		{"unclosed", `<a>`, ""},
		{"empty", ``, "no root"},
		{"nul", "<a>\x00</a>", ""},
		{"late declaration", ` <?xml version="1.0"?><a/>`, "declaration"},
		{"deep", strings.Repeat("<a>", maxXMLDepth+1) + strings.Repeat("</a>", maxXMLDepth+1), "nested"},
		{"unsupported encoding", `<?xml version="1.0" encoding="EBCDIC"?><a/>`, "encoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDocument([]byte(tc.src))
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestParseDocumentEncodings(t *testing.T) {
	latin := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>caf\xe9</a>")
	doc, err := parseDocument(latin)
	if err != nil || doc.elem.stringValue() != "café" || doc.encoding != "iso-8859-1" {
		t.Errorf("latin-1: %v", err)
	}
	bom := append([]byte{0xEF, 0xBB, 0xBF}, "<a>x</a>"...)
	if doc, err := parseDocument(bom); err != nil || doc.elem.stringValue() != "x" {
		t.Errorf("utf-8 bom: %v", err)
	}
	u16 := []byte{0xFF, 0xFE}
	for _, r := range `<?xml version="1.0" encoding="UTF-16"?><a>é</a>` {
		u16 = append(u16, byte(r), byte(r>>8))
	}
	if doc, err := parseDocument(u16); err != nil || doc.elem.stringValue() != "é" {
		t.Errorf("utf-16le: %v", err)
	}
}

func BenchmarkTokenLoop(b *testing.B) {
	raw := medianEvent(b)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		tokenLoop(b, raw)
	}
}

func BenchmarkParseDocument(b *testing.B) {
	raw := medianEvent(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseDocument(raw); err != nil {
			b.Fatal(err)
		}
	}
}

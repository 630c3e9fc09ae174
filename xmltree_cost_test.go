package main

// xmltree_cost_test.go checks that parsing (and validating) stays linear in
// the input whatever its shape: xmltreeShapes are the adversarial shapes of
// issue 11 (attributes and namespace declarations in bulk, wherever they
// sit), each built at any size.

import (
	"fmt"
	"strings"
)

// xmltreeShape builds a document of about size bytes.
type xmltreeShape struct {
	name  string
	build func(size int) []byte
}

// xmltreeRepeat writes head, then unit(i) for i = 0, 1, ... while the
// document stays under size, then tail.
func xmltreeRepeat(size int, head, tail string, unit func(i int) string) []byte {
	var b strings.Builder
	b.Grow(size + 64)
	b.WriteString(head)
	for i := 0; b.Len()+len(tail) < size; i++ {
		b.WriteString(unit(i))
	}
	b.WriteString(tail)
	return []byte(b.String())
}

const xmltreeVOEventHead = `<?xml version="1.0" encoding="UTF-8"?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ivorn="ivo://x.y/z#1" role="test" version="2.0"`

var xmltreeShapes = []xmltreeShape{
	{"median", func(int) []byte { return nil }}, // benchdata/median.xml
	// One start tag with as many attributes as fit.
	{"attrs", func(n int) []byte {
		return xmltreeRepeat(n, "<r", "/>", func(i int) string { return fmt.Sprintf(" a%x=''", i) })
	}},
	// Prefixed attributes, all bound to distinct prefixes of one URI.
	{"prefixed-attrs", func(n int) []byte {
		return xmltreeRepeat(n, `<r xmlns:p="urn:u"`, "/>", func(i int) string { return fmt.Sprintf(" p:a%x=''", i) })
	}},
	// Declarations on the root of a schema-valid event, then elements whose
	// names, attributes and xsi:type resolve the first-declared prefix.
	{"xmlns-root", func(n int) []byte {
		decls := xmltreeRepeat(n/2, xmltreeVOEventHead, ">\n<What>", func(i int) string { return fmt.Sprintf(" xmlns:p%x='urn:%x'", i, i) })
		body := xmltreeRepeat(n-len(decls), string(decls), "</What></voe:VOEvent>", func(int) string {
			return `<Param xsi:type="voe:Param" name="x"/>`
		})
		return body
	}},
	// One declaration on each of many elements.
	{"xmlns-spread", func(n int) []byte {
		return xmltreeRepeat(n, "<r>", "</r>", func(i int) string { return fmt.Sprintf("<e xmlns:p%x='u'/>", i) })
	}},
	// Declarations on nested elements, resolved from deep inside.
	{"xmlns-nested", func(n int) []byte {
		const levels = 200
		var head, tail strings.Builder
		per := n / 2 / levels / 14
		for l := range levels {
			fmt.Fprintf(&head, "<e%d xmlns:q%d='u'", l, l)
			for k := range per {
				fmt.Fprintf(&head, " xmlns:p%x_%d='u'", k, l)
			}
			head.WriteString(">")
			fmt.Fprintf(&tail, "</e%d>", levels-1-l)
		}
		return xmltreeRepeat(n, head.String(), tail.String(), func(int) string { return "<q0:a q0:b=''/>" })
	}},
	{"elements", func(n int) []byte {
		return xmltreeRepeat(n, "<r>", "</r>", func(int) string { return "<a/>" })
	}},
	{"deep", func(n int) []byte {
		unit := strings.Repeat("<a>", maxXMLDepth-1) + strings.Repeat("</a>", maxXMLDepth-1)
		return xmltreeRepeat(n, "<r>", "</r>", func(int) string { return unit })
	}},
	// Long attribute values with literal white space to normalise.
	{"long-values", func(n int) []byte {
		v := strings.Repeat("abc\tdef\n", 512)
		return xmltreeRepeat(n, "<r>", "</r>", func(i int) string { return fmt.Sprintf("<e a='%s' b='x' c='%s'/>", v, v) })
	}},
	{"charrefs", func(n int) []byte {
		return xmltreeRepeat(n, "<r a='&#65;&amp;&#x42;'>", "</r>", func(int) string { return "&#65;&lt;&#x10000;" })
	}},
	{"text", func(n int) []byte {
		return xmltreeRepeat(n, "<r>", "</r>", func(int) string { return "some text, " })
	}},
	{"mixed", func(n int) []byte {
		return xmltreeRepeat(n, "<r>", "</r>", func(int) string { return "<a/>x<!---->" })
	}},
}

func xmltreeSizeOf(doc *document) int { return doc.sizeBytes() }

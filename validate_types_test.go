package main

import (
	"strings"
	"testing"
)

// TestValueTypes checks each simple type against the examples of the
// validation README (libxml2's behaviour).
func TestValueTypes(t *testing.T) {
	cases := []struct {
		typ  valueType
		good []string
		bad  []string
	}{
		{typeFloat,
			[]string{"NaN", "INF", "-INF", "1", " 12.5 ", "\t1\n", "1e", "1e+", "1E-5", "5.", ".5", "+5", "-0", "00", "1e400", "1e-50", "-1"},
			[]string{"", " ", ".", ".e5", "0x1A", "1,5", "1d", "nan", "Infinity", "+INF", "-NaN", " NaN", "INF ", "1 2", "- 1", "1e5.0", "١"}},
		{typeProbability,
			[]string{"0", "1", "0.5", "1.00000001", "-1e-50", "-0", " 1 ", "1e"},
			[]string{"1.0000001", "NaN", "INF", "-INF", "abc", "-0.1", "2", ""}},
		{typeDateTime,
			[]string{"2013-01-01T00:00:00", "2013-01-01T00:00:00+14:00", "2013-01-01T00:00:00-14:00", "2013-01-01T00:00:00Z",
				"2013-01-01T00:00:00.123456", "12013-01-01T00:00:00", "-0044-03-15T12:00:00", "2000-02-29T00:00:00",
				"-0004-02-29T00:00:00", "2013-01-01T24:00:00", "2013-01-01T24:00:00.000", "2013-12-31T23:59:59.999Z",
				"2013-01-01T00:00:00+05:30"},
			[]string{"2011-02-29T00:00:00", "1900-02-29T00:00:00", "-0001-02-29T00:00:00", "2013-01-01", "2013-13-01T00:00:00",
				"2013-00-01T00:00:00", "2013-04-31T00:00:00", "\t2013-01-01T00:00:00", "2013-01-01T00:00:00\n",
				"02013-01-01T00:00:00", "0000-01-01T00:00:00", "+2013-01-01T00:00:00", "2013-01-01T24:00:01",
				"2013-01-01T23:59:60", "2013-01-01T00:00:59.9999999999999999", "2013-01-01T00:00:00+14:01",
				"2013-01-01T00:00:00+0530", "2013-01-01T00:00:00+01", "2013-01-01T00:00:00z", "2013-01-01T00:00:00 Z",
				"2013-01-01T00:00", "2013-01-01 00:00:00", "2013-01-01t00:00:00", "2013-01-01T00:00:00.", "13-01-01T00:00:00",
				"2013-1-01T00:00:00", "2013-01-01T00:60:00", "2013-01-01T25:00:00", "yesterday", ""}},
		{typeAnyURI,
			[]string{"", "http://example.org/%7e", "file:///C:/data", "not a uri but fine", "http://[::1]/", "ivo://a.b/c#d",
				" http://example.org/ ", "mailto:a@b.c", "urn:x:y", "a/b?c#d", "http://a:123456789/", "http://u:p@host/",
				"ivo://auth/rés#x", "http://example.org/{x}", "#frag", "?q", "//host", "ivo://a.b/c#d\n", "http://a/b#xpointer(id('x')/c[1])"},
			[]string{"http://example.org:80:80/", "%", "http://example.org/%zz", "a#b#c", "x[1]", "http://a:/", "http://a:x/",
				"http://a:1234567890/", "http://a@b@c/", ":a", "ht tp://x", "1abc:def", "ivo://auth/rsrc#l%zz", "http://a/[x]"}},
		{typeID,
			[]string{"loc", "_x", "loc.1-2_3", " loc ", "é1"},
			[]string{"1loc", "-x", "a:b", "loc 1", "", ".x"}},
		{typeVersion,
			[]string{"2.0", " 2.0 ", "\t2.0\n"},
			[]string{"2.00", "2", "1.1", "2.1", ""}},
		{typeDataType,
			[]string{"string", "float", "int"},
			[]string{"String", "int ", "double", "char", ""}},
		{typeCoordSystem,
			coordSystemValues,
			[]string{"", "UTC-FK5-TOPO ", "utc-fk5-topo", "ICRS"}},
		{typeCite,
			[]string{"followup", "supersedes", "retraction"},
			[]string{"Followup", " followup", ""}},
		{typeRole,
			[]string{"observation", "prediction", "utility", "test"},
			[]string{"ack", "Test", ""}},
	}
	for _, tc := range cases {
		name := strings.Fields(tc.typ.String())[len(strings.Fields(tc.typ.String()))-1]
		t.Run(name, func(t *testing.T) {
			for _, s := range tc.good {
				if !tc.typ.valid(s) {
					t.Errorf("%q refused, want valid", s)
				}
			}
			for _, s := range tc.bad {
				if tc.typ.valid(s) {
					t.Errorf("%q accepted, want invalid", s)
				}
			}
		})
	}
}

// TestParseFidelity checks the well-formedness rules where the tree must
// follow libxml2 rather than encoding/xml.
func TestParseFidelity(t *testing.T) {
	ok := func(s string) []byte { return []byte(s) }
	cases := []struct {
		name  string
		doc   []byte
		class string // "" for valid
	}{
		{"leading newline before declaration", ok("\n" + voeDoc("", "")), classXMLSyntax},
		{"leading space without declaration", ok("\n  " + strings.TrimPrefix(voeDoc("", ""), `<?xml version="1.0" encoding="UTF-8"?>`)), ""},
		{"version 1.1", ok(strings.Replace(voeDoc("", ""), `version="1.0"`, `version="1.1"`, 1)), ""},
		{"version 2.0 in declaration", ok(strings.Replace(voeDoc("", ""), `version="1.0"`, `version="2.0"`, 1)), classXMLSyntax},
		{"standalone", ok(strings.Replace(voeDoc("", ""), `encoding="UTF-8"`, `encoding="UTF-8" standalone="yes"`, 1)), ""},
		{"declaration without version", ok(strings.Replace(voeDoc("", ""), `version="1.0" `, ``, 1)), classXMLSyntax},
		{"declaration encoding first", ok(strings.Replace(voeDoc("", ""), `version="1.0" encoding="UTF-8"`, `encoding="UTF-8" version="1.0"`, 1)), classXMLSyntax},
		{"latin-1 declared", ok(strings.Replace(voeDoc("", "<Description>caf\xe9</Description>"), "UTF-8", "ISO-8859-1", 1)), ""},
		{"latin-1 undeclared", ok(voeDoc("", "<Description>caf\xe9</Description>")), classXMLSyntax},
		{"utf-8 under US-ASCII", ok(strings.Replace(voeDoc("", "<Description>café</Description>"), "UTF-8", "US-ASCII", 1)), classXMLSyntax},
		{"ascii under US-ASCII", ok(strings.Replace(voeDoc("", "<Description>cafe</Description>"), "UTF-8", "US-ASCII", 1)), ""},
		{"utf-8 bom", append([]byte{0xEF, 0xBB, 0xBF}, voeDoc("", "")...), ""},
		{"utf-16 bom", utf16LE(strings.Replace(voeDoc("", "<Description>é</Description>"), "UTF-8", "UTF-16", 1)), ""},
		{"raw U+0001", ok(voeDoc("", "<Description>a\x01</Description>")), classXMLSyntax},
		{"referenced U+0001", ok(voeDoc("", "<Description>a&#1;</Description>")), classXMLSyntax},
		{"raw U+000C", ok(voeDoc("", "<Description>a\x0c</Description>")), classXMLSyntax},
		{"raw U+FFFE", ok(voeDoc("", "<Description>a\uFFFE</Description>")), classXMLSyntax},
		{"referenced U+FFFF", ok(voeDoc("", "<Description>a&#xFFFF;</Description>")), classXMLSyntax},
		{"control char in comment", ok(voeDoc("", "<!-- \x01 -->")), classXMLSyntax},
		{"NUL inside", ok(voeDoc("", "<Description>a\x00</Description>")), classXMLSyntax},
		{"NUL after root ends the document", ok(voeDoc("", "") + "\n\x00garbage<<<"), ""},
		{"NUL after a comment after root", ok(voeDoc("", "") + "<!-- c -->\x00<x>"), ""},
		{"text after root", ok(voeDoc("", "") + "junk"), classXMLSyntax},
		{"second root", ok(voeDoc("", "") + "<x/>"), classXMLSyntax},
		{"comment and PI after root", ok(voeDoc("", "") + "\n<!-- c --><?pi x?>\n"), ""},
		{"undeclared prefix", ok(voeDoc("", "<x:Who/>")), classXMLSyntax},
		{"same attribute twice", ok(voeDoc(` role="test"`, "")), classXMLSyntax},
		{"same xmlns:p twice", ok(voeDoc(` xmlns:p="urn:a" xmlns:p="urn:a"`, "")), classXMLSyntax},
		{"same default xmlns twice", ok(strings.Replace(voeDoc("", ""), "<voe:VOEvent ", `<voe:VOEvent xmlns="" xmlns="" `, 1)), classXMLSyntax},
		{"attributes not separated", ok(strings.Replace(voeDoc("", ""), `role="test" version`, `role="test"version`, 1)), classXMLSyntax},
		{"empty prefix", ok(voeDoc("", "<:Who/>")), classXMLSyntax},
		{"empty xmlns prefix", ok(voeDoc(` xmlns:="urn:x"`, "")), classXMLSyntax},
		{"undeclared entity", ok(voeDoc("", "<Description>&nbsp;</Description>")), classXMLSyntax},
		{"predefined entities and refs", ok(voeDoc("", "<Description>&lt;&amp;&#65;&#x42;</Description>")), ""},
		{"doctype", ok(strings.Replace(voeDoc("", ""), "?>", "?><!DOCTYPE voe:VOEvent>", 1)), classDoctype},
		{"doctype after root start", ok(voeDoc("", "<!DOCTYPE x>")), classXMLSyntax},
		{"whitespace CDATA in element-only content", ok(voeDoc("", "<Who><![CDATA[ \n ]]></Who>")), ""},
		{"text CDATA in element-only content", ok(voeDoc("", "<Who><![CDATA[x]]></Who>")), classSchema},
		{"ivorn with a trailing &#10;", ok(strings.Replace(voeDoc("", ""), `#1"`, `#1&#10;"`, 1)), ""},
		{"ivorn with a literal trailing newline", ok(strings.Replace(voeDoc("", ""), `#1"`, "#1\n\"", 1)), classIVOID},
		{"ivorn with a trailing &#9;", ok(strings.Replace(voeDoc("", ""), `#1"`, `#1&#9;"`, 1)), classIVOID},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, rej := checkSubmission(tc.doc)
			class := ""
			if rej != nil {
				class = rej.class
			}
			if class != tc.class {
				t.Errorf("class = %q, want %q (%v)", class, tc.class, rej)
			}
		})
	}
}

func utf16LE(s string) []byte {
	b := []byte{0xFF, 0xFE}
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// TestAttributeNormalisation: literal tab, CR and LF in an attribute value
// become spaces (CR LF as one), character references keep their character,
// and text line ends become LF.
func TestAttributeNormalisation(t *testing.T) {
	doc, err := parseDocument([]byte("<a x=\"1\t2\r\n3\r4\n5&#10;6&#9;7&#13;8&amp;\" y='&lt;'>l1\r\nl2\rl3<!--c\r\nd--></a>"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := doc.elem.attr("x"); got != "1 2 3 4 5\n6\t7\r8&" {
		t.Errorf("x = %q", got)
	}
	if got, _ := doc.elem.attr("y"); got != "<" {
		t.Errorf("y = %q", got)
	}
	if got := doc.elem.firstChild.data; got != "l1\nl2\nl3" {
		t.Errorf("text = %q", got)
	}
	if got := doc.elem.lastChild.data; got != "c\nd" {
		t.Errorf("comment = %q", got)
	}
}

func TestDoctypeFlag(t *testing.T) {
	_, err := parseDocument([]byte(`<!DOCTYPE a><a/>`))
	xe, ok := err.(*xmlError)
	if !ok || !xe.doctype || xe.msg != errDoctype.Error() {
		t.Errorf("err = %#v, want a doctype xmlError", err)
	}
	_, err = parseDocument([]byte(`<a><b></a>`))
	if xe, ok := err.(*xmlError); !ok || xe.doctype {
		t.Errorf("err = %#v, want a plain xmlError", err)
	}
}

// TestCheckChars puts a forbidden character at every offset of a document
// long enough for the eight-byte fast path.
func TestCheckChars(t *testing.T) {
	base := []byte("<a>" + strings.Repeat("abcdefgh ~\t\n", 4) + "</a>")
	if _, err := checkChars(base); err != nil {
		t.Fatalf("clean document refused: %v", err)
	}
	for _, bad := range []string{"\x01", "\x1f", "\x7f\x01", "\xc3", "\uFFFE"} {
		for i := 3; i < len(base)-4; i++ {
			doc := append(append(append([]byte(nil), base[:i]...), bad...), base[i:]...)
			if _, err := checkChars(doc); err == nil {
				t.Errorf("%q at %d accepted", bad, i)
			}
		}
	}
	if n, err := checkChars(append(append([]byte(nil), base...), 0, 'x')); err != nil || n != len(base) {
		t.Errorf("NUL after the document: offset %d, err %v", n, err)
	}
}

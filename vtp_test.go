package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func frame(payload []byte) []byte {
	b := make([]byte, 4+len(payload))
	binary.BigEndian.PutUint32(b, uint32(len(payload)))
	copy(b[4:], payload)
	return b
}

// oneByteReader returns at most one byte per Read, to exercise split reads.
type oneByteReader struct{ r io.Reader }

func (o oneByteReader) Read(p []byte) (int, error) {
	if len(p) > 1 {
		p = p[:1]
	}
	return o.r.Read(p)
}

func TestReadFrameLimits(t *testing.T) {
	const limit = 100
	at := bytes.Repeat([]byte("x"), limit)
	cases := []struct {
		name  string
		input []byte
		want  []byte
		err   error
	}{
		{"one byte", frame([]byte("a")), []byte("a"), nil},
		{"at the limit", frame(at), at, nil},
		{"limit plus one", frame(append(at, 'y')), nil, errFrameTooLarge},
		{"zero length", frame(nil), nil, errEmptyFrame},
		{"huge length", []byte{0xFF, 0xFF, 0xFF, 0xFF}, nil, errFrameTooLarge},
		{"little-endian prefix", []byte{0xa0, 0x86, 0x01, 0x00, '<'}, nil, errFrameTooLarge},
		{"truncated body", frame(at)[:50], nil, io.ErrUnexpectedEOF},
		{"truncated prefix", []byte{0, 0}, nil, io.ErrUnexpectedEOF},
		{"clean EOF", nil, nil, io.EOF},
	}
	for _, tc := range cases {
		for _, split := range []bool{false, true} {
			name := tc.name
			if split {
				name += "/split reads"
			}
			t.Run(name, func(t *testing.T) {
				var r io.Reader = bytes.NewReader(tc.input)
				if split {
					r = oneByteReader{r}
				}
				got, err := readFrame(r, limit)
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				if !bytes.Equal(got, tc.want) {
					t.Errorf("payload = %q, want %q", got, tc.want)
				}
			})
		}
	}
}

func TestReadFrameSequence(t *testing.T) {
	var in bytes.Buffer
	in.Write(frame([]byte("first")))
	in.Write(frame([]byte("second")))
	for _, want := range []string{"first", "second"} {
		got, err := readFrame(&in, 1000)
		if err != nil || string(got) != want {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
	}
	if _, err := readFrame(&in, 1000); err != io.EOF {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}
}

func TestWriteFrame(t *testing.T) {
	var b bytes.Buffer
	if err := writeFrame(&b, []byte("<x/>")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), frame([]byte("<x/>"))) {
		t.Errorf("wrote %q", b.Bytes())
	}
}

var timestampRE = regexp.MustCompile(`<TimeStamp>[^<]*</TimeStamp>`)

func wireFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/vectors/comet-wire", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTransportGolden checks our Transport messages against the bytes real
// Comet wrote (testdata/vectors/comet-wire), timestamps aside. Messages to
// which we add our software-identification Param must equal Comet's once
// that Param is removed.
func TestTransportGolden(t *testing.T) {
	now := time.Date(2026, 11, 22, 2, 14, 27, 0, time.UTC)
	stamp := "<TimeStamp>2026-11-22T02:14:27Z</TimeStamp>"
	withoutSoftware := func(m *transport) *transport {
		c := *m
		c.params = nil
		for _, p := range m.params {
			if p.name != "Server" && p.name != "User-Agent" {
				c.params = append(c.params, p)
			}
		}
		return &c
	}
	cases := []struct {
		file string
		msg  *transport
	}{
		{"author-ack_02_comet-to-author_ack.xml", newAck("ivo://test.local/sample#event-1", "ivo://test/comet", now)},
		{"nak-duplicate_02_comet-to-author_nak.xml", newNak("ivo://test.local/sample#event-1", "ivo://test/comet", "Previously seen by this broker", now)},
		{"nak-bad-ivoid_02_comet-to-author_nak.xml", newNak("not-an-ivoid", "ivo://test/comet", "Invalid IVOID: not-an-ivoid", now)},
		{"nak-no-local-id_02_comet-to-author_nak.xml", newNak("ivo://test.local/sample", "ivo://test/comet", "No per-event local ID", now)},
		{"sub-iamalive_01_comet-to-subscriber_authenticate.xml", withoutSoftware(newBrokerMessage("authenticate", "ivo://test/comet", now))},
		{"sub-iamalive_03_comet-to-subscriber_iamalive.xml", withoutSoftware(newBrokerMessage("iamalive", "ivo://test/comet", now))},
		{"cometsub-auth-iamalive_04_cometsub-to-comet_iamalive.xml", withoutSoftware(newIamaliveResponse("ivo://test/comet", "ivo://test/cometsub", purposeCopy, now))},
		{"cometsub-auth-iamalive_02_cometsub-to-comet_authenticate.xml", withoutSoftware(newAuthenticateResponse("ivo://test/comet", "ivo://test/cometsub", purposeCopy,
			[]string{"//Param[@name='magnitude' and @value > 17]", "//Who/AuthorIVORN[contains(., 'test.local')]"}, now))},
		{"cometsub-event-ack_04_cometsub-to-comet_ack.xml", newAck("ivo://test.local/sample#event-2", "ivo://test/cometsub", now)},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			want := timestampRE.ReplaceAllString(string(wireFile(t, tc.file)), stamp)
			got := string(tc.msg.marshal())
			if got != want {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestTransportSoftwareParam(t *testing.T) {
	now := time.Now()
	m := newBrokerMessage("iamalive", "ivo://a.b/c", now)
	p, err := parseTransport(m.marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p.param("Server"), "comet/"+version+" go/") {
		t.Errorf("Server param = %q", p.param("Server"))
	}
	r, err := parseTransport(newIamaliveResponse("ivo://a.b/c", "", purposeScience, now).marshal())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.software(), "(IVOA-science)") || r.response != "" {
		t.Errorf("iamalive response: %+v", r)
	}
}

func TestParseTransportCapturesAndForms(t *testing.T) {
	files, _ := filepath.Glob("testdata/vectors/comet-wire/*.xml")
	n := 0
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		ri, err := scanRoot(raw)
		if err != nil || !isTransportRole(ri.role) {
			continue
		}
		tr, err := parseTransport(raw)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		if tr.role != ri.role || tr.origin == "" {
			t.Errorf("%s: %+v", filepath.Base(f), tr)
		}
		n++
	}
	if n < 15 {
		t.Errorf("parsed only %d captured Transport messages", n)
	}
	filters := func(body string) []string {
		for _, ns := range transportNamespaces {
			doc := `<t:Transport xmlns:t="` + ns + `" role="authenticate" version="1.0"><Origin>ivo://a.b/c</Origin><TimeStamp>x</TimeStamp><Meta>` + body + `</Meta></t:Transport>`
			tr, err := parseTransport([]byte(doc))
			if err != nil {
				t.Fatalf("%s: %v", ns, err)
			}
			if ns == transportNamespaces[len(transportNamespaces)-1] {
				return tr.filters
			}
		}
		return nil
	}
	got := filters(`<filter type="xpath">//Who</filter><Param name="xpath-filter" value="//What"/><Param name="other" value="x"/>`)
	if strings.Join(got, ",") != "//What,//Who" {
		t.Errorf("filters = %q", got)
	}
	if _, err := parseTransport([]byte(`<Transport xmlns="urn:other" role="ack"/>`)); err == nil {
		t.Error("unknown namespace accepted")
	}
	if _, err := parseTransport([]byte(`<Transport role="imalive"/>`)); err == nil {
		t.Error("unknown role accepted")
	}
}

func TestScanRoot(t *testing.T) {
	cases := []struct {
		name, src, root, role, ivorn string
		err                          error
	}{
		{"decl and comments", "<?xml version='1.0'?>\n<!-- c -->\n<voe:VOEvent role=\"test\" ivorn='ivo://a.b/c#1'><Who a=\"x>y\"/><!-- </voe:VOEvent> --><![CDATA[</voe:VOEvent>]]></voe:VOEvent>\n<!-- sig -->\n", "<voe:VOEvent role=\"test\" ivorn='ivo://a.b/c#1'><Who a=\"x>y\"/><!-- </voe:VOEvent> --><![CDATA[</voe:VOEvent>]]></voe:VOEvent>", "test", "ivo://a.b/c#1", nil},
		{"self closing", `<VOEvent ivorn="ivo://a.b/c#&amp;&#x41;" role="utility"/>`, `<VOEvent ivorn="ivo://a.b/c#&amp;&#x41;" role="utility"/>`, "utility", "ivo://a.b/c#&A", nil},
		{"nested same name", `<a role="x"><a><a/></a></a>`, `<a role="x"><a><a/></a></a>`, "x", "", nil},
		{"doctype", `<!DOCTYPE a><a/>`, "", "", "", errScanDoctype},
		{"unterminated", `<a><b></b>`, "", "", "", errUnterminated},
		{"empty", ``, "", "", "", errNoRoot},
		{"text first", `hello`, "", "", "", errNoRoot},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ri, err := scanRoot([]byte(tc.src))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if got := tc.src[ri.start:ri.end]; got != tc.root {
				t.Errorf("root = %q, want %q", got, tc.root)
			}
			if ri.role != tc.role || ri.ivorn != tc.ivorn {
				t.Errorf("role %q ivorn %q", ri.role, ri.ivorn)
			}
		})
	}
}

// TestScanRootAgreesWithTree checks the light scan against the full parser
// on every corpus event.
func TestScanRootAgreesWithTree(t *testing.T) {
	for _, f := range corpusFiles(t) {
		raw, _ := os.ReadFile(f)
		ri, err := scanRoot(raw)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(f), err)
			continue
		}
		doc, err := parseDocument(raw)
		if err != nil {
			continue
		}
		ivorn, _ := doc.elem.attr("ivorn")
		role, _ := doc.elem.attr("role")
		if ri.ivorn != ivorn || ri.role != role || ri.name != doc.elem.name() {
			t.Errorf("%s: scan %q %q %q, tree %q %q %q", filepath.Base(f), ri.name, ri.role, ri.ivorn, doc.elem.name(), role, ivorn)
		}
		end := bytes.TrimRight(raw, " \t\r\n")
		if ri.end != len(end) && !bytes.Contains(raw[ri.end:], []byte("<!--")) {
			t.Errorf("%s: root ends at %d of %d", filepath.Base(f), ri.end, len(end))
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add(frame([]byte("<x/>")))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xFF, 0xFF, 0xFF, 0xFF, 1})
	f.Add(append(frame([]byte("a")), frame([]byte("bc"))...))
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		for i := 0; i < 1000; i++ {
			p, err := readFrame(r, 64)
			if err != nil {
				return
			}
			if len(p) == 0 || len(p) > 64 {
				t.Fatalf("frame of %d bytes", len(p))
			}
		}
	})
}

func FuzzScanRoot(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><a role="x" ivorn="y"><b/></a>`))
	f.Add([]byte(`<a><!-- x --><![CDATA[y]]></a>`))
	f.Fuzz(func(t *testing.T, in []byte) {
		ri, err := scanRoot(in)
		if err == nil && (ri.start < 0 || ri.end > len(in) || ri.start >= ri.end) {
			t.Fatalf("bad span %d..%d of %d", ri.start, ri.end, len(in))
		}
	})
}

func BenchmarkFrameRoundTrip(b *testing.B) {
	raw := medianEvent(b)
	var buf bytes.Buffer
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		writeFrame(&buf, raw)
		if _, err := readFrame(&buf, defaultMaxMessageSize); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkScanRoot(b *testing.B) {
	raw := medianEvent(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := scanRoot(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// transportSchemaError checks a document against the Transport 1.1 schema
// (comet-behaviour section 2): root Transport in a Transport namespace with
// role (iamalive, authenticate, ack, nak) and version; children Origin
// (anyURI), optional Response (anyURI), TimeStamp (dateTime), optional Meta
// of Param* (name and value required) then an optional Result.
func transportSchemaError(raw []byte) string {
	doc, err := parseDocument(raw)
	if err != nil {
		return err.Error()
	}
	r := doc.elem
	if r.local != "Transport" || !isTransportNamespace(r.space) {
		return "root is not a Transport"
	}
	if role, _ := r.attr("role"); !isTransportRole(role) {
		return "bad role " + role
	}
	if _, ok := r.attr("version"); !ok {
		return "no version"
	}
	var kids []*node
	for c := r.firstChild; c != nil; c = c.next {
		switch c.kind {
		case elementNode:
			if c.space != "" {
				return c.local + " is qualified"
			}
			kids = append(kids, c)
		case textNode:
			if strings.TrimSpace(c.data) != "" {
				return "text in element-only content"
			}
		}
	}
	want := []string{"Origin", "Response", "TimeStamp", "Meta"}
	optional := map[string]bool{"Response": true, "Meta": true}
	i := 0
	for _, w := range want {
		if i < len(kids) && kids[i].local == w {
			i++
			continue
		}
		if !optional[w] {
			return "missing " + w
		}
	}
	if i != len(kids) {
		return "unexpected " + kids[i].local
	}
	for _, k := range kids {
		switch k.local {
		case "Origin", "Response":
			if !validAnyURI(k.stringValue()) {
				return k.local + " is not an anyURI"
			}
		case "TimeStamp":
			if !validDateTime(k.stringValue()) {
				return "TimeStamp is not a dateTime"
			}
		case "Meta":
			seenResult := false
			for m := k.firstChild; m != nil; m = m.next {
				if m.kind != elementNode {
					continue
				}
				switch {
				case m.local == "Param" && !seenResult:
					if _, ok := m.attr("name"); !ok {
						return "Param without name"
					}
					if _, ok := m.attr("value"); !ok {
						return "Param without value"
					}
				case m.local == "Result" && !seenResult:
					seenResult = true
				default:
					return "unexpected Meta/" + m.local
				}
			}
		}
	}
	return ""
}

// TestOurTransportMessagesAreSchemaValid: every message we write, with the
// software-identification Params, is a schema-valid Transport document; so
// are Comet's captured ones (the checker's own sanity check).
func TestOurTransportMessagesAreSchemaValid(t *testing.T) {
	now := time.Now()
	msgs := map[string]*transport{
		"ack":                     newAck("ivo://a.b/c#1", "ivo://x.y/broker", now),
		"ack without Response":    newAck("ivo://a.b/c#1", "", now),
		"nak":                     newNak("ivo://a.b/c#1", "ivo://x.y/broker", "schema: /VOEvent/Who/Date: \"x\" <bad> & worse", now),
		"iamalive":                newBrokerMessage("iamalive", "ivo://x.y/broker", now),
		"authenticate":            newBrokerMessage("authenticate", "ivo://x.y/broker", now),
		"iamalive response":       newIamaliveResponse("ivo://x.y/broker", "ivo://p.q/sub", purposeCopy, now),
		"authenticate response":   newAuthenticateResponse("ivo://x.y/broker", "ivo://p.q/sub", purposeScience, []string{`//Param[@name="a" and @value < 3]`}, now),
		"authenticate, no filter": newAuthenticateResponse("ivo://x.y/broker", "", purposeScience, nil, now),
	}
	for name, m := range msgs {
		if err := transportSchemaError(m.marshal()); err != "" {
			t.Errorf("%s: %s\n%s", name, err, m.marshal())
		}
	}
	files, _ := filepath.Glob("testdata/vectors/comet-wire/*comet*_*.xml")
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		if ri, err := scanRoot(raw); err != nil || !isTransportRole(ri.role) {
			continue
		}
		if err := transportSchemaError(raw); err != "" && strings.Contains(filepath.Base(f), "comet-to") {
			t.Errorf("Comet's %s: %s", filepath.Base(f), err)
		}
	}
	if transportSchemaError([]byte(`<trn:Transport xmlns:trn="`+transportNS+`" role="ack" version="1.0"><TimeStamp>2026-01-01T00:00:00Z</TimeStamp></trn:Transport>`)) == "" {
		t.Error("checker accepted a Transport without Origin")
	}
}

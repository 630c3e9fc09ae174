package main

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readExpected reads a file<TAB>verdict<TAB>reason table (header skipped).
func readExpected(t *testing.T, path string) [][3]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows [][3]string
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		p := strings.Split(sc.Text(), "\t")
		if len(p) != 3 {
			t.Fatalf("%s: bad row %q", path, sc.Text())
		}
		rows = append(rows, [3]string{p[0], p[1], p[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// checkTable runs checkSubmission on every file of an expected table in dir
// and compares verdict and class.
func checkTable(t *testing.T, table, dir string, want int) {
	rows := readExpected(t, table)
	if len(rows) != want {
		t.Fatalf("%s: %d rows, want %d", table, len(rows), want)
	}
	for _, row := range rows {
		t.Run(row[0], func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, row[0]))
			if err != nil {
				t.Fatal(err)
			}
			_, _, rej := checkSubmission(raw)
			verdict, class := "valid", "-"
			if rej != nil {
				verdict, class = "invalid", rej.class
			}
			if verdict != row[1] || class != row[2] {
				t.Errorf("got %s %s, want %s %s (%v)", verdict, class, row[1], row[2], rej)
			}
		})
	}
}

func TestValidateVectors(t *testing.T) {
	checkTable(t, "testdata/vectors/validate/expected.tsv", "testdata/vectors/validate", 93)
}

func TestValidateCorpus(t *testing.T) {
	checkTable(t, "testdata/vectors/validate/corpus-expected.tsv", "testdata/corpus/voevents", 119)
}

// voeDoc builds a small VOEvent 2.0 document: attrs are extra root
// attributes, body its content.
func voeDoc(attrs, body string) string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ivorn="ivo://example.org/test#1" role="test" version="2.0"` + attrs + `>` + body + `</voe:VOEvent>`
}

// whereWhen wraps a position and time in the required WhereWhen structure.
func whereWhen(coords string) string {
	return voeDoc("", `<WhereWhen><ObsDataLocation><ObservatoryLocation id="x"/><ObservationLocation><AstroCoordSystem id="UTC-FK5-TOPO"/><AstroCoords coord_system_id="UTC-FK5-TOPO">`+
		coords+`</AstroCoords></ObservationLocation></ObsDataLocation></WhereWhen>`)
}

func pos2(c1 string) string {
	return whereWhen(`<Position2D unit="deg"><Value2><C1>` + c1 + `</C1><C2>1</C2></Value2><Error2Radius>0.1</Error2Radius></Position2D>`)
}

// TestSchemaRules has, for each rule of the schema, a document that passes
// and one that fails it (with class schema).
func TestSchemaRules(t *testing.T) {
	cases := []struct {
		rule, good, bad string
	}{
		{"root namespace is v2.0",
			voeDoc("", ""),
			strings.Replace(voeDoc("", ""), "VOEvent/v2.0", "VOEvent/v1.1", 1)},
		{"VOEvent 2.1 is refused",
			voeDoc("", ""),
			strings.Replace(strings.Replace(voeDoc("", ""), "VOEvent/v2.0", "VOEvent/v2.1", 1), `version="2.0"`, `version="2.1"`, 1)},
		{"root local name",
			voeDoc("", ""),
			strings.ReplaceAll(voeDoc("", ""), "voe:VOEvent", "voe:Event")},
		{"version is 2.0 after collapsing",
			strings.Replace(voeDoc("", ""), `version="2.0"`, `version=" 2.0 "`, 1),
			strings.Replace(voeDoc("", ""), `version="2.0"`, `version="2.00"`, 1)},
		{"version required",
			voeDoc("", ""),
			strings.Replace(voeDoc("", ""), `version="2.0"`, ``, 1)},
		{"root ivorn is anyURI",
			voeDoc("", ""),
			strings.Replace(voeDoc("", ""), `#1"`, `#l%zz"`, 1)},
		{"unknown root attribute",
			voeDoc(` xsi:schemaLocation="anything at all"`, ""),
			voeDoc(` priority="1"`, "")},
		{"root children any order",
			voeDoc("", `<How><Description/></How><Who><Date>2013-01-01T00:00:00</Date></Who>`),
			voeDoc("", `<How><Description/></How><How><Description/></How>`)},
		{"unknown root child",
			voeDoc("", `<Description>x</Description>`),
			voeDoc("", `<Priority>1</Priority>`)},
		{"children are unqualified",
			voeDoc("", `<Who/>`),
			voeDoc("", `<voe:Who/>`)},
		{"default namespace reset on children",
			`<VOEvent xmlns="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://a.b/c#d" role="test" version="2.0"><Who xmlns=""/></VOEvent>`,
			`<VOEvent xmlns="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://a.b/c#d" role="test" version="2.0"><Who/></VOEvent>`},
		{"qualified attribute",
			voeDoc("", `<Why importance="1"><Name>x</Name></Why>`),
			voeDoc("", `<Why voe:importance="1"><Name>x</Name></Why>`)},
		{"xml:lang not allowed",
			voeDoc("", `<Description>x</Description>`),
			voeDoc("", `<Description xml:lang="en">x</Description>`)},
		{"xsi:type names the declared type",
			voeDoc("", `<Who xsi:type="voe:Who"/>`),
			voeDoc("", `<Who xsi:type="voe:What"/>`)},
		{"xsi:type on a string element",
			`<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ivorn="ivo://a.b/c#d" role="test" version="2.0"><Description xsi:type="xs:string"/></voe:VOEvent>`,
			`<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" ivorn="ivo://a.b/c#d" role="test" version="2.0"><Description xsi:type="xs:float"/></voe:VOEvent>`},
		{"xsi:type on the anonymous root",
			voeDoc("", ""),
			voeDoc(` xsi:type="voe:VOEvent"`, "")},
		{"xsi:nil never allowed",
			voeDoc("", `<Description/>`),
			voeDoc("", `<Description xsi:nil="false"/>`)},
		{"Who/Date is dateTime",
			voeDoc("", `<Who><Date>2013-01-01T00:00:00+14:00</Date></Who>`),
			voeDoc("", `<Who><Date>yesterday</Date></Who>`)},
		{"Who children at most once",
			voeDoc("", `<Who><AuthorIVORN>ivo://a.b/c</AuthorIVORN><Date>2013-01-01T00:00:00</Date></Who>`),
			voeDoc("", `<Who><Date>2013-01-01T00:00:00</Date><Date>2013-01-01T00:00:00</Date></Who>`)},
		{"Who/AuthorIVORN is anyURI",
			voeDoc("", `<Who><AuthorIVORN>not a uri but fine</AuthorIVORN></Who>`),
			voeDoc("", `<Who><AuthorIVORN>x[1]</AuthorIVORN></Who>`)},
		{"Author needs a child",
			voeDoc("", `<Who><Author><contactName>x</contactName><contactName>y</contactName></Author></Who>`),
			voeDoc("", `<Who><Author/></Who>`)},
		{"Author/logoURL is anyURI",
			voeDoc("", `<Who><Author><logoURL>http://example.org/logo.png</logoURL></Author></Who>`),
			voeDoc("", `<Who><Author><logoURL>http://a:/</logoURL></Author></Who>`)},
		{"Param dataType enumeration",
			voeDoc("", `<What><Param name="a" value="x" dataType="int"/></What>`),
			voeDoc("", `<What><Param name="a" value="x" dataType="Int"/></What>`)},
		{"Param attributes",
			voeDoc("", `<What><Param name="a" ucd="b" value="c" unit="d" utype="e"/></What>`),
			voeDoc("", `<What><Param name="a" datatype="int"/></What>`)},
		{"Param children repeat",
			voeDoc("", `<What><Param><Value>1</Value><Value>2</Value><Description/><Reference uri="x"/></Param></What>`),
			voeDoc("", `<What><Param><Param/></Param></What>`)},
		{"Reference needs uri",
			voeDoc("", `<What><Reference uri="http://example.org/"/></What>`),
			voeDoc("", `<What><Reference type="url"/></What>`)},
		{"Reference is empty",
			voeDoc("", `<How><Reference uri="x"><!-- fine --></Reference></How>`),
			voeDoc("", "<How><Reference uri=\"x\">\n</Reference></How>")},
		{"Reference@meaning is anyURI",
			voeDoc("", `<How><Reference uri="x" meaning="http://example.org/%7e"/></How>`),
			voeDoc("", `<How><Reference uri="x" meaning="http://example.org/%"/></How>`)},
		{"Group holds Params, no Group",
			voeDoc("", `<What><Group name="g" type="t"><Param/><Description/><Reference uri="x"/></Group><Group/></What>`),
			voeDoc("", `<What><Group><Group/></Group></What>`)},
		{"Table may be empty, Data repeats",
			voeDoc("", `<What><Table/><Table><Field name="a" dataType="float"><Description/></Field><Data><TR><TD>1</TD></TR></Data><Data><TR><TD/></TR></Data></Table></What>`),
			voeDoc("", `<What><Table><Data><TR><TD>1</TD></TR><TD>2</TD></Data></Table></What>`)},
		{"Field has no value",
			voeDoc("", `<What><Table><Field name="a"/></Table></What>`),
			voeDoc("", `<What><Table><Field name="a" value="1"/></Table></What>`)},
		{"Data needs a TR",
			voeDoc("", `<What><Table><Data><TR><TD/></TR></Data></Table></What>`),
			voeDoc("", `<What><Table><Data/></Table></What>`)},
		{"TR needs a TD",
			voeDoc("", `<What><Table><Data><TR><TD/></TR></Data></Table></What>`),
			voeDoc("", `<What><Table><Data><TR/></Data></Table></What>`)},
		{"WhereWhen@id is an xs:ID",
			voeDoc("", `<WhereWhen id=" loc_1 "/>`),
			voeDoc("", `<WhereWhen id="1loc"/>`)},
		{"ObsDataLocation needs both children",
			pos2("1"),
			voeDoc("", `<WhereWhen><ObsDataLocation><ObservationLocation><AstroCoordSystem/><AstroCoords/></ObservationLocation></ObsDataLocation></WhereWhen>`)},
		{"ObservationLocation needs AstroCoords",
			voeDoc("", `<WhereWhen><ObsDataLocation><ObservatoryLocation/><ObservationLocation><AstroCoords/><AstroCoordSystem/></ObservationLocation></ObsDataLocation></WhereWhen>`),
			voeDoc("", `<WhereWhen><ObsDataLocation><ObservatoryLocation/><ObservationLocation><AstroCoordSystem/></ObservationLocation></ObsDataLocation></WhereWhen>`)},
		{"AstroCoordSystem id enumeration",
			strings.Replace(pos2("1"), `id="UTC-FK5-TOPO"`, `id="TDB-ICRS-BARY"`, 1),
			strings.Replace(pos2("1"), `id="UTC-FK5-TOPO"`, `id="UTC-FK5-TOPO "`, 1)},
		{"AstroCoordSystem is empty",
			strings.Replace(pos2("1"), `<AstroCoordSystem id="UTC-FK5-TOPO"/>`, `<AstroCoordSystem id="UTC-FK5-TOPO"></AstroCoordSystem>`, 1),
			strings.Replace(pos2("1"), `<AstroCoordSystem id="UTC-FK5-TOPO"/>`, "<AstroCoordSystem id=\"UTC-FK5-TOPO\">\n</AstroCoordSystem>", 1)},
		{"AstroCoords@coord_system_id enumeration",
			pos2("1"),
			strings.Replace(pos2("1"), `coord_system_id="UTC-FK5-TOPO"`, `coord_system_id="ICRS"`, 1)},
		{"Time and TimeInstant",
			whereWhen(`<Time unit="s"><TimeInstant><ISOTime>not a time</ISOTime><TimeScale>UTC</TimeScale></TimeInstant><Error>0.1</Error></Time>`),
			whereWhen(`<Time><TimeInstant><TimeOffset>soon</TimeOffset></TimeInstant></Time>`)},
		{"Time/Error is float",
			whereWhen(`<Time><Error>1e</Error></Time>`),
			whereWhen(`<Time><Error>1d</Error></Time>`)},
		{"C1 is float",
			pos2(" 12.5 "),
			pos2("1,5")},
		{"Position2D needs Error2Radius",
			whereWhen(`<Position2D><Error2Radius>-1</Error2Radius><Value2><C2>1</C2><C1>2</C1></Value2><Name2/><Name1/></Position2D>`),
			whereWhen(`<Position2D><Value2><C1>1</C1><C2>1</C2></Value2></Position2D>`)},
		{"Value2 needs C2",
			pos2("1"),
			whereWhen(`<Position2D><Value2><C1>1</C1></Value2><Error2Radius>1</Error2Radius></Position2D>`)},
		{"Position3D",
			whereWhen(`<Position3D unit="m"><Name1/><Name2/><Name3/><Value3><C1>1</C1><C2>2</C2><C3>3</C3></Value3></Position3D>`),
			whereWhen(`<Position3D><Value3><C1>1</C1><C2>2</C2></Value3></Position3D>`)},
		{"How needs a child",
			voeDoc("", `<How><Reference uri="x"/></How>`),
			voeDoc("", `<How/>`)},
		{"Why needs a child",
			voeDoc("", `<Why importance="INF" expires="2030-01-01T00:00:00Z"><Concept>x</Concept></Why>`),
			voeDoc("", `<Why importance="1"> </Why>`)},
		{"Why@importance is float",
			voeDoc("", `<Why importance=" -0 "><Name>x</Name></Why>`),
			voeDoc("", `<Why importance="0.5e+-1"><Name>x</Name></Why>`)},
		{"Why@expires is dateTime",
			voeDoc("", `<Why expires="2030-01-01T00:00:00"><Name>x</Name></Why>`),
			voeDoc("", `<Why expires="2030-01-01"><Name>x</Name></Why>`)},
		{"Inference needs a child",
			voeDoc("", `<Why><Inference relation="associated"><Name>x</Name></Inference></Why>`),
			voeDoc("", `<Why><Inference/></Why>`)},
		{"Inference@probability in [0,1]",
			voeDoc("", `<Why><Inference probability="1.00000001"><Name>x</Name></Inference></Why>`),
			voeDoc("", `<Why><Inference probability="1.0000001"><Name>x</Name></Inference></Why>`)},
		{"Citations needs an EventIVORN",
			voeDoc("", `<Citations><EventIVORN cite="supersedes">anything</EventIVORN><EventIVORN/><Description/></Citations>`),
			voeDoc("", `<Citations><Description/></Citations>`)},
		{"Citations order",
			voeDoc("", `<Citations><EventIVORN/><Description/></Citations>`),
			voeDoc("", `<Citations><EventIVORN/><Description/><EventIVORN/></Citations>`)},
		{"EventIVORN@cite enumeration",
			voeDoc("", `<Citations><EventIVORN cite="followup">x</EventIVORN></Citations>`),
			voeDoc("", `<Citations><EventIVORN cite="Followup">x</EventIVORN></Citations>`)},
		{"Description is text only",
			voeDoc("", `<Description>a<!-- c -->b<![CDATA[<c>]]></Description>`),
			voeDoc("", `<Description>a <b>bold</b></Description>`)},
		{"text in element-only content",
			voeDoc("", "<Who>\n\t<![CDATA[ ]]></Who>"),
			voeDoc("", "<Who>\u00a0</Who>")},
		{"string elements may be empty",
			voeDoc("", `<Description/><How><Description></Description></How>`),
			voeDoc("", `<Description><Description/></Description>`)},
	}
	for _, tc := range cases {
		t.Run(tc.rule, func(t *testing.T) {
			_, _, rej := checkSubmission([]byte(tc.good))
			if rej != nil {
				t.Errorf("good document refused: %v", rej)
			}
			_, _, rej = checkSubmission([]byte(tc.bad))
			if rej == nil || rej.class != classSchema {
				t.Errorf("bad document: got %v, want a schema rejection", rej)
			}
		})
	}
}

// TestCheckSubmissionOrder covers each class in turn, the ivorn returned
// and the nak text.
func TestCheckSubmissionOrder(t *testing.T) {
	cases := []struct {
		name, doc, class, ivorn, nak string
	}{
		{"valid", voeDoc("", ""), "", "ivo://example.org/test#1", ""},
		{"xml-syntax, ivorn still read", `<voe:VOEvent ivorn="ivo://a.b/c#d" role="test"><Who></voe:VOEvent>`, classXMLSyntax, "ivo://a.b/c#d", ""},
		{"doctype", `<!DOCTYPE x [<!ENTITY e "f">]><voe:VOEvent ivorn="ivo://a.b/c#&amp;d" role="test"/>`, classDoctype, "ivo://a.b/c#&d", ""},
		{"not-voevent: no role", `<Foo ivorn="ivo://a.b/c#d"/>`, classNotVOEvent, "ivo://a.b/c#d", ""},
		{"not-voevent: transport role", `<Foo role="iamalive" ivorn="ivo://a.b/c#d"/>`, classNotVOEvent, "ivo://a.b/c#d", ""},
		{"missing-ivorn", `<Foo xmlns:v="urn:v" role="test" v:ivorn="ivo://a.b/c#d"/>`, classMissingIvorn, "", ""},
		{"ivoid", `<Foo role="test" ivorn="ivo://x/test#1"/>`, classIVOID, "ivo://x/test#1", "Invalid IVOID: ivo://x/test#1"},
		{"ivoid: no local ID", `<Foo role="test" ivorn="ivo://a.b/c#"/>`, classIVOID, "ivo://a.b/c#", "No per-event local ID"},
		{"schema after ivoid", `<Foo role="test" ivorn="ivo://a.b/c#d"/>`, classSchema, "ivo://a.b/c#d", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, ivorn, rej := checkSubmission([]byte(tc.doc))
			class := ""
			if rej != nil {
				class = rej.class
				if !strings.HasPrefix(rej.Error(), rej.class+": ") {
					t.Errorf("Error() = %q does not start with the class", rej.Error())
				}
			}
			if class != tc.class {
				t.Errorf("class = %q, want %q (%v)", class, tc.class, rej)
			}
			if ivorn != tc.ivorn {
				t.Errorf("ivorn = %q, want %q", ivorn, tc.ivorn)
			}
			if (doc == nil) != (tc.class == classXMLSyntax || tc.class == classDoctype) {
				t.Errorf("document returned = %v", doc != nil)
			}
			if tc.nak != "" && rej.nakText() != tc.nak {
				t.Errorf("nakText = %q, want %q", rej.nakText(), tc.nak)
			}
		})
	}
}

func TestSchemaReasonText(t *testing.T) {
	_, _, rej := checkSubmission([]byte(voeDoc("", "<Who>\n<Date>yesterday</Date></Who>")))
	want := `schema: /VOEvent/Who/Date: "yesterday" is not an xs:dateTime`
	if rej == nil || !strings.HasPrefix(rej.nakText(), want) {
		t.Errorf("nakText = %v, want prefix %q", rej, want)
	}
	_, _, rej = checkSubmission([]byte(voeDoc("", `<What><Param/><Param dataType="char"/></What>`)))
	want = `schema: /VOEvent/What/Param[2]/@dataType: "char" is not one of string, float, int (line 2)`
	if rej == nil || rej.nakText() != want {
		t.Errorf("nakText = %v, want %q", rej, want)
	}
}

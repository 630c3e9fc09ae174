package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidateCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("a-good.xml", voeDoc("", ""))
	bad := write("b-bad.xml", voeDoc("", "<Who><Date>yesterday</Date></Who>"))
	write("c-notes.txt", "not an event")

	cases := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"tsv all valid", []string{"--tsv", good}, exitOK, "file\tverdict\treason\n" + good + "\tvalid\t-\n"},
		{"tsv directory", []string{"--tsv", dir}, exitOK, "file\tverdict\treason\n" + good + "\tvalid\t-\n" +
			bad + "\tinvalid\tschema: /VOEvent/Who/Date: \"yesterday\" is not an xs:dateTime (YYYY-MM-DDThh:mm:ss[.s][Z\\|±hh:mm], no white space) (line 2)\n"},
		{"readable valid", []string{good}, exitOK, good + ": valid\n"},
		{"directory with trailing slash", []string{"--tsv", dir + "/"}, exitOK, "file\tverdict\treason\n" + dir + "/a-good.xml\tvalid\t-\n"},
		{"readable invalid", []string{good, bad}, exitFail, good + ": valid\n" + bad + ": invalid: schema: /VOEvent/Who/Date"},
		{"missing file", []string{"--tsv", filepath.Join(dir, "nope.xml")}, exitFail, "file\tverdict\treason\n"},
		{"no arguments", nil, exitUsage, ""},
		{"bad flag", []string{"--bogus", good}, exitUsage, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := runValidate(tc.args, nil, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			if !strings.HasPrefix(out.String(), tc.out) {
				t.Errorf("stdout = %q, want prefix %q", out.String(), tc.out)
			}
			if code != exitOK && errb.Len() == 0 && tc.code != exitFail {
				t.Errorf("no message on stderr")
			}
		})
	}
}

// BenchmarkValidateMedian parses and validates the median corpus event; the
// budget is 1.5 times BenchmarkTokenLoop.
func BenchmarkValidateMedian(b *testing.B) {
	raw := medianEvent(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, rej := checkSubmission(raw); rej != nil {
			b.Fatal(rej)
		}
	}
}

// FuzzValidate: checkSubmission never panics, and a rejection always names
// one of the classes.
func FuzzValidate(f *testing.F) {
	files, _ := filepath.Glob("testdata/vectors/validate/v0[0-9]*.xml")
	for i, p := range files {
		if i%4 != 0 {
			continue
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(voeDoc("", "")))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, _, rej := checkSubmission(raw)
		if rej == nil || (rej.class != classXMLSyntax && rej.class != classDoctype) {
			if doc == nil || doc.elem == nil {
				t.Fatalf("no document returned with rejection %v", rej)
			}
		}
		if rej == nil {
			return
		}
		switch rej.class {
		case classXMLSyntax, classDoctype, classNotVOEvent, classMissingIvorn, classIVOID, classSchema:
		default:
			t.Fatalf("unknown class %q", rej.class)
		}
		_ = rej.nakText()
	})
}

// BenchmarkValidateVsTokenLoop alternates the token loop and parse+validate
// on the median event and reports their ratio (budget: at most 1.5), which
// stays meaningful on a busy machine where absolute times drift.
func BenchmarkValidateVsTokenLoop(b *testing.B) {
	raw := medianEvent(b)
	var loop, validate time.Duration
	for b.Loop() {
		t0 := time.Now()
		tokenLoop(b, raw)
		t1 := time.Now()
		if _, _, rej := checkSubmission(raw); rej != nil {
			b.Fatal(rej)
		}
		t2 := time.Now()
		loop += t1.Sub(t0)
		validate += t2.Sub(t1)
	}
	b.ReportMetric(float64(loop.Nanoseconds())/float64(b.N), "tokenloop-ns/op")
	b.ReportMetric(float64(validate.Nanoseconds())/float64(b.N), "validate-ns/op")
	b.ReportMetric(float64(validate)/float64(loop), "ratio")
}

// BenchmarkValidateSchema measures the schema rules alone on a parsed tree.
func BenchmarkValidateSchema(b *testing.B) {
	doc, err := parseDocument(medianEvent(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := validateSchema(doc); r != nil {
			b.Fatal(r)
		}
	}
}

package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTSVEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain αβγ", "plain αβγ"},
		{`a\b`, `a\\b`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"a|b", `a\|b`},
		{"\x00\x01\x1f\x7f", `\x00\x01\x1f\x7f`},
		{"\u0085x", `\x85x`},
		{"", ""},
	}
	for _, tc := range tests {
		if got := tsvEscape(tc.in); got != tc.want {
			t.Errorf("tsvEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestReadExpressions(t *testing.T) {
	raw := "# comment\n\n  \t\n//a\n  # indented comment\n  //b  \n\t//c\n"
	got := readExpressions([]byte(raw))
	want := []string{"//a", "  //b  ", "\t//c"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

func runFilterCmd(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := runFilter(args, strings.NewReader("//Who\n"), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestFilterCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("b.xml", xpTestDoc)
	write("a.xml", "<voe:VOEvent xmlns:voe='urn:x' role='test'><Who/></voe:VOEvent>")
	bad := write("c.xml", "<VOEvent><Who></VOEvent>")
	write("notes.txt", "not an event")
	exprs := write("exprs.txt", "# filters\n//Who\n\n1 div\n$x\n")

	t.Run("tsv", func(t *testing.T) {
		code, out, errOut := runFilterCmd("--tsv", "-e", exprs, "--xpath", `//Param[@name="SC_Lat" and @value>600]`, good, bad)
		if code != exitOK {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		want := "expression\tfile\ttype\tvalue\tverdict\n" +
			"//Who\tb.xml\tnodeset\t1|element /VOEvent[1]/Who[1]\ttrue\n" +
			"1 div\tb.xml\terror\tXPathSyntaxError: Invalid expression\terror\n" +
			"$x\tb.xml\terror\tXPathEvalError: Undefined variable\tfalse\n" +
			"//Param[@name=\"SC_Lat\" and @value>600]\tb.xml\tnodeset\t1|element /VOEvent[1]/What[1]/Param[1]\ttrue\n"
		if !strings.HasPrefix(out, want) {
			t.Errorf("output:\n%s\nwant prefix:\n%s", out, want)
		}
		rest := strings.TrimPrefix(out, want)
		for _, l := range strings.Split(strings.TrimSuffix(rest, "\n"), "\n") {
			f := strings.Split(l, "\t")
			if len(f) != 5 || f[1] != "c.xml" {
				t.Fatalf("row %q", l)
			}
			if f[0] == "1 div" {
				if f[2] != "error" || f[4] != "error" {
					t.Errorf("syntax error on a rejected file: %q", l)
				}
			} else if f[2] != "rejected" || f[4] != "false" {
				t.Errorf("rejected file row %q", l)
			}
		}
	})
	t.Run("directory and stdin", func(t *testing.T) {
		code, out, _ := runFilterCmd("--tsv", "-e", "-", dir)
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		var files []string
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			files = append(files, strings.Split(l, "\t")[1])
		}
		if got := strings.Join(files, ","); got != "a.xml,b.xml,c.xml" {
			t.Errorf("files %s, want a.xml,b.xml,c.xml", got)
		}
	})
	t.Run("readable", func(t *testing.T) {
		code, out, _ := runFilterCmd("--xpath", "//Who", "--xpath", "//Nothing", "--xpath", "1 div", "--xpath", "$x", good, bad)
		if code != exitOK {
			t.Fatalf("exit %d", code)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		want := []string{
			"b.xml: match: //Who => nodeset of 1: element /VOEvent[1]/Who[1]",
			"b.xml: no match: //Nothing => nodeset of 0",
			"b.xml: invalid filter: 1 div => XPath syntax error at position 5: Invalid expression",
			"b.xml: no match: $x => XPath evaluation error: Undefined variable",
		}
		if len(lines) != 8 {
			t.Fatalf("%d lines, want 8:\n%s", len(lines), out)
		}
		for i, w := range want {
			if lines[i] != w {
				t.Errorf("line %d = %q, want %q", i, lines[i], w)
			}
		}
		if !strings.HasPrefix(lines[4], "c.xml: rejected: //Who => document not parsed: ") {
			t.Errorf("rejected line %q", lines[4])
		}
	})
	t.Run("exit codes", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
		}{
			{[]string{good}, exitUsage},
			{[]string{"--xpath", "//Who"}, exitUsage},
			{[]string{"--bogus", "--xpath", "//Who", good}, exitUsage},
			{[]string{"-e", filepath.Join(dir, "missing.txt"), good}, exitFail},
			{[]string{"--xpath", "//Who", filepath.Join(dir, "missing.xml"), good}, exitFail},
			{[]string{"--xpath", "1 div", bad}, exitOK},
		} {
			if code, _, _ := runFilterCmd(tc.args...); code != tc.code {
				t.Errorf("%q: exit %d, want %d", tc.args, code, tc.code)
			}
		}
	})
}

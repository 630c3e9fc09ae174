// tsv.go is what the file commands (filter, validate, verify) share: the
// field escaping of every --tsv output, as shared/vectors/xpath/README.md
// defines it, and the expansion of directory arguments.
package main

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// tsvEscape escapes one TSV field: backslash, TAB, LF, CR and '|' as \\ \t
// \n \r \|, any other control character (Unicode category Cc: C0, DEL and
// C1) as \xHH; everything else is left as is.
func tsvEscape(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '\\' || c == '|' || c == 0xc2 {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '|':
			b.WriteString(`\|`)
		case r < 0x20 || r >= 0x7f && r <= 0x9f:
			b.WriteString(`\x`)
			b.WriteByte(hex[r>>4])
			b.WriteByte(hex[r&15])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// expandPaths replaces each directory in paths by the *.xml files in it, in
// name order, joined to the directory exactly as given (not cleaned, so
// "./events" stays "./events/a.xml").
func expandPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil || !st.IsDir() {
			// A missing file is reported when it is read.
			out = append(out, p)
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, e := range entries {
			if !e.IsDir() && strings.HasSuffix(e.Name(), ".xml") {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		sep := string(filepath.Separator)
		if strings.HasSuffix(p, sep) || strings.HasSuffix(p, "/") {
			sep = ""
		}
		for _, n := range names {
			out = append(out, p+sep+n)
		}
	}
	return out, nil
}

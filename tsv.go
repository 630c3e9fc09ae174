// tsv.go is the field escaping shared by every --tsv output (filter,
// validate, verify), as shared/vectors/xpath/README.md defines it.
package main

import (
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

// validate_types.go holds the simple types of the VOEvent 2.0 schema as
// libxml2 2.9 implements them (testdata/vectors/validate/README.md,
// "Datatypes as libxml2 implements them"): xs:float, xs:dateTime,
// xs:anyURI, xs:ID, the fixed version token and the enumerations.
//
// Invariant: these mirror libxml2's lexical checks, lenient or strict as it
// is, not the XML Schema recommendation where the two differ (for example a
// float exponent with no digits is accepted, a dateTime may not be padded).
package main

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// valueType is the type of an attribute value or of simple element content.
type valueType uint8

const (
	typeString      valueType = iota
	typeFloat                 // xs:float
	typeDateTime              // xs:dateTime
	typeAnyURI                // xs:anyURI
	typeProbability           // smallFloat: xs:float in [0, 1]
	typeID                    // xs:ID
	typeVersion               // xs:token fixed "2.0"
	typeRole                  // roleValues
	typeDataType              // dataType: string, float, int
	typeCoordSystem           // idValues
	typeCite                  // citeValues
)

var (
	dataTypeValues    = []string{"string", "float", "int"}
	coordSystemValues = []string{
		"TT-ICRS-TOPO", "UTC-ICRS-TOPO", "TT-FK5-TOPO", "UTC-FK5-TOPO", "GPS-ICRS-TOPO",
		"GPS-FK5-TOPO", "TT-ICRS-GEO", "UTC-ICRS-GEO", "TT-FK5-GEO", "UTC-FK5-GEO",
		"GPS-ICRS-GEO", "TDB-ICRS-BARY", "TDB-FK5-BARY", "UTC-GEOD-TOPO",
	}
	citeValues = []string{"followup", "supersedes", "retraction"}
)

// String describes t for a reason text: `"x" is not <String()>`.
func (t valueType) String() string {
	switch t {
	case typeFloat:
		return "an xs:float"
	case typeDateTime:
		return "an xs:dateTime (YYYY-MM-DDThh:mm:ss[.s][Z|±hh:mm], no white space)"
	case typeAnyURI:
		return "an xs:anyURI"
	case typeProbability:
		return "an xs:float from 0 to 1"
	case typeID:
		return "an xs:ID (a name without a colon, starting with a letter or _)"
	case typeVersion:
		return `"2.0"`
	case typeRole:
		return "one of " + strings.Join(voeventRoles, ", ")
	case typeDataType:
		return "one of " + strings.Join(dataTypeValues, ", ")
	case typeCoordSystem:
		return "one of " + strings.Join(coordSystemValues, ", ")
	case typeCite:
		return "one of " + strings.Join(citeValues, ", ")
	}
	return "an xs:string"
}

// valid reports whether s is a value of type t. Enumerations compare
// exactly: no case folding, no trimming.
func (t valueType) valid(s string) bool {
	switch t {
	case typeFloat:
		_, ok := xsFloat(s)
		return ok
	case typeDateTime:
		return validDateTime(s)
	case typeAnyURI:
		return validAnyURI(s)
	case typeProbability:
		num, ok := xsFloat(s)
		if !ok {
			return false
		}
		// libxml2 compares the value as a 32-bit float; NaN and the
		// infinities fail the range.
		f, _ := strconv.ParseFloat(num, 32)
		return f >= 0 && f <= 1
	case typeID:
		return isNCName(collapseSpace(s))
	case typeVersion:
		return collapseSpace(s) == "2.0"
	case typeRole:
		return contains(voeventRoles, s)
	case typeDataType:
		return contains(dataTypeValues, s)
	case typeCoordSystem:
		return contains(coordSystemValues, s)
	case typeCite:
		return contains(citeValues, s)
	}
	return true
}

func isAllXMLSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isXMLSpace(s[i]) {
			return false
		}
	}
	return true
}

// collapseSpace applies the xs:token white-space rule: trim, and turn each
// run of white space into one space.
func collapseSpace(s string) string {
	if !strings.ContainsAny(s, " \t\n\r") {
		return s
	}
	return strings.Join(strings.FieldsFunc(s, isXMLSpaceRune), " ")
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// xsFloat checks s as libxml2 checks an xs:float and returns it in a form
// strconv.ParseFloat reads ("NaN", "INF", "-INF", or the trimmed number
// with an empty exponent dropped).
func xsFloat(s string) (string, bool) {
	switch s {
	case "NaN", "INF", "-INF":
		// Only exactly these spellings, and with no white space.
		return s, true
	}
	t := strings.TrimFunc(s, isXMLSpaceRune)
	i, digits := 0, 0
	if i < len(t) && (t[i] == '+' || t[i] == '-') {
		i++
	}
	for i < len(t) && isDigit(t[i]) {
		i, digits = i+1, digits+1
	}
	if i < len(t) && t[i] == '.' {
		i++
		for i < len(t) && isDigit(t[i]) {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return "", false
	}
	mantissa := t[:i]
	if i == len(t) {
		return mantissa, true
	}
	if t[i] != 'e' && t[i] != 'E' {
		return "", false
	}
	j := i + 1
	if j < len(t) && (t[j] == '+' || t[j] == '-') {
		j++
	}
	k := j
	for k < len(t) && isDigit(t[k]) {
		k++
	}
	if k != len(t) {
		return "", false
	}
	if k == j {
		// An exponent with no digits counts as zero.
		return mantissa, true
	}
	return t, true
}

// validDateTime checks an xs:dateTime as libxml2 does:
// [-]YYYY-MM-DDThh:mm:ss[.f+][Z|(+|-)hh:mm], no surrounding white space.
func validDateTime(s string) bool {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	y0 := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	year := s[y0:i]
	if len(year) < 4 || (len(year) > 4 && year[0] == '0') || strings.Trim(year, "0") == "" {
		return false
	}
	rest := s[i:]
	// -MM-DDThh:mm:ss is 15 bytes.
	if len(rest) < 15 || rest[0] != '-' || rest[3] != '-' || rest[6] != 'T' || rest[9] != ':' || rest[12] != ':' {
		return false
	}
	two := func(k int) int {
		if !isDigit(rest[k]) || !isDigit(rest[k+1]) {
			return -1
		}
		return int(rest[k]-'0')*10 + int(rest[k+1]-'0')
	}
	month, day, hour, minute, sec := two(1), two(4), two(7), two(10), two(13)
	if month < 1 || month > 12 || day < 1 || day > daysIn(month, year) || hour < 0 || minute < 0 || sec < 0 {
		return false
	}
	rest = rest[15:]
	// The fraction is summed digit by digit in a double, as libxml2's
	// PARSE_FLOAT does, so a long run of 9s can reach 60.
	seconds := float64(sec)
	if strings.HasPrefix(rest, ".") {
		k, mult := 1, 1.0
		for k < len(rest) && isDigit(rest[k]) {
			mult /= 10
			seconds += float64(rest[k]-'0') * mult
			k++
		}
		if k == 1 {
			return false
		}
		rest = rest[k:]
	}
	if seconds >= 60 {
		return false
	}
	switch {
	case hour == 24:
		if minute != 0 || seconds != 0 {
			return false
		}
	case hour > 23 || minute > 59:
		return false
	}
	switch {
	case rest == "" || rest == "Z":
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		zh, zm := two2(rest[1:3]), two2(rest[4:6])
		return zh >= 0 && zm >= 0 && zm <= 59 && zh*60+zm <= 14*60
	}
	return false
}

func two2(s string) int {
	if !isDigit(s[0]) || !isDigit(s[1]) {
		return -1
	}
	return int(s[0]-'0')*10 + int(s[1]-'0')
}

// daysIn is the length of month in year (the year's digits as written; the
// Gregorian leap rule is applied to its absolute value).
func daysIn(month int, year string) int {
	switch month {
	case 4, 6, 9, 11:
		return 30
	case 2:
		// year mod 400 from its last digits.
		tail := year
		if len(tail) > 4 {
			tail = tail[len(tail)-4:]
		}
		y, _ := strconv.Atoi(tail)
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}

// validAnyURI checks an xs:anyURI as libxml2 does: collapse white space,
// replace each character that may not appear in a URI by "_", then parse
// the result as an RFC 3986 URI reference.
func validAnyURI(s string) bool {
	s = collapseSpace(s)
	for i := 0; i < len(s); i++ {
		if uriClass[s[i]] == 0 && s[i] != '%' && s[i] != '#' {
			// Something to replace: work on a copy.
			b := []byte(s)
			for j, c := range b {
				if c < 0x20 || c >= 0x7F || strings.IndexByte(" <>\"{}|\\^`", c) >= 0 {
					b[j] = '_'
				}
			}
			return parseURIReference(string(b))
		}
	}
	return parseURIReference(s)
}

// URI character classes (RFC 3986 section 2) for uriChars, on the ASCII that
// remains after validAnyURI's replacement.
const (
	uriPlain   = 1 << iota // unreserved and sub-delims
	uriColon               // :
	uriAt                  // @
	uriSlash               // /
	uriQuery               // ?
	uriBracket             // [ and ]

	uriPchar    = uriPlain | uriColon | uriAt
	uriPath     = uriPchar | uriSlash
	uriQueryAll = uriPath | uriQuery
)

var uriClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		switch {
		case 'a' <= b|0x20 && b|0x20 <= 'z', isDigit(b), strings.IndexByte("-._~!$&'()*+,;=", b) >= 0:
			t[c] = uriPlain
		case b == ':':
			t[c] = uriColon
		case b == '@':
			t[c] = uriAt
		case b == '/':
			t[c] = uriSlash
		case b == '?':
			t[c] = uriQuery
		case b == '[', b == ']':
			t[c] = uriBracket
		}
	}
	return t
}()

// uriChars returns how many leading bytes of s are percent-escapes or
// characters in the classes of mask. ok is false if a "%" is not followed
// by two hex digits.
func uriChars(s string, mask uint8) (n int, ok bool) {
	for n < len(s) {
		c := s[n]
		switch {
		case uriClass[c]&mask != 0:
			n++
		case c == '%':
			if n+2 >= len(s) || !isHex(s[n+1]) || !isHex(s[n+2]) {
				return n, false
			}
			n += 3
		default:
			return n, true
		}
	}
	return n, true
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f' }

// parseURIReference reports whether s is a URI-reference (RFC 3986 section
// 4.1): a URI with a scheme, or else a relative reference.
func parseURIReference(s string) bool {
	if i := schemeEnd(s); i > 0 {
		if parseHierRest(s[i+1:], true) {
			return true
		}
	}
	return parseHierRest(s, false)
}

// schemeEnd returns the index of the ":" ending a valid scheme, or -1.
func schemeEnd(s string) int {
	if s == "" || !('a' <= s[0]|0x20 && s[0]|0x20 <= 'z') {
		return -1
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ':':
			return i
		case 'a' <= c|0x20 && c|0x20 <= 'z' || isDigit(c) || c == '+' || c == '-' || c == '.':
		default:
			return -1
		}
	}
	return -1
}

// parseHierRest parses what follows the scheme (hier-part, absolute) or a
// whole relative-ref, then the optional query and fragment.
func parseHierRest(s string, absolute bool) bool {
	if strings.HasPrefix(s, "//") {
		n, ok := parseAuthority(s[2:])
		if !ok {
			return false
		}
		s = s[2+n:]
		// path-abempty
		n, ok = uriChars(s, uriPath)
		if !ok || (n > 0 && s[0] != '/') {
			return false
		}
		s = s[n:]
	} else {
		if !absolute {
			// path-noscheme: no ":" in the first segment.
			first, ok := uriChars(s, uriPlain|uriAt)
			if !ok {
				return false
			}
			if first < len(s) && s[first] == ':' {
				return false
			}
		}
		n, ok := uriChars(s, uriPath)
		if !ok {
			return false
		}
		s = s[n:]
	}
	if strings.HasPrefix(s, "?") {
		n, ok := uriChars(s[1:], uriQueryAll)
		if !ok {
			return false
		}
		s = s[1+n:]
	}
	if strings.HasPrefix(s, "#") {
		// libxml2 also takes [ and ] in a fragment (for XPointer).
		n, ok := uriChars(s[1:], uriQueryAll|uriBracket)
		if !ok {
			return false
		}
		s = s[1+n:]
	}
	return s == ""
}

// parseAuthority parses [userinfo "@"] host [":" port] and returns its length.
func parseAuthority(s string) (int, bool) {
	i := 0
	if n, ok := uriChars(s, uriPlain|uriColon); ok && n < len(s) && s[n] == '@' {
		i = n + 1
	}
	if i < len(s) && s[i] == '[' {
		j := strings.IndexByte(s[i:], ']')
		if j < 0 {
			return 0, false
		}
		i += j + 1
	} else {
		n, ok := uriChars(s[i:], uriPlain)
		if !ok {
			return 0, false
		}
		i += n
	}
	if i < len(s) && s[i] == ':' {
		j := i + 1
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if j == i+1 || j-i-1 > 9 {
			return 0, false
		}
		i = j
	}
	return i, true
}

// isNCName reports whether s is an XML name without a colon.
func isNCName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (r == '-' || r == '.' || unicode.IsDigit(r) || unicode.In(r, unicode.Mn, unicode.Mc, unicode.Nd, unicode.Lm) || r == 0xB7):
		default:
			return false
		}
	}
	return utf8.ValidString(s)
}

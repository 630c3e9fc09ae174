// ivoid.go parses IVOA identifiers (IVOIDs) exactly as Comet does
// (comet/utility/voevent.py, comet-behaviour.md section 8): a regular
// expression matched at the start of the string and anchored with Python's
// `$`, then checks on the resource key.
//
//	ivo://  AUTH  RSRC?  "#"?  LOCAL  END
//	AUTH  = [A-Za-z0-9] W{2,}          W = \w or one of - . ~ * ' ( )
//	RSRC  = "/" (W or "/")*
//	LOCAL = (\w or one of - . ~ * ' ( ) + = / % ! $ & , ; : @ ?)*
//	END   = end of string, or a single "\n" then end of string
//
// Invariant: \w is Python's Unicode \w, [\p{L}\p{N}_] here. Every quantifier
// is greedy and, as the matcher below relies on, backtracking can never turn
// a failed greedy match into a success (W and "/" are all LOCAL characters,
// and only an immediate "#" is skipped), so the greedy match is the match
// Python returns.
package main

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Reasons an IVOID is refused.
var (
	errIVOIDSyntax   = errors.New("does not match the IVOID grammar")
	errIVOIDResource = errors.New("resource key contains //, /./ or /../, or ends with /")
)

// isWordRune is Python's Unicode \w.
func isWordRune(r rune) bool {
	if r < utf8.RuneSelf {
		return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_'
	}
	return unicode.IsLetter(r) || unicode.IsNumber(r)
}

// isUnreservedRune is W: \w and the unreserved punctuation of IVOA
// Identifiers 2.0 as Comet encodes it.
func isUnreservedRune(r rune) bool {
	return isWordRune(r) || strings.ContainsRune("-.~*'()", r)
}

// isLocalRune is a character allowed in the local part.
func isLocalRune(r rune) bool {
	return isUnreservedRune(r) || strings.ContainsRune("+=/%!$&,;:@?", r)
}

// scan returns the length of the longest prefix of s whose runes all satisfy ok.
func scan(s string, ok func(rune) bool) int {
	for i, r := range s {
		if !ok(r) {
			return i
		}
	}
	return len(s)
}

// parseIVOID splits an IVOID into its authority, its resource key (with the
// leading "/", empty if absent) and its local part (after the optional "#",
// possibly empty), or says why it is not one.
func parseIVOID(s string) (authority, resource, local string, err error) {
	rest, ok := strings.CutPrefix(s, "ivo://")
	if !ok {
		return "", "", "", errIVOIDSyntax
	}
	// AUTH: one ASCII letter or digit, then at least two more W.
	if rest == "" || !('a' <= rest[0]|0x20 && rest[0]|0x20 <= 'z' || '0' <= rest[0] && rest[0] <= '9') {
		return "", "", "", errIVOIDSyntax
	}
	n := 1 + scan(rest[1:], isUnreservedRune)
	if utf8.RuneCountInString(rest[1:n]) < 2 {
		return "", "", "", errIVOIDSyntax
	}
	authority, rest = rest[:n], rest[n:]
	// RSRC: "/" then W or "/", greedily.
	if strings.HasPrefix(rest, "/") {
		n = 1 + scan(rest[1:], func(r rune) bool { return r == '/' || isUnreservedRune(r) })
		resource, rest = rest[:n], rest[n:]
	}
	rest = strings.TrimPrefix(rest, "#")
	n = scan(rest, isLocalRune)
	local, rest = rest[:n], rest[n:]
	if rest != "" && rest != "\n" {
		return "", "", "", errIVOIDSyntax
	}
	if strings.Contains(resource, "//") || strings.Contains(resource, "/../") ||
		strings.Contains(resource, "/./") || strings.HasSuffix(resource, "/") {
		return "", "", "", errIVOIDResource
	}
	return authority, resource, local, nil
}

// validIVOID reports whether s is an IVOID; the local part may be empty
// (this is the check on --local-ivo).
func validIVOID(s string) bool {
	_, _, _, err := parseIVOID(s)
	return err == nil
}

package main

import (
	"strings"
	"testing"
)

// ivoidCase is one row of comet-behaviour.md section 8. For a valid IVOID
// auth, rsrc and local are the expected parts ("*" means not checked).
type ivoidCase struct {
	in                string
	ok                bool
	auth, rsrc, local string
}

func ivoidCases() []ivoidCase {
	cases := []ivoidCase{
		{"ivo://authorityID/resourceKey#local_ID", true, "authorityID", "/resourceKey", "local_ID"},
		{"ivo://authorityID/rsrc/with/slashes#local/ID/with/slashes", true, "authorityID", "/rsrc/with/slashes", "local/ID/with/slashes"},
		{"ivo://authorityID/resourceKey#", true, "authorityID", "/resourceKey", ""},
		{"ivo://authorityID#local_ID", true, "authorityID", "", "local_ID"},
		{"ivo://authorityID#", true, "authorityID", "", ""},
		{"ivo://authorityID/resourceKey", true, "authorityID", "/resourceKey", ""},
		{"ivo://#localID", false, "", "", ""},
		{"ivo:///resourceKey#", false, "", "", ""},
		{"ivo://", false, "", "", ""},
		{"ivo://au/rsrc#local", false, "", "", ""},
		{"ivo://_auth/rsrc#local", false, "", "", ""},
		{"ivo://1auth/rsrc#local", true, "1auth", "/rsrc", "local"},
		{"ivo://nasa.heasarc/rsrc#local", true, "nasa.heasarc", "/rsrc", "local"},
		{"ivo://n_1a.alph-0.02/rsrc#local", true, "n_1a.alph-0.02", "/rsrc", "local"},
		{"ivo://123/rsrc#local", true, "123", "/rsrc", "local"},
		{"ivo://a2/rsrc#local", false, "", "", ""},
		{"ivo://_temporary.id/rsrc#local", false, "", "", ""},
		{"ivo://DAT%41/rsrc#local", false, "", "", ""},
		{"ivo://de!uni-hd!physics#ari/rsrc#local", false, "", "", ""},
		{"ivo://auth/rsrc#local", true, "auth", "/rsrc", "local"},
		{"ivo://auth/rsrc/rsrc#local", true, "auth", "/rsrc/rsrc", "local"},
		{"ivo://auth/rs#local", true, "auth", "/rs", "local"},
		{"ivo://auth/_rsrc#local", true, "auth", "/_rsrc", "local"},
		{"ivo://auth/1rsrc#local", true, "auth", "/1rsrc", "local"},
		{"ivo://auth/rsrc/#local", false, "", "", ""},
		{"ivo://auth#local", true, "auth", "", "local"},
		{"ivo://auth/reskey#local", true, "auth", "/reskey", "local"},
		{"ivo://auth/user/STScI_1/1a-7z.u#local", true, "auth", "/user/STScI_1/1a-7z.u", "local"},
		{"ivo://auth/#local", false, "", "", ""},
		{"ivo://auth/data/#local", false, "", "", ""},
		{"ivo://auth/data//other#local", false, "", "", ""},
		{"ivo://auth/data/c/../d#local", false, "", "", ""},
		{"ivo://auth/data/./d#local", false, "", "", ""},
		{"ivo://auth/data!g-vo.org#local", false, "", "", ""},
		{"ivo://auth/user/M%fcller#local", false, "", "", ""},
		{"ivo://authreskey#local", true, "authreskey", "", "local"},
		{"ivo://comet/test", true, "comet", "/test", ""},
		{"invalid", false, "", "", ""},
		{"bad_ivo", false, "", "", ""},
		{"ivo://x/test#1", false, "", "", ""},
		{"ivo://auth/rsrc?x", true, "auth", "/rsrc", "?x"},
		{"ivo://auth:8080/x", true, "auth", "", ":8080/x"},
		{"ivo://auth:8080/x#y", false, "", "", ""},
		{"ivo://auth/rsrc#local\n", true, "auth", "/rsrc", "local"},
		{"ivo://auth/rsrc#local\n\n", false, "", "", ""},
		{"ivo://auth/rsrc#local\r", false, "", "", ""},
		{"ivo://auth/rsrc#local ", false, "", "", ""},
		{" ivo://auth/rsrc#local", false, "", "", ""},
		{"ivo://auth/data/..#x", true, "auth", "/data/..", "x"},
		{"ivo://autĥ/rsrc#x", true, "autĥ", "/rsrc", "x"},
		{"ivo://auth/rés#x", true, "auth", "/rés", "x"},
		{"ivo://auth/re\u0301s#x", false, "", "", ""},
		{"ivo://auth/rsrc#\u200b", false, "", "", ""},
		{"ivo://auth/rsrc#٣", true, "auth", "/rsrc", "٣"},
		{"IVO://auth/rsrc#x", false, "", "", ""},
		{"Ivo://auth/rsrc#l", false, "", "", ""},
		{"ivo://auth/r%20s#x", false, "", "", ""},
		{"ivo://auth/r s#l", false, "", "", ""},
		{"ivo://auth/rsrc#l%zz", true, "auth", "/rsrc", "l%zz"},
		{"ivo://a.b/c;d", true, "a.b", "/c", ";d"},
		{"ivo://auth/rsrc#l\\", false, "", "", ""},
		{"ivo://auth/rsrc#!$&'()*+,;=", true, "auth", "/rsrc", "!$&'()*+,;="},
		{"ivo://auth/*star*#l", true, "auth", "/*star*", "l"},
		{"ivo://voevent.4pisky.org/ASASSN#2019-04-10.84", true, "voevent.4pisky.org", "/ASASSN", "2019-04-10.84"},
	}
	// Authority "auth" with any unreserved character or digit added is fine.
	for _, c := range "-_.~*'()0Z" {
		a := "auth" + string(c)
		cases = append(cases, ivoidCase{"ivo://" + a + "/rsrc#local", true, a, "/rsrc", "local"})
		a = "au" + string(c) + "th"
		cases = append(cases, ivoidCase{"ivo://" + a + "/rsrc#local", true, a, "/rsrc", "local"})
	}
	// Reserved or disallowed characters, before or after the authority.
	for _, c := range "?;:@!&$,<>#%\"\\{}|^[]+=" {
		cases = append(cases,
			ivoidCase{"ivo://" + string(c) + "auth/rsrc#local", false, "", "", ""},
			ivoidCase{"ivo://auth" + string(c) + "/rsrc#local", false, "", "", ""})
	}
	// A resource key may start or end with any unreserved character.
	for _, c := range "-_.~*'()0Z" {
		r := "/" + string(c) + "rsrc" + string(c)
		cases = append(cases, ivoidCase{"ivo://auth" + r + "#local", true, "auth", r, "local"})
	}
	// Reserved or disallowed characters in the resource key.
	for _, c := range "?;:@!&$,<>#%\"\\{}|^[]+=" {
		cases = append(cases,
			ivoidCase{"ivo://auth/" + string(c) + "rsrc#local", false, "", "", ""},
			ivoidCase{"ivo://auth/rsrc" + string(c) + "#local", false, "", "", ""})
	}
	// Every local-part character is fine; #, [ and ] are not.
	for _, c := range "aZ0-._~%!$&'()*+,;=:@/?" {
		l := "lo" + string(c) + "cal"
		cases = append(cases, ivoidCase{"ivo://auth/rsrc#" + l, true, "auth", "/rsrc", l})
	}
	for _, c := range "#[]" {
		cases = append(cases, ivoidCase{"ivo://auth/rsrc#lo" + string(c) + "cal", false, "", "", ""})
	}
	return cases
}

func TestParseIVOID(t *testing.T) {
	for _, tc := range ivoidCases() {
		t.Run(strings.ReplaceAll(tc.in, "/", "|"), func(t *testing.T) {
			auth, rsrc, local, err := parseIVOID(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("parseIVOID(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if !tc.ok {
				return
			}
			if auth != tc.auth || rsrc != tc.rsrc || local != tc.local {
				t.Errorf("parseIVOID(%q) = %q %q %q, want %q %q %q", tc.in, auth, rsrc, local, tc.auth, tc.rsrc, tc.local)
			}
			if got := validIVOID(tc.in); got != tc.ok {
				t.Errorf("validIVOID(%q) = %v", tc.in, got)
			}
		})
	}
}

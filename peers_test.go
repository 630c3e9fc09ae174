package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	peerTestPinA = "sha256:" + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	peerTestPinB = "sha256:" + "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
	peerTestFprA = "0123456789ABCDEF0123456789ABCDEF01234567"
	peerTestFprB = "89ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF01234567"
)

func TestPeersParse(t *testing.T) {
	src := `# the peers of this broker
SHA256:0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF alice allow=author ivorn-prefix=ivo://alice.example ivorn-prefix=ivo://alice.example/b/  # trailing comment
` + peerTestPinB + ` bob allow=subscriber filter="//Param[@name='x'] | //Why" filter=//What durable
pgp:` + strings.ToLower(peerTestFprA) + ` alice-key ivorn-prefix=ivo://alice.example
	pgp:` + peerTestFprB + "\tcarol.key@x  \r\n" + `
` + peerTestPinA[:7] + strings.Repeat("1", 64) + ` quoted filter="//Param[@value=\"#\" or @x='\\']" # comment
`
	pt, err := parsePeers([]byte(src), "peers.conf")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(pt.identities()); n != 5 {
		t.Fatalf("%d identities", n)
	}
	a := pt.lookupPin(strings.ToUpper(peerTestPinA[7:]))
	if a != nil {
		t.Fatal("a pin without sha256: must not match")
	}
	a = pt.lookupPin("SHA256:" + strings.ToUpper(peerTestPinA[7:]))
	if a == nil || a.name != "alice" || !a.allowAuthor || a.allowSubscriber || a.pin != peerTestPinA || a.durable {
		t.Fatalf("alice: %+v", a)
	}
	if !reflect.DeepEqual(a.prefixes, []string{"ivo://alice.example", "ivo://alice.example/b/"}) {
		t.Errorf("prefixes %q", a.prefixes)
	}
	b := pt.lookupName("bob")
	if b == nil || b.allowAuthor || !b.allowSubscriber || !b.durable || len(b.filters) != 2 ||
		!reflect.DeepEqual(b.filterText, []string{"//Param[@name='x'] | //Why", "//What"}) {
		t.Fatalf("bob: %+v", b)
	}
	k := pt.lookupPGP(strings.ToLower(peerTestFprA))
	if k == nil || k.name != "alice-key" || k.pgp != peerTestFprA || k.key() != "pgp:"+peerTestFprA {
		t.Fatalf("alice-key: %+v", k)
	}
	if c := pt.lookupKey("PGP:" + strings.ToLower(peerTestFprB)); c == nil || c.name != "carol.key@x" || !c.allowAuthor || !c.allowSubscriber {
		t.Fatalf("carol: %+v", c)
	}
	if q := pt.lookupName("quoted"); q == nil || q.filterText[0] != `//Param[@value="#" or @x='\']` {
		t.Fatalf("quoted: %+v", q)
	}
	// Round trip through the formatter.
	again, err := parsePeers(pt.format(), "formatted")
	if err != nil {
		t.Fatalf("%v\n%s", err, pt.format())
	}
	if r, c := pt.diff(again); len(r)+len(c) != 0 || len(again.identities()) != 5 {
		t.Errorf("round trip differs: %v %v", r, c)
	}
	// A nil table is empty.
	var none *peerTable
	if none.lookupPin(peerTestPinA) != nil || none.lookupPGP(peerTestFprA) != nil || none.identities() != nil {
		t.Error("nil table")
	}
	if ok, _ := none.signerRule("ivo://x/y#1", false, ""); !ok {
		t.Error("nil table refuses")
	}
}

func TestPeersErrors(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"short pin", "sha256:abcd x", "a pin is sha256: and 64 hex digits"},
		{"non-hex pin", "sha256:" + strings.Repeat("g", 64) + " x", "64 hex digits"},
		{"pgp length", "pgp:" + strings.Repeat("a", 39) + " x", "40 or 64 hex digits"},
		{"unknown kind", "md5:abc x", "want sha256:HEX or pgp:HEX"},
		{"no name", peerTestPinA, "want IDENTITY NAME"},
		{"bad name", peerTestPinA + " -x", "name \"-x\""},
		{"name with =", peerTestPinA + " a=b", "name \"a=b\""},
		{"unknown option", peerTestPinA + " x bogus=1", "unknown option \"bogus\""},
		{"bad role", peerTestPinA + " x allow=admin", "unknown role \"admin\""},
		{"empty allow", peerTestPinA + " x allow=", "allow= wants"},
		{"allow twice", peerTestPinA + " x allow=author allow=subscriber", "allow= given twice"},
		{"bad prefix", peerTestPinA + " x ivorn-prefix=http://a", "want ivo://"},
		{"prefix no authority", peerTestPinA + " x ivorn-prefix=ivo:///x", "no authority"},
		{"prefix twice", peerTestPinA + " x ivorn-prefix=ivo://a ivorn-prefix=ivo://a", "given twice"},
		{"bad filter", peerTestPinA + " x filter=//[", "filter=\"//[\""},
		{"empty filter", peerTestPinA + " x filter=", "filter= is empty"},
		{"durable value", peerTestPinA + " x durable=yes", "durable takes no value"},
		{"durable twice", peerTestPinA + " x durable durable", "durable given twice"},
		{"unterminated", peerTestPinA + " x filter=\"//a", "unterminated quote"},
		{"pgp allow", "pgp:" + peerTestFprA + " k allow=author", "not to pgp: keys"},
		{"pgp filter", "pgp:" + peerTestFprA + " k filter=//a", "not to pgp: keys"},
		{"duplicate pin", peerTestPinA + " x\n" + strings.ToUpper(peerTestPinA) + " y", "already listed on line 2"},
		{"duplicate fpr", "pgp:" + peerTestFprA + " x\npgp:" + strings.ToLower(peerTestFprA) + " y", "already listed on line 2"},
		{"duplicate name", peerTestPinA + " x\n" + peerTestPinB + " x", "name x already used on line 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePeers([]byte("# header\n"+tc.src+"\n"), "p.conf")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			line := "p.conf:2:"
			if strings.Contains(tc.src, "\n") {
				line = "p.conf:3:"
			}
			if !strings.Contains(err.Error(), line) {
				t.Fatalf("err %v does not name %s", err, line)
			}
		})
	}
	dir := t.TempDir()
	if _, err := parsePeersFile(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, peersMaxFileSize+1), 0o644)
	if _, err := parsePeersFile(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
	good := filepath.Join(dir, "good")
	os.WriteFile(good, []byte("\xef\xbb\xbf"+peerTestPinA+" a\n"), 0o644)
	if pt, err := parsePeersFile(good); err != nil || pt.lookupName("a") == nil {
		t.Errorf("good file: %v", err)
	}
}

func TestPeersIvornPrefix(t *testing.T) {
	cases := []struct {
		prefix, ivorn string
		want          bool
	}{
		{"ivo://alice.example", "ivo://alice.example/x#1", true},
		{"ivo://alice.example", "ivo://alice.example#1", true},
		{"ivo://alice.example", "ivo://alice.example", true},
		{"ivo://alice.example", "ivo://alice.example.evil/x#1", false},
		{"ivo://alice.example", "ivo://alice.exampl", false},
		{"ivo://alice.example", "ivo://ALICE.Example/x#1", true},
		{"ivo://alice.example/", "ivo://alice.example/x#1", true},
		{"ivo://alice.example/a", "ivo://alice.example/ab#1", false},
		{"ivo://alice.example/a", "ivo://alice.example/a/b#1", true},
		{"ivo://alice.example/a", "ivo://alice.example/a#1", true},
		{"ivo://alice.example/a/", "ivo://alice.example/ab#1", false},
		{"ivo://alice.example/a#", "ivo://alice.example/a#x", true},
		{"ivo://alice.example", "ivo://alice.example?q#1", true},
	}
	for _, tc := range cases {
		if got := ivornPrefixAllows([]string{tc.prefix}, tc.ivorn); got != tc.want {
			t.Errorf("%s admits %s: %v, want %v", tc.prefix, tc.ivorn, got, tc.want)
		}
	}
	if ivornPrefixAllows(nil, "ivo://a/b#1") {
		t.Error("no prefixes admit nothing")
	}
	if !ivornPrefixAllows([]string{"ivo://b", "ivo://a"}, "ivo://a/b#1") {
		t.Error("any prefix")
	}
}

func TestPeersAuthorAllows(t *testing.T) {
	pt, err := parsePeers([]byte(peerTestPinA+" alice ivorn-prefix=ivo://alice.example\n"+peerTestPinB+" bob allow=subscriber\n"), "p")
	if err != nil {
		t.Fatal(err)
	}
	alice, bob := pt.lookupName("alice"), pt.lookupName("bob")
	if ok, _ := alice.authorAllows("ivo://alice.example/x#1"); !ok {
		t.Error("alice under her prefix")
	}
	if ok, why := alice.authorAllows("ivo://alice.example.evil/x#1"); ok || !strings.Contains(why, "peer alice may submit only under ivo://alice.example") {
		t.Errorf("alice elsewhere: %v %q", ok, why)
	}
	if ok, why := bob.authorAllows("ivo://b/x#1"); ok || !strings.Contains(why, "peer bob may not submit") {
		t.Errorf("bob: %v %q", ok, why)
	}
	var anon *peerIdentity
	if ok, _ := anon.authorAllows("ivo://x/y#1"); !ok || !anon.subscriberAllowed() {
		t.Error("anonymous is not restricted here")
	}
	if !alice.subscriberAllowed() || !bob.subscriberAllowed() {
		t.Error("subscriberAllowed")
	}
	if !alice.allows("author") || !alice.allows("subscriber") || bob.allows("author") || !bob.allows("subscriber") || !anon.allows("author") || alice.allows("admin") {
		t.Error("allows")
	}
}

func TestPeersSignerRule(t *testing.T) {
	src := "pgp:" + peerTestFprA + " alice-key ivorn-prefix=ivo://alice.example\n" +
		"pgp:" + peerTestFprB + " shared-key ivorn-prefix=ivo://shared.example\n" +
		"pgp:" + strings.Repeat("C", 40) + " shared-too ivorn-prefix=ivo://shared.example\n" +
		"pgp:" + strings.Repeat("D", 40) + " free-key\n"
	pt, err := parsePeers([]byte(src), "p")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, ivorn string
		valid       bool
		fpr, want   string // want: "" for ok, else a substring of the reason
	}{
		{"owner signs own", "ivo://alice.example/x#1", true, strings.ToLower(peerTestFprA), ""},
		{"owner signs elsewhere", "ivo://other.example/x#1", true, peerTestFprA, "key alice-key may sign only under ivo://alice.example"},
		{"unsigned under claim", "ivo://alice.example/x#1", false, "", "claimed by key alice-key and is unsigned or badly signed"},
		{"bad sig under claim", "ivo://alice.example/x#1", false, peerTestFprA, "unsigned or badly signed"},
		{"other key under claim", "ivo://alice.example/x#1", true, strings.Repeat("D", 40), "signed by another key"},
		{"unknown key under claim", "ivo://alice.example/x#1", true, strings.Repeat("E", 40), "signed by another key"},
		{"case does not escape", "ivo://ALICE.example/x#1", false, "", "claimed by key alice-key"},
		{"either of two", "ivo://shared.example/x#1", true, strings.Repeat("c", 40), ""},
		{"one of two", "ivo://shared.example/x#1", true, peerTestFprB, ""},
		{"neither of two", "ivo://shared.example/x#1", false, "", "claimed by key shared-key, shared-too"},
		{"unclaimed unsigned", "ivo://nobody.example/x#1", false, "", ""},
		{"unclaimed free key", "ivo://nobody.example/x#1", true, strings.Repeat("D", 40), ""},
		{"boundary", "ivo://alice.example.evil/x#1", false, "", ""},
	}
	// A subkey signed; the file lists the primary key.
	if ok, why := pt.signerRule("ivo://alice.example/x#1", true, strings.Repeat("9", 40), peerTestFprA); !ok {
		t.Errorf("primary fingerprint given as well: %s", why)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := pt.signerRule(tc.ivorn, tc.valid, tc.fpr)
			if tc.want == "" {
				if !ok {
					t.Fatalf("refused: %s", why)
				}
				return
			}
			if ok || !strings.Contains(why, tc.want) {
				t.Fatalf("got %v %q, want refusal with %q", ok, why, tc.want)
			}
		})
	}
}

func TestPeersDiff(t *testing.T) {
	old, err := parsePeers([]byte(peerTestPinA+" a\n"+peerTestPinB+" b filter=//x\npgp:"+peerTestFprA+" k\n"), "old")
	if err != nil {
		t.Fatal(err)
	}
	next, err := parsePeers([]byte(peerTestPinB+" b filter=//y\npgp:"+peerTestFprA+" k\n"), "new")
	if err != nil {
		t.Fatal(err)
	}
	removed, changed := old.diff(next)
	if len(removed) != 1 || removed[0].name != "a" || len(changed) != 1 || changed[0].filterText[0] != "//y" {
		t.Fatalf("removed %v changed %v", removed, changed)
	}
	if r, c := next.diff(next); len(r)+len(c) != 0 {
		t.Error("a table differs from itself")
	}
	var empty *peerTable
	if r, _ := old.diff(empty); len(r) != 3 {
		t.Errorf("all removed: %v", r)
	}
}

func TestPeersFilterAllows(t *testing.T) {
	pt, err := parsePeers([]byte(peerTestPinA+` a filter="//Param[@name='x']" filter=//Why`+"\n"+peerTestPinB+" b\n"), "p")
	if err != nil {
		t.Fatal(err)
	}
	doc := func(s string) *document {
		d, err := parseDocument([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b := pt.lookupName("a"), pt.lookupName("b")
	withX := doc(`<VOEvent><What><Param name="x"/></What></VOEvent>`)
	withWhy := doc(`<VOEvent><Why/></VOEvent>`)
	neither := doc(`<VOEvent><What/></VOEvent>`)
	if !a.filterAllows(withX) || !a.filterAllows(withWhy) || a.filterAllows(neither) {
		t.Error("a's filters: any of them selects")
	}
	if !b.filterAllows(neither) || !(*peerIdentity)(nil).filterAllows(neither) {
		t.Error("no filters admit everything")
	}
}

// FuzzPeersFile: the parser never panics, and a table that parses formats
// to a file that parses to the same table.
func FuzzPeersFile(f *testing.F) {
	f.Add([]byte(peerTestPinA + " alice allow=author ivorn-prefix=ivo://alice.example # c\n"))
	f.Add([]byte("pgp:" + peerTestFprA + " k ivorn-prefix=ivo://a/b/\n" + peerTestPinB + ` b filter="//a[@x=\"#\"] | //b" durable`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pt, err := parsePeers(data, "fuzz")
		if err != nil {
			return
		}
		out := pt.format()
		again, err := parsePeers(out, "formatted")
		if err != nil {
			t.Fatalf("formatted table does not parse: %v\n%q", err, out)
		}
		if len(again.identities()) != len(pt.identities()) {
			t.Fatalf("%d identities, then %d", len(pt.identities()), len(again.identities()))
		}
		if r, c := pt.diff(again); len(r)+len(c) != 0 {
			t.Fatalf("round trip differs: removed %v changed %v\n%q", r, c, out)
		}
		if !reflect.DeepEqual(again.format(), out) {
			t.Fatalf("format not stable")
		}
	})
}

package main

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const pgpVectors = "testdata/vectors/pgp"

// vectorNow is the clock the vector tests use: after every signature in the
// vectors was made, long before the 2090 "future" one.
var vectorNow = time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)

func mustKeyring(tb testing.TB, names ...string) *keyring {
	tb.Helper()
	var kr *keyring
	for _, n := range names {
		k, err := loadKeyringFile(filepath.Join(pgpVectors, "keys", n))
		if err != nil {
			tb.Fatal(err)
		}
		if kr == nil {
			kr = k
		} else {
			kr.merge(k)
		}
	}
	return kr
}

func mustSecretKey(tb testing.TB, name string) *secretKey {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(pgpVectors, "keys", "secret", name+".TEST-ONLY.sec.asc"))
	if err != nil {
		tb.Fatal(err)
	}
	sk, err := parseSecretKey(data, vectorNow)
	if err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return sk
}

type vectorRow struct{ file, verdict, signer, reason string }

func readVectorRows(t *testing.T) []vectorRow {
	t.Helper()
	f, err := os.Open(filepath.Join(pgpVectors, "expected.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var rows []vectorRow
	sc := bufio.NewScanner(f)
	for first := true; sc.Scan(); first = false {
		if first {
			continue
		}
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 4 {
			t.Fatalf("expected.tsv: bad row %q", sc.Text())
		}
		rows = append(rows, vectorRow{fields[0], fields[1], fields[2], fields[3]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestVerifyVectors runs every row of the public vectors against both the
// binary and the armored keyring.
func TestVerifyVectors(t *testing.T) {
	rows := readVectorRows(t)
	if len(rows) != 60 {
		t.Errorf("expected.tsv has %d rows, want 60", len(rows))
	}
	for _, ring := range []string{"keyring.pub.gpg", "keyring.pub.asc"} {
		kr := mustKeyring(t, ring)
		agree := 0
		for _, row := range rows {
			t.Run(ring+"/"+row.file, func(t *testing.T) {
				raw, err := os.ReadFile(filepath.Join(pgpVectors, row.file))
				if err != nil {
					t.Fatal(err)
				}
				got := verifyEvent(raw, kr, vectorNow)
				signer := got.signer
				if signer == "" {
					signer = "-"
				}
				if got.verdict != row.verdict || signer != row.signer {
					t.Errorf("got %s %s (%s), want %s %s (%s)", got.verdict, signer, got.reason, row.verdict, row.signer, row.reason)
					return
				}
				if got.verdict == verdictValid && (got.userID == "" || got.reason != "") {
					t.Errorf("valid result with user ID %q and reason %q", got.userID, got.reason)
				}
				if got.verdict != verdictValid && got.reason == "" {
					t.Errorf("verdict %s without a reason", got.verdict)
				}
				agree++
			})
		}
		t.Logf("%s: %d/%d rows agree", ring, agree, len(rows))
	}
}

// TestVerifyUnknownWithoutKey checks that each signing key alone verifies
// its own vectors and calls the others unknown.
func TestVerifyUnknownWithoutKey(t *testing.T) {
	kr := mustKeyring(t, "ed25519.pub.asc")
	tests := []struct{ file, want string }{
		{"signed/ed25519-sha512-event3.xml", verdictValid},
		{"signed/rsa2048-sha256-event1.xml", verdictUnknownKey},
		{"signed/subkey-ed25519-sha256-event1.xml", verdictUnknownKey},
		{"events/event1.xml", verdictUnsigned},
	}
	outsider := mustKeyring(t, "not-in-keyring/outsider.pub.gpg")
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(pgpVectors, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if got := verifyEvent(raw, kr, vectorNow); got.verdict != tc.want {
				t.Errorf("got %s (%s), want %s", got.verdict, got.reason, tc.want)
			}
		})
	}
	raw, err := os.ReadFile(filepath.Join(pgpVectors, "negative/unknown-key.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := verifyEvent(raw, outsider, vectorNow); got.verdict != verdictValid {
		t.Errorf("unknown-key.xml with the outsider key: got %s (%s), want valid", got.verdict, got.reason)
	}
}

// TestKeyringFiles loads every public key file, binary and armored, and
// checks fingerprints, user IDs and the subkey's binding.
func TestKeyringFiles(t *testing.T) {
	tests := []struct {
		name    string
		fpr     string // primary key
		subkeys int
		signing string // fingerprint that signs, if not the primary
	}{
		{"rsa2048", "A42ACDC20B64397C03792594ED5DF79A3AC89924", 0, ""},
		{"rsa4096", "AC965189B3310D2E0BE41CE9D410978D4FF387EF", 0, ""},
		{"ed25519", "B9C0E4F61CC4F0727A3410BBA99AC06EA738F249", 0, ""},
		{"p256", "9A3B23AAACF6059D1C38AF1CB887A1D888BD5F97", 0, ""},
		{"p384", "B5BEDE396C6F4CE6E8F6C851466FC4BDD0E6B981", 0, ""},
		{"dsa2048", "664A45C03EAE108F13685E51E58489A9C9AE22C8", 0, ""},
		{"subkey-ed25519", "17D19F8DF2379B85D47A14405C5602B2E6A95888", 1, "1E6B78931A9EB330CBD1C6BCEB0A8E399AD3F97B"},
		{"revoked", "A0953790ABBD98E7EA50455A96F748EED6DB93A0", 0, ""},
	}
	for _, tc := range tests {
		for _, ext := range []string{".pub.asc", ".pub.gpg"} {
			t.Run(tc.name+ext, func(t *testing.T) {
				kr := mustKeyring(t, tc.name+ext)
				if len(kr.entities) != 1 {
					t.Fatalf("%d keys, want 1", len(kr.entities))
				}
				e := kr.entities[0]
				if got := e.primary.fprHex(); got != tc.fpr {
					t.Errorf("fingerprint %s, want %s", got, tc.fpr)
				}
				if want := "VOEvent test key " + tc.name + " (TEST ONLY) <" + tc.name + "@test.invalid>"; e.userID != want {
					t.Errorf("user ID %q, want %q", e.userID, want)
				}
				if len(e.subkeys) != tc.subkeys {
					t.Fatalf("%d subkeys, want %d", len(e.subkeys), tc.subkeys)
				}
				if tc.signing != "" {
					sub := e.subkeys[0]
					if got := sub.key.fprHex(); got != tc.signing {
						t.Errorf("subkey %s, want %s", got, tc.signing)
					}
					if sub.binding == nil || !sub.backSigOK || sub.binding.keyFlags != flagSign {
						t.Errorf("subkey binding %v, back-signature %v", sub.binding != nil, sub.backSigOK)
					}
					if e.selfSig.keyFlags != flagCertify {
						t.Errorf("primary key flags 0x%02x, want certify only", e.selfSig.keyFlags)
					}
				}
				if (tc.name == "revoked") != (e.revocation != nil) {
					t.Errorf("revocation %v", e.revocation != nil)
				}
			})
		}
	}
	kr := mustKeyring(t, "keyring.pub.gpg")
	if len(kr.entities) != 10 || len(kr.skipped) != 0 {
		t.Errorf("keyring: %d keys (skipped %v), want 10", len(kr.entities), kr.skipped)
	}
}

// TestKeyringErrors feeds broken keyrings.
func TestKeyringErrors(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(pgpVectors, "keys", "ed25519.pub.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	asc, err := os.ReadFile(filepath.Join(pgpVectors, "keys", "ed25519.pub.asc"))
	if err != nil {
		t.Fatal(err)
	}
	badSelfSig := bytes.Clone(good)
	badSelfSig[len(badSelfSig)-5] ^= 1 // inside the self-signature's s
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-10]},
		{"not OpenPGP", []byte("hello")},
		{"bad self-signature", badSelfSig},
		{"bad armor checksum", wrongCRC(asc)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if kr, err := loadKeyring(tc.data); err == nil {
				t.Errorf("loaded %d keys, want an error", len(kr.entities))
			}
		})
	}
	// Unneeded packets (a trust packet, a marker) are skipped.
	withTrust := append(appendPacket(nil, 10, []byte("PGP")), good...)
	withTrust = append(withTrust, appendPacket(nil, 12, []byte{0, 0})...)
	if kr, err := loadKeyring(withTrust); err != nil || len(kr.entities) != 1 {
		t.Errorf("keyring with marker and trust packets: %v", err)
	}
}

// TestArmor covers checksum handling, headers and line endings.
func TestArmor(t *testing.T) {
	data := []byte("\x88\x75 some signature bytes, long enough to wrap the base64 over two lines or more")
	armored := encodeArmor("SIGNATURE", data)
	noCRC := dropCRC(armored)
	tests := []struct {
		name    string
		text    []byte
		wantErr bool
	}{
		{"as encoded", armored, false},
		{"no checksum", noCRC, false},
		{"CRLF", bytes.ReplaceAll(armored, []byte("\n"), []byte("\r\n")), false},
		{"headers", bytes.Replace(armored, []byte("-----\n\n"), []byte("-----\nVersion: x\nComment: y: z\n\n"), 1), false},
		{"surrounding text", append(append([]byte("junk\n"), armored...), "\ntrailer"...), false},
		{"wrong checksum", wrongCRC(armored), true},
		{"no END", armored[:len(armored)-30], true},
		{"wrong END", bytes.Replace(armored, []byte("END PGP SIGNATURE"), []byte("END PGP MESSAGE"), 1), true},
		{"bad base64", bytes.Replace(armored, []byte("\n\n"), []byte("\n\n!!!!\n"), 1), true},
		{"no block", []byte("nothing here"), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, _, err := decodeArmor(tc.text)
			if tc.wantErr {
				if err == nil {
					t.Errorf("decoded %q, want an error", b.data)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if b.kind != "SIGNATURE" || !bytes.Equal(b.data, data) {
				t.Errorf("got %q %q", b.kind, b.data)
			}
		})
	}
	if _, _, err := decodeArmor(tests[5].text); !errors.Is(err, errArmorCRC) {
		t.Errorf("wrong checksum: %v, want errArmorCRC", err)
	}
	if got := crc24([]byte("123456789")); got != 0x21CF02 {
		t.Errorf("crc24 = %06X, want 21CF02", got)
	}
}

// wrongCRC replaces the checksum in an armor block by a different one.
func wrongCRC(armored []byte) []byte {
	i := bytes.Index(armored, []byte("\n=")) + 2
	out := bytes.Clone(armored)
	copy(out[i:], "AAAA")
	if bytes.Equal(out, armored) {
		copy(out[i:], "BBBB")
	}
	return out
}

// dropCRC removes the checksum line, the line before the armor's END line.
func dropCRC(b []byte) []byte {
	j := bytes.Index(b, []byte("END PGP")) - 6
	i := bytes.LastIndexByte(b[:j], '\n')
	return append(bytes.Clone(b[:i]), b[j:]...)
}

// TestRootElementSpan checks the scanner that finds the signed bytes.
func TestRootElementSpan(t *testing.T) {
	tests := []struct {
		name, doc, root string
		wantErr         bool
	}{
		{"bare", `<a/>`, `<a/>`, false},
		{"declaration and comment", "<?xml version='1.0'?>\n<!-- c > -->\n<a x='1'>t</a>\n", "<a x='1'>t</a>", false},
		{"BOM", "\xEF\xBB\xBF<a></a>", "<a></a>", false},
		{"doctype with subset", `<!DOCTYPE a [ <!ENTITY e "x>"> ]><a>&e;</a>`, `<a>&e;</a>`, false},
		{"quoted >", `<a b="x>y" c='/>'><b/></a><!-- after -->`, `<a b="x>y" c='/>'><b/></a>`, false},
		{"nested same name", `<a><a><a/></a></a>`, `<a><a><a/></a></a>`, false},
		{"comment with tags", `<a><!-- </a> --></a>`, `<a><!-- </a> --></a>`, false},
		{"CDATA with tags", `<a><![CDATA[</a><b>]]></a>`, `<a><![CDATA[</a><b>]]></a>`, false},
		{"PI inside", `<a><?p </a>?></a>`, `<a><?p </a>?></a>`, false},
		{"CRLF kept", "<a>\r\n<b/>\r\n</a>\r\n", "<a>\r\n<b/>\r\n</a>", false},
		{"prefixed", `<voe:VOEvent xmlns:voe="u"><x/></voe:VOEvent>`, `<voe:VOEvent xmlns:voe="u"><x/></voe:VOEvent>`, false},
		{"empty", ``, ``, true},
		{"text first", `x<a/>`, ``, true},
		{"unclosed", `<a><b></b>`, ``, true},
		{"unterminated tag", `<a b="x>`, ``, true},
		{"unterminated comment", `<!-- <a/>`, ``, true},
		{"end tag first", `</a>`, ``, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start, end, err := rootElementSpan([]byte(tc.doc))
			if tc.wantErr {
				if err == nil {
					t.Errorf("got %q, want an error", tc.doc[start:end])
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.doc[start:end]; got != tc.root {
				t.Errorf("got %q, want %q", got, tc.root)
			}
		})
	}
}

// TestSignRoundTrip signs every event with every usable vector key and
// checks that the result verifies, names the right signer, and differs from
// the input only by the inserted comment.
func TestSignRoundTrip(t *testing.T) {
	kr := mustKeyring(t, "keyring.pub.gpg")
	keys := []struct{ name, signer string }{
		{"rsa2048", "A42ACDC20B64397C03792594ED5DF79A3AC89924"},
		{"rsa4096", "AC965189B3310D2E0BE41CE9D410978D4FF387EF"},
		{"ed25519", "B9C0E4F61CC4F0727A3410BBA99AC06EA738F249"},
		{"p256", "9A3B23AAACF6059D1C38AF1CB887A1D888BD5F97"},
		{"p384", "B5BEDE396C6F4CE6E8F6C851466FC4BDD0E6B981"},
		{"dsa2048", "664A45C03EAE108F13685E51E58489A9C9AE22C8"},
		{"subkey-ed25519", "1E6B78931A9EB330CBD1C6BCEB0A8E399AD3F97B"},
	}
	events := []string{"event1.xml", "event2.xml", "event3.xml", "transport-ack.xml"}
	for _, k := range keys {
		sk := mustSecretKey(t, k.name)
		for _, ev := range events {
			t.Run(k.name+"/"+ev, func(t *testing.T) {
				raw, err := os.ReadFile(filepath.Join(pgpVectors, "events", ev))
				if err != nil {
					t.Fatal(err)
				}
				signed, err := signEvent(raw, sk, vectorNow)
				if err != nil {
					t.Fatal(err)
				}
				got := verifyEvent(signed, kr, vectorNow.Add(time.Minute))
				if got.verdict != verdictValid || got.signer != k.signer {
					t.Fatalf("got %s %s (%s), want valid %s", got.verdict, got.signer, got.reason, k.signer)
				}
				_, end, _ := rootElementSpan(raw)
				i := bytes.Index(signed, []byte("<!--\n=====BEGIN PGP SIGNATURE=====")) // right after the root
				j := bytes.Index(signed[i:], []byte("=====\n-->")) + i + len("=====\n-->")
				if i != end || !bytes.Equal(append(bytes.Clone(signed[:i]), signed[j:]...), raw) {
					t.Errorf("signing changed bytes outside the inserted comment")
				}
				if _, err := signEvent(signed, sk, vectorNow); err == nil {
					t.Errorf("signing a signed event again: no error")
				}
			})
		}
	}
}

// TestSecretKeyRefused checks the secret keys comet sign must not use.
func TestSecretKeyRefused(t *testing.T) {
	_, sec, err := generateKey("Protected <p@example.org>", vectorNow)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := dearmorKeys(sec)
	if err != nil {
		t.Fatal(err)
	}
	p, rest, err := readPacket(bin)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseKey(p.body, true)
	if err != nil {
		t.Fatal(err)
	}
	// Set the S2K usage octet, which follows the public part, to 254.
	hdr := len(bin) - len(rest) - len(p.body)
	protected := bytes.Clone(bin)
	protected[hdr+k.bodyEnd] = 254
	pub, _, err := generateKey("Public <p@example.org>", vectorNow)
	if err != nil {
		t.Fatal(err)
	}
	expired, err := os.ReadFile(filepath.Join(pgpVectors, "keys", "secret", "expired.TEST-ONLY.sec.asc"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, data, want string
	}{
		{"passphrase", string(protected), "passphrase-protected"},
		{"public key", string(pub), "no secret key material"},
		{"expired", string(expired), "expired"},
		{"garbage", "garbage", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSecretKey([]byte(tc.data), vectorNow)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestGenerateKey checks a new key: it loads, signs and verifies.
func TestGenerateKey(t *testing.T) {
	pub, sec, err := generateKey("Alerts <alerts@example.org>", vectorNow)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := loadKeyring(pub)
	if err != nil {
		t.Fatal(err)
	}
	e := kr.entities[0]
	if e.userID != "Alerts <alerts@example.org>" || e.primary.algo != algoEdDSALegacy || e.selfSig.keyFlags != flagCertify|flagSign {
		t.Errorf("key: uid %q algo %d flags 0x%02x", e.userID, e.primary.algo, e.selfSig.keyFlags)
	}
	sk, err := parseSecretKey(sec, vectorNow)
	if err != nil {
		t.Fatal(err)
	}
	if sk.fingerprint() != e.primary.fprHex() {
		t.Errorf("secret key %s, public key %s", sk.fingerprint(), e.primary.fprHex())
	}
	signed, err := signEvent(medianEvent(t), sk, vectorNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := verifyEvent(signed, kr, vectorNow); got.verdict != verdictValid || got.userID != e.userID {
		t.Errorf("got %+v", got)
	}
}

// TestCraftedSignatures covers cases the public vectors do not: leading
// zeros in EdDSA r, unknown critical subpackets, MD5, signature expiry, a
// key that may not sign, and RFC 9580 v6 Ed25519 keys and signatures.
func TestCraftedSignatures(t *testing.T) {
	sk := mustSecretKey(t, "ed25519")
	kr := mustKeyring(t, "keyring.pub.gpg")
	raw, err := os.ReadFile(filepath.Join(pgpVectors, "events", "event1.xml"))
	if err != nil {
		t.Fatal(err)
	}
	start, end, _ := rootElementSpan(raw)
	embed := func(pkt []byte) []byte {
		armor := bytes.ReplaceAll(encodeArmor("SIGNATURE", pkt), []byte("-----"), []byte("====="))
		return append(append(append(bytes.Clone(raw[:end]), "<!--\n"...), armor...), "\n-->\n"...)
	}
	sign := func(t *testing.T, sk *secretKey, sigType, hashID byte, extra []byte) []byte {
		t.Helper()
		pkt, err := sk.signPacket(sigType, hashID, vectorNow, extra, raw[start:end])
		if err != nil {
			t.Fatal(err)
		}
		return embed(pkt)
	}

	// An EdDSA signature whose r starts with a zero byte: its MPI is short.
	var zeroR []byte
	for i := 0; i < 20000 && zeroR == nil; i++ {
		pkt, err := sk.signPacket(sigBinary, hashSHA256, vectorNow.Add(-time.Duration(i)*time.Second), nil, raw[start:end])
		if err != nil {
			t.Fatal(err)
		}
		p, _, _ := readPacket(pkt)
		if s, err := parseSignature(p.body); err == nil && len(s.mpis[0]) < 32 {
			zeroR = embed(pkt)
		}
	}
	if zeroR == nil {
		t.Fatal("no signature with a short r in 20000 tries")
	}

	critical := appendSubpacket(nil, 0x80|100, []byte{1})
	criticalNotation := appendSubpacket(nil, 0x80|20, make([]byte, 8))
	nonCritical := appendSubpacket(nil, 100, []byte{1})
	expiring := appendSubpacket(nil, 3, binary.BigEndian.AppendUint32(nil, 60))

	// A certify-only primary key signing a document itself.
	certOnly := &secretKey{key: kr.byFpr[string(mustFpr(t, "17D19F8DF2379B85D47A14405C5602B2E6A95888"))][0].key, priv: certOnlyPrimary(t)}

	v6kr, v6sk := makeV6Key(t)

	tests := []struct {
		name string
		doc  []byte
		kr   *keyring
		now  time.Time
		want string
	}{
		{"EdDSA r with leading zero", zeroR, kr, vectorNow, verdictValid},
		{"unknown critical subpacket", sign(t, sk, sigBinary, hashSHA256, critical), kr, vectorNow, verdictInvalid},
		{"critical notation", sign(t, sk, sigBinary, hashSHA256, criticalNotation), kr, vectorNow, verdictInvalid},
		{"unknown non-critical subpacket", sign(t, sk, sigBinary, hashSHA256, nonCritical), kr, vectorNow, verdictValid},
		{"MD5", sign(t, sk, sigBinary, hashMD5, nil), kr, vectorNow, verdictWeakHash},
		{"SHA-224", sign(t, sk, sigBinary, hashSHA224, nil), kr, vectorNow, verdictValid},
		{"SHA-384", sign(t, sk, sigBinary, hashSHA384, nil), kr, vectorNow, verdictValid},
		{"signature expiry not reached", sign(t, sk, sigBinary, hashSHA256, expiring), kr, vectorNow.Add(30 * time.Second), verdictValid},
		{"signature expired", sign(t, sk, sigBinary, hashSHA256, expiring), kr, vectorNow.Add(time.Hour), verdictExpired},
		{"within clock skew", sign(t, sk, sigBinary, hashSHA256, nil), kr, vectorNow.Add(-time.Minute), verdictValid},
		{"beyond clock skew", sign(t, sk, sigBinary, hashSHA256, nil), kr, vectorNow.Add(-time.Hour), verdictInvalid},
		{"certify-only primary key", sign(t, certOnly, sigBinary, hashSHA256, nil), kr, vectorNow, verdictInvalid},
		{"v6 Ed25519", v6sign(t, v6sk, raw, start, end, hashSHA512, embed), v6kr, vectorNow, verdictValid},
		{"v6 Ed25519 tampered", tamper(v6sign(t, v6sk, raw, start, end, hashSHA256, embed), start+40), v6kr, vectorNow, verdictInvalid},
		{"v6 key unknown to v4 keyring", v6sign(t, v6sk, raw, start, end, hashSHA256, embed), kr, vectorNow, verdictUnknownKey},
		{"armor with no checksum", dropCRC(sign(t, sk, sigBinary, hashSHA256, nil)), kr, vectorNow, verdictValid},
		{"comment not a signature", append(bytes.Clone(raw), "<!-- hello -->\n"...), kr, vectorNow, verdictUnsigned},
		{"element after root", append(sign(t, sk, sigBinary, hashSHA256, nil), "<b/>"...), kr, vectorNow, verdictMalformed},
		{"not a signature packet", embed(appendPacket(nil, tagUserID, []byte("x"))), kr, vectorNow, verdictMalformed},
		{"two packets", embed(append(sign1(t, sk, raw[start:end]), sign1(t, sk, raw[start:end])...)), kr, vectorNow, verdictMalformed},
		{"empty document", nil, kr, vectorNow, verdictMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := verifyEvent(tc.doc, tc.kr, tc.now)
			if got.verdict != tc.want {
				t.Errorf("got %s (%s), want %s", got.verdict, got.reason, tc.want)
			}
		})
	}
}

func sign1(t *testing.T, sk *secretKey, data []byte) []byte {
	t.Helper()
	pkt, err := sk.signPacket(sigBinary, hashSHA256, vectorNow, nil, data)
	if err != nil {
		t.Fatal(err)
	}
	return pkt
}

func tamper(doc []byte, i int) []byte {
	doc = bytes.Clone(doc)
	doc[i] ^= 0x20
	return doc
}

func mustFpr(t *testing.T, s string) []byte {
	t.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			default:
				v |= byte(c-'A') + 10
			}
		}
		b[i] = v
	}
	return b
}

// certOnlyPrimary reads the secret primary key of subkey-ed25519 (the key
// loader would pick the signing subkey instead).
func certOnlyPrimary(t *testing.T) any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(pgpVectors, "keys", "secret", "subkey-ed25519.TEST-ONLY.sec.asc"))
	if err != nil {
		t.Fatal(err)
	}
	bin, err := dearmorKeys(data)
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := readPacket(bin)
	if err != nil {
		t.Fatal(err)
	}
	k, err := parseKey(p.body, true)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := parseSecretMaterial(k)
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// makeV6Key builds an RFC 9580 v6 Ed25519 (algorithm 27) transferable
// public key with a direct-key self-signature and a user ID.
func makeV6Key(t *testing.T) (*keyring, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body := binary.BigEndian.AppendUint32([]byte{6}, uint32(vectorNow.Add(-time.Hour).Unix()))
	body = append(body, algoEd25519)
	body = binary.BigEndian.AppendUint32(body, uint32(len(pub)))
	body = append(body, pub...)
	key, err := parseKey(body, false)
	if err != nil {
		t.Fatal(err)
	}
	uid := []byte("V6 <v6@example.org>")
	flags := appendSubpacket(nil, 27, []byte{flagCertify | flagSign})
	direct := v6packet(t, key, priv, sigDirectKey, hashSHA512, flags, key.hashPrefix(), key.body)
	cert := v6packet(t, key, priv, sigCertPositive, hashSHA512, flags, key.hashPrefix(), key.body, uidHashPrefix(tagUserID, len(uid)), uid)
	bin := appendPacket(nil, tagPublicKey, body)
	bin = append(bin, direct...)
	bin = append(bin, appendPacket(nil, tagUserID, uid)...)
	bin = append(bin, cert...)
	kr, err := loadKeyring(bin)
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.entities[0].primary.fpr; len(got) != 32 || kr.entities[0].userID != string(uid) {
		t.Fatalf("v6 key: fingerprint of %d bytes, user ID %q", len(got), kr.entities[0].userID)
	}
	return kr, priv
}

// v6packet makes an RFC 9580 v6 signature packet (salted, 4-octet
// subpacket area lengths) with algorithm 27.
func v6packet(t *testing.T, key *pgpKey, priv ed25519.PrivateKey, sigType, hashID byte, extra []byte, parts ...[]byte) []byte {
	t.Helper()
	var sub []byte
	sub = appendSubpacket(sub, 33, append([]byte{6}, key.fpr...))
	sub = appendSubpacket(sub, 2, binary.BigEndian.AppendUint32(nil, uint32(vectorNow.Unix())))
	sub = append(sub, extra...)
	hashed := []byte{6, sigType, algoEd25519, hashID}
	hashed = binary.BigEndian.AppendUint32(hashed, uint32(len(sub)))
	hashed = append(hashed, sub...)
	salt := make([]byte, v6SaltSize[hashID])
	rand.Read(salt)
	s := &pgpSig{version: 6, hashedPart: hashed, salt: salt}
	h, _ := hashFor(hashID)
	digest := s.digest(h, parts...)
	body := binary.BigEndian.AppendUint32(bytes.Clone(hashed), 0)
	body = append(body, digest[0], digest[1], byte(len(salt)))
	body = append(body, salt...)
	body = append(body, ed25519.Sign(priv, digest)...)
	return appendPacket(nil, tagSignature, body)
}

func v6sign(t *testing.T, priv ed25519.PrivateKey, raw []byte, start, end int, hashID byte, embed func([]byte) []byte) []byte {
	t.Helper()
	pubKey := priv.Public().(ed25519.PublicKey)
	body := binary.BigEndian.AppendUint32([]byte{6}, uint32(vectorNow.Add(-time.Hour).Unix()))
	body = append(body, algoEd25519)
	body = binary.BigEndian.AppendUint32(body, uint32(len(pubKey)))
	body = append(body, pubKey...)
	key, err := parseKey(body, false)
	if err != nil {
		t.Fatal(err)
	}
	return embed(v6packet(t, key, priv, sigBinary, hashID, nil, raw[start:end]))
}

// TestVerifyConcurrent runs verifyEvent from several goroutines on one
// keyring (run with -race).
func TestVerifyConcurrent(t *testing.T) {
	kr := mustKeyring(t, "keyring.pub.gpg")
	rows := readVectorRows(t)
	docs := make([][]byte, len(rows))
	for i, row := range rows {
		raw, err := os.ReadFile(filepath.Join(pgpVectors, row.file))
		if err != nil {
			t.Fatal(err)
		}
		docs[i] = raw
	}
	errs := make(chan string, 4*len(rows))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i, row := range rows {
				if got := verifyEvent(docs[i], kr, vectorNow); got.verdict != row.verdict {
					errs <- row.file + ": " + got.verdict
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestSubkeyRules builds keys with a signing subkey and checks binding,
// back-signature, subkey expiry and subkey revocation.
func TestSubkeyRules(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(pgpVectors, "events", "event2.xml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name           string
		backSig        bool
		expiry         uint32 // subkey expiry, seconds after its creation
		revokeReason   int    // -1: not revoked
		revokeAfterSig bool
		want           string
	}{
		{"bound with back-signature", true, 0, -1, false, verdictValid},
		{"no back-signature", false, 0, -1, false, verdictInvalid},
		{"subkey expired", true, 60, -1, false, verdictExpired},
		{"subkey revoked, no reason", true, 0, 0, true, verdictRevoked},
		{"subkey superseded after signing", true, 0, 1, true, verdictValid},
		{"subkey compromised after signing", true, 0, 2, true, verdictRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			created := vectorNow.Add(-time.Hour)
			primary := newTestKey(t, created)
			sub := newTestKey(t, created)
			parts := [][]byte{primary.key.hashPrefix(), primary.key.body, sub.key.hashPrefix(), sub.key.body}
			uid := []byte("Subkey test <s@example.org>")
			cert, err := primary.signPacket(sigCertPositive, hashSHA256, created, appendSubpacket(nil, 27, []byte{flagCertify}),
				primary.key.hashPrefix(), primary.key.body, uidHashPrefix(tagUserID, len(uid)), uid)
			if err != nil {
				t.Fatal(err)
			}
			extra := appendSubpacket(nil, 27, []byte{flagSign})
			if tc.expiry != 0 {
				extra = appendSubpacket(extra, 9, binary.BigEndian.AppendUint32(nil, tc.expiry))
			}
			if tc.backSig {
				back, err := sub.signPacket(sigPrimaryBind, hashSHA256, created, nil, parts...)
				if err != nil {
					t.Fatal(err)
				}
				p, _, _ := readPacket(back)
				extra = appendSubpacket(extra, 32, p.body) // hashed here; GnuPG puts it unhashed
			}
			binding, err := primary.signPacket(sigSubkeyBinding, hashSHA256, created, extra, parts...)
			if err != nil {
				t.Fatal(err)
			}
			bin := appendPacket(nil, tagPublicKey, primary.key.body)
			bin = append(bin, appendPacket(nil, tagUserID, uid)...)
			bin = append(bin, cert...)
			bin = append(bin, appendPacket(nil, tagPublicSubkey, sub.key.body)...)
			bin = append(bin, binding...)
			signedAt := created.Add(10 * time.Minute)
			if tc.revokeReason >= 0 {
				rev, err := primary.signPacket(sigSubkeyRevoke, hashSHA256, signedAt.Add(time.Minute),
					appendSubpacket(nil, 29, []byte{byte(tc.revokeReason)}), parts...)
				if err != nil {
					t.Fatal(err)
				}
				bin = append(bin, rev...)
			}
			kr, err := loadKeyring(bin)
			if err != nil {
				t.Fatal(err)
			}
			signed, err := signEvent(raw, sub, signedAt)
			if err != nil {
				t.Fatal(err)
			}
			got := verifyEvent(signed, kr, vectorNow)
			if got.verdict != tc.want {
				t.Errorf("got %s (%s), want %s", got.verdict, got.reason, tc.want)
			}
			if got.verdict == verdictValid && got.signer != sub.fingerprint() {
				t.Errorf("signer %s, want the subkey %s", got.signer, sub.fingerprint())
			}
		})
	}
}

// newTestKey makes a v4 EdDSA-legacy key pair created at created.
func newTestKey(t *testing.T, created time.Time) *secretKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	body := binary.BigEndian.AppendUint32([]byte{4}, uint32(created.Unix()))
	body = append(body, algoEdDSALegacy, byte(len(oidEd25519)))
	body = append(body, oidEd25519...)
	body = appendMPI(body, append([]byte{eddsaPointPrefix}, pub...))
	key, err := parseKey(body, false)
	if err != nil {
		t.Fatal(err)
	}
	return &secretKey{key: key, priv: priv}
}

// TestReadPacket covers both header formats and lengths that lie.
func TestReadPacket(t *testing.T) {
	body := bytes.Repeat([]byte{7}, 300)
	tests := []struct {
		name    string
		in      []byte
		tag     byte
		bodyLen int
		wantErr bool
	}{
		{"old one-octet", append([]byte{0x88, 3}, body[:3]...), 2, 3, false},
		{"old two-octet", append([]byte{0x89, 1, 44}, body...), 2, 300, false},
		{"old four-octet", append([]byte{0x8A, 0, 0, 1, 44}, body...), 2, 300, false},
		{"old indeterminate", append([]byte{0x8B}, body[:9]...), 2, 9, false},
		{"new one-octet", append([]byte{0xC2, 3}, body[:3]...), 2, 3, false},
		{"new two-octet", appendPacket(nil, 2, body), 2, 300, false},
		{"new five-octet", append([]byte{0xC2, 0xFF, 0, 0, 1, 44}, body...), 2, 300, false},
		{"new partial", append(append(append([]byte{0xC2, 0xE1}, body[:2]...), 3), body[:3]...), 2, 5, false},
		{"old length beyond input", []byte{0x8A, 0xFF, 0xFF, 0xFF, 0xFF, 1}, 0, 0, true},
		{"new length beyond input", []byte{0xC2, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1}, 0, 0, true},
		{"partial beyond input", []byte{0xC2, 0xFE, 1, 2}, 0, 0, true},
		{"partial never ends", append([]byte{0xC2, 0xE1}, body[:2]...), 0, 0, true},
		{"bit 7 clear", []byte{0x08, 0}, 0, 0, true},
		{"truncated header", []byte{0x89, 1}, 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := readPacket(tc.in)
			if tc.wantErr {
				if err == nil {
					t.Errorf("got tag %d with %d bytes, want an error", p.tag, len(p.body))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.tag != tc.tag || len(p.body) != tc.bodyLen {
				t.Errorf("got tag %d with %d bytes, want tag %d with %d", p.tag, len(p.body), tc.tag, tc.bodyLen)
			}
		})
	}
}

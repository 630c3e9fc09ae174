package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// FuzzArmor decodes arbitrary text as armor: it must never panic, never
// return more bytes than it read, and what it decodes must survive an
// encode-decode round trip.
func FuzzArmor(f *testing.F) {
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\n\nAAAA\n=AAAA\n-----END PGP SIGNATURE-----"))
	f.Add([]byte("-----BEGIN PGP SIGNATURE-----\nVersion: x\n\n\n-----END PGP SIGNATURE-----\n"))
	f.Add([]byte("-----BEGIN PGP -----\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		blocks, err := decodeArmorAll(text)
		if err != nil {
			return
		}
		total := 0
		for _, b := range blocks {
			total += len(b.data)
			again, _, err := decodeArmor(encodeArmor(b.kind, b.data))
			if err != nil || again.kind != b.kind || !bytes.Equal(again.data, b.data) {
				t.Fatalf("round trip of %q block: %v", b.kind, err)
			}
		}
		if total > len(text) {
			t.Fatalf("decoded %d bytes from %d", total, len(text))
		}
	})
}

var fuzzKeyring = sync.OnceValues(func() (*keyring, error) {
	return loadKeyringFile(filepath.Join(pgpVectors, "keys", "keyring.pub.gpg"))
})

// FuzzSignaturePacket parses arbitrary bytes as a signature packet (with
// and without a packet header) and judges it against the vector keyring
// over a fixed document: it must never panic.
func FuzzSignaturePacket(f *testing.F) {
	f.Add([]byte{0x88, 0x04, 0x04, 0x00, 0x16, 0x08})
	f.Add([]byte{4, 0, 22, 8, 0, 0, 0, 0, 0, 0})
	kr, err := fuzzKeyring()
	if err != nil {
		f.Fatal(err)
	}
	doc := []byte("<a>signed</a>")
	f.Fuzz(func(t *testing.T, data []byte) {
		bodies := [][]byte{data}
		if p, _, err := readPacket(data); err == nil {
			if len(p.body) > len(data) {
				t.Fatalf("packet body of %d bytes from %d", len(p.body), len(data))
			}
			bodies = append(bodies, p.body)
		}
		for _, body := range bodies {
			s, err := parseSignature(body)
			if err != nil {
				continue
			}
			res := checkDocumentSignature(doc, s, kr, vectorNow)
			if res.verdict == "" || (res.verdict == verdictValid) != (res.signer != "") {
				t.Fatalf("result %+v", res)
			}
		}
		// The same bytes embedded by the convention.
		event := append(append([]byte("<a>signed</a><!--\n"), bytes.ReplaceAll(encodeArmor("SIGNATURE", data), []byte("-----"), []byte("====="))...), "\n-->"...)
		if res := verifyEvent(event, kr, vectorNow); res.verdict == "" {
			t.Fatalf("empty verdict")
		}
	})
}

// FuzzKeyPacket loads arbitrary bytes as a keyring and as a secret key: it
// must never panic.
func FuzzKeyPacket(f *testing.F) {
	f.Add([]byte{0x98, 0x06, 0x04, 0, 0, 0, 0, 22})
	f.Add([]byte{0xC6, 0x0A, 0x06, 0, 0, 0, 0, 27, 0, 0, 0, 0})
	for _, name := range []string{"ed25519.pub.asc", "p384.pub.gpg"} {
		data, err := os.ReadFile(filepath.Join(pgpVectors, "keys", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if kr, err := loadKeyring(data); err == nil {
			for _, e := range kr.entities {
				if e.selfSig == nil || len(e.primary.fpr) == 0 {
					t.Fatalf("key without self-signature or fingerprint loaded")
				}
			}
		}
		parseSecretKey(data, vectorNow)
		if p, _, err := readPacket(data); err == nil {
			parseKey(p.body, p.tag == tagSecretKey || p.tag == tagSecretSubkey)
		}
	})
}

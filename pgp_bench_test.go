package main

import (
	"testing"
	"time"
)

// benchmarkVerify signs the median corpus event with a vector key and
// measures verifyEvent on it (root scan, armor, packet, hash, maths).
func benchmarkVerify(b *testing.B, keyName, pubName string) {
	sk := mustSecretKey(b, keyName)
	kr := mustKeyring(b, pubName)
	signed, err := signEvent(medianEvent(b), sk, vectorNow)
	if err != nil {
		b.Fatal(err)
	}
	now := vectorNow.Add(time.Minute)
	if res := verifyEvent(signed, kr, now); res.verdict != verdictValid {
		b.Fatalf("setup: %+v", res)
	}
	b.SetBytes(int64(len(signed)))
	b.ReportAllocs()
	for b.Loop() {
		if res := verifyEvent(signed, kr, now); res.verdict != verdictValid {
			b.Fatal(res.reason)
		}
	}
}

func BenchmarkVerifyEd25519(b *testing.B) { benchmarkVerify(b, "ed25519", "ed25519.pub.gpg") }
func BenchmarkVerifyRSA2048(b *testing.B) { benchmarkVerify(b, "rsa2048", "rsa2048.pub.gpg") }
func BenchmarkVerifyP256(b *testing.B)    { benchmarkVerify(b, "p256", "p256.pub.gpg") }

// BenchmarkVerifyEd25519FullKeyring looks the signer up among all vector keys.
func BenchmarkVerifyEd25519FullKeyring(b *testing.B) {
	benchmarkVerify(b, "ed25519", "keyring.pub.gpg")
}

func BenchmarkSignEd25519(b *testing.B) {
	sk := mustSecretKey(b, "ed25519")
	raw := medianEvent(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := signEvent(raw, sk, vectorNow); err != nil {
			b.Fatal(err)
		}
	}
}

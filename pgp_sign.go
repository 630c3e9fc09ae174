// pgp_sign.go owns the signing side of the convention: reading an
// unprotected secret key, making v4 signatures, embedding one in an event
// (signEvent), and generating a new Ed25519 signing key (generateKey).
//
// Invariant: signEvent inserts the signature comment right after the root
// element's closing '>' and changes no other byte.
package main

import (
	"bytes"
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"
)

// secretKey is a key that can sign: its public part and private material.
type secretKey struct {
	key    *pgpKey
	priv   any    // *rsa.PrivateKey, *dsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey
	userID string // the primary user ID of the key it belongs to
}

// fingerprint is the signing key's fingerprint in upper-case hex.
func (sk *secretKey) fingerprint() string { return sk.key.fprHex() }

// loadSecretKeyFile reads an armored or binary transferable secret key and
// picks the key to sign with: the newest valid signing subkey that has
// secret material, else the primary key if it may sign.
func loadSecretKeyFile(path string) (*secretKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key: %v", err)
	}
	sk, err := parseSecretKey(data, time.Now())
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %v", path, err)
	}
	return sk, nil
}

// parseSecretKey is loadSecretKeyFile on bytes, judging validity at now.
func parseSecretKey(data []byte, now time.Time) (*secretKey, error) {
	bin, err := dearmorKeys(data)
	if err != nil {
		return nil, err
	}
	ents, skipped, err := parseEntities(bin)
	if err != nil {
		return nil, err
	}
	if len(ents) == 0 {
		if len(skipped) > 0 {
			return nil, errors.New(skipped[0])
		}
		return nil, errors.New("no key found")
	}
	e := ents[0]
	var candidates []*pgpKeyRef
	for _, sub := range e.subkeys {
		if sub.key.secret != nil {
			candidates = append(candidates, &pgpKeyRef{ent: e, key: sub.key, sub: sub})
		}
	}
	// Newest subkey first, then the primary key.
	for i := 1; i < len(candidates); i++ {
		for j := i; j > 0 && candidates[j].key.created.After(candidates[j-1].key.created); j-- {
			candidates[j], candidates[j-1] = candidates[j-1], candidates[j]
		}
	}
	if e.primary.secret != nil {
		candidates = append(candidates, &pgpKeyRef{ent: e, key: e.primary})
	}
	if len(candidates) == 0 {
		return nil, errors.New("no secret key material (is this a public key?)")
	}
	var lastErr error
	for _, ref := range candidates {
		if v, reason := ref.signingStatus(now, now); v != "" {
			lastErr = errors.New(reason)
			continue
		}
		priv, err := parseSecretMaterial(ref.key)
		if err != nil {
			lastErr = err
			continue
		}
		return &secretKey{key: ref.key, priv: priv, userID: e.userID}, nil
	}
	return nil, lastErr
}

// parseSecretMaterial reads the secret part of an unprotected v4 or v6
// secret-key packet (RFC 9580 §5.5.3) and checks it against the public key.
func parseSecretMaterial(k *pgpKey) (any, error) {
	b := k.secret
	if len(b) < 1 {
		return nil, structuralf("secret key: truncated")
	}
	switch usage := b[0]; {
	case usage == 0:
	case (usage == 254 || usage == 255) && len(b) > 2 && b[2] == 101:
		return nil, unsupportedf("key %s has no secret material here (GnuPG stub key); export the key that holds it", k.fprHex())
	default:
		return nil, unsupportedf("key %s is passphrase-protected, and comet does not implement S2K decryption: remove the passphrase (gpg --passwd) and export the key again", k.fprHex())
	}
	b = b[1:]
	if k.pub == nil {
		return nil, unsupportedf("key %s: %s not supported", k.fprHex(), k.unsupp)
	}
	if k.version == 4 {
		if len(b) < 2 {
			return nil, structuralf("secret key: truncated")
		}
		var sum uint16
		for _, c := range b[:len(b)-2] {
			sum += uint16(c)
		}
		if sum != binary.BigEndian.Uint16(b[len(b)-2:]) {
			return nil, structuralf("secret key: checksum mismatch")
		}
		b = b[:len(b)-2]
	}
	mpis := func(n int) ([][]byte, error) {
		out := make([][]byte, n)
		var err error
		for i := range out {
			if out[i], b, err = readMPI(b); err != nil {
				return nil, err
			}
		}
		if len(b) != 0 {
			return nil, structuralf("secret key: %d trailing bytes", len(b))
		}
		return out, nil
	}
	mismatch := structuralf("secret key %s does not match its public key", k.fprHex())
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		m, err := mpis(4) // d, p, q, u
		if err != nil {
			return nil, err
		}
		priv := &rsa.PrivateKey{PublicKey: *pub, D: new(big.Int).SetBytes(m[0]),
			Primes: []*big.Int{new(big.Int).SetBytes(m[1]), new(big.Int).SetBytes(m[2])}}
		// Cheap checks first, so that junk never reaches the costly ones.
		if priv.D.Cmp(pub.N) >= 0 || new(big.Int).Mul(priv.Primes[0], priv.Primes[1]).Cmp(pub.N) != 0 {
			return nil, mismatch
		}
		if err := priv.Validate(); err != nil {
			return nil, mismatch
		}
		priv.Precompute()
		return priv, nil
	case *dsa.PublicKey:
		m, err := mpis(1)
		if err != nil {
			return nil, err
		}
		priv := &dsa.PrivateKey{PublicKey: *pub, X: new(big.Int).SetBytes(m[0])}
		if priv.X.Sign() <= 0 || priv.X.Cmp(pub.Q) >= 0 || new(big.Int).Exp(pub.G, priv.X, pub.P).Cmp(pub.Y) != 0 {
			return nil, mismatch
		}
		return priv, nil
	case *ecdsa.PublicKey:
		m, err := mpis(1)
		if err != nil {
			return nil, err
		}
		d, ok := leftPad(m[0], (pub.Curve.Params().BitSize+7)/8)
		if !ok {
			return nil, mismatch
		}
		priv, err := ecdsa.ParseRawPrivateKey(pub.Curve, d)
		if err != nil || !priv.PublicKey.Equal(pub) {
			return nil, mismatch
		}
		return priv, nil
	case ed25519.PublicKey:
		var seed []byte
		if k.algo == algoEd25519 {
			if len(b) != ed25519.SeedSize {
				return nil, structuralf("secret key: Ed25519 seed of %d bytes", len(b))
			}
			seed = b
		} else {
			m, err := mpis(1)
			if err != nil {
				return nil, err
			}
			var ok bool
			if seed, ok = leftPad(m[0], ed25519.SeedSize); !ok {
				return nil, mismatch
			}
		}
		priv := ed25519.NewKeyFromSeed(seed)
		if !bytes.Equal(priv.Public().(ed25519.PublicKey), pub) {
			return nil, mismatch
		}
		return priv, nil
	}
	return nil, unsupportedf("key algorithm %d not supported for signing", k.algo)
}

// defaultHash picks the hash a new signature by sk uses.
func (sk *secretKey) defaultHash() byte {
	if pub, ok := sk.key.pub.(*ecdsa.PublicKey); ok {
		switch pub.Curve.Params().BitSize {
		case 256:
			return hashSHA256
		case 384:
			return hashSHA384
		}
		return hashSHA512
	}
	if _, ok := sk.key.pub.(*dsa.PublicKey); ok {
		return hashSHA256
	}
	return hashSHA512
}

// appendSubpacket appends one subpacket (short lengths only; ours are small).
func appendSubpacket(dst []byte, typ byte, data []byte) []byte {
	dst = append(dst, byte(len(data)+1), typ)
	return append(dst, data...)
}

// appendPacket appends a new-format packet header and body.
func appendPacket(dst []byte, tag byte, body []byte) []byte {
	dst = append(dst, 0xC0|tag)
	switch n := len(body); {
	case n < 192:
		dst = append(dst, byte(n))
	case n < 8384:
		n -= 192
		dst = append(dst, byte(n>>8)+192, byte(n))
	default:
		dst = append(dst, 0xFF)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
	}
	return append(dst, body...)
}

// signPacket makes a v4 signature packet of sigType by sk over the parts,
// with issuer fingerprint and creation time hashed, extra hashed
// subpackets after them, and the issuer key ID unhashed.
func (sk *secretKey) signPacket(sigType, hashID byte, now time.Time, extra []byte, parts ...[]byte) ([]byte, error) {
	if sk.key.version != 4 {
		return nil, unsupportedf("signing with a v%d key is not implemented", sk.key.version)
	}
	h, ok := hashFor(hashID)
	if !ok {
		return nil, unsupportedf("%s not supported", hashName(hashID))
	}
	var sub []byte
	sub = appendSubpacket(sub, 33, append([]byte{4}, sk.key.fpr...))
	sub = appendSubpacket(sub, 2, binary.BigEndian.AppendUint32(nil, uint32(now.Unix())))
	sub = append(sub, extra...)
	hashed := []byte{4, sigType, sk.key.algo, hashID}
	hashed = binary.BigEndian.AppendUint16(hashed, uint16(len(sub)))
	hashed = append(hashed, sub...)
	s := &pgpSig{version: 4, hashedPart: hashed}
	digest := s.digest(h, parts...)

	body := append([]byte(nil), hashed...)
	unhashed := appendSubpacket(nil, 16, sk.key.keyID[:])
	body = binary.BigEndian.AppendUint16(body, uint16(len(unhashed)))
	body = append(body, unhashed...)
	body = append(body, digest[0], digest[1])
	switch priv := sk.priv.(type) {
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(rand.Reader, priv, h, digest)
		if err != nil {
			return nil, err
		}
		body = appendMPI(body, sig)
	case *dsa.PrivateKey:
		d := digest
		if q := (priv.Q.BitLen() + 7) / 8; len(d) > q {
			d = d[:q]
		}
		r, s, err := dsa.Sign(rand.Reader, priv, d)
		if err != nil {
			return nil, err
		}
		body = appendMPI(appendMPI(body, r.Bytes()), s.Bytes())
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, priv, digest)
		if err != nil {
			return nil, err
		}
		body = appendMPI(appendMPI(body, r.Bytes()), s.Bytes())
	case ed25519.PrivateKey:
		sig := ed25519.Sign(priv, digest)
		if sk.key.algo == algoEd25519 {
			body = append(body, sig...)
		} else {
			body = appendMPI(appendMPI(body, sig[:32]), sig[32:])
		}
	default:
		return nil, unsupportedf("key algorithm %d not supported for signing", sk.key.algo)
	}
	return appendPacket(nil, tagSignature, body), nil
}

// signEvent signs the root element of raw by the convention and returns the
// event with the signature comment inserted right after the root element.
func signEvent(raw []byte, key *secretKey, now time.Time) ([]byte, error) {
	start, end, err := rootElementSpan(raw)
	if err != nil {
		return nil, fmt.Errorf("sign: %v", err)
	}
	existing, err := signatureComments(raw[end:])
	if err != nil {
		return nil, fmt.Errorf("sign: %v", err)
	}
	if len(existing) > 0 {
		return nil, errors.New("sign: the event already carries a signature comment")
	}
	pkt, err := key.signPacket(sigBinary, key.defaultHash(), now, nil, raw[start:end])
	if err != nil {
		return nil, fmt.Errorf("sign: %v", err)
	}
	armor := bytes.ReplaceAll(encodeArmor("SIGNATURE", pkt), []byte("-----"), []byte("====="))
	out := make([]byte, 0, len(raw)+len(armor)+9)
	out = append(out, raw[:end]...)
	out = append(out, "<!--\n"...)
	out = append(out, armor...)
	out = append(out, "\n-->"...)
	return append(out, raw[end:]...), nil
}

// generateKey makes a new v4 Ed25519 signing key (EdDSA legacy, algorithm
// 22, which every GnuPG since 2.1 imports) with one user ID and a positive
// self-certification (key flags certify+sign, SHA-512), and returns the
// armored public and unprotected secret transferable keys.
func generateKey(userID string, now time.Time) (pubArmored, secArmored []byte, err error) {
	if userID == "" {
		return nil, nil, errors.New("keygen: empty user ID")
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("keygen: %v", err)
	}
	now = now.Truncate(time.Second)
	body := binary.BigEndian.AppendUint32([]byte{4}, uint32(now.Unix()))
	body = append(body, algoEdDSALegacy, byte(len(oidEd25519)))
	body = append(body, oidEd25519...)
	body = appendMPI(body, append([]byte{eddsaPointPrefix}, pub...))
	key, err := parseKey(body, false)
	if err != nil {
		return nil, nil, fmt.Errorf("keygen: %v", err)
	}
	sk := &secretKey{key: key, priv: priv, userID: userID}
	var extra []byte
	extra = appendSubpacket(extra, 27, []byte{flagCertify | flagSign})
	extra = appendSubpacket(extra, 11, []byte{9, 7})     // preferred ciphers: AES-256, AES-128
	extra = appendSubpacket(extra, 21, []byte{10, 9, 8}) // preferred hashes: SHA-512, SHA-384, SHA-256
	extra = appendSubpacket(extra, 22, []byte{2, 1})     // preferred compression: ZLIB, ZIP
	extra = appendSubpacket(extra, 30, []byte{0x01})     // features: SEIPD v1
	extra = appendSubpacket(extra, 23, []byte{0x80})     // keyserver: no-modify
	extra = appendSubpacket(extra, 25, []byte{0x01})     // primary user ID
	uid := []byte(userID)
	cert, err := sk.signPacket(sigCertPositive, hashSHA512, now, extra,
		key.hashPrefix(), key.body, uidHashPrefix(tagUserID, len(uid)), uid)
	if err != nil {
		return nil, nil, fmt.Errorf("keygen: %v", err)
	}
	secBody := append(append([]byte(nil), body...), 0) // S2K usage 0: unprotected
	material := appendMPI(nil, priv.Seed())
	var sum uint16
	for _, c := range material {
		sum += uint16(c)
	}
	secBody = binary.BigEndian.AppendUint16(append(secBody, material...), sum)

	tail := appendPacket(nil, tagUserID, uid)
	tail = append(tail, cert...)
	pubBin := append(appendPacket(nil, tagPublicKey, body), tail...)
	secBin := append(appendPacket(nil, tagSecretKey, secBody), tail...)
	return append(encodeArmor("PUBLIC KEY BLOCK", pubBin), '\n'), append(encodeArmor("PRIVATE KEY BLOCK", secBin), '\n'), nil
}

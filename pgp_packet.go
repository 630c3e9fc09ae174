// pgp_packet.go owns OpenPGP packet framing (RFC 9580 §4), MPIs, and the
// parsing of public-key, secret-key and signature packets (§5.2, §5.5).
//
// Invariants: every parsed field is a sub-slice of the input or a value
// bounded by it; no length read from the input is trusted before it is
// checked against the bytes that remain.
package main

import (
	"crypto"
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math/big"
	"strings"
	"time"
)

// Packet tags used here (RFC 9580 §5).
const (
	tagSignature    = 2
	tagSecretKey    = 5
	tagPublicKey    = 6
	tagSecretSubkey = 7
	tagUserID       = 13
	tagPublicSubkey = 14
	tagUserAttr     = 17
)

// Public-key algorithm ids (RFC 9580 §9.1).
const (
	algoRSA          = 1
	algoRSASignOnly  = 3
	algoDSA          = 17
	algoECDSA        = 19
	algoEdDSALegacy  = 22
	algoEd25519      = 27
	algoRSAEncrypt   = 2
	algoElgamal      = 16
	algoECDH         = 18
	algoElgamalOld   = 20
	algoX25519       = 25
	algoX448         = 26
	algoEd448        = 28
	maxRSABits       = 16384
	maxDSAPrimeBits  = 8192
	eddsaPointPrefix = 0x40
)

// Hash algorithm ids (RFC 9580 §9.5).
const (
	hashMD5       = 1
	hashSHA1      = 2
	hashRIPEMD160 = 3
	hashSHA256    = 8
	hashSHA384    = 9
	hashSHA512    = 10
	hashSHA224    = 11
)

// Signature types (RFC 9580 §5.2.1).
const (
	sigBinary        = 0x00
	sigCertGeneric   = 0x10
	sigCertPositive  = 0x13
	sigSubkeyBinding = 0x18
	sigPrimaryBind   = 0x19
	sigDirectKey     = 0x1F
	sigKeyRevocation = 0x20
	sigSubkeyRevoke  = 0x28
)

// Curve OIDs (RFC 9580 §9.2), as the bytes after the length octet.
var (
	oidP256    = string([]byte{0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07})
	oidP384    = string([]byte{0x2B, 0x81, 0x04, 0x00, 0x22})
	oidP521    = string([]byte{0x2B, 0x81, 0x04, 0x00, 0x23})
	oidEd25519 = string([]byte{0x2B, 0x06, 0x01, 0x04, 0x01, 0xDA, 0x47, 0x0F, 0x01})
)

// pgpError is an OpenPGP failure. Its constructors name the three kinds an
// operator tells apart (after ProtonMail go-crypto's error taxonomy): bytes
// that cannot be parsed, what is well formed but not implemented here, and
// a signature that does not verify; the message says which.
type pgpError struct{ msg string }

func (e *pgpError) Error() string { return e.msg }

func structuralf(format string, a ...any) error  { return &pgpError{fmt.Sprintf(format, a...)} }
func unsupportedf(format string, a ...any) error { return &pgpError{fmt.Sprintf(format, a...)} }
func badSigf(format string, a ...any) error      { return &pgpError{fmt.Sprintf(format, a...)} }

// packet is one OpenPGP packet: its tag and body.
type packet struct {
	tag  byte
	body []byte
}

// readPacket splits the first packet off b. Old and new header formats are
// both read; partial body lengths (new format) are joined into one body,
// which is never longer than b.
func readPacket(b []byte) (packet, []byte, error) {
	if len(b) == 0 {
		return packet{}, nil, structuralf("packet: empty input")
	}
	ctb := b[0]
	if ctb&0x80 == 0 {
		return packet{}, nil, structuralf("packet: header byte 0x%02x lacks bit 7", ctb)
	}
	b = b[1:]
	if ctb&0x40 == 0 { // old format
		tag := (ctb >> 2) & 0x0F
		var n int
		switch ctb & 3 {
		case 0:
			if len(b) < 1 {
				return packet{}, nil, structuralf("packet: truncated header")
			}
			n, b = int(b[0]), b[1:]
		case 1:
			if len(b) < 2 {
				return packet{}, nil, structuralf("packet: truncated header")
			}
			n, b = int(binary.BigEndian.Uint16(b)), b[2:]
		case 2:
			if len(b) < 4 {
				return packet{}, nil, structuralf("packet: truncated header")
			}
			n32 := binary.BigEndian.Uint32(b)
			b = b[4:]
			if uint64(n32) > uint64(len(b)) {
				return packet{}, nil, structuralf("packet: tag %d length %d exceeds input", tag, n32)
			}
			n = int(n32)
		case 3: // indeterminate: the rest of the input
			n = len(b)
		}
		if n > len(b) {
			return packet{}, nil, structuralf("packet: tag %d length %d exceeds input", tag, n)
		}
		return packet{tag, b[:n]}, b[n:], nil
	}
	tag := ctb & 0x3F
	var body []byte
	for {
		n, partial, rest, err := newFormatLength(b)
		if err != nil {
			return packet{}, nil, err
		}
		if n > len(rest) {
			return packet{}, nil, structuralf("packet: tag %d length %d exceeds input", tag, n)
		}
		if !partial && body == nil {
			return packet{tag, rest[:n]}, rest[n:], nil
		}
		if body == nil {
			body = make([]byte, 0, len(rest))
		}
		body = append(body, rest[:n]...)
		b = rest[n:]
		if !partial {
			return packet{tag, body}, b, nil
		}
	}
}

// newFormatLength reads a new-format body length (RFC 9580 §4.2.1).
func newFormatLength(b []byte) (n int, partial bool, rest []byte, err error) {
	if len(b) < 1 {
		return 0, false, nil, structuralf("packet: truncated length")
	}
	o := b[0]
	switch {
	case o < 192:
		return int(o), false, b[1:], nil
	case o < 224:
		if len(b) < 2 {
			return 0, false, nil, structuralf("packet: truncated length")
		}
		return (int(o)-192)<<8 + int(b[1]) + 192, false, b[2:], nil
	case o == 255:
		if len(b) < 5 {
			return 0, false, nil, structuralf("packet: truncated length")
		}
		n32 := binary.BigEndian.Uint32(b[1:])
		if uint64(n32) > uint64(len(b)-5) {
			return 0, false, nil, structuralf("packet: length %d exceeds input", n32)
		}
		return int(n32), false, b[5:], nil
	default:
		return 1 << (o & 0x1F), true, b[1:], nil
	}
}

// readMPI splits one multiprecision integer off b and returns its bytes.
func readMPI(b []byte) (mpi, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, structuralf("mpi: truncated")
	}
	n := (int(binary.BigEndian.Uint16(b)) + 7) / 8
	if n > len(b)-2 {
		return nil, nil, structuralf("mpi: length %d exceeds input", n)
	}
	return b[2 : 2+n], b[2+n:], nil
}

// appendMPI appends x as an MPI (leading zero bytes dropped, exact bit count).
func appendMPI(dst, x []byte) []byte {
	for len(x) > 0 && x[0] == 0 {
		x = x[1:]
	}
	bits := 0
	if len(x) > 0 {
		bits = (len(x)-1)*8 + bitLen8(x[0])
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(bits))
	return append(dst, x...)
}

func bitLen8(b byte) int {
	n := 0
	for ; b != 0; b >>= 1 {
		n++
	}
	return n
}

// leftPad returns b left-padded with zeros to n bytes; ok is false if b is
// longer than n once its leading zeros are dropped.
func leftPad(b []byte, n int) ([]byte, bool) {
	for len(b) > n && b[0] == 0 {
		b = b[1:]
	}
	if len(b) > n {
		return nil, false
	}
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out, true
}

// pgpKey is a public key or subkey packet, parsed.
type pgpKey struct {
	version byte
	created time.Time
	algo    byte
	body    []byte  // the public-key packet body, exactly as hashed
	fpr     []byte  // 20 bytes (v4) or 32 bytes (v6)
	keyID   [8]byte // low 8 bytes (v4) or high 8 bytes (v6) of fpr
	pub     any     // *rsa.PublicKey, *dsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey, or nil
	curve   string  // curve OID bytes for ECDSA and EdDSA legacy
	bodyEnd int     // length of the public part within a secret-key body
	unsupp  string  // why pub is nil
	secret  []byte  // the secret part of a secret-key body, else nil
}

// fprHex is the fingerprint in upper-case hex, as gpg prints it.
func (k *pgpKey) fprHex() string { return strings.ToUpper(hex.EncodeToString(k.fpr)) }

// parseKey parses a public-key or public-subkey body, or the public part of
// a secret-key body (then k.bodyEnd says where the secret part starts).
// Keys of algorithms not implemented here parse with pub == nil.
func parseKey(body []byte, secret bool) (*pgpKey, error) {
	if len(body) < 6 {
		return nil, structuralf("key: truncated")
	}
	k := &pgpKey{version: body[0], algo: body[5]}
	k.created = time.Unix(int64(binary.BigEndian.Uint32(body[1:5])), 0).UTC()
	var material []byte
	switch k.version {
	case 4:
		material = body[6:]
	case 6:
		if len(body) < 10 {
			return nil, structuralf("key: truncated")
		}
		n := binary.BigEndian.Uint32(body[6:10])
		if uint64(n) > uint64(len(body)-10) {
			return nil, structuralf("key: material length %d exceeds packet", n)
		}
		material = body[10 : 10+int(n)]
	default:
		return nil, unsupportedf("key: version %d not supported", k.version)
	}
	rest, err := k.parseMaterial(material)
	if err != nil {
		return nil, err
	}
	if k.version == 6 {
		if len(rest) != 0 {
			return nil, structuralf("key: %d stray bytes in key material", len(rest))
		}
		k.bodyEnd = 10 + len(material)
	} else {
		k.bodyEnd = len(body) - len(rest)
	}
	if !secret && k.bodyEnd != len(body) {
		return nil, structuralf("key: %d trailing bytes", len(body)-k.bodyEnd)
	}
	k.body = body[:k.bodyEnd]
	if k.bodyEnd < len(body) {
		k.secret = body[k.bodyEnd:]
	}
	if k.version == 4 {
		h := sha1.New()
		h.Write([]byte{0x99, byte(k.bodyEnd >> 8), byte(k.bodyEnd)})
		h.Write(k.body)
		k.fpr = h.Sum(nil)
		copy(k.keyID[:], k.fpr[12:])
	} else {
		h := sha256.New()
		h.Write([]byte{0x9B})
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(k.bodyEnd)))
		h.Write(k.body)
		k.fpr = h.Sum(nil)
		copy(k.keyID[:], k.fpr[:8])
	}
	return k, nil
}

// parseMaterial reads the algorithm-specific public fields and returns what
// follows them. For algorithms this file does not implement it sets unsupp
// and consumes everything (the fingerprint still covers the whole body).
func (k *pgpKey) parseMaterial(m []byte) ([]byte, error) {
	var err error
	switch k.algo {
	case algoRSA, algoRSASignOnly, algoRSAEncrypt:
		var n, e []byte
		if n, m, err = readMPI(m); err != nil {
			return nil, err
		}
		if e, m, err = readMPI(m); err != nil {
			return nil, err
		}
		nb := new(big.Int).SetBytes(n)
		eb := new(big.Int).SetBytes(e)
		switch {
		case nb.BitLen() > maxRSABits:
			k.unsupp = fmt.Sprintf("RSA modulus of %d bits", nb.BitLen())
		case !eb.IsInt64() || eb.Int64() < 3 || eb.Int64() > 1<<31-1 || eb.Bit(0) == 0:
			k.unsupp = "RSA exponent out of range"
		case k.algo == algoRSAEncrypt:
			k.unsupp = "encryption-only RSA"
		default:
			k.pub = &rsa.PublicKey{N: nb, E: int(eb.Int64())}
		}
		return m, nil
	case algoDSA:
		var p, q, g, y []byte
		for _, dst := range []*[]byte{&p, &q, &g, &y} {
			if *dst, m, err = readMPI(m); err != nil {
				return nil, err
			}
		}
		pub := &dsa.PublicKey{Parameters: dsa.Parameters{P: new(big.Int).SetBytes(p), Q: new(big.Int).SetBytes(q), G: new(big.Int).SetBytes(g)}, Y: new(big.Int).SetBytes(y)}
		qb := pub.Q.BitLen()
		if pub.P.BitLen() > maxDSAPrimeBits || pub.P.BitLen() < 1024 || (qb != 160 && qb != 224 && qb != 256) {
			k.unsupp = fmt.Sprintf("DSA parameters %d/%d bits", pub.P.BitLen(), qb)
		} else {
			k.pub = pub
		}
		return m, nil
	case algoECDSA, algoEdDSALegacy:
		if len(m) < 1 || m[0] == 0 || m[0] == 0xFF || int(m[0]) > len(m)-1 {
			return nil, structuralf("key: bad curve OID")
		}
		k.curve = string(m[1 : 1+int(m[0])])
		m = m[1+int(m[0]):]
		var point []byte
		if point, m, err = readMPI(m); err != nil {
			return nil, err
		}
		if k.algo == algoEdDSALegacy {
			if k.curve != oidEd25519 {
				k.unsupp = "EdDSA on a curve other than Ed25519"
			} else if len(point) != 33 || point[0] != eddsaPointPrefix {
				return nil, structuralf("key: bad Ed25519 point")
			} else {
				k.pub = ed25519.PublicKey(point[1:])
			}
			return m, nil
		}
		c := curveForOID(k.curve)
		if c == nil {
			k.unsupp = "ECDSA on an unsupported curve"
			return m, nil
		}
		pub, perr := ecdsa.ParseUncompressedPublicKey(c, point)
		if perr != nil {
			return nil, structuralf("key: bad ECDSA point: %v", perr)
		}
		k.pub = pub
		return m, nil
	case algoEd25519:
		if len(m) < ed25519.PublicKeySize {
			return nil, structuralf("key: truncated Ed25519 key")
		}
		k.pub = ed25519.PublicKey(m[:ed25519.PublicKeySize])
		return m[ed25519.PublicKeySize:], nil
	case algoElgamal, algoElgamalOld:
		for i := 0; i < 3; i++ { // p, g, y
			if _, m, err = readMPI(m); err != nil {
				return nil, err
			}
		}
		k.unsupp = "encryption-only ElGamal"
		return m, nil
	case algoECDH:
		if len(m) < 1 || m[0] == 0 || m[0] == 0xFF || int(m[0]) > len(m)-1 {
			return nil, structuralf("key: bad curve OID")
		}
		m = m[1+int(m[0]):]
		if _, m, err = readMPI(m); err != nil {
			return nil, err
		}
		if len(m) < 1 || int(m[0]) > len(m)-1 { // KDF parameters
			return nil, structuralf("key: truncated ECDH parameters")
		}
		k.unsupp = "encryption-only ECDH"
		return m[1+int(m[0]):], nil
	case algoX25519, algoX448, algoEd448:
		n := map[byte]int{algoX25519: 32, algoX448: 56, algoEd448: 57}[k.algo]
		if len(m) < n {
			return nil, structuralf("key: truncated algorithm %d key", k.algo)
		}
		k.unsupp = fmt.Sprintf("public-key algorithm %d", k.algo)
		return m[n:], nil
	default:
		// Unknown layout: the rest of the packet is the key material.
		k.unsupp = fmt.Sprintf("public-key algorithm %d", k.algo)
		return nil, nil
	}
}

// subpacket is one signature subpacket.
type subpacket struct {
	typ      byte
	critical bool
	data     []byte
}

// parseSubpackets reads a subpacket area (RFC 9580 §5.2.3.7).
func parseSubpackets(b []byte) ([]subpacket, error) {
	var out []subpacket
	for len(b) > 0 {
		var n int
		switch o := b[0]; {
		case o < 192:
			n, b = int(o), b[1:]
		case o < 255:
			if len(b) < 2 {
				return nil, structuralf("subpacket: truncated length")
			}
			n, b = (int(o)-192)<<8+int(b[1])+192, b[2:]
		default:
			if len(b) < 5 {
				return nil, structuralf("subpacket: truncated length")
			}
			n32 := binary.BigEndian.Uint32(b[1:])
			b = b[5:]
			if uint64(n32) > uint64(len(b)) {
				return nil, structuralf("subpacket: length %d exceeds area", n32)
			}
			n = int(n32)
		}
		if n == 0 || n > len(b) {
			return nil, structuralf("subpacket: bad length %d", n)
		}
		out = append(out, subpacket{typ: b[0] & 0x7F, critical: b[0]&0x80 != 0, data: b[1:n]})
		b = b[n:]
	}
	return out, nil
}

// knownSubpackets are the hashed subpacket types this verifier understands
// or may safely ignore; an unknown one marked critical voids a signature.
// Notation data (20) is absent on purpose: a critical notation is one whose
// meaning we cannot honour.
var knownSubpackets = map[byte]bool{
	2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 9: true, 11: true, 12: true,
	16: true, 21: true, 22: true, 23: true, 24: true, 25: true, 26: true, 27: true,
	28: true, 29: true, 30: true, 31: true, 32: true, 33: true, 34: true, 35: true, 39: true,
}

// pgpSig is a v4 or v6 signature packet, parsed.
type pgpSig struct {
	version    byte
	sigType    byte
	pubAlgo    byte
	hashAlgo   byte
	hashedPart []byte // version octet through the end of the hashed subpackets
	hashTag    [2]byte
	salt       []byte   // v6 only
	mpis       [][]byte // RSA: 1; DSA, ECDSA, EdDSA legacy: r and s
	native     []byte   // Ed25519 (27): the 64-byte signature

	created         time.Time
	hasCreated      bool
	sigExpiry       uint32 // seconds after creation; 0 = never
	keyExpiry       uint32 // seconds after key creation; 0 = never
	keyFlags        byte
	hasKeyFlags     bool
	issuerFpr       []byte
	issuerKeyID     []byte
	revReason       byte
	hasRevReason    bool
	primaryUID      bool
	embedded        []byte // body of an embedded signature (type 32)
	unknownCritical int    // type of an unknown critical hashed subpacket, or -1
}

// v6SaltSize is the salt length RFC 9580 §9.5 fixes per hash algorithm.
var v6SaltSize = map[byte]int{hashSHA256: 16, hashSHA384: 24, hashSHA512: 32, hashSHA224: 16, 12: 16, 14: 32}

// parseSignature parses a signature packet body of version 4 or 6.
func parseSignature(body []byte) (*pgpSig, error) {
	if len(body) < 1 {
		return nil, structuralf("signature: empty packet")
	}
	s := &pgpSig{version: body[0], unknownCritical: -1}
	lenSize := 2
	switch s.version {
	case 4:
	case 6:
		lenSize = 4
	default:
		return nil, unsupportedf("signature: version %d not supported", s.version)
	}
	if len(body) < 4+lenSize {
		return nil, structuralf("signature: truncated")
	}
	s.sigType, s.pubAlgo, s.hashAlgo = body[1], body[2], body[3]
	area := func(b []byte) (a, rest []byte, err error) {
		if len(b) < lenSize {
			return nil, nil, structuralf("signature: truncated subpacket area")
		}
		var n uint64
		if lenSize == 2 {
			n = uint64(binary.BigEndian.Uint16(b))
		} else {
			n = uint64(binary.BigEndian.Uint32(b))
		}
		b = b[lenSize:]
		if n > uint64(len(b)) {
			return nil, nil, structuralf("signature: subpacket area length %d exceeds packet", n)
		}
		return b[:n], b[n:], nil
	}
	hashed, rest, err := area(body[4:])
	if err != nil {
		return nil, err
	}
	s.hashedPart = body[:len(body)-len(rest)]
	unhashed, rest, err := area(rest)
	if err != nil {
		return nil, err
	}
	if len(rest) < 2 {
		return nil, structuralf("signature: truncated before hash tag")
	}
	copy(s.hashTag[:], rest)
	rest = rest[2:]
	if s.version == 6 {
		if len(rest) < 1 || int(rest[0]) > len(rest)-1 {
			return nil, structuralf("signature: truncated salt")
		}
		s.salt, rest = rest[1:1+int(rest[0])], rest[1+int(rest[0]):]
		if want, ok := v6SaltSize[s.hashAlgo]; ok && want != len(s.salt) {
			return nil, structuralf("signature: salt of %d bytes for hash %d", len(s.salt), s.hashAlgo)
		}
	}
	switch s.pubAlgo {
	case algoRSA, algoRSASignOnly:
		var m []byte
		if m, rest, err = readMPI(rest); err != nil {
			return nil, err
		}
		s.mpis = [][]byte{m}
	case algoDSA, algoECDSA, algoEdDSALegacy:
		var r, sv []byte
		if r, rest, err = readMPI(rest); err != nil {
			return nil, err
		}
		if sv, rest, err = readMPI(rest); err != nil {
			return nil, err
		}
		s.mpis = [][]byte{r, sv}
	case algoEd25519:
		if len(rest) < ed25519.SignatureSize {
			return nil, structuralf("signature: truncated Ed25519 signature")
		}
		s.native, rest = rest[:ed25519.SignatureSize], rest[ed25519.SignatureSize:]
	default:
		rest = nil // not implemented; kept so the packet can be skipped or reported
	}
	if len(rest) != 0 {
		return nil, structuralf("signature: %d trailing bytes", len(rest))
	}

	hsp, err := parseSubpackets(hashed)
	if err != nil {
		return nil, err
	}
	for _, sp := range hsp {
		if err := s.applyHashed(sp); err != nil {
			return nil, err
		}
	}
	usp, err := parseSubpackets(unhashed)
	if err != nil {
		return nil, err
	}
	// The unhashed area is unauthenticated: only issuer hints and an
	// embedded (self-authenticating) back-signature are taken from it.
	for _, sp := range usp {
		switch sp.typ {
		case 16:
			if s.issuerKeyID == nil && len(sp.data) == 8 {
				s.issuerKeyID = sp.data
			}
		case 33:
			if s.issuerFpr == nil && len(sp.data) > 1 {
				s.issuerFpr = sp.data[1:]
			}
		case 32:
			if s.embedded == nil {
				s.embedded = sp.data
			}
		}
	}
	return s, nil
}

// applyHashed records what a hashed subpacket says.
func (s *pgpSig) applyHashed(sp subpacket) error {
	if sp.critical && !knownSubpackets[sp.typ] && s.unknownCritical < 0 {
		s.unknownCritical = int(sp.typ)
	}
	need := func(n int) error {
		if len(sp.data) != n {
			return structuralf("signature: subpacket %d has %d bytes, want %d", sp.typ, len(sp.data), n)
		}
		return nil
	}
	switch sp.typ {
	case 2:
		if err := need(4); err != nil {
			return err
		}
		s.created = time.Unix(int64(binary.BigEndian.Uint32(sp.data)), 0).UTC()
		s.hasCreated = true
	case 3:
		if err := need(4); err != nil {
			return err
		}
		s.sigExpiry = binary.BigEndian.Uint32(sp.data)
	case 9:
		if err := need(4); err != nil {
			return err
		}
		s.keyExpiry = binary.BigEndian.Uint32(sp.data)
	case 16:
		if err := need(8); err != nil {
			return err
		}
		s.issuerKeyID = sp.data
	case 25:
		s.primaryUID = len(sp.data) > 0 && sp.data[0] != 0
	case 27:
		if len(sp.data) > 0 {
			s.keyFlags, s.hasKeyFlags = sp.data[0], true
		}
	case 29:
		if len(sp.data) > 0 {
			s.revReason, s.hasRevReason = sp.data[0], true
		}
	case 32:
		s.embedded = sp.data
	case 33:
		if len(sp.data) < 2 {
			return structuralf("signature: empty issuer fingerprint")
		}
		s.issuerFpr = sp.data[1:]
	}
	return nil
}

// hashFor maps an OpenPGP hash id to a Go hash; ok is false for ids the
// standard library does not provide.
func hashFor(id byte) (crypto.Hash, bool) {
	switch id {
	case hashMD5:
		return crypto.MD5, true
	case hashSHA1:
		return crypto.SHA1, true
	case hashSHA256:
		return crypto.SHA256, true
	case hashSHA384:
		return crypto.SHA384, true
	case hashSHA512:
		return crypto.SHA512, true
	case hashSHA224:
		return crypto.SHA224, true
	}
	return 0, false
}

// newHash returns a fresh hash.Hash (the imports above register them).
func newHash(h crypto.Hash) hash.Hash {
	switch h {
	case crypto.MD5:
		return md5.New()
	case crypto.SHA1:
		return sha1.New()
	case crypto.SHA224:
		return sha256.New224()
	case crypto.SHA256:
		return sha256.New()
	case crypto.SHA384:
		return sha512.New384()
	}
	return sha512.New()
}

// hashName names a hash id for messages.
func hashName(id byte) string {
	switch id {
	case hashMD5:
		return "MD5"
	case hashSHA1:
		return "SHA-1"
	case hashRIPEMD160:
		return "RIPEMD-160"
	case hashSHA256:
		return "SHA-256"
	case hashSHA384:
		return "SHA-384"
	case hashSHA512:
		return "SHA-512"
	case hashSHA224:
		return "SHA-224"
	}
	return fmt.Sprintf("hash %d", id)
}

// digest hashes the parts, then the signature's hashed part and trailer
// (RFC 9580 §5.2.4); a v6 signature's salt comes first.
func (s *pgpSig) digest(h crypto.Hash, parts ...[]byte) []byte {
	d := newHash(h)
	d.Write(s.salt)
	for _, p := range parts {
		d.Write(p)
	}
	d.Write(s.hashedPart)
	d.Write([]byte{s.version, 0xFF})
	d.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s.hashedPart))))
	return d.Sum(nil)
}

// verifyDigest checks the signature maths of s over digest with key k.
func (k *pgpKey) verifyDigest(s *pgpSig, h crypto.Hash, digest []byte) error {
	if k.pub == nil {
		return unsupportedf("key %s: %s not supported", k.fprHex(), k.unsupp)
	}
	if s.hashTag[0] != digest[0] || s.hashTag[1] != digest[1] {
		return badSigf("signature does not verify (digest prefix mismatch)")
	}
	bad := badSigf("signature does not verify")
	switch pub := k.pub.(type) {
	case *rsa.PublicKey:
		if s.pubAlgo != algoRSA && s.pubAlgo != algoRSASignOnly {
			return bad
		}
		sig, ok := leftPad(s.mpis[0], pub.Size())
		if !ok || rsa.VerifyPKCS1v15(pub, h, digest, sig) != nil {
			return bad
		}
	case *dsa.PublicKey:
		if s.pubAlgo != algoDSA {
			return bad
		}
		qLen := (pub.Q.BitLen() + 7) / 8
		if len(digest) > qLen {
			digest = digest[:qLen]
		}
		if !dsa.Verify(pub, digest, new(big.Int).SetBytes(s.mpis[0]), new(big.Int).SetBytes(s.mpis[1])) {
			return bad
		}
	case *ecdsa.PublicKey:
		if s.pubAlgo != algoECDSA || !ecdsa.Verify(pub, digest, new(big.Int).SetBytes(s.mpis[0]), new(big.Int).SetBytes(s.mpis[1])) {
			return bad
		}
	case ed25519.PublicKey:
		var sig []byte
		switch {
		case k.algo == algoEdDSALegacy && s.pubAlgo == algoEdDSALegacy:
			r, ok1 := leftPad(s.mpis[0], 32)
			sv, ok2 := leftPad(s.mpis[1], 32)
			if !ok1 || !ok2 {
				return bad
			}
			sig = append(r, sv...)
		case k.algo == algoEd25519 && s.pubAlgo == algoEd25519:
			sig = s.native
		default:
			return bad
		}
		if !ed25519.Verify(pub, digest, sig) {
			return bad
		}
	default:
		return unsupportedf("key algorithm %d not supported", k.algo)
	}
	return nil
}

// keyHashPrefix is how a key is fed to a certification hash (RFC 9580 §5.2.4).
func (k *pgpKey) hashPrefix() []byte {
	if k.version == 6 {
		return binary.BigEndian.AppendUint32([]byte{0x9B}, uint32(len(k.body)))
	}
	return []byte{0x99, byte(len(k.body) >> 8), byte(len(k.body))}
}

// uidHashPrefix is how a user ID (0xB4) or attribute (0xD1) is fed to a hash.
func uidHashPrefix(tag byte, n int) []byte {
	p := byte(0xB4)
	if tag == tagUserAttr {
		p = 0xD1
	}
	return binary.BigEndian.AppendUint32([]byte{p}, uint32(n))
}

// errNoPackets means the input held no packet at all.
var errNoPackets = errors.New("no OpenPGP packets")

// curveForOID maps a curve OID to a NIST curve, or nil.
func curveForOID(oid string) elliptic.Curve {
	switch oid {
	case oidP256:
		return elliptic.P256()
	case oidP384:
		return elliptic.P384()
	case oidP521:
		return elliptic.P521()
	}
	return nil
}

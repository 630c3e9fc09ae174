// pgp.go owns the VOEvent OpenPGP signature convention: trusted keyrings,
// finding the signed root element and its signature comment, and the
// verdict for one event (verifyEvent).
//
// Convention (standards.md §1e): an ASCII-armored detached v4 signature of
// type 0x00 over the root element's exact bytes, from the '<' of its start
// tag to the '>' of its end tag, carried in one XML comment after the root
// with every "-----" written as "=====".
//
// Invariants: a keyring is immutable once loaded (merge only before it is
// shared), so verifyEvent is safe for concurrent use; every self-signature
// is checked when a keyring loads, so a verification costs one signature.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"time"
)

// Verdicts, exactly those of testdata/vectors/pgp/expected.tsv.
const (
	verdictValid      = "valid"
	verdictInvalid    = "invalid"
	verdictUnknownKey = "unknown-key"
	verdictWeakHash   = "weak-hash"
	verdictMalformed  = "malformed"
	verdictExpired    = "expired"
	verdictRevoked    = "revoked"
	verdictUnsigned   = "unsigned"
)

// maxClockSkew is how far in the future a signature's creation time may be.
const maxClockSkew = 300 * time.Second

// Key flags (RFC 9580 §5.2.3.29).
const (
	flagCertify = 0x01
	flagSign    = 0x02
)

// sigResult is the outcome of checking one event's signature.
type sigResult struct {
	verdict string // one of the verdict constants
	signer  string // fingerprint (hex, upper case) of the signing key or subkey; set only when valid
	userID  string // the signer's primary user ID; set only when valid
	reason  string // why, when not valid; empty when valid
}

// keyring holds trusted public keys, indexed by fingerprint and key ID.
type keyring struct {
	entities []*pgpEntity
	byFpr    map[string][]*pgpKeyRef
	byKeyID  map[[8]byte][]*pgpKeyRef
	skipped  []string // keys left out while loading, and why
}

// pgpEntity is a transferable public key: a primary key, its user IDs and
// subkeys, with the outcome of checking its self-signatures.
type pgpEntity struct {
	primary     *pgpKey
	userIDs     []string // user IDs with a valid self-certification
	userID      string   // the primary user ID (or the first valid one)
	selfSig     *pgpSig  // newest valid self-signature (certification or direct-key)
	revocation  *pgpSig  // a valid key revocation signature, if any
	subkeys     []*pgpSubkey
	pendingUIDs []*pendingUID
	pendingSigs []*pgpSig // signatures directly on the primary key
}

// pendingUID is a user ID with its signatures, before they are checked.
type pendingUID struct {
	tag  byte
	data []byte
	sigs []*pgpSig
}

// pgpSubkey is a subkey with its newest valid binding.
type pgpSubkey struct {
	key        *pgpKey
	binding    *pgpSig // newest valid binding signature
	backSigOK  bool    // binding carries a valid primary-key binding (0x19) made by the subkey
	revocation *pgpSig
	sigs       []*pgpSig
}

// pgpKeyRef is one key (primary or subkey) that may have signed something.
type pgpKeyRef struct {
	ent *pgpEntity
	key *pgpKey
	sub *pgpSubkey // nil for the primary key
}

// loadKeyringFile reads a binary or armored keyring file.
func loadKeyringFile(path string) (*keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %v", err)
	}
	kr, err := loadKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %v", path, err)
	}
	return kr, nil
}

// loadKeyring parses one or more concatenated transferable public keys,
// binary or armored (several armor blocks allowed). Packets that are not
// needed are skipped; a key whose packets cannot be used is left out and
// noted in skipped; a framing error fails the whole keyring.
func loadKeyring(data []byte) (*keyring, error) {
	bin, err := dearmorKeys(data)
	if err != nil {
		return nil, err
	}
	ents, skipped, err := parseEntities(bin)
	if err != nil {
		return nil, err
	}
	kr := &keyring{skipped: skipped}
	for _, e := range ents {
		kr.add(e)
	}
	if len(kr.entities) == 0 {
		if len(skipped) > 0 {
			return nil, fmt.Errorf("no usable keys (%s)", skipped[0])
		}
		return nil, errors.New("no keys found")
	}
	return kr, nil
}

// dearmorKeys returns the binary packets of data, decoding armor if present.
func dearmorKeys(data []byte) ([]byte, error) {
	if !isArmored(data) {
		return data, nil
	}
	blocks, err := decodeArmorAll(data)
	if err != nil {
		return nil, err
	}
	if len(blocks) == 1 {
		return blocks[0].data, nil
	}
	var bin []byte
	for _, b := range blocks {
		bin = append(bin, b.data...)
	}
	return bin, nil
}

// merge adds the keys of other to k. Call it before k is shared.
func (k *keyring) merge(other *keyring) {
	for _, e := range other.entities {
		k.add(e)
	}
	k.skipped = append(k.skipped, other.skipped...)
}

func (k *keyring) add(e *pgpEntity) {
	if k.byFpr == nil {
		k.byFpr = map[string][]*pgpKeyRef{}
		k.byKeyID = map[[8]byte][]*pgpKeyRef{}
	}
	k.entities = append(k.entities, e)
	refs := []*pgpKeyRef{{ent: e, key: e.primary}}
	for _, s := range e.subkeys {
		refs = append(refs, &pgpKeyRef{ent: e, key: s.key, sub: s})
	}
	for _, r := range refs {
		k.byFpr[string(r.key.fpr)] = append(k.byFpr[string(r.key.fpr)], r)
		k.byKeyID[r.key.keyID] = append(k.byKeyID[r.key.keyID], r)
	}
}

// lookup finds the keys that may have made s: by issuer fingerprint if the
// signature names one, else by key ID.
func (k *keyring) lookup(s *pgpSig) []*pgpKeyRef {
	if k == nil || k.byFpr == nil {
		return nil
	}
	if s.issuerFpr != nil {
		return k.byFpr[string(s.issuerFpr)]
	}
	if len(s.issuerKeyID) == 8 {
		return k.byKeyID[[8]byte(s.issuerKeyID)]
	}
	return nil
}

// parseEntities splits binary packets into checked transferable keys.
// Secret-key packets are read as their public parts.
func parseEntities(bin []byte) (ents []*pgpEntity, skipped []string, err error) {
	var cur *pgpEntity
	var curSub *pgpSubkey
	var curUID *pendingUID
	skipping := false
	finish := func() {
		if cur != nil {
			if err := cur.check(); err != nil {
				skipped = append(skipped, fmt.Sprintf("key %s: %v", cur.primary.fprHex(), err))
			} else {
				ents = append(ents, cur)
			}
		}
		cur, curSub, curUID = nil, nil, nil
	}
	if len(bin) == 0 {
		return nil, nil, errNoPackets
	}
	for len(bin) > 0 {
		var p packet
		p, bin, err = readPacket(bin)
		if err != nil {
			return nil, nil, err
		}
		switch p.tag {
		case tagPublicKey, tagSecretKey:
			finish()
			k, kerr := parseKey(p.body, p.tag == tagSecretKey)
			if kerr != nil {
				skipped = append(skipped, kerr.Error())
				skipping = true
				continue
			}
			skipping = false
			cur = &pgpEntity{primary: k}
		case tagPublicSubkey, tagSecretSubkey:
			if skipping || cur == nil {
				continue
			}
			curUID = nil
			curSub = nil
			k, kerr := parseKey(p.body, p.tag == tagSecretSubkey)
			if kerr != nil {
				skipped = append(skipped, fmt.Sprintf("subkey of %s: %v", cur.primary.fprHex(), kerr))
				continue
			}
			curSub = &pgpSubkey{key: k}
			cur.subkeys = append(cur.subkeys, curSub)
		case tagUserID, tagUserAttr:
			if skipping || cur == nil {
				continue
			}
			curSub = nil
			curUID = &pendingUID{tag: p.tag, data: p.body}
			cur.pendingUIDs = append(cur.pendingUIDs, curUID)
		case tagSignature:
			if skipping || cur == nil {
				continue
			}
			s, serr := parseSignature(p.body)
			if serr != nil {
				continue // a signature we cannot read certifies nothing
			}
			// Each signature goes where its type says it belongs; one
			// that does not fit where it stands certifies nothing.
			switch s.sigType {
			case sigKeyRevocation, sigDirectKey:
				cur.pendingSigs = append(cur.pendingSigs, s)
			case sigSubkeyBinding, sigSubkeyRevoke:
				if curSub != nil {
					curSub.sigs = append(curSub.sigs, s)
				}
			default:
				if curUID != nil {
					curUID.sigs = append(curUID.sigs, s)
				}
			}
		default:
			// Trust (12), markers, and anything else: not needed here.
		}
	}
	finish()
	return ents, skipped, nil
}

// selfSigHash reports whether a hash is acceptable on a self-signature. SHA-1
// is still allowed here (old keys carry SHA-1 self-signatures); it is never
// allowed on a document signature.
func selfSigHash(id byte) bool {
	return id == hashSHA1 || id == hashSHA224 || id == hashSHA256 || id == hashSHA384 || id == hashSHA512
}

// checkBy verifies s as made by key over the parts.
func checkBy(key *pgpKey, s *pgpSig, parts ...[]byte) bool {
	if !selfSigHash(s.hashAlgo) || !s.hasCreated || s.unknownCritical >= 0 || key.pub == nil {
		return false
	}
	if s.issuerFpr != nil && !bytes.Equal(s.issuerFpr, key.fpr) {
		return false
	}
	if s.issuerFpr == nil && len(s.issuerKeyID) == 8 && [8]byte(s.issuerKeyID) != key.keyID {
		return false
	}
	h, _ := hashFor(s.hashAlgo)
	if s.version != key.version {
		return false
	}
	return key.verifyDigest(s, h, s.digest(h, parts...)) == nil
}

// newer reports whether a is a later signature than b (b may be nil).
func newer(a, b *pgpSig) bool {
	return b == nil || a.created.After(b.created) || a.created.Equal(b.created)
}

// check verifies the entity's self-signatures, revocations and subkey
// bindings, keeping only what verifies.
func (e *pgpEntity) check() error {
	pk := e.primary
	if pk.pub == nil {
		return unsupportedf("%s not supported", pk.unsupp)
	}
	keyPart := [][]byte{pk.hashPrefix(), pk.body}
	for _, s := range e.pendingSigs {
		switch s.sigType {
		case sigKeyRevocation:
			if checkBy(pk, s, keyPart...) && e.revocation == nil {
				e.revocation = s
			}
		case sigDirectKey:
			if checkBy(pk, s, keyPart...) && newer(s, e.selfSig) {
				e.selfSig = s
			}
		}
	}
	var primaryUIDSig *pgpSig
	for _, u := range e.pendingUIDs {
		var best *pgpSig
		for _, s := range u.sigs {
			if s.sigType < sigCertGeneric || s.sigType > sigCertPositive {
				continue
			}
			if checkBy(pk, s, pk.hashPrefix(), pk.body, uidHashPrefix(u.tag, len(u.data)), u.data) && newer(s, best) {
				best = s
			}
		}
		if best == nil {
			continue
		}
		if newer(best, e.selfSig) {
			e.selfSig = best
		}
		if u.tag == tagUserID {
			e.userIDs = append(e.userIDs, string(u.data))
			if best.primaryUID && (primaryUIDSig == nil || newer(best, primaryUIDSig)) {
				primaryUIDSig, e.userID = best, string(u.data)
			}
		}
	}
	if e.userID == "" && len(e.userIDs) > 0 {
		e.userID = e.userIDs[0]
	}
	e.pendingUIDs, e.pendingSigs = nil, nil
	if e.selfSig == nil {
		return errors.New("no valid self-signature")
	}
	for _, sub := range e.subkeys {
		if sub.key.pub == nil {
			continue
		}
		parts := [][]byte{pk.hashPrefix(), pk.body, sub.key.hashPrefix(), sub.key.body}
		for _, s := range sub.sigs {
			switch s.sigType {
			case sigSubkeyRevoke:
				if sub.revocation == nil && checkBy(pk, s, parts...) {
					sub.revocation = s
				}
			case sigSubkeyBinding:
				if !checkBy(pk, s, parts...) || !newer(s, sub.binding) {
					continue
				}
				sub.binding, sub.backSigOK = s, false
				if s.embedded != nil {
					if bs, err := parseSignature(s.embedded); err == nil && bs.sigType == sigPrimaryBind && checkBy(sub.key, bs, parts...) {
						sub.backSigOK = true
					}
				}
			}
		}
		sub.sigs = nil
	}
	return nil
}

// signingStatus says whether ref may have made a document signature created
// at signed, judged at now. It returns "" and a reason, or a verdict.
func (ref *pgpKeyRef) signingStatus(signed, now time.Time) (verdict, reason string) {
	e := ref.ent
	fpr := ref.key.fprHex()
	if rev := e.revocation; rev != nil && hardRevocation(rev, signed) {
		return verdictRevoked, fmt.Sprintf("key %s revoked on %s", e.primary.fprHex(), rev.created.Format(time.DateOnly))
	}
	if exp, ok := expiry(e.primary, e.selfSig); ok && (!now.Before(exp) || !signed.Before(exp)) {
		return verdictExpired, fmt.Sprintf("key %s expired on %s", e.primary.fprHex(), exp.Format(time.DateOnly))
	}
	if ref.sub == nil {
		if e.selfSig.hasKeyFlags && e.selfSig.keyFlags&flagSign == 0 {
			return verdictInvalid, fmt.Sprintf("key %s is not a signing key (key flags 0x%02x)", fpr, e.selfSig.keyFlags)
		}
		return "", ""
	}
	sub := ref.sub
	if rev := sub.revocation; rev != nil && hardRevocation(rev, signed) {
		return verdictRevoked, fmt.Sprintf("subkey %s revoked on %s", fpr, rev.created.Format(time.DateOnly))
	}
	if sub.binding == nil {
		return verdictInvalid, fmt.Sprintf("subkey %s has no valid binding signature", fpr)
	}
	if sub.binding.hasKeyFlags && sub.binding.keyFlags&flagSign == 0 {
		return verdictInvalid, fmt.Sprintf("subkey %s is not a signing subkey (key flags 0x%02x)", fpr, sub.binding.keyFlags)
	}
	if !sub.backSigOK {
		return verdictInvalid, fmt.Sprintf("signing subkey %s lacks a valid primary-key back-signature", fpr)
	}
	if exp, ok := expiry(sub.key, sub.binding); ok && (!now.Before(exp) || !signed.Before(exp)) {
		return verdictExpired, fmt.Sprintf("subkey %s expired on %s", fpr, exp.Format(time.DateOnly))
	}
	return "", ""
}

// expiry is when key stops being valid according to self-signature s.
func expiry(key *pgpKey, s *pgpSig) (time.Time, bool) {
	if s == nil || s.keyExpiry == 0 {
		return time.Time{}, false
	}
	return key.created.Add(time.Duration(s.keyExpiry) * time.Second), true
}

// hardRevocation reports whether revocation rev voids a signature made at
// signed. Reasons "superseded" (1) and "retired" (3) are soft: signatures
// made before the revocation stay good. Any other reason, or none, is hard
// (RFC 9580 §5.2.3.31).
func hardRevocation(rev *pgpSig, signed time.Time) bool {
	if rev.hasRevReason && (rev.revReason == 1 || rev.revReason == 3) {
		return !signed.Before(rev.created)
	}
	return true
}

// verifyEvent checks the signature embedded in raw by the convention
// against the keys in kr at time now. It is safe for concurrent use.
func verifyEvent(raw []byte, kr *keyring, now time.Time) sigResult {
	start, end, err := rootElementSpan(raw)
	if err != nil {
		return sigResult{verdict: verdictMalformed, reason: "xml: " + err.Error()}
	}
	return verifySpan(raw, start, end, kr, now)
}

// verifySpan checks the signature of a document whose root element is
// raw[start:end] (the span scanRootWith found, which the broker's event
// already holds as its identity): the signed bytes are that span and the
// signature comment follows it.
func verifySpan(raw []byte, start, end int, kr *keyring, now time.Time) sigResult {
	comments, err := signatureComments(raw[end:])
	if err != nil {
		return sigResult{verdict: verdictMalformed, reason: err.Error()}
	}
	switch len(comments) {
	case 0:
		return sigResult{verdict: verdictUnsigned, reason: "no signature comment after the root element"}
	case 1:
	default:
		return sigResult{verdict: verdictMalformed, reason: fmt.Sprintf("%d signature comments; exactly one is allowed", len(comments))}
	}
	sig, err := parseSignatureComment(comments[0])
	if err != nil {
		return sigResult{verdict: verdictMalformed, reason: err.Error()}
	}
	return checkDocumentSignature(raw[start:end], sig, kr, now)
}

// parseSignatureComment undoes the "=====" substitution, decodes the armor
// and parses the one signature packet inside.
func parseSignatureComment(comment []byte) (*pgpSig, error) {
	text := bytes.ReplaceAll(comment, []byte("====="), []byte("-----"))
	block, rest, err := decodeArmor(text)
	if err != nil {
		return nil, err
	}
	if block.kind != "SIGNATURE" {
		return nil, fmt.Errorf("armor: %q block, want SIGNATURE", block.kind)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("text after the armor END line")
	}
	p, after, err := readPacket(block.data)
	if err != nil {
		return nil, err
	}
	if p.tag != tagSignature {
		return nil, fmt.Errorf("packet: tag %d, want a signature (2)", p.tag)
	}
	if len(after) != 0 {
		return nil, errors.New("armor: more than one packet; want one signature")
	}
	return parseSignature(p.body)
}

// checkDocumentSignature judges sig over the signed bytes.
func checkDocumentSignature(signed []byte, sig *pgpSig, kr *keyring, now time.Time) sigResult {
	fail := func(verdict, format string, a ...any) sigResult {
		return sigResult{verdict: verdict, reason: fmt.Sprintf(format, a...)}
	}
	refs := kr.lookup(sig)
	if len(refs) == 0 {
		switch {
		case sig.issuerFpr != nil:
			return fail(verdictUnknownKey, "no key %X in the keyring", sig.issuerFpr)
		case sig.issuerKeyID != nil:
			return fail(verdictUnknownKey, "no key with ID %X in the keyring", sig.issuerKeyID)
		}
		return fail(verdictUnknownKey, "signature names no issuer")
	}
	weak := false
	switch sig.hashAlgo {
	case hashMD5, hashSHA1:
		weak = true
	case hashRIPEMD160:
		return fail(verdictWeakHash, "hash %s is too weak", hashName(sig.hashAlgo))
	case hashSHA256, hashSHA384, hashSHA512, hashSHA224:
	default:
		return fail(verdictInvalid, "unsupported %s", hashName(sig.hashAlgo))
	}
	if sig.sigType != sigBinary {
		return fail(verdictInvalid, "signature type 0x%02x; the convention requires 0x00 (binary document)", sig.sigType)
	}
	if !sig.hasCreated {
		return fail(verdictInvalid, "signature has no hashed creation time")
	}
	if sig.created.After(now.Add(maxClockSkew)) {
		return fail(verdictInvalid, "signature created in the future (%s)", sig.created.Format(time.RFC3339))
	}
	if sig.unknownCritical >= 0 {
		return fail(verdictInvalid, "unknown critical subpacket %d", sig.unknownCritical)
	}
	h, _ := hashFor(sig.hashAlgo)
	digest := sig.digest(h, signed)
	var ref *pgpKeyRef
	var lastErr error
	for _, r := range refs {
		if lastErr = r.key.verifyDigest(sig, h, digest); lastErr == nil {
			ref = r
			break
		}
	}
	if ref == nil {
		return fail(verdictInvalid, "%v (key %s)", lastErr, refs[0].key.fprHex())
	}
	if weak {
		return fail(verdictWeakHash, "hash %s is too weak (key %s)", hashName(sig.hashAlgo), ref.key.fprHex())
	}
	if sig.sigExpiry != 0 && !now.Before(sig.created.Add(time.Duration(sig.sigExpiry)*time.Second)) {
		return fail(verdictExpired, "signature expired (key %s)", ref.key.fprHex())
	}
	if v, reason := ref.signingStatus(sig.created, now); v != "" {
		return fail(v, "%s", reason)
	}
	return sigResult{verdict: verdictValid, signer: ref.key.fprHex(), userID: ref.ent.userID}
}

// signatureComments returns the contents of the signature comments in the
// text after the root element, which may hold only whitespace, comments and
// processing instructions.
func signatureComments(tail []byte) ([][]byte, error) {
	var out [][]byte
	i := 0
	for {
		for i < len(tail) && isXMLSpace(tail[i]) {
			i++
		}
		if i == len(tail) {
			return out, nil
		}
		switch {
		case bytes.HasPrefix(tail[i:], []byte("<!--")):
			j := bytes.Index(tail[i+4:], []byte("-->"))
			if j < 0 {
				return nil, errors.New("unterminated comment after the root element")
			}
			c := tail[i+4 : i+4+j]
			i += 4 + j + 3
			if bytes.Contains(c, []byte("--")) || bytes.HasSuffix(c, []byte("-")) {
				return nil, errors.New("comment after the root element contains '--' (armor lines not written with =====?)")
			}
			if bytes.Contains(c, []byte("=====BEGIN PGP SIGNATURE")) {
				out = append(out, c)
			}
		case bytes.HasPrefix(tail[i:], []byte("<?")):
			j := bytes.Index(tail[i+2:], []byte("?>"))
			if j < 0 {
				return nil, errors.New("unterminated processing instruction after the root element")
			}
			i += 2 + j + 2
		default:
			return nil, errors.New("content after the root element")
		}
	}
}

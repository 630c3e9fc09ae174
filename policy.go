// policy.go owns the broker's signature policy: which keys are trusted
// (--keyring, re-read on SIGHUP) and what happens to an event whose
// signature is not valid (--require-signature).
//
// Invariant: the broker never changes an event's bytes, so a signature made
// by the author survives any number of relays.
package main

import (
	"fmt"
)

// loadKeyrings reads every --keyring file into one keyring; nil when none
// is configured.
func loadKeyrings(paths []string) (*keyring, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	var all *keyring
	for _, p := range paths {
		kr, err := loadKeyringFile(p)
		if err != nil {
			return nil, fmt.Errorf("keyring %s: %w", p, err)
		}
		if all == nil {
			all = kr
		} else {
			all.merge(kr)
		}
	}
	return all, nil
}

// checkSignature records a new event's signature verdict when keyrings are
// configured, and returns the refusal when --require-signature refuses it
// (nil to go on). The signed bytes are the event's identity span.
func (b *broker) checkSignature(ev *event) *rejection {
	kr := b.keyring.Load()
	if kr == nil {
		return nil
	}
	res := verifySpan(ev.raw, ev.rootStart, ev.rootEnd, kr, b.now())
	ev.sigVerdict, ev.signer = res.verdict, res.signer
	b.m.signatures.inc(res.verdict)
	if res.verdict == "valid" {
		b.log.Info("signature valid", "ivorn", ev.ivorn, "signer", res.signer, "uid", res.userID)
		return nil
	}
	b.log.Info("signature not valid", "ivorn", ev.ivorn, "verdict", res.verdict, "reason", res.reason)
	if !b.cfg.requireSignature {
		return nil
	}
	reason := "signature " + res.verdict
	if res.reason != "" {
		reason += ": " + res.reason
	}
	return &rejection{class: classSignature, reason: reason}
}

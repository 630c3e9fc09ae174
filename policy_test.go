package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testKeyFiles makes a signing key and writes its armored public and secret
// halves to files, returning their paths.
func testKeyFiles(t *testing.T, uid string) (pubFile, secFile string) {
	t.Helper()
	dir := t.TempDir()
	pub, sec, err := generateKey(uid, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	pubFile, secFile = filepath.Join(dir, "pub.asc"), filepath.Join(dir, "sec.asc")
	writeFile(t, pubFile, string(pub))
	writeFile(t, secFile, string(sec))
	return pubFile, secFile
}

// TestSignedEventThroughTwoBrokers: with --require-signature, a signed event
// passes author → A → B → subscriber byte for byte and still verifies at
// the end; an unsigned one is naked at A with the verdict.
func TestSignedEventThroughTwoBrokers(t *testing.T) {
	pubFile, secFile := testKeyFiles(t, "Test Author <author@example.org>")

	cfgA := receiveConfig(t)
	cfgA.keyrings = []string{pubFile}
	cfgA.requireSignature = true
	a := startBroker(t, cfgA)
	cfgB := testConfig(t)
	cfgB.localIVO = "ivo://test/brokerB"
	cfgB.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfgB.remotes = []string{a.broadcastAddr()}
	cfgB.keyrings = []string{pubFile}
	cfgB.requireSignature = true
	b := startBroker(t, cfgB)
	sub := dialSubscriber(t, b.broadcastAddr(), nil)
	waitFor(t, "B subscribed to A", func() bool { return subscriberCount(a.broker) == 1 })

	unsigned := testEventBytes("unsigned")
	r := rawExchange(t, a.receiveAddr(), unsigned)
	if r == nil || r.role != "nak" || !strings.Contains(r.result, "signature unsigned") {
		t.Fatalf("unsigned event: %+v", r)
	}
	key, err := loadSecretKeyFile(secFile)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signEvent(testEventBytes("signed"), key, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := rawExchange(t, a.receiveAddr(), signed); r == nil || r.role != "ack" {
		t.Fatalf("signed event: %+v", r)
	}
	got := sub.nextEvent(3 * time.Second)
	if !bytes.Equal(got, signed) {
		t.Fatalf("subscriber of B got %q", got)
	}
	kr, err := loadKeyringFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	if res := verifyEvent(got, kr, time.Now()); res.verdict != "valid" {
		t.Errorf("at the end: %+v", res)
	}
	if a.m.signatures.get("valid") != 1 || a.m.signatures.get("unsigned") != 1 || b.m.signatures.get("valid") != 1 {
		t.Errorf("verdict counts A valid=%d unsigned=%d B valid=%d", a.m.signatures.get("valid"), a.m.signatures.get("unsigned"), b.m.signatures.get("valid"))
	}
	// The unsigned event was not recorded: the same bytes get the same answer.
	if r := rawExchange(t, a.receiveAddr(), unsigned); r == nil || !strings.Contains(r.result, "signature unsigned") {
		t.Errorf("resubmitted unsigned event: %+v", r)
	}
}

// TestSubscriberDropsUnsigned: a subscriber with --require-signature acks an
// unsigned event from upstream but neither relays nor records it.
func TestSubscriberDropsUnsigned(t *testing.T) {
	pubFile, _ := testKeyFiles(t, "K <k@example.org>")
	a := startBroker(t, receiveConfig(t)) // no policy upstream
	cfgB := testConfig(t)
	cfgB.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfgB.remotes = []string{a.broadcastAddr()}
	cfgB.keyrings = []string{pubFile}
	cfgB.requireSignature = true
	b := startBroker(t, cfgB)
	sub := dialSubscriber(t, b.broadcastAddr(), nil)
	waitFor(t, "B subscribed", func() bool { return subscriberCount(a.broker) == 1 })
	if r := rawExchange(t, a.receiveAddr(), testEventBytes("up-unsigned")); r == nil || r.role != "ack" {
		t.Fatalf("submit: %+v", r)
	}
	waitFor(t, "B judged it", func() bool { return b.m.rejected.get("signature") == 1 })
	if ev := sub.nextEvent(200 * time.Millisecond); ev != nil {
		t.Fatalf("unsigned event relayed by B: %q", ev)
	}
	waitFor(t, "A got B's ack", func() bool {
		p := a.broadcasters[0].peers()
		return len(p) == 1 && p[0].Delivered == 1 && p[0].AcksOutstanding == 0
	})
	if b.db.len() != 0 {
		t.Error("unsigned event recorded at B")
	}
}

func TestSendvoSignKey(t *testing.T) {
	pubFile, secFile := testKeyFiles(t, "Author <a@example.org>")
	cfg := receiveConfig(t)
	cfg.keyrings = []string{pubFile}
	cfg.requireSignature = true
	a := startBroker(t, cfg)
	host, port, _ := splitHostPort(t, a.receiveAddr())
	var out, errb bytes.Buffer
	code := runSendvo([]string{"-h", host, "-p", port, "--sign-key", secFile}, bytes.NewReader(testEventBytes("sendvo-signed")), &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if a.m.signatures.get("valid") != 1 {
		t.Errorf("broker saw no valid signature")
	}
	code = runSendvo([]string{"-h", host, "-p", port, "--sign-key", filepath.Join(t.TempDir(), "missing")}, bytes.NewReader(testEventBytes("x")), &out, &errb)
	if code != exitFail {
		t.Errorf("missing key: exit %d", code)
	}
}

package main

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// spoolwDurDial connects a TLS subscriber that acks nothing by itself and
// answers the broker's authenticate with filters and, unless since is "",
// replay-since.
func spoolwDurDial(t testing.TB, addr string, cfg *tls.Config, filters []string, since string) *testSubscriber {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(raw, cfg)
	if err := tlsHandshake(context.Background(), c, 5*time.Second); err != nil {
		raw.Close()
		t.Fatal(err)
	}
	s := &testSubscriber{t: t, conn: c, noAck: true, events: make(chan []byte, 1000), others: make(chan *transport, 100), closed: make(chan struct{})}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		t.Fatalf("waiting for authenticate: %v", err)
	}
	tr, err := parseTransport(msg)
	if err != nil || tr.role != "authenticate" {
		t.Fatalf("first message: %v %s", err, msg)
	}
	c.SetReadDeadline(time.Time{})
	var extra []param
	if since != "" {
		extra = append(extra, param{spoolwParamReplaySince, since})
	}
	if err := writeFrame(c, newAuthenticateResponse(tr.origin, "", purposeTest, filters, time.Now(), extra...).marshal()); err != nil {
		t.Fatal(err)
	}
	go s.loop()
	t.Cleanup(func() { c.Close() })
	return s
}

// spoolwDurAnswer sends an ack (or a nak) of the event local.
func spoolwDurAnswer(t testing.TB, s *testSubscriber, local string, nak bool) {
	t.Helper()
	tr := newAck(spoolwIvorn(local), "", time.Now())
	if nak {
		tr = newNak(spoolwIvorn(local), "", "not wanted", time.Now())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := writeFrame(s.conn, tr.marshal()); err != nil {
		t.Fatal(err)
	}
}

// spoolwDurSeq is the spool seq of the event local.
func spoolwDurSeq(t testing.TB, tb *testBroker, local string) uint64 {
	t.Helper()
	e, ok := tb.spoolw.sp.get(spoolwIvorn(local))
	if !ok {
		t.Fatalf("%s is not spooled", local)
	}
	return e.seq
}

// spoolwDurEnv is a TLS broadcaster (plain receiver) whose peers file
// lists alice as durable and bob as not.
type spoolwDurEnv struct {
	e                  *tlswTestEnv
	eventDB            string
	alice, bob         *tls.Config
	aliceFilter        []string
	alicePin, bobPin   string
	aliceCrt, aliceKey string
}

func newSpoolwDurEnv(t *testing.T) *spoolwDurEnv {
	e := newTLSWTestEnv(t)
	aCrt, aKey, aPin := tlsTestSelfSigned(t, e.dir, "alice")
	bCrt, bKey, bPin := tlsTestSelfSigned(t, e.dir, "bob")
	writeFile(t, e.peersFile, aPin+" alice allow=subscriber durable\n"+bPin+" bob allow=subscriber\n")
	return &spoolwDurEnv{e: e, eventDB: t.TempDir(), alice: e.client(t, aCrt, aKey), bob: e.client(t, bCrt, bKey),
		aliceFilter: []string{"//Param[@name='magnitude' and @value='18']"}, alicePin: aPin, bobPin: bPin, aliceCrt: aCrt, aliceKey: aKey}
}

func (d *spoolwDurEnv) start(t *testing.T) *testBroker {
	cfg := d.e.config(t, tlsClientAuthRequire)
	cfg.receive = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfg.eventDB = d.eventDB
	return startBroker(t, cfg)
}

// TestSpoolwDurable: a durable identity's first connection gets nothing
// old; it gets events live, acks some and naks one (which ends the
// connection); after a broker restart it reconnects without asking and gets
// exactly the unacked and the missed ones that pass its filter, once, in
// spool order, then live ones; a rejected one counts as done. A non-durable
// identity that does not ask gets nothing old.
func TestSpoolwDurable(t *testing.T) {
	d := newSpoolwDurEnv(t)
	tb := d.start(t)
	spoolwSend(t, tb, "old1", "old2")

	alice := spoolwDurDial(t, tb.broadcastAddr(), d.alice, d.aliceFilter, "")
	bob := mustTLSWSubscriber(t, tb.broadcastAddr(), d.bob, []string{})
	waitFor(t, "two subscribers", func() bool { return subscriberCount(tb.broker) == 2 })
	waitLog(t, tb, "durable subscriber connected", "identity=alice")
	time.Sleep(100 * time.Millisecond) // the authenticate responses are read
	got, _ := spoolwCollect(alice, 300*time.Millisecond)
	spoolwWantIvorns(t, "alice's first connection", got)
	got, _ = spoolwCollect(bob, 10*time.Millisecond)
	spoolwWantIvorns(t, "bob without asking", got)

	spoolwSend(t, tb, "b1", "b2", "b3", "b4")
	got, _ = spoolwCollect(alice, 300*time.Millisecond)
	spoolwWantIvorns(t, "alice live", got, "b1", "b2", "b3", "b4")
	spoolwDurAnswer(t, alice, "b1", false)
	spoolwDurAnswer(t, alice, "b3", false)
	dur := tb.spoolw.dur
	s1, s3 := spoolwDurSeq(t, tb, "b1"), spoolwDurSeq(t, tb, "b3")
	waitFor(t, "alice's acks recorded", func() bool { return !dur.owed("alice", s1) && !dur.owed("alice", s3) })
	spoolwDurAnswer(t, alice, "b4", true) // final for b4; the broker hangs up
	if !alice.waitClosed(3 * time.Second) {
		t.Fatal("the broker kept alice after her nak")
	}
	got, _ = spoolwCollect(bob, 100*time.Millisecond)
	spoolwWantIvorns(t, "bob live", got, "b1", "b2", "b3", "b4")

	// Missed while away: c1, c2 and one her filter rejects.
	spoolwSend(t, tb, "c1")
	if code := runSendvoTo(t, tb.receiveAddr(), spoolwEventBytes("skip", 99, 0)); code != exitOK {
		t.Fatalf("sendvo skip: exit %d", code)
	}
	spoolwSend(t, tb, "c2")
	waitFor(t, "alice gone", func() bool { return subscriberCount(tb.broker) == 1 })
	tb.stop()
	if _, err := os.Stat(filepath.Join(d.eventDB, cursorDurableName)); err != nil {
		t.Fatalf("no position file after stop: %v", err)
	}

	tb = d.start(t)
	dur = tb.spoolw.dur
	alice = spoolwDurDial(t, tb.broadcastAddr(), d.alice, d.aliceFilter, "")
	bob = mustTLSWSubscriber(t, tb.broadcastAddr(), d.bob, []string{})
	waitFor(t, "two subscribers again", func() bool { return subscriberCount(tb.broker) == 2 })
	got, _ = spoolwCollect(alice, 500*time.Millisecond)
	spoolwWantIvorns(t, "alice after the restart", got, "b2", "c1", "c2")
	spoolwSend(t, tb, "d1")
	got, _ = spoolwCollect(alice, 300*time.Millisecond)
	spoolwWantIvorns(t, "alice live after catching up", got, "d1")
	got, _ = spoolwCollect(bob, 100*time.Millisecond)
	spoolwWantIvorns(t, "bob after the restart, without asking", got, "d1")

	// Once everything is acked (skip was rejected by her filter), nothing
	// is owed: the position is the head.
	sskip := spoolwDurSeq(t, tb, "skip")
	if dur.owed("alice", sskip) {
		t.Errorf("the event her filter rejected is still owed")
	}
	for _, l := range []string{"b2", "c1", "c2", "d1"} {
		spoolwDurAnswer(t, alice, l, false)
	}
	head := tb.spoolw.sp.head()
	waitFor(t, "alice's position at the head", func() bool { f, _ := dur.floor("alice"); return f == head })
}

// TestSpoolwDurableAskEarlier: a durable identity that asks for
// replay-since an earlier time gets everything since then, acked or not;
// one that asks later still gets what it is owed. Events it was sent live
// and left unacknowledged when it went are owed next time.
func TestSpoolwDurableAskEarlier(t *testing.T) {
	d := newSpoolwDurEnv(t)
	tb := d.start(t)
	t0 := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
	spoolwSend(t, tb, "old1")
	alice := spoolwDurDial(t, tb.broadcastAddr(), d.alice, nil, "")
	waitLog(t, tb, "durable subscriber connected", "identity=alice")
	spoolwSend(t, tb, "e1", "e2")
	got, _ := spoolwCollect(alice, 300*time.Millisecond)
	spoolwWantIvorns(t, "alice live", got, "e1", "e2")
	spoolwDurAnswer(t, alice, "e1", false)
	s1 := spoolwDurSeq(t, tb, "e1")
	waitFor(t, "e1 acked", func() bool { return !tb.spoolw.dur.owed("alice", s1) })
	alice.conn.Close()
	waitFor(t, "alice gone", func() bool { return subscriberCount(tb.broker) == 0 })

	// Asking later than her position: she still gets e2 (owed), not e1.
	alice = spoolwDurDial(t, tb.broadcastAddr(), d.alice, nil, time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano))
	got, _ = spoolwCollect(alice, 500*time.Millisecond)
	spoolwWantIvorns(t, "alice asking later", got, "e2")
	alice.conn.Close()
	waitFor(t, "alice gone again", func() bool { return subscriberCount(tb.broker) == 0 })

	// Asking earlier: everything since then, in spool order.
	alice = spoolwDurDial(t, tb.broadcastAddr(), d.alice, nil, t0)
	got, _ = spoolwCollect(alice, 500*time.Millisecond)
	spoolwWantIvorns(t, "alice asking earlier", got, "old1", "e1", "e2")
}

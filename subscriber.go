// subscriber.go owns the subscriber role (--remote): we dial an upstream
// broker, answer its authenticate (with our --filter expressions) and
// iamalive, ack every event it sends, and pass new events to our
// broadcasters and handlers.
//
// Invariants: we never nak (a nak can get us dropped upstream, as Comet
// notes); every event is acked, after its event-DB record reached the OS;
// reconnection backs off exponentially with jitter, and the back-off is
// reset only after a link has stayed up for backoffReset (contract
// difference 5), so a broker that accepts and drops at once is not hammered.
package main

import (
	"bufio"
	"context"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

type upstream struct {
	b    *broker
	addr string

	mu       sync.Mutex
	state    string // connecting, connected, backoff
	since    time.Time
	software string
	lastMsg  atomic.Int64 // unix nanoseconds
	received atomic.Int64
}

func newUpstream(b *broker, addr string) *upstream {
	return &upstream{b: b, addr: addr, state: "connecting"}
}

func (u *upstream) setState(s string) {
	u.mu.Lock()
	u.state, u.since = s, u.b.now()
	u.mu.Unlock()
}

func (u *upstream) status() peerStatus {
	u.mu.Lock()
	defer u.mu.Unlock()
	p := peerStatus{Role: "upstream", Address: u.addr, State: u.state, Since: u.since, Software: u.software, Delivered: u.received.Load()}
	if t := u.lastMsg.Load(); t != 0 {
		p.LastMessage = time.Unix(0, t)
	}
	return p
}

// backoff returns the wait before reconnection attempt n (from 1):
// exponential from backoffBase, capped at backoffMax, with jitter in
// [d/2, d) so that many subscribers do not reconnect in step.
func backoff(n int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// run keeps a connection to the upstream broker until ctx ends.
func (u *upstream) run(ctx context.Context) {
	b := u.b
	failures := 0
	for ctx.Err() == nil {
		u.setState("connecting")
		d := net.Dialer{Timeout: b.cfg.dialTimeout}
		conn, err := d.DialContext(ctx, "tcp", u.addr)
		if err == nil {
			start := b.now()
			u.setState("connected")
			b.log.Info("connected to upstream broker", "remote", u.addr)
			reason := u.session(ctx, conn)
			up := b.now().Sub(start)
			b.log.Info("upstream connection ended", "remote", u.addr, "reason", reason, "up", up.Round(time.Millisecond))
			if up >= b.cfg.backoffReset {
				failures = 0
			}
		} else if ctx.Err() == nil {
			b.log.Warn("cannot connect to upstream broker", "remote", u.addr, "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		wait := backoff(failures, b.cfg.backoffBase, b.cfg.backoffMax)
		u.setState("backoff")
		b.log.Info("reconnecting to upstream broker", "remote", u.addr, "in", wait.Round(time.Millisecond), "attempt", failures)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// session runs one connection and says why it ended.
func (u *upstream) session(ctx context.Context, conn net.Conn) string {
	b := u.b
	untrack := b.track(conn)
	defer untrack()
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	deadline := b.now().Add(b.cfg.subscriberTimeout)
	br := bufio.NewReaderSize(conn, 16<<10)
	for {
		conn.SetReadDeadline(deadline)
		raw, err := readFrame(br, b.cfg.maxMessageSize)
		if err != nil {
			if ctx.Err() != nil {
				return "broker stopping"
			}
			msg, _ := describeReadError(err)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				msg = "no message for " + b.cfg.subscriberTimeout.String()
			}
			return msg
		}
		ri, err := scanRoot(raw)
		if err != nil {
			b.log.Warn("unparsable message from upstream", "remote", u.addr, "err", err)
			continue
		}
		var reply *transport
		switch {
		case isVOEventRole(ri.role):
			reply = u.handleEvent(raw, ri)
		case ri.role == "iamalive" || ri.role == "authenticate":
			tr, err := parseTransport(raw)
			if err != nil {
				b.log.Warn("unreadable message from upstream", "remote", u.addr, "role", ri.role, "err", err)
				continue
			}
			u.noteSoftware(tr)
			if ri.role == "iamalive" {
				reply = newIamaliveResponse(tr.origin, b.cfg.localIVO, b.purpose, b.now())
			} else {
				reply = newAuthenticateResponse(tr.origin, b.cfg.localIVO, b.purpose, b.cfg.filters, b.now())
			}
		case ri.role == "ack" || ri.role == "nak":
			b.log.Warn("incomprehensible message from upstream", "remote", u.addr, "role", ri.role)
		default:
			b.log.Warn("message with an unknown role from upstream", "remote", u.addr, "role", ri.role)
			continue // does not count as a sign of life
		}
		u.lastMsg.Store(b.now().UnixNano())
		deadline = b.now().Add(b.cfg.subscriberTimeout)
		if reply != nil {
			if err := writeMessage(conn, reply.marshal(), b.cfg.writeTimeout); err != nil {
				return "write failed: " + err.Error()
			}
		}
	}
}

func (u *upstream) noteSoftware(tr *transport) {
	sw := tr.software()
	if sw == "" {
		return
	}
	u.mu.Lock()
	changed := u.software != sw
	u.software = sw
	u.mu.Unlock()
	if changed {
		u.b.log.Info("upstream broker identified itself", "remote", u.addr, "software", sw)
	}
}

// handleEvent judges an event from upstream and returns the ack. Only the
// event database decides (as Comet's subscriber): no schema check. An event
// whose ivorn is not a valid IVOID, or that fails --require-signature, is
// acked and dropped.
func (u *upstream) handleEvent(raw []byte, ri rootInfo) *transport {
	b := u.b
	b.m.received.Add(1)
	u.received.Add(1)
	now := b.now()
	if !ri.hasIvorn {
		b.m.rejected.inc("missing-ivorn")
		b.log.Warn("event from upstream has no ivorn; cannot ack it", "remote", u.addr)
		return nil
	}
	ack := newAck(ri.ivorn, b.cfg.localIVO, now)
	if _, _, _, err := parseIVOID(ri.ivorn); err != nil {
		b.m.rejected.inc("ivoid")
		b.log.Info("event from upstream has an invalid IVOID; acked, not relayed", "remote", u.addr, "ivorn", ri.ivorn)
		return ack
	}
	ev := newEventFromScan(raw, ri, "upstream "+u.addr, now)
	if b.db.seenKey(ev.key) {
		b.m.duplicates.Add(1)
		b.log.Debug("event from upstream previously seen; acked, not relayed", "remote", u.addr, "ivorn", ri.ivorn)
		return ack
	}
	if reason := b.checkSignature(ev); reason != "" {
		b.m.rejected.inc("signature")
		b.log.Info("event from upstream refused; acked, not relayed", "remote", u.addr, "ivorn", ri.ivorn, "reason", reason)
		return ack
	}
	if !b.record(ev) {
		b.log.Debug("event from upstream previously seen; acked, not relayed", "remote", u.addr, "ivorn", ri.ivorn)
		return ack
	}
	b.log.Info("accepted event from upstream", "remote", u.addr, "ivorn", ri.ivorn, "role", ri.role, "bytes", len(raw))
	// Relay before acking: the ack's write can wait on a slow upstream,
	// our subscribers should not.
	b.dispatch(ev)
	return ack
}

// subscriber.go owns the subscriber role (--remote): we dial an upstream
// broker, answer its authenticate (with our --filter expressions) and
// iamalive, ack every event it sends, and hand each event to admission
// (admission.go), which relays and handles the new ones.
//
// Invariants: we never nak (a nak can get us dropped upstream, as Comet
// notes); every event with an ivorn is acked, after admission returned (so
// after its event-DB record reached the OS, and after it was relayed);
// reconnection backs off exponentially with jitter, and the back-off is
// reset only after a link has stayed up for backoffReset (contract
// difference 5), so a broker that accepts and drops at once is not hammered.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

type upstream struct {
	b    *broker
	addr string
	log  *slog.Logger

	mu       sync.Mutex
	state    string // connecting, connected, backoff
	since    time.Time
	software string
	lastMsg  atomic.Int64 // unix nanoseconds
	received atomic.Int64
}

func newUpstream(b *broker, addr string) *upstream {
	return &upstream{b: b, addr: addr, state: "connecting", log: b.log.With("role", "subscriber", "remote", addr)}
}

// limited logs a line the upstream caused, rate-limited per reason.
func (u *upstream) limited(level slog.Level, reason, msg string, args ...any) {
	u.b.rl.log(level, u.addr, reason, msg, append([]any{"role", "subscriber", "remote", u.addr}, args...)...)
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
	p.Identity = u.b.tlswUpstreamIdentity(u.addr)
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

// sleepCtx waits for d or until ctx ends; false when ctx ended. It is the
// broker's default wait (broker.wait), which tests replace.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// run keeps a connection to the upstream broker until ctx ends.
func (u *upstream) run(ctx context.Context) {
	b := u.b
	failures := 0
	for ctx.Err() == nil {
		u.setState("connecting")
		conn, err := b.tlswDial(ctx, u.addr) // b.dial, or TLS for a tls:/ssl: remote
		if err == nil {
			start := b.now()
			u.setState("connected")
			u.log.Info("connected to upstream broker")
			reason := u.session(ctx, conn)
			up := b.now().Sub(start)
			u.log.Info("upstream connection ended", "reason", reason.Error(), "up", up.Round(time.Millisecond))
			if up >= b.cfg.backoffReset {
				failures = 0
			}
		} else if ctx.Err() == nil {
			u.log.Warn("cannot connect to upstream broker", "err", err)
		}
		if ctx.Err() != nil {
			return
		}
		failures++
		wait := backoff(failures, b.cfg.backoffBase, b.cfg.backoffMax)
		u.setState("backoff")
		u.log.Info("reconnecting to upstream broker", "in", wait.Round(time.Millisecond), "attempt", failures)
		if !b.wait(ctx, wait) {
			return
		}
	}
}

// session runs one connection and says why it ended.
func (u *upstream) session(ctx context.Context, conn net.Conn) error {
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
		raw, charge, err := u.readFrame(ctx, br, deadline)
		if err != nil {
			if ctx.Err() != nil {
				return errStopping
			}
			end, _ := connEnd(err)
			if errors.Is(end, errTimedOut) {
				return fmt.Errorf("%w: no message for %s", errTimedOut, b.cfg.subscriberTimeout)
			}
			return end
		}
		reply, alive := u.handleMessage(raw, &charge)
		b.inflight.release(charge)
		if !alive {
			continue // does not count as a sign of life
		}
		u.lastMsg.Store(b.now().UnixNano())
		deadline = b.now().Add(b.cfg.subscriberTimeout)
		if reply != nil {
			if err := writeMessage(conn, reply.marshal(), b.cfg.writeTimeout); err != nil {
				return fmt.Errorf("%w: %v", errWriteFailed, err)
			}
		}
	}
}

// readFrame reads the next frame from the upstream, holding its charge of
// the in-flight budget (waiting for room until the read deadline).
func (u *upstream) readFrame(ctx context.Context, br *bufio.Reader, deadline time.Time) ([]byte, int64, error) {
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return readFrameCharged(rctx, br, nil, u.b.cfg.maxMessageSize, u.b.inflight)
}

// handleMessage answers one message from the upstream; alive is false for
// a message that is not a sign of life (unreadable, or an unknown role).
func (u *upstream) handleMessage(raw []byte, charge *int64) (reply *transport, alive bool) {
	b := u.b
	ri, err := scanRoot(raw)
	if err != nil {
		u.limited(slog.LevelWarn, "unparsable", "unparsable message from upstream", "err", err)
		return nil, false
	}
	switch {
	case isVOEventRole(ri.role):
		return u.handleEvent(raw, ri, charge), true
	case ri.role == "iamalive" || ri.role == "authenticate":
		tr, err := parseTransport(raw)
		if err != nil {
			u.limited(slog.LevelWarn, "unreadable", "unreadable message from upstream", "message", rateTruncate(ri.role, 64), "err", rateTruncate(err.Error(), 256))
			return nil, false
		}
		u.noteSoftware(tr)
		if ri.role == "iamalive" {
			return newIamaliveResponse(tr.origin, b.cfg.localIVO, b.purpose, b.now()), true
		}
		return newAuthenticateResponse(tr.origin, b.cfg.localIVO, b.purpose, b.cfg.filters, b.now(), b.spoolw.replayParams(u.addr)...), true
	case ri.role == "ack" || ri.role == "nak":
		u.limited(slog.LevelWarn, "incomprehensible", "incomprehensible message from upstream", "message", ri.role)
		return nil, true
	}
	u.limited(slog.LevelWarn, "unknown role", "message with an unknown role from upstream", "message", rateTruncate(ri.role, 64))
	return nil, false
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
		u.limited(slog.LevelInfo, "identified", "upstream broker identified itself", "software", rateTruncate(sw, 200))
	}
}

// checkUpstreamEvent is the subscriber's own check of an event: the
// receiver's well-formedness check (one encoding/xml pass, whose tree the
// filters then share), and an ivorn that is an IVOID. Comet's subscriber
// does not validate the schema, nor do we; but what is not XML is never
// relayed, so a downstream Comet never chokes on it.
func checkUpstreamEvent(raw []byte, ri rootInfo) (*document, *rejection) {
	doc, err := parseDocument(raw)
	if err != nil {
		return nil, &rejection{xmlErrorClass(err), err.Error()}
	}
	switch {
	case !ri.hasIvorn:
		return doc, &rejection{classMissingIvorn, "event from upstream has no ivorn"}
	default:
		if _, _, _, err := parseIVOID(ri.ivorn); err != nil {
			return doc, &rejection{classIVOID, "Invalid IVOID: " + ri.ivorn}
		}
	}
	return doc, nil
}

// handleEvent hands an event from upstream to admission and returns the
// ack. Every event with an ivorn is acked, whatever admission decided: a
// refused (not well-formed, bad IVOID, signature policy) or already seen
// event is dropped, never relayed, recorded or handled, but acked so that
// one bad event does not cost the link (a Comet upstream drops a subscriber
// that leaves ten events unacknowledged). One without an ivorn cannot be
// acked and gets nothing.
func (u *upstream) handleEvent(raw []byte, ri rootInfo, charge *int64) *transport {
	b := u.b
	u.received.Add(1)
	now := b.now()
	ev := newEvent(raw, ri, sourceUpstream, u.addr, now)
	ev.host = u.addr
	b.m.parses.Add(1)
	doc, pre := checkUpstreamEvent(raw, ri)
	b.chargeTree(charge, raw, doc)
	ev.doc = doc
	adm := b.admit(ev, pre, u.log)
	b.spoolw.noteUpstream(u.addr, adm)
	if !ri.hasIvorn {
		return nil
	}
	return newAck(ri.ivorn, b.cfg.localIVO, now)
}

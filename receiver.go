// receiver.go owns the receiver role: authors connect, send one event, and
// get one ack or nak before we close the connection (VTP 2.0 section 7).
//
// The receiver's own checks run first, cheapest first (validate.go:
// well-formed XML without a DOCTYPE, a VOEvent role, an ivorn, a valid
// IVOID with a local part, the VOEvent schema); admission (admission.go)
// then consults the event database, applies the signature policy and
// records the event, so a rejected event is never recorded as seen
// (contract difference 2). The receiver only turns the verdict into its
// reply: ack, nak with the reason, or a closed connection when the event
// has no ivorn to answer with.
package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
)

func (b *broker) handleAuthor(ctx context.Context, c net.Conn) {
	defer c.Close()
	peer := peerName(c)
	host := hostKey(c.RemoteAddr())
	log := lazyWith(b.log, "role", "receiver", "peer", peer)
	log = tlswLogWith(log, c)
	// Comet's 20 s timeout runs from the connection, not from the last
	// byte; it also bounds a wait for room in the in-flight budget.
	deadline := b.now().Add(b.cfg.receiverTimeout)
	c.SetDeadline(deadline)
	rctx := &lazyDeadline{Context: ctx, at: deadline}
	defer rctx.stop()
	raw, charge, err := readFrameCharged(rctx, c, nil, b.cfg.maxMessageSize, b.inflight)
	defer func() { b.inflight.release(charge) }()
	if err != nil {
		end, level := connEnd(err)
		b.rl.log(level, host, "no event", "author connection ended without an event: "+end.Error(), "role", "receiver", "addr", peer)
		var fe *frameError
		if errors.As(err, &fe) {
			b.offend(c.RemoteAddr(), end.Error())
		}
		return
	}
	reply := b.judgeSubmission(raw, peer, host, log, &charge, tlswConnOf(c))
	if reply == nil {
		return
	}
	if err := writeMessage(c, reply.marshal(), b.cfg.writeTimeout); err != nil {
		b.rl.log(slog.LevelWarn, host, "reply failed", "could not send reply to author", "role", "receiver", "addr", peer, "reply", reply.role, "err", err)
		return
	}
	log.Debug("sent "+reply.role, "ivorn", reply.origin)
}

// peerName names the other end of a connection for logs and /status.
func peerName(c net.Conn) string {
	peer := c.RemoteAddr().String()
	if peer == "" || peer == "@" {
		peer = "unix:" + c.LocalAddr().String()
	}
	return peer
}

// judgeSubmission runs the receiver's checks and admission on one message
// and returns the reply to send: nil to close without one.
func (b *broker) judgeSubmission(raw []byte, peer, host string, log *slog.Logger, charge *int64, from *tlswConn) *transport {
	now := b.now()
	doc, ivorn, rej := checkSubmission(raw)
	b.chargeTree(charge, raw, doc)
	ev := b.submissionEvent(raw, ivorn, peer, doc)
	ev.host = host
	ev.tlsFrom = from // nil for plain TCP
	if rej != nil && ivorn == "" {
		b.admit(ev, rej, log)
		b.rl.log(slog.LevelWarn, host, "no ivorn", "refused a submission with no ivorn to answer; closing", "role", "receiver", "addr", peer)
		return nil
	}
	switch v := b.admit(ev, rej, log); v.outcome {
	case admitted:
		return newAck(ivorn, b.cfg.localIVO, now)
	case duplicate:
		return newNak(ivorn, b.cfg.localIVO, nakPreviouslySeen, now)
	default:
		return newNak(ivorn, b.cfg.localIVO, v.refusal.nakText(), now)
	}
}

// submissionEvent makes the event for an author's message: its identity is
// the root element's span, and the tree validation built is kept for the
// filters.
func (b *broker) submissionEvent(raw []byte, ivorn, peer string, doc *document) *event {
	ri, err := scanRoot(raw)
	if err != nil {
		// Not a span the byte scan can follow (UTF-16, or a document
		// that did not parse): the whole message identifies it.
		ri = rootInfo{start: 0, end: len(raw)}
	}
	ri.ivorn = ivorn
	ev := newEvent(raw, ri, sourceAuthor, peer, b.now())
	if doc != nil {
		ev.doc = doc
		ev.role, _ = doc.elem.attr("role")
	}
	return ev
}

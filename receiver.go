// receiver.go owns the receiver role: authors connect, send one event, and
// get one ack or nak before we close the connection (VTP 2.0 section 7).
//
// The checks run in order, cheapest first, and the event database is
// consulted last, so a rejected event is never recorded as seen (contract
// difference 2): well-formed XML without a DOCTYPE, a VOEvent role, an
// ivorn, a valid IVOID with a local part, the VOEvent schema, the signature
// policy, and finally "not seen before".
package main

import (
	"context"
	"net"
)

func (b *broker) handleAuthor(ctx context.Context, c net.Conn) {
	defer c.Close()
	peer := c.RemoteAddr().String()
	if peer == "" || peer == "@" {
		peer = "unix:" + c.LocalAddr().String()
	}
	// Comet's 20 s timeout runs from the connection, not from the last byte.
	c.SetDeadline(b.now().Add(b.cfg.receiverTimeout))
	raw, err := readFrame(c, b.cfg.maxMessageSize)
	if err != nil {
		msg, level := describeReadError(err)
		b.log.Log(ctx, level, "author connection ended without an event: "+msg, "peer", peer)
		return
	}
	reply, ev := b.judgeSubmission(raw, peer)
	if reply != nil {
		if err := writeMessage(c, reply.marshal(), b.cfg.writeTimeout); err != nil {
			b.log.Warn("could not send reply to author", "peer", peer, "role", reply.role, "err", err)
		} else {
			b.log.Debug("sent "+reply.role, "peer", peer, "ivorn", reply.origin)
		}
	}
	if ev != nil {
		b.dispatch(ev)
	}
}

// judgeSubmission runs the receiver's checks on one message. It returns the
// reply to send (nil to close without one) and the event to relay (nil
// unless it was accepted).
func (b *broker) judgeSubmission(raw []byte, peer string) (*transport, *event) {
	b.m.received.Add(1)
	now := b.now()
	doc, ivorn, rej := checkSubmission(raw)
	if rej != nil {
		b.m.rejected.inc(rej.class)
		if ivorn == "" {
			b.log.Warn("refused a submission with no ivorn to answer; closing", "peer", peer, "reason", rej.Error())
			return nil, nil
		}
		b.log.Info("rejected event", "peer", peer, "ivorn", ivorn, "reason", rej.Error())
		return newNak(ivorn, b.cfg.localIVO, rej.nakText(), now), nil
	}
	ev := &event{raw: raw, ivorn: ivorn, from: "author " + peer, received: now, doc: doc}
	ev.role, _ = doc.elem.attr("role")
	if ri, err := scanRoot(raw); err == nil {
		ev.setRoot(raw[ri.start:ri.end])
	} else {
		ev.setRoot(raw) // an encoding the byte scan cannot follow (UTF-16)
	}
	if b.db.seenKey(ev.key) {
		b.m.duplicates.Add(1)
		b.log.Info("rejected event: previously seen", "peer", peer, "ivorn", ivorn)
		return newNak(ivorn, b.cfg.localIVO, "Previously seen by this broker", now), nil
	}
	if reason := b.checkSignature(ev); reason != "" {
		b.m.rejected.inc("signature")
		b.log.Info("rejected event", "peer", peer, "ivorn", ivorn, "reason", reason)
		return newNak(ivorn, b.cfg.localIVO, reason, now), nil
	}
	if !b.record(ev) {
		b.log.Info("rejected event: previously seen", "peer", peer, "ivorn", ivorn)
		return newNak(ivorn, b.cfg.localIVO, "Previously seen by this broker", now), nil
	}
	b.log.Info("accepted event", "peer", peer, "ivorn", ivorn, "role", ev.role, "bytes", len(raw))
	return newAck(ivorn, b.cfg.localIVO, now), ev
}

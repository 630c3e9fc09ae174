// admission.go owns the one admission step that every ingest path calls:
// authors through the receiver, VTP upstreams through the subscriber (and the
// Kafka bridge next). A path makes the event and runs its own checks (the
// receiver validates the schema, the subscriber does not, as Comet); admit
// then counts it, refuses what those checks refused, and for the rest asks,
// in order: seen before? signature policy? recorded? A new event is then
// dispatched to the broadcasters and handlers. Every admission counter
// (received, rejected by class, duplicates, accepted, relayed, signature
// verdicts, event-DB errors) is incremented here and nowhere else.
//
// One order for every path: record, relay, then reply. Relaying never
// blocks (each subscriber has its own bounded queue), but writing the reply
// can wait on a slow sender for up to the write timeout; replying first
// would let one slow author or upstream delay every subscriber. The record
// reaches the operating system before both, so a broker killed after it
// neither forgets an event it acknowledged nor relays it twice.
package main

import (
	"context"
	"log/slog"
)

// The class of a refusal by the signature policy, and the nak text of a
// duplicate (Comet's words).
const (
	classSignature    = "signature"
	nakPreviouslySeen = "Previously seen by this broker"
)

// admitOutcome is what admission decided.
type admitOutcome int

const (
	admitted  admitOutcome = iota // new: recorded, relayed and handed to the handlers
	duplicate                     // seen before: nothing done
	refused                       // refused by the path's checks or the signature policy
)

// admission is admit's verdict; refusal says why when the outcome is refused.
type admission struct {
	outcome admitOutcome
	refusal *rejection
}

// admit runs the admission step for ev, which the ingest path has made and
// checked (pre is its refusal, nil if it passed). log is the connection's
// logger. It returns after a new event has been recorded and dispatched, so
// the caller's reply always follows the relay.
func (b *broker) admit(ev *event, pre *rejection, log *slog.Logger) admission {
	b.m.received.Add(1)
	if pre != nil {
		b.m.rejected.inc(pre.class)
		b.logRefusal(ev, pre)
		return admission{outcome: refused, refusal: pre}
	}
	// Upstream duplicates are the normal traffic of a mesh of brokers; an
	// author's is worth a line.
	dupLevel := slog.LevelInfo
	if ev.kind != sourceAuthor {
		dupLevel = slog.LevelDebug
	}
	if b.db.seenKey(ev.key) {
		b.m.duplicates.Add(1)
		log.Log(context.Background(), dupLevel, "event previously seen", "ivorn", ev.ivorn)
		return admission{outcome: duplicate}
	}
	if r := b.checkSignature(ev); r != nil {
		b.m.rejected.inc(r.class)
		b.logRefusal(ev, r)
		return admission{outcome: refused, refusal: r}
	}
	if r := b.tlswAdmitRule(ev); r != nil { // TLS identity and pgp: key rules (tlswire.go)
		b.m.rejected.inc(r.class)
		b.logRefusal(ev, r)
		return admission{outcome: refused, refusal: r}
	}
	if !b.record(ev, log) {
		b.m.duplicates.Add(1)
		log.Log(context.Background(), dupLevel, "event previously seen", "ivorn", ev.ivorn)
		return admission{outcome: duplicate}
	}
	b.spoolw.admitted(ev)
	log.Info("accepted event", "ivorn", ev.ivorn, "role", ev.role, "bytes", len(ev.raw))
	if !b.anyFiltering() {
		// No subscriber filters: the tree is not needed, release it now
		// rather than keep it while the event waits in queues. (A
		// subscriber that installs filters later parses on demand.)
		ev.doc = nil
	}
	b.dispatch(ev)
	return admission{outcome: admitted}
}

// logRefusal logs a refused event, rate-limited per sender and class (a
// peer can send refusals as fast as it likes), echoing at most a little of
// what it sent.
func (b *broker) logRefusal(ev *event, r *rejection) {
	host := ev.host
	if host == "" {
		host = ev.from
	}
	b.rl.log(slog.LevelInfo, host, "rejected "+r.class, "rejected event", "from", ev.from,
		"ivorn", rateTruncate(ev.ivorn, 256), "reason", rateTruncate(r.Error(), 512))
}

// record remembers a new event; false is a duplicate (another connection
// recorded the same event since the seen check). The event DB record
// reaches the operating system before record returns true.
func (b *broker) record(ev *event, log *slog.Logger) bool {
	isNew, err := b.db.checkAndRecordKey(ev.key)
	if err != nil {
		// The in-memory record still happened: dedup goes on, only the
		// persistence is lost. Keep relaying; say so loudly.
		b.m.eventDBErrors.Add(1)
		log.Error("event database write failed; duplicates are still caught until restart", "ivorn", ev.ivorn, "err", err)
	}
	return isNew
}

// dispatch relays a new event to every broadcaster and queues it for the
// handlers. It never blocks on a subscriber or a handler.
func (b *broker) dispatch(ev *event) {
	b.m.accepted.Add(1)
	if len(b.broadcasters) > 0 {
		b.m.relayed.Add(1)
		for _, bc := range b.broadcasters {
			bc.relay(ev)
		}
	}
	b.hq.submit(ev)
	b.kafkaPublish(ev)
}

// anyFiltering reports whether any subscriber has filters installed.
func (b *broker) anyFiltering() bool {
	for _, bc := range b.broadcasters {
		if bc.filtering.Load() > 0 {
			return true
		}
	}
	return false
}

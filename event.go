// event.go owns the event as it travels through the broker: its exact bytes,
// its identity (the root element's span, found once by xmlscan.go), where it
// came from, and its parse tree, built at most once and only when something
// needs it (contract section 6).
//
// Invariants: event.raw is never modified after the event is made; every
// subscriber, handler and the event DB share the same slice. raw[rootStart:
// rootEnd] (also held as root) is both the dedup key's input and the bytes a
// signature is checked over, so the two identities are one by construction.
package main

import (
	"sync"
	"sync/atomic"
	"time"
)

// event is one VOEvent accepted (or being judged) by the broker.
type event struct {
	raw                []byte   // the message exactly as received
	root               []byte   // raw[rootStart:rootEnd]: the event's identity (VTP 2.0 section 8)
	rootStart, rootEnd int      // the root element's span in raw
	key                eventKey // eventKeyOf(root), set by setRoot
	ivorn              string
	role               string
	kind               string    // sourceAuthor, sourceUpstream, ...
	from               string    // who sent it: "author 127.0.0.1:4711" or "upstream host:8099"
	host               string    // the sender's host (hostKey), for rate-limited logs
	received           time.Time // when it arrived
	kafkaTopic         string    // the Kafka topic it came from (sourceKafka), for COMET_KAFKA_TOPIC

	// handled, when set, is called once every handler has finished with
	// the event (or skipped it), or at once when no handler takes it: the
	// Kafka bridge passes a partition's offset only then.
	handled      func()
	handlersLeft atomic.Int32

	sigVerdict string // signature verdict (valid, unsigned, ...); "" if not checked
	signer     string // signer's fingerprint when the verdict is valid

	spoolSeq uint64    // the spool's seq (spoolwire.go); 0: not spooled
	tlsFrom  *tlswConn // the TLS connection of the submitting author; nil otherwise (tlswire.go)

	docOnce sync.Once
	doc     *document // the parsed tree, built at most once (see tree)
	docErr  error
}

// Where events come from (event.kind, and the first word of event.from).
const (
	sourceAuthor   = "author"
	sourceUpstream = "upstream"
	sourceKafka    = "kafka" // the Kafka bridge (kafka_bridge.go)
)

// newEvent makes the event for raw, whose root element scanRoot found (ri),
// received now from addr by an ingest path of the given kind.
func newEvent(raw []byte, ri rootInfo, kind, addr string, now time.Time) *event {
	ev := &event{raw: raw, ivorn: ri.ivorn, role: ri.role, kind: kind, from: kind + " " + addr, received: now}
	ev.setSpan(ri.start, ri.end)
	return ev
}

// setSpan sets the root element's span, and with it the event's identity.
func (e *event) setSpan(start, end int) {
	e.rootStart, e.rootEnd = start, end
	e.setRoot(e.raw[start:end])
}

// setRoot sets the bytes that identify the event, and their key.
func (e *event) setRoot(root []byte) {
	e.root = root
	e.key = eventKeyOf(root)
}

// tree returns the event's parsed document, parsing it on first use (and
// counting that in parses). Many goroutines may call it; the parse happens
// once. The receiver's events come with the tree its validation built.
func (e *event) tree(parses *atomic.Int64) (*document, error) {
	e.docOnce.Do(func() {
		if e.doc == nil {
			parses.Add(1)
			e.doc, e.docErr = parseDocument(e.raw)
		}
	})
	return e.doc, e.docErr
}

// isVOEventRole reports whether a root role makes a message a VOEvent
// (comet-behaviour §1.2); voeventRoles is the list, in Comet's order.
func isVOEventRole(role string) bool { return contains(voeventRoles, role) }

// voeventRoles are the roles Comet's receiver takes as a VOEvent.
var voeventRoles = []string{"observation", "prediction", "utility", "test"}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

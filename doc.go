// Comet in Go: a VOEvent Transport Protocol (VTP 2.0) broker in one flat
// package, standing in for the Python Comet in every role it plays.
//
// # The two paths of an event
//
// From an author: broker.serve accepts the connection (whitelist, limits)
// → receiver.go reads one frame → validate.go checks it (well-formed,
// VOEvent role, ivorn, IVOID, schema; xmltree.go builds the one tree) →
// admission.go: seen? signature policy? recorded (eventdb.go) → relayed to
// every broadcaster (broadcaster.go: per-subscriber queue, written by the
// broadcaster's pump, fanout.go, or with filters by the subscriber's
// writer) and queued for the handlers (handlers.go) → the author gets its
// ack or nak.
//
// From a Kafka topic: kafka_bridge.go hands each record's value to the
// same admission as an upstream event (the client: kafka_*.go).
//
// Every accepted event is also appended to the spool (spoolwire.go), from
// which a subscriber that asks (replay-since) is sent what it missed.
//
// From an upstream broker: subscriber.go dials it and reads frames →
// xmlscan.go finds the root element's span, role and ivorn → the same
// admission (without the schema check, as Comet's subscriber) → relayed and
// handled → the upstream gets our ack (always, for an event with an ivorn).
//
// # Files
//
//	main.go, doc.go        entry point and subcommands; this map
//	config.go              the command line (twistd comet options), as a value
//	process.go             the process: logging, pid file, signals, readiness
//	logfile.go, pidfile*.go, systemd.go, signals_*.go  its parts
//	broker.go              the broker: listeners, accept loop, status snapshot
//	shutdown.go            the one bounded shutdown, and how each part stops
//	admission.go           the one admission step of every ingest path
//	receiver.go            the receiver role (authors)
//	broadcaster.go         the broadcaster role (subscribers)
//	fanout*.go             the pump: one goroutine's non-blocking writes to subscribers
//	subscriber.go          the subscriber role (--remote upstreams)
//	vtp.go                 framing, Transport messages, connection-end reasons
//	event.go               the event: bytes, identity span, tree
//	xmlscan.go             byte-level XML scans: root span, ivorn, declaration
//	xmltree.go, charset.go the parse tree (one encoding/xml pass) and encodings
//	validate*.go, ivoid.go the receiver's checks: schema rules, IVOIDs
//	xpath_*.go             XPath 1.0 filters over the tree
//	pgp*.go, policy.go     OpenPGP signatures and the signature policy
//	eventdb*.go            the append-only dedup log
//	handlers.go, handler_*.go  event handlers (--cmd, --print-event, --save-event)
//	whitelist.go           IP whitelists
//	httpstatus.go, observe.go  /healthz, /metrics, /status and the counters
//	budget.go              the shared in-flight byte budget
//	ratelog.go, hostlimit.go  rate-limited peer logs; per-host caps, penalty box
//	tls_*.go, peers.go     TLS configuration, endpoints, pins, the peers file
//	tlswire.go             TLS listeners and upstreams, identities in the broker
//	kafka_*.go             the Kafka client: wire, SASL, OAuth, batches, codecs
//	kafka_bridge*.go       Kafka topics as an upstream, and --kafka-publish
//	spool*.go              the spool: segments, index, positions, replay, /events, /
//	atomicfile.go, nofollow_*.go  small state files replaced atomically
//	sendvo.go, cmd_*.go, bench*.go  the other commands
package main

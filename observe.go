// observe.go owns the broker's counters and the status snapshot that the
// HTTP endpoint (/metrics, /status) and the logs report. The broker
// increments counters; nothing here blocks.
package main

import (
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// metrics are the broker-wide counters of contract section 4.
type metrics struct {
	received   atomic.Int64 // events received (receivers and subscribers)
	accepted   atomic.Int64 // new events accepted (handed to handlers and broadcasters)
	duplicates atomic.Int64 // events already seen
	relayed    atomic.Int64 // events offered to broadcasters

	deliveries     atomic.Int64    // events written to subscribers, over all of them
	deliveryWrites atomic.Int64    // write calls that carried them (several events each when busy)
	rejected       labelledCounter // events refused, by reason class

	handlerRuns      labelledCounter // handler runs, by handler name
	handlerFailures  labelledCounter // handler failures, by handler name
	handlerOverflows atomic.Int64    // events dropped because the handler queue was full

	signatures labelledCounter // signature verdicts of new events

	eventDBErrors atomic.Int64 // event DB writes that failed

	treeParses atomic.Int64 // events parsed only because a subscriber filters them
	parses     atomic.Int64 // upstream events parsed by admission's well-formedness check

	limitHits   labelledCounter // limits of contract section 10 hit, by option name
	connRefused labelledCounter // connections refused at accept, by reason

	tls tlswMetrics // TLS handshakes and identities (tlswire.go)
}

// labelledCounter counts by one label value.
type labelledCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (c *labelledCounter) inc(label string) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]int64{}
	}
	c.m[label]++
	c.mu.Unlock()
}

// get returns the count for one label.
func (c *labelledCounter) get(label string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[label]
}

// snapshot returns the labels and counts in label order.
func (c *labelledCounter) snapshot() []labelCount {
	c.mu.Lock()
	out := make([]labelCount, 0, len(c.m))
	for k, v := range c.m {
		out = append(out, labelCount{k, v})
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].label < out[j].label })
	return out
}

type labelCount struct {
	label string
	count int64
}

// brokerStatus is a point-in-time view of the broker for /status and /metrics.
type brokerStatus struct {
	Version   string           `json:"version"`
	Started   time.Time        `json:"started"`
	LocalIVO  string           `json:"local_ivo,omitempty"`
	Listeners []listenerStatus `json:"listeners"`
	Peers     []peerStatus     `json:"peers"` // subscribers and upstreams
	EventDB   eventDBStatus    `json:"eventdb"`

	Handlers      []handlerLaneStatus `json:"handlers,omitempty"`
	InflightBytes int64               `json:"inflight_bytes"`
	InflightWaits int64               `json:"inflight_waits"`

	Kafka        *kafkaBridgeStatus `json:"kafka,omitempty"` // the Kafka bridge (kafka_bridge.go)
	extraMetrics func(io.Writer)    // more /metrics text (the Kafka bridge's families), or nil
}

type listenerStatus struct {
	Role    string `json:"role"` // receiver, broadcaster
	Address string `json:"address"`
	Up      bool   `json:"up"`
	Error   string `json:"error,omitempty"`
}

// peerStatus describes one connection: a subscriber of one of our
// broadcasters, or an upstream broker we subscribe to.
type peerStatus struct {
	Role            string    `json:"role"` // subscriber, upstream
	Address         string    `json:"address"`
	State           string    `json:"state"` // connected, connecting, backoff
	Software        string    `json:"software,omitempty"`
	Since           time.Time `json:"since"`
	LastMessage     time.Time `json:"last_message"`
	Delivered       int64     `json:"delivered"`        // events sent to (subscriber) or received from (upstream) it
	AcksOutstanding int64     `json:"acks_outstanding"` // subscribers only
	Filters         int       `json:"filters"`          // subscribers only

	// The TLS identity: its name in the peers file, or ca:CN (tlswire.go).
	Identity string `json:"identity,omitempty"`
}

type eventDBStatus struct {
	Dir       string `json:"dir"`
	Entries   int    `json:"entries"`
	SizeBytes int64  `json:"size_bytes"`
	Records   int64  `json:"records_written"` // records written to the log since start
	Writes    int64  `json:"writes"`          // write calls that carried them (group commit)
}

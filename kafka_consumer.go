// kafka_consumer.go owns the Kafka consumer of the bridge: topic patterns
// matched against the cluster's metadata (again every refresh), every
// partition of a matched topic followed from its leader, one fetcher
// goroutine per broker, one delivery goroutine per partition calling the sink
// in offset order. Invariants: the stored offset of a partition never passes
// a message whose done was not called; the bytes of messages handed out and
// not done stay under MaxInflightBytes (a lone larger message still passes);
// run returns only after every goroutine it started ended and the final
// commit was written; no goroutine sleeps while data flows.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// kafkaHeartbeatTopic is followed whenever the cluster has it; its records
// only refresh the liveness age, they never reach the sink.
const kafkaHeartbeatTopic = "gcn.heartbeat"

// Per-partition and total bytes fetched but not yet handed to the sink;
// beyond them a partition is left out of the next Fetch.
const (
	kafkaIdleClose      = time.Minute // a fetcher with nothing to fetch closes its connection
	kafkaQueuePartition = 4 << 20
	kafkaMaxBatchBytes  = 16 << 20
)

type kafkaMessage struct {
	topic     string
	partition int32
	offset    int64
	timestamp time.Time
	value     []byte // nil when tooLarge
	tooLarge  bool
}

// kafkaSink receives each record in partition order and must call done
// exactly once when the message is fully handled.
type kafkaSink func(m *kafkaMessage, done func())

// kafkaPartStatus is one topic-partition in /status.
type kafkaPartStatus struct {
	Topic                 string   `json:"topic"`
	Partition             int32    `json:"partition"`
	Offset                int64    `json:"offset"`
	HighWatermark         int64    `json:"high_watermark"`
	Lag                   int64    `json:"lag"`
	LastMessageAgeSeconds *float64 `json:"last_message_age_seconds"`
	State                 string   `json:"state"`
}

type kafkaStatus struct {
	Connected           bool              `json:"connected"`
	Bootstrap           []string          `json:"bootstrap"`
	Topics              []string          `json:"topics"`
	Partitions          []kafkaPartStatus `json:"partitions"`
	HeartbeatAgeSeconds *float64          `json:"heartbeat_age_seconds,omitempty"`
}

// kafkaQueued is one item of a partition's delivery queue.
type kafkaQueued struct {
	rec    *kafkaRecord // nil for a position marker
	skipTo int64        // with rec nil: every offset below is handled
	rewind bool         // with rec nil: restart at skipTo (an offset reset)
}

type kafkaPart struct {
	tp        kafkaTP
	heartbeat bool

	// Under kafkaConsumer.mu.
	leader    int32 // -1 unknown
	epoch     int32
	offset    int64 // next to fetch; -1: resolve startTS first
	startTS   int64
	retryAt   time.Time
	backoff   kafkaBackoff
	hw        int64
	lastMsg   time.Time
	state     string
	missing   bool
	queue     []kafkaQueued
	queued    int // bytes in queue
	wake      chan struct{}
	delivered int64 // next offset the delivery goroutine will hand out

	tracker *kafkaTracker
}

type kafkaConsumer struct {
	cfg       *kafkaConfig
	k         *kafkaCluster
	offsets   *kafkaOffsets
	sink      kafkaSink
	log       *slog.Logger
	syncFirst func() error
	firstRun  bool // no stored positions at all: the first start

	mu        sync.Mutex
	parts     map[kafkaTP]*kafkaPart
	fetchers  map[int32]chan struct{} // broker id -> wake channel
	live      map[int32]bool          // fetchers with a working connection
	metaOK    bool
	metaDone  bool // a first metadata was applied
	queued    int  // bytes in every queue
	hbExists  bool
	hbLast    time.Time
	messages  map[string]uint64
	skipped   map[string]uint64
	refreshCh chan struct{}
	unmatched map[string]bool // patterns reported as matching nothing

	infMu    sync.Mutex
	inflight int
	infWake  chan struct{}

	wg      sync.WaitGroup
	started atomic.Bool
}

// newKafkaConsumer prepares a consumer; dir holds the offset file ("" keeps
// offsets in memory only); syncFirst (may be nil) runs before each offset
// write, the broker passes its event-database sync.
func newKafkaConsumer(cfg *kafkaConfig, dir string, sink kafkaSink, log *slog.Logger, syncFirst func() error) (*kafkaConsumer, error) {
	if len(cfg.Topics) == 0 {
		return nil, errors.New("kafka consumer: no --kafka-topic")
	}
	k, err := newKafkaCluster(cfg, log)
	if err != nil {
		return nil, err
	}
	offs, err := openKafkaOffsets(dir)
	if err != nil {
		return nil, err
	}
	c := &kafkaConsumer{
		cfg: cfg, k: k, offsets: offs, sink: sink, log: k.log, syncFirst: syncFirst,
		parts: map[kafkaTP]*kafkaPart{}, fetchers: map[int32]chan struct{}{}, live: map[int32]bool{},
		messages: map[string]uint64{}, skipped: map[string]uint64{},
		refreshCh: make(chan struct{}, 1), infWake: make(chan struct{}), unmatched: map[string]bool{},
	}
	c.firstRun = len(offs.pos) == 0
	return c, nil
}

// reload re-reads the secret files.
func (c *kafkaConsumer) reload() error { return c.k.reload() }

// countSkipped adds to comet_kafka_skipped_total{reason}; the broker calls it
// for its own reasons (not-voevent, ...).
func (c *kafkaConsumer) countSkipped(reason string) {
	c.mu.Lock()
	c.skipped[reason]++
	c.mu.Unlock()
}

// run consumes until ctx ends, then commits and returns after every
// goroutine it started ended.
func (c *kafkaConsumer) run(ctx context.Context) {
	if !c.started.CompareAndSwap(false, true) {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	c.wg.Add(2)
	go func() { defer c.wg.Done(); c.metadataLoop(ctx) }()
	go func() { defer c.wg.Done(); c.commitLoop(ctx) }()
	<-ctx.Done()
	cancel()
	c.wg.Wait()
	if err := c.offsets.commit(c.syncFirst); err != nil {
		c.log.Error("kafka offsets: final commit failed", "error", err)
	}
}

func (c *kafkaConsumer) commitLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.offsets.commit(c.syncFirst); err != nil {
			c.k.warn("commit", "kafka offsets: commit failed", "error", err)
		}
	}
}

// requestRefresh asks the metadata loop for an early refresh.
func (c *kafkaConsumer) requestRefresh() {
	select {
	case c.refreshCh <- struct{}{}:
	default:
	}
}

func (c *kafkaConsumer) metadataLoop(ctx context.Context) {
	var conn *kafkaConn
	defer func() {
		if conn != nil {
			conn.close()
		}
	}()
	bo := kafkaBackoff{min: 200 * time.Millisecond, max: 30 * time.Second}
	authBo := kafkaBackoff{min: 2 * time.Second, max: 60 * time.Second}
	for ctx.Err() == nil {
		var err error
		if conn == nil || conn.broken {
			if conn != nil {
				conn.close()
			}
			conn, err = c.k.anyConn(ctx)
		}
		var md *kafkaMetadataResp
		if err == nil {
			md, err = c.k.metadata(ctx, conn, nil)
			if errors.Is(err, errKafkaSessionExpired) {
				conn.close()
				conn = nil
				continue
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.mu.Lock()
			c.metaOK = false
			c.mu.Unlock()
			var ae *kafkaAuthError
			wait := bo.next()
			if errors.As(err, &ae) {
				wait = authBo.next()
			} else {
				c.k.warn("metadata", "kafka: cluster metadata failed; retrying", "error", err, "retry_in", wait.Round(time.Millisecond))
			}
			if !c.k.sleep(ctx, wait) {
				return
			}
			continue
		}
		bo.reset()
		authBo.reset()
		c.applyMetadata(ctx, md)
		t := time.NewTimer(c.cfg.Refresh)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-c.refreshCh:
			t.Stop()
			sleepCtx(ctx, 100*time.Millisecond) // let a burst of errors coalesce
		}
	}
}

// wanted says whether topic is followed and whether it is the heartbeat.
func (c *kafkaConsumer) wanted(topic string) bool {
	for _, p := range c.cfg.Topics {
		if p == topic || (kafkaIsGlob(p) && kafkaGlobMatch(p, topic)) {
			return true
		}
	}
	return false
}

func (c *kafkaConsumer) applyMetadata(ctx context.Context, md *kafkaMetadataResp) {
	c.mu.Lock()
	defer c.mu.Unlock()
	first := !c.metaDone
	c.metaDone, c.metaOK = true, true
	seen := map[kafkaTP]bool{}
	c.hbExists = false
	for _, t := range md.topics {
		hb := t.name == kafkaHeartbeatTopic
		if hb && t.errCode == 0 {
			c.hbExists = true
		}
		if !hb && (t.internal || !c.wanted(t.name)) {
			continue
		}
		if t.errCode != 0 {
			if t.errCode != kafkaErrUnknownTopicPartition && t.errCode != kafkaErrLeaderNotAvailable {
				c.k.warn("topic:"+t.name, "kafka: topic in metadata has an error", "topic", t.name, "error", kafkaErrCode(t.errCode, ""))
			}
			continue
		}
		for _, pm := range t.partitions {
			tp := kafkaTP{t.name, pm.partition}
			seen[tp] = true
			p := c.parts[tp]
			if p == nil {
				p = c.newPart(ctx, tp, hb, first)
			}
			p.missing = false
			leader := pm.leader
			if pm.errCode != 0 {
				leader = -1
			}
			if leader != p.leader {
				p.leader = leader
				p.retryAt = time.Time{}
			}
			p.epoch = pm.epoch
			if leader >= 0 {
				c.ensureFetcher(ctx, leader)
				c.wakeFetcher(leader)
			} else {
				p.state = "no leader"
			}
		}
	}
	for tp, p := range c.parts {
		if !seen[tp] {
			p.missing, p.leader, p.state = true, -1, "missing"
		}
	}
	// Say once per pattern that it matches nothing yet (not an error).
	for _, pat := range c.cfg.Topics {
		matched := false
		for _, t := range md.topics {
			if t.name == pat || (kafkaIsGlob(pat) && kafkaGlobMatch(pat, t.name)) {
				matched = true
				break
			}
		}
		if matched {
			delete(c.unmatched, pat)
		} else if !c.unmatched[pat] {
			c.unmatched[pat] = true
			c.log.Warn("kafka: no topic matches yet; will look again every refresh (not an error: a topic appears with its first message)", "pattern", pat, "refresh", c.cfg.Refresh)
		}
	}
}

func (c *kafkaConsumer) newPart(ctx context.Context, tp kafkaTP, hb, first bool) *kafkaPart {
	p := &kafkaPart{tp: tp, heartbeat: hb, leader: -1, epoch: -1, offset: -1, hw: -1, state: "starting", wake: make(chan struct{}, 1)}
	switch {
	case hb:
		p.startTS = kafkaLatest
	default:
		if off, ok := c.offsets.get(tp); ok {
			p.offset = off
		} else if first && c.firstRun {
			p.startTS = c.cfg.startTimestamp()
		} else {
			p.startTS = kafkaEarliest
		}
	}
	store := func(int64) {}
	if !hb {
		store = func(n int64) { c.offsets.set(tp, n) }
	}
	p.tracker = newKafkaTracker(p.offset, store)
	p.delivered = p.offset
	c.parts[tp] = p
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.deliver(ctx, p) }()
	return p
}

func (c *kafkaConsumer) ensureFetcher(ctx context.Context, id int32) {
	if _, ok := c.fetchers[id]; ok {
		return
	}
	wake := make(chan struct{}, 1)
	c.fetchers[id] = wake
	c.wg.Add(1)
	go func() { defer c.wg.Done(); c.fetchLoop(ctx, id, wake) }()
}

func (c *kafkaConsumer) wakeFetcher(id int32) {
	if w, ok := c.fetchers[id]; ok {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// fetchable lists the partitions broker id should fetch now, and whether
// some of them first need their start offset resolved.
func (c *kafkaConsumer) fetchable(id int32) (fetch []kafkaFetchReq, resolve []kafkaListOffsetsReq, nextRetry time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, p := range c.parts {
		if p.leader != id || p.missing {
			continue
		}
		if now.Before(p.retryAt) {
			if nextRetry.IsZero() || p.retryAt.Before(nextRetry) {
				nextRetry = p.retryAt
			}
			continue
		}
		if p.offset < 0 {
			resolve = append(resolve, kafkaListOffsetsReq{topic: p.tp.topic, partition: p.tp.partition, epoch: p.epoch, timestamp: p.startTS})
			continue
		}
		if p.queued >= kafkaQueuePartition || c.queued >= 4*kafkaQueuePartition {
			continue
		}
		fetch = append(fetch, kafkaFetchReq{topic: p.tp.topic, partition: p.tp.partition, epoch: p.epoch, offset: p.offset})
	}
	sort.Slice(fetch, func(i, j int) bool { // stable order for the broker
		if fetch[i].topic != fetch[j].topic {
			return fetch[i].topic < fetch[j].topic
		}
		return fetch[i].partition < fetch[j].partition
	})
	return
}

func (c *kafkaConsumer) setLive(id int32, live bool, state string) {
	c.mu.Lock()
	c.live[id] = live
	for _, p := range c.parts {
		if p.leader == id && !p.missing {
			p.state = state
		}
	}
	c.mu.Unlock()
}

func (c *kafkaConsumer) fetchLoop(ctx context.Context, id int32, wake chan struct{}) {
	var conn *kafkaConn
	defer func() {
		if conn != nil {
			conn.close()
		}
		c.setLive(id, false, "stopped")
	}()
	bo := kafkaBackoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	authBo := kafkaBackoff{min: 2 * time.Second, max: 60 * time.Second}
	busy := time.Now()
	for ctx.Err() == nil {
		fetch, resolve, nextRetry := c.fetchable(id)
		if len(fetch) == 0 && len(resolve) == 0 {
			if conn != nil && time.Since(busy) > kafkaIdleClose {
				conn.close() // no partition led here any more
				conn = nil
				c.mu.Lock()
				c.live[id] = false
				c.mu.Unlock()
			}
			wait := 250 * time.Millisecond
			if !nextRetry.IsZero() {
				wait = min(wait, max(time.Until(nextRetry), time.Millisecond))
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-wake:
			case <-t.C:
			}
			t.Stop()
			continue
		}
		if conn == nil || conn.broken {
			if conn != nil {
				conn.close()
				conn = nil
			}
			addr, ok := c.k.brokerAddr(id)
			if !ok {
				c.requestRefresh()
				sleepCtx(ctx, bo.next())
				continue
			}
			c.setLive(id, false, "connecting")
			var err error
			conn, err = c.k.dial(ctx, addr)
			if err != nil {
				conn = nil
				if ctx.Err() != nil {
					return
				}
				var ae *kafkaAuthError
				wait := bo.next()
				state := "error: " + kafkaTruncate(err.Error(), 120)
				if errors.As(err, &ae) {
					wait = authBo.next()
					state = "authentication failed"
				} else {
					c.k.warn("dial:"+addr, "kafka: cannot connect to broker; retrying", "broker", addr, "error", err, "retry_in", wait.Round(time.Millisecond))
				}
				c.setLive(id, false, state)
				c.requestRefresh()
				c.k.sleep(ctx, wait)
				continue
			}
			authBo.reset()
			c.setLive(id, true, "fetching")
		}
		busy = time.Now()
		var err error
		if len(resolve) > 0 {
			err = c.resolveOffsets(ctx, conn, resolve)
		} else {
			err = c.fetchOnce(ctx, id, conn, fetch)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errKafkaSessionExpired) {
				conn.close()
				conn = nil
				continue
			}
			if conn.broken {
				wait := bo.next()
				c.k.warn("conn:"+conn.addr, "kafka: broker connection failed; reconnecting", "broker", conn.addr, "error", err, "retry_in", wait.Round(time.Millisecond))
				c.setLive(id, false, "error: "+kafkaTruncate(err.Error(), 120))
				c.requestRefresh()
				sleepCtx(ctx, wait)
				continue
			}
			c.k.warn("fetch:"+conn.addr, "kafka: request failed", "broker", conn.addr, "error", err)
			sleepCtx(ctx, bo.next())
			continue
		}
		bo.reset()
	}
}

// partError handles a partition-level error code.
func (c *kafkaConsumer) partError(tp kafkaTP, code int16, during string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[tp]
	if p == nil {
		return
	}
	p.state = "error: " + kafkaErrName(code)
	switch code {
	case kafkaErrOffsetOutOfRange:
		c.k.warn("oor:"+tp.String(), "kafka: offset out of range; resetting to the earliest offset", "topic", tp.topic, "partition", tp.partition, "offset", p.offset)
		p.offset, p.startTS = -1, kafkaEarliest
		p.queue = append(p.queue, kafkaQueued{rewind: true, skipTo: -1})
		kafkaNotify(p.wake)
		return
	case kafkaErrTopicAuthFailed:
		c.k.warn("auth:"+tp.topic, "kafka: not authorized to read topic", "topic", tp.topic)
		p.retryAt = time.Now().Add(60 * time.Second)
		return
	}
	if kafkaRetriable(code) {
		c.k.warn("perr:"+tp.String()+during, "kafka: partition not available here; refreshing metadata", "topic", tp.topic, "partition", tp.partition, "during", during, "error", kafkaErrCode(code, ""))
		c.requestRefresh()
	} else {
		c.k.warn("perr:"+tp.String()+during, "kafka: partition error", "topic", tp.topic, "partition", tp.partition, "during", during, "error", kafkaErrCode(code, ""))
	}
	if p.backoff.min == 0 {
		p.backoff = kafkaBackoff{min: 100 * time.Millisecond, max: 10 * time.Second}
	}
	p.retryAt = time.Now().Add(p.backoff.next())
}

func (c *kafkaConsumer) resolveOffsets(ctx context.Context, conn *kafkaConn, reqs []kafkaListOffsetsReq) error {
	v, ok := conn.version(kafkaAPIListOffsets)
	if !ok {
		return fmt.Errorf("broker %s supports no ListOffsets v1-5", conn.addr)
	}
	resp, err := conn.roundTrip(ctx, kafkaAPIListOffsets, v, encodeKafkaListOffsets(v, reqs), 0)
	if err != nil {
		return err
	}
	parts, err := decodeKafkaListOffsets(resp, v)
	if err != nil {
		conn.close()
		return err
	}
	var again []kafkaListOffsetsReq
	for _, r := range parts {
		tp := kafkaTP{r.topic, r.partition}
		if r.errCode != 0 {
			c.partError(tp, r.errCode, "list-offsets")
			continue
		}
		c.mu.Lock()
		p := c.parts[tp]
		if p != nil && p.offset < 0 {
			if r.offset < 0 && p.startTS >= 0 {
				// No record at or after the start time: begin at the end.
				p.startTS = kafkaLatest
				again = append(again, kafkaListOffsetsReq{tp.topic, tp.partition, p.epoch, kafkaLatest})
			} else if r.offset >= 0 {
				p.offset = r.offset
				p.state = "fetching"
				p.queue = append(p.queue, kafkaQueued{rewind: true, skipTo: r.offset})
				kafkaNotify(p.wake)
			} else {
				p.retryAt = time.Now().Add(time.Second) // no offset given: ask again later
			}
		}
		c.mu.Unlock()
	}
	if len(again) > 0 {
		return c.resolveOffsets(ctx, conn, again)
	}
	return nil
}

func kafkaNotify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *kafkaConsumer) fetchOnce(ctx context.Context, id int32, conn *kafkaConn, reqs []kafkaFetchReq) error {
	v, ok := conn.version(kafkaAPIFetch)
	if !ok {
		return fmt.Errorf("broker %s supports no Fetch v10-11", conn.addr)
	}
	resp, err := conn.roundTrip(ctx, kafkaAPIFetch, v, encodeKafkaFetch(v, kafkaFetchMaxWaitMs, reqs), kafkaFetchMaxWaitMs*time.Millisecond)
	if err != nil {
		return err
	}
	fr, err := decodeKafkaFetch(resp, v)
	if err != nil {
		conn.close()
		return err
	}
	if fr.errCode != 0 {
		return kafkaErrCode(fr.errCode, "fetch")
	}
	asked := map[kafkaTP]int64{}
	for _, r := range reqs {
		asked[kafkaTP{r.topic, r.partition}] = r.offset
	}
	for i := range fr.parts {
		fp := &fr.parts[i]
		tp := kafkaTP{fp.topic, fp.partition}
		from, ok := asked[tp]
		if !ok {
			continue
		}
		if fp.errCode != 0 {
			c.partError(tp, fp.errCode, "fetch")
			continue
		}
		recs, next, derr := decodeKafkaBatches(fp.records, from, c.cfg.MaxValueBytes, kafkaMaxBatchBytes)
		c.accept(id, tp, from, fp, recs, next, derr)
	}
	return nil
}

// accept queues a partition's fetched records, unless the partition moved
// or was reset while the fetch was in flight.
func (c *kafkaConsumer) accept(id int32, tp kafkaTP, from int64, fp *kafkaFetchPart, recs []kafkaRecord, next int64, derr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.parts[tp]
	if p == nil || p.leader != id || p.offset != from {
		return
	}
	p.hw = fp.highWatermark
	p.state = "fetching"
	p.backoff.reset()
	var be *kafkaBatchError
	if derr != nil && errors.As(derr, &be) && next <= from && len(recs) == 0 {
		reason := "corrupt"
		if be.tooLarge {
			reason = "too-large"
		}
		c.skipped[reason]++
		c.k.warn("batch:"+tp.String(), "kafka: skipping a record batch", "topic", tp.topic, "partition", tp.partition, "base", be.base, "last", be.last, "reason", be.reason)
		next = max(be.last+1, from+1)
	} else if derr != nil && !errors.As(derr, &be) {
		c.k.warn("batch:"+tp.String(), "kafka: record batch decoding failed", "topic", tp.topic, "partition", tp.partition, "error", derr)
		p.retryAt = time.Now().Add(time.Second)
		return
	}
	if len(recs) == 0 && next <= from {
		if len(fp.records) > 0 && from < fp.highWatermark {
			// Only a partial batch: it is larger than the fetch size.
			c.k.warn("partial:"+tp.String(), "kafka: record batch larger than the fetch size; retrying", "topic", tp.topic, "partition", tp.partition, "offset", from)
			p.retryAt = time.Now().Add(time.Second)
		}
		return
	}
	now := time.Now()
	for i := range recs {
		r := &recs[i]
		if p.heartbeat {
			ts := r.timestamp
			if ts.IsZero() || ts.After(now.Add(time.Minute)) {
				ts = now
			}
			c.hbLast = ts
			p.lastMsg = now
			continue
		}
		if r.value != nil {
			r.value = bytes.Clone(r.value) // do not pin the response buffer
		}
		r.key, r.headers = nil, nil
		p.queue = append(p.queue, kafkaQueued{rec: r})
		p.queued += len(r.value)
		c.queued += len(r.value)
		p.lastMsg = now
	}
	if next > from {
		p.offset = next
		p.queue = append(p.queue, kafkaQueued{skipTo: next})
	}
	kafkaNotify(p.wake)
}

// deliver is a partition's delivery goroutine: it hands queued records to
// the sink in order, after waiting for in-flight room.
func (c *kafkaConsumer) deliver(ctx context.Context, p *kafkaPart) {
	for {
		c.mu.Lock()
		if len(p.queue) == 0 {
			c.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		q := p.queue[0]
		p.queue[0] = kafkaQueued{}
		p.queue = p.queue[1:]
		if len(p.queue) == 0 {
			p.queue = nil
		}
		c.mu.Unlock()
		if q.rec == nil {
			if q.rewind {
				if q.skipTo < 0 {
					continue // reset pending; the resolved offset follows
				}
				// Positions before an offset reset: wait for their done calls.
				for p.tracker.outstanding() > 0 {
					if !sleepCtx(ctx, 10*time.Millisecond) {
						return
					}
				}
				p.tracker.reset(q.skipTo)
			} else {
				p.tracker.skipTo(q.skipTo)
			}
			continue
		}
		r := q.rec
		size := len(r.value)
		if !c.acquire(ctx, size) {
			return
		}
		c.mu.Lock()
		p.queued -= size
		c.queued -= size
		c.messages[p.tp.topic]++
		if r.tooLarge {
			c.skipped["too-large"]++
		}
		wakeID := p.leader
		c.wakeFetcher(wakeID)
		c.mu.Unlock()
		m := &kafkaMessage{topic: p.tp.topic, partition: p.tp.partition, offset: r.offset, timestamp: r.timestamp, value: r.value, tooLarge: r.tooLarge}
		trackDone := p.tracker.handOut(r.offset)
		var once sync.Once
		c.sink(m, func() {
			once.Do(func() {
				trackDone()
				c.release(size)
			})
		})
	}
}

// acquire waits for room for n in-flight bytes; a message larger than the
// whole budget passes when nothing else is in flight.
func (c *kafkaConsumer) acquire(ctx context.Context, n int) bool {
	for {
		c.infMu.Lock()
		if c.inflight == 0 || c.inflight+n <= c.cfg.MaxInflightBytes {
			c.inflight += n
			c.infMu.Unlock()
			return true
		}
		wake := c.infWake
		c.infMu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-wake:
		}
	}
}

func (c *kafkaConsumer) release(n int) {
	c.infMu.Lock()
	c.inflight -= n
	close(c.infWake)
	c.infWake = make(chan struct{})
	c.infMu.Unlock()
}

// heartbeatAge is the age of the last gcn.heartbeat message, when the
// cluster has that topic and one was seen.
func (c *kafkaConsumer) heartbeatAge() (time.Duration, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.hbExists || c.hbLast.IsZero() {
		return 0, false
	}
	return time.Since(c.hbLast), true
}

func (c *kafkaConsumer) connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connectedLocked()
}

func (c *kafkaConsumer) connectedLocked() bool {
	for _, l := range c.live {
		if l {
			return true
		}
	}
	return c.metaOK && len(c.parts) == 0
}

func (c *kafkaConsumer) status() kafkaStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := kafkaStatus{Connected: c.connectedLocked(), Bootstrap: c.cfg.Bootstrap, Topics: c.cfg.Topics, Partitions: []kafkaPartStatus{}}
	now := time.Now()
	for _, p := range c.parts {
		ps := kafkaPartStatus{Topic: p.tp.topic, Partition: p.tp.partition, Offset: p.offset, HighWatermark: p.hw, State: p.state}
		if p.hw >= 0 && p.offset >= 0 {
			ps.Lag = max(p.hw-p.offset, 0)
		}
		if !p.lastMsg.IsZero() {
			a := now.Sub(p.lastMsg).Seconds()
			ps.LastMessageAgeSeconds = &a
		}
		st.Partitions = append(st.Partitions, ps)
	}
	sort.Slice(st.Partitions, func(i, j int) bool {
		a, b := st.Partitions[i], st.Partitions[j]
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
	if c.hbExists && !c.hbLast.IsZero() {
		a := now.Sub(c.hbLast).Seconds()
		st.HeartbeatAgeSeconds = &a
	}
	return st
}

// writeMetrics writes the consumer's Prometheus text.
func (c *kafkaConsumer) writeMetrics(w io.Writer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fmt.Fprintln(w, "# HELP comet_kafka_messages_total Kafka messages handed to admission, by topic.")
	fmt.Fprintln(w, "# TYPE comet_kafka_messages_total counter")
	for _, t := range kafkaSortedKeys(c.messages) {
		fmt.Fprintf(w, "comet_kafka_messages_total{topic=%q} %d\n", t, c.messages[t])
	}
	fmt.Fprintln(w, "# HELP comet_kafka_skipped_total Kafka messages skipped, by reason.")
	fmt.Fprintln(w, "# TYPE comet_kafka_skipped_total counter")
	for _, r := range kafkaSortedKeys(c.skipped) {
		fmt.Fprintf(w, "comet_kafka_skipped_total{reason=%q} %d\n", r, c.skipped[r])
	}
	fmt.Fprintln(w, "# HELP comet_kafka_lag Messages between the next offset to fetch and the high watermark.")
	fmt.Fprintln(w, "# TYPE comet_kafka_lag gauge")
	tps := make([]kafkaTP, 0, len(c.parts))
	for tp, p := range c.parts {
		if !p.heartbeat {
			tps = append(tps, tp)
		}
	}
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].topic != tps[j].topic {
			return tps[i].topic < tps[j].topic
		}
		return tps[i].partition < tps[j].partition
	})
	for _, tp := range tps {
		p := c.parts[tp]
		lag := int64(0)
		if p.hw >= 0 && p.offset >= 0 {
			lag = max(p.hw-p.offset, 0)
		}
		fmt.Fprintf(w, "comet_kafka_lag{topic=%q,partition=\"%d\"} %d\n", tp.topic, tp.partition, lag)
	}
	fmt.Fprintln(w, "# HELP comet_kafka_connected Whether the Kafka consumer has a working broker connection.")
	fmt.Fprintln(w, "# TYPE comet_kafka_connected gauge")
	fmt.Fprintf(w, "comet_kafka_connected %d\n", kafkaBoolInt(c.connectedLocked()))
}

func kafkaSortedKeys(m map[string]uint64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

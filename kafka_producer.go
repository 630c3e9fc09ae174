// kafka_producer.go owns --kafka-publish: accepted events produced to one
// topic with acks=-1, each to the partition chosen by FNV-1a of its IVOID
// modulo the partition count. Invariants: publish never blocks (a bounded
// queue in bytes; overflow is dropped and counted); one goroutine batches and
// sends, keeping each partition's order, retrying with capped jittered
// back-off through outages; a missing topic is logged and retried, never
// created; the queue's bytes include those in flight.
package main

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"
)

const (
	kafkaProduceBatchBytes = 900 << 10 // per partition per request
	kafkaProduceReqBytes   = 4 << 20   // per request
	kafkaProduceTimeoutMs  = 10000
	kafkaGzipAbove         = 64 << 10 // gzip a batch of more uncompressed bytes
)

type kafkaOut struct {
	value []byte
	hash  uint32
	seq   uint64 // queue order
}

type kafkaProducer struct {
	cfg   *kafkaConfig
	k     *kafkaCluster
	log   *slog.Logger
	topic string

	mu        sync.Mutex
	queue     []kafkaOut
	seq       uint64
	queued    int // bytes queued or in flight
	inFlight  int // records taken by the sender
	wake      chan struct{}
	idle      chan struct{} // closed and replaced when queued drops to 0
	published uint64
	errors    uint64 // records that will never be published
	retries   uint64 // failed produce attempts
	connected bool
	lastErr   string
}

// newKafkaProducer prepares the producer of cfg.PublishTopic.
func newKafkaProducer(cfg *kafkaConfig, log *slog.Logger) (*kafkaProducer, error) {
	if cfg.PublishTopic == "" {
		return nil, errors.New("kafka producer: no --kafka-publish topic")
	}
	k, err := newKafkaCluster(cfg, log)
	if err != nil {
		return nil, err
	}
	return &kafkaProducer{cfg: cfg, k: k, log: k.log, topic: cfg.PublishTopic, wake: make(chan struct{}, 1), idle: make(chan struct{})}, nil
}

func (p *kafkaProducer) reload() error { return p.k.reload() }

// kafkaPartitionHash is FNV-1a (32 bit) of the IVOID.
func kafkaPartitionHash(ivorn string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(ivorn))
	return h.Sum32()
}

// publish queues value for the topic; it never blocks. The value must not
// change afterwards.
func (p *kafkaProducer) publish(value []byte, ivorn string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.queued+len(value) > p.cfg.PublishQueue {
		p.errors++
		p.k.warn("publish-overflow", "kafka publish: queue full; event dropped", "topic", p.topic, "queued_bytes", p.queued)
		return
	}
	p.seq++
	p.queue = append(p.queue, kafkaOut{value: value, hash: kafkaPartitionHash(ivorn), seq: p.seq})
	p.queued += len(value)
	kafkaNotify(p.wake)
}

// flush waits until everything queued was acknowledged or dropped.
func (p *kafkaProducer) flush(ctx context.Context) bool {
	for {
		p.mu.Lock()
		if p.queued == 0 && len(p.queue) == 0 && p.inFlight == 0 {
			p.mu.Unlock()
			return true
		}
		idle := p.idle
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return false
		case <-idle:
		}
	}
}

// counts returns published and never-published records so far.
func (p *kafkaProducer) counts() (published, failed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.published, p.errors
}

// run sends until ctx ends; what is still queued then is dropped.
func (p *kafkaProducer) run(ctx context.Context) {
	conns := map[int32]*kafkaConn{}
	var metaConn *kafkaConn
	defer func() {
		for _, c := range conns {
			c.close()
		}
		if metaConn != nil {
			metaConn.close()
		}
		p.mu.Lock()
		p.connected = false
		p.mu.Unlock()
	}()
	var leaders map[int32]int32 // partition -> broker
	var metaAt time.Time
	bo := kafkaBackoff{min: 100 * time.Millisecond, max: 30 * time.Second}
	authBo := kafkaBackoff{min: 2 * time.Second, max: 60 * time.Second}
	fail := func(err error, what string) bool {
		if errors.Is(err, errKafkaSessionExpired) {
			return true // not a failure: dial again at once
		}
		p.mu.Lock()
		p.retries++
		p.connected = false
		p.lastErr = err.Error()
		p.mu.Unlock()
		wait := bo.next()
		var ae *kafkaAuthError
		if errors.As(err, &ae) {
			wait = authBo.next()
		} else {
			p.k.warn("produce:"+what, "kafka publish: "+what+" failed; retrying", "topic", p.topic, "error", err, "retry_in", wait.Round(time.Millisecond))
		}
		leaders = nil
		return p.k.sleep(ctx, wait)
	}
	for ctx.Err() == nil {
		p.mu.Lock()
		n := len(p.queue)
		p.mu.Unlock()
		if n == 0 {
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
			}
			continue
		}
		if leaders == nil || time.Since(metaAt) > p.cfg.Refresh {
			if metaConn == nil || metaConn.broken {
				if metaConn != nil {
					metaConn.close()
				}
				var err error
				if metaConn, err = p.k.anyConn(ctx); err != nil {
					metaConn = nil
					if !fail(err, "connect") {
						return
					}
					continue
				}
			}
			md, err := p.k.metadata(ctx, metaConn, []string{p.topic})
			if err != nil {
				metaConn.close()
				metaConn = nil
				if !fail(err, "metadata") {
					return
				}
				continue
			}
			leaders = map[int32]int32{}
			for _, t := range md.topics {
				if t.name != p.topic {
					continue
				}
				if t.errCode != 0 {
					err = kafkaErrCode(t.errCode, "")
					if t.errCode == kafkaErrUnknownTopicPartition {
						err = fmt.Errorf("topic %s does not exist (not creating it)", p.topic)
					}
					break
				}
				for _, pm := range t.partitions {
					leaders[pm.partition] = pm.leader
				}
			}
			if err == nil && len(leaders) == 0 {
				err = fmt.Errorf("topic %s does not exist (not creating it)", p.topic)
			}
			if err != nil {
				if !fail(err, "metadata") {
					return
				}
				continue
			}
			metaAt = time.Now()
		}
		if err := p.sendSome(ctx, conns, leaders); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !fail(err, "produce") {
				return
			}
			continue
		}
		bo.reset()
		authBo.reset()
	}
}

// sendSome takes a share of the queue, produces it broker by broker, and
// puts back (in order, at the front) whatever was not acknowledged.
func (p *kafkaProducer) sendSome(ctx context.Context, conns map[int32]*kafkaConn, leaders map[int32]int32) error {
	np := uint32(len(leaders))
	p.mu.Lock()
	var take []kafkaOut
	size := 0
	perPart := map[int32]int{}
	var rest []kafkaOut
	waiting := map[int32]bool{}
	for _, o := range p.queue {
		part := int32(o.hash % np)
		// Keep a partition's order: once one of its records waits, all do.
		if waiting[part] || size+len(o.value) > kafkaProduceReqBytes && len(take) > 0 || perPart[part] > 0 && perPart[part]+len(o.value) > kafkaProduceBatchBytes {
			waiting[part] = true
			rest = append(rest, o)
			continue
		}
		take = append(take, o)
		size += len(o.value)
		perPart[part] += len(o.value)
	}
	p.queue = rest
	p.inFlight += len(take)
	p.mu.Unlock()

	byPart := map[int32][]kafkaOut{}
	for _, o := range take {
		part := int32(o.hash % np)
		byPart[part] = append(byPart[part], o)
	}
	byBroker := map[int32][]int32{}
	for part := range byPart {
		byBroker[leaders[part]] = append(byBroker[leaders[part]], part)
	}
	var firstErr error
	var failed []kafkaOut
	done := func(recs []kafkaOut, ok bool) {
		p.mu.Lock()
		p.inFlight -= len(recs)
		for _, r := range recs {
			p.queued -= len(r.value)
		}
		if ok {
			p.published += uint64(len(recs))
		} else {
			p.errors += uint64(len(recs))
		}
		p.idleCheckLocked()
		p.mu.Unlock()
	}
	for broker, parts := range byBroker {
		err := p.produceTo(ctx, conns, broker, parts, byPart, done)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			for _, part := range parts {
				if recs, ok := byPart[part]; ok {
					failed = append(failed, recs...)
				}
			}
		}
	}
	if len(failed) > 0 {
		// Put back in their original order, ahead of newer records.
		p.mu.Lock()
		p.inFlight -= len(failed)
		sort.Slice(failed, func(i, j int) bool { return failed[i].seq < failed[j].seq })
		p.queue = append(failed, p.queue...)
		p.mu.Unlock()
	}
	return firstErr
}

func (p *kafkaProducer) idleCheckLocked() {
	if p.queued == 0 && len(p.queue) == 0 && p.inFlight == 0 {
		close(p.idle)
		p.idle = make(chan struct{})
	}
}

// produceTo sends one Produce request to broker; records of partitions
// acknowledged (or refused for good) are removed from byPart and reported.
func (p *kafkaProducer) produceTo(ctx context.Context, conns map[int32]*kafkaConn, broker int32, parts []int32, byPart map[int32][]kafkaOut, done func([]kafkaOut, bool)) error {
	c := conns[broker]
	if c == nil || c.broken {
		if c != nil {
			c.close()
		}
		delete(conns, broker)
		addr, ok := p.k.brokerAddr(broker)
		if !ok || broker < 0 {
			return fmt.Errorf("no address for leader %d", broker)
		}
		var err error
		if c, err = p.k.dial(ctx, addr); err != nil {
			return err
		}
		conns[broker] = c
	}
	v, ok := c.version(kafkaAPIProduce)
	if !ok {
		return fmt.Errorf("broker %s supports no Produce v7-8", c.addr)
	}
	var reqs []kafkaProduceReq
	now := time.Now()
	for _, part := range parts {
		recs := byPart[part]
		vals := make([][]byte, len(recs))
		total := 0
		for i, r := range recs {
			vals[i] = r.value
			total += len(r.value)
		}
		codec := kafkaCodecNone
		if total > kafkaGzipAbove {
			codec = kafkaCodecGzip
		}
		batch, err := appendKafkaBatch(nil, vals, codec, now)
		if err != nil {
			return err
		}
		reqs = append(reqs, kafkaProduceReq{topic: p.topic, partition: part, records: batch})
	}
	resp, err := c.roundTrip(ctx, kafkaAPIProduce, v, encodeKafkaProduce(v, kafkaProduceTimeoutMs, reqs), kafkaProduceTimeoutMs*time.Millisecond)
	if err != nil {
		return err
	}
	rs, err := decodeKafkaProduce(resp, v)
	if err != nil {
		c.close()
		return err
	}
	var firstErr error
	for _, r := range rs {
		recs, ok := byPart[r.partition]
		if r.topic != p.topic || !ok {
			continue
		}
		switch {
		case r.errCode == 0:
			done(recs, true)
			delete(byPart, r.partition)
			p.mu.Lock()
			was := p.connected
			p.connected, p.lastErr = true, ""
			p.mu.Unlock()
			if !was {
				p.log.Info("kafka publish: producing", "topic", p.topic, "broker", c.addr)
			}
		case r.errCode == kafkaErrMessageTooLarge || r.errCode == 18 || r.errCode == 87 || r.errCode == kafkaErrCorruptMessage:
			p.log.Error("kafka publish: broker refused records; dropped", "topic", p.topic, "partition", r.partition, "records", len(recs), "error", kafkaErrCode(r.errCode, r.errMsg))
			done(recs, false)
			delete(byPart, r.partition)
		default:
			if firstErr == nil {
				firstErr = fmt.Errorf("partition %d: %w", r.partition, kafkaErrCode(r.errCode, r.errMsg))
			}
		}
	}
	return firstErr
}

// writeMetrics writes the producer's Prometheus text.
func (p *kafkaProducer) writeMetrics(w io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintln(w, "# HELP comet_kafka_published_total Events acknowledged by the Kafka cluster (acks=all).")
	fmt.Fprintln(w, "# TYPE comet_kafka_published_total counter")
	fmt.Fprintf(w, "comet_kafka_published_total %d\n", p.published)
	fmt.Fprintln(w, "# HELP comet_kafka_publish_errors_total Events that will never be published (queue overflow or refused).")
	fmt.Fprintln(w, "# TYPE comet_kafka_publish_errors_total counter")
	fmt.Fprintf(w, "comet_kafka_publish_errors_total %d\n", p.errors)
	fmt.Fprintln(w, "# HELP comet_kafka_publish_retries_total Produce attempts that failed and were retried.")
	fmt.Fprintln(w, "# TYPE comet_kafka_publish_retries_total counter")
	fmt.Fprintf(w, "comet_kafka_publish_retries_total %d\n", p.retries)
	fmt.Fprintln(w, "# HELP comet_kafka_publish_queue_bytes Bytes of events waiting to be published.")
	fmt.Fprintln(w, "# TYPE comet_kafka_publish_queue_bytes gauge")
	fmt.Fprintf(w, "comet_kafka_publish_queue_bytes %d\n", p.queued)
}

// kafkaProducerStatus is the producer in /status.
type kafkaProducerStatus struct {
	Topic       string `json:"topic"`
	Connected   bool   `json:"connected"`
	QueuedBytes int    `json:"queued_bytes"`
	Published   uint64 `json:"published"`
	Errors      uint64 `json:"errors"`
	LastError   string `json:"last_error,omitempty"`
}

func (p *kafkaProducer) status() kafkaProducerStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return kafkaProducerStatus{Topic: p.topic, Connected: p.connected, QueuedBytes: p.queued, Published: p.published, Errors: p.errors, LastError: p.lastErr}
}

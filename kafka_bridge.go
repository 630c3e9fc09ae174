// kafka_bridge.go owns the Kafka bridge inside the broker (contract section
// 8): the consumer's sink, which takes each Kafka message as one more
// upstream event through the one admission step (admission.go), and the
// producer of --kafka-publish, fed from dispatch. It also gives /status,
// /metrics and /healthz their Kafka parts, and SIGHUP its secret re-read.
//
// The sink, per message, in partition order (kafka_consumer.go calls it from
// one goroutine per partition): a value over the size limit, or one whose
// root is not a VOEvent (gcn.heartbeat's JSON, a text notice), is skipped,
// counted (comet_kafka_skipped_total{reason="too-large"|"not-voevent"}) and
// logged through b.rl; anything else becomes an event of kind sourceKafka,
// from "kafka TOPIC/PARTITION@OFFSET", its bytes unchanged, checked as a VTP
// upstream's is (checkUpstreamEvent: well-formed XML, an IVOID) and handed to
// b.admit: seen? signature policy? recorded, relayed, handled. A refusal is
// counted by admit as an upstream refusal is.
//
// Offsets: the consumer stores a partition's position past a message only
// once its done has been called. done is called at once when admission
// dropped the message (skipped, refused, duplicate), and through ev.handled
// for an admitted event, that is once every handler lane is done with it
// (at once without handlers). So an event is handled at least once; and it
// is relayed at most once, because its event-database record reaches the OS
// before it is relayed (admission.go) and the offsets file is written only
// after the event database is synced (syncFirst).
//
// Fetched again: after a crash (or a stop that left handlers unfinished)
// the partition resumes at its stored offset, and events the event database
// has seen come again. Those are handed to the handlers again (ev.handled
// still passes their offsets) but not relayed again nor counted as accepted
// twice (admit counts them as duplicates; comet_kafka_rehandled_total counts
// the second handling). Which duplicates are such redeliveries: for each
// partition that resumed from a stored offset, those from that offset up to
// the first new event admitted from the partition (the crashed process had
// admitted the messages it fetched in order, so its redeliveries come first,
// in one run); a partition with no stored offset has none. Past that point a
// duplicate is an ordinary one and is dropped like any other.
//
// The same event by VTP and by Kafka: whichever path records it first relays
// and handles it; the other is a duplicate, dropped, with one exception that
// favours handling: a copy fetched again from Kafka inside the redelivery
// window after a restart is handled again even if its first arrival was by
// VTP (at least once, never at most once). An event from Kafka is never
// published back to Kafka (--kafka-publish takes only events from authors
// and VTP upstreams), and a site that consumes the topic it publishes to
// finds its own events already in its event database, so two sites linked
// both ways through Kafka never loop.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// kafkaHealthAfter is how long the consumer may be without a broker
// connection, or gcn.heartbeat without a message, before /healthz says 503.
const kafkaHealthAfter = 60 * time.Second

// kafkaBridge is the broker's Kafka component: a consumer (--kafka-topic, or
// the GCN preset) and/or a producer (--kafka-publish).
type kafkaBridge struct {
	b        *broker
	cfg      *kafkaConfig
	consumer *kafkaConsumer // nil without topics
	producer *kafkaProducer // nil without --kafka-publish
	log      *slog.Logger

	// window holds, for each partition that resumed from a stored offset,
	// that offset, until the first new event from it (see the file comment).
	winMu  sync.Mutex
	window map[kafkaTP]int64

	rehandled   atomic.Int64 // redelivered events handed to the handlers again
	healthAfter atomic.Int64 // kafkaHealthAfter; tests shorten it

	upMu    sync.Mutex
	started time.Time
	lastUp  time.Time // the consumer was last seen connected
}

// kafkaBridgeStatus is the "kafka" object of /status.
type kafkaBridgeStatus struct {
	Consumer  *kafkaStatus         `json:"consumer,omitempty"`
	Producer  *kafkaProducerStatus `json:"producer,omitempty"`
	Rehandled int64                `json:"rehandled"`
	// Problems are what makes /healthz answer 503 (none: healthy).
	Problems []string `json:"problems,omitempty"`
}

// newKafkaBridge builds the bridge of b.cfg.kafka (already resolved by the
// parse), or returns nil when no Kafka option was given. Offsets live in the
// event database's directory and are written only after its sync.
func newKafkaBridge(b *broker) (*kafkaBridge, error) {
	if !b.cfg.kafka.optionsGiven() {
		return nil, nil
	}
	cfg := b.cfg.kafka // a copy: the limits below are the broker's
	if cfg.Start == "" {
		// Not resolved (a configuration built by hand, as tests do).
		if err := cfg.resolve(); err != nil {
			return nil, err
		}
	}
	cfg.MaxInflightBytes = int(min(b.cfg.maxInflightBytes, 1<<40))
	cfg.MaxValueBytes = b.cfg.maxMessageSize
	cfg.PublishQueue = int(min(b.cfg.handlerQueueBytes, 1<<40))
	k := &kafkaBridge{b: b, cfg: &cfg, log: b.log.With("role", "kafka"), window: map[kafkaTP]int64{}}
	k.healthAfter.Store(int64(kafkaHealthAfter))
	if len(cfg.Topics) > 0 {
		c, err := newKafkaConsumer(k.cfg, b.cfg.eventDB, k.sink, k.log, b.db.sync)
		if err != nil {
			return nil, err
		}
		c.offsets.mu.Lock()
		for tp, off := range c.offsets.pos {
			k.window[tp] = off
		}
		c.offsets.mu.Unlock()
		k.consumer = c
	}
	if cfg.PublishTopic != "" {
		p, err := newKafkaProducer(k.cfg, k.log)
		if err != nil {
			return nil, err
		}
		k.producer = p
	}
	return k, nil
}

// run runs the consumer, the producer and the health sampler until ctx
// ends, and returns when all of them have (the consumer after its final
// offsets commit).
func (k *kafkaBridge) run(ctx context.Context) {
	k.upMu.Lock()
	k.started = time.Now()
	k.upMu.Unlock()
	var wg sync.WaitGroup
	if k.consumer != nil {
		k.log.Info("consuming Kafka topics", "bootstrap", strings.Join(k.cfg.Bootstrap, ","), "topics", strings.Join(k.cfg.Topics, ","), "security", k.cfg.Security)
		wg.Go(func() { k.consumer.run(ctx) })
		wg.Go(func() { k.sample(ctx) })
	}
	if k.producer != nil {
		k.log.Info("publishing accepted events to Kafka", "bootstrap", strings.Join(k.cfg.Bootstrap, ","), "topic", k.cfg.PublishTopic)
		wg.Go(func() { k.producer.run(ctx) })
	}
	wg.Wait()
}

// sample notes every second whether the consumer is connected, for /healthz.
func (k *kafkaBridge) sample(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if k.consumer.connected() {
			k.upMu.Lock()
			k.lastUp = time.Now()
			k.upMu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sink is the consumer's sink: one Kafka message through admission.
func (k *kafkaBridge) sink(m *kafkaMessage, done func()) {
	b := k.b
	where := fmt.Sprintf("%s/%d@%d", m.topic, m.partition, m.offset)
	logKey := "kafka " + m.topic
	if m.tooLarge { // already counted as skipped{reason="too-large"}
		b.rl.log(slog.LevelWarn, logKey, "too-large", "kafka message larger than --max-message-size; skipped",
			"from", "kafka "+where, "limit", b.cfg.maxMessageSize)
		done()
		return
	}
	ri, err := scanRoot(m.value)
	if err != nil || !isVOEventRole(ri.role) {
		k.consumer.countSkipped("not-voevent")
		why := "root role " + rateTruncate(ri.role, 64)
		if err != nil {
			why = err.Error()
		}
		b.rl.log(slog.LevelInfo, logKey, "not-voevent", "kafka message is not a VOEvent; skipped",
			"from", "kafka "+where, "why", why, "start", rateTruncate(string(m.value[:min(len(m.value), 80)]), 80))
		done()
		return
	}
	ev := newEvent(m.value, ri, sourceKafka, where, b.now())
	ev.host = logKey
	ev.kafkaTopic = m.topic
	ev.handled = done
	b.m.parses.Add(1)
	doc, pre := checkUpstreamEvent(m.value, ri)
	ev.doc = doc
	seenBefore := pre == nil && b.db.seenKey(ev.key)
	tp := kafkaTP{m.topic, m.partition}
	switch b.admit(ev, pre, k.log).outcome {
	case admitted: // dispatch queued it; ev.handled will call done
		k.closeWindow(tp)
	case duplicate:
		if seenBefore && k.inWindow(tp, m.offset) && k.verdictAgain(ev) {
			k.rehandled.Add(1)
			k.log.Debug("kafka event fetched again after a restart; handling it again, not relaying it", "from", "kafka "+where, "ivorn", ev.ivorn)
			b.hq.submit(ev) // calls done through ev.handled
			return
		}
		done()
	default:
		done()
	}
}

// verdictAgain gives a redelivered event its signature verdict for the
// handlers (COMET_SIGNATURE), as its first admission did, without counting
// it again; false when the signature policy now refuses it.
func (k *kafkaBridge) verdictAgain(ev *event) bool {
	kr := k.b.keyring.Load()
	if kr == nil {
		return true
	}
	res := verifySpan(ev.raw, ev.rootStart, ev.rootEnd, kr, k.b.now())
	ev.sigVerdict, ev.signer = res.verdict, res.signer
	return res.verdict == "valid" || !k.b.cfg.requireSignature
}

func (k *kafkaBridge) inWindow(tp kafkaTP, offset int64) bool {
	k.winMu.Lock()
	defer k.winMu.Unlock()
	start, ok := k.window[tp]
	return ok && offset >= start
}

func (k *kafkaBridge) closeWindow(tp kafkaTP) {
	k.winMu.Lock()
	delete(k.window, tp)
	k.winMu.Unlock()
}

// kafkaPublish hands a newly accepted event to --kafka-publish: events from
// authors and VTP upstreams only (not those from Kafka; the broker's own
// test events never pass through dispatch). It never blocks.
func (b *broker) kafkaPublish(ev *event) {
	if b.kafka == nil || b.kafka.producer == nil {
		return
	}
	if ev.kind != sourceAuthor && ev.kind != sourceUpstream {
		return
	}
	b.kafka.producer.publish(ev.raw, ev.ivorn)
}

// afterHandlers commits the offsets that the handlers passed while the
// handler queue drained at shutdown (the consumer's own final commit came
// before); the event database is synced first. A nil bridge does nothing.
func (k *kafkaBridge) afterHandlers() {
	if k == nil || k.consumer == nil {
		return
	}
	if err := k.consumer.offsets.commit(k.b.db.sync); err != nil {
		k.log.Error("kafka offsets: commit after the handlers failed", "err", err)
	}
}

// reload re-reads the secret files (SIGHUP); a nil bridge does nothing.
func (k *kafkaBridge) reload() {
	if k == nil {
		return
	}
	if k.consumer != nil {
		if err := k.consumer.reload(); err != nil {
			k.log.Error("reload failed; keeping the previous Kafka secrets", "err", err)
			return
		}
	}
	if k.producer != nil {
		if err := k.producer.reload(); err != nil {
			k.log.Error("reload failed; keeping the previous Kafka secrets", "err", err)
			return
		}
	}
	k.log.Info("reloaded Kafka secrets")
}

// status is the bridge's part of /status, with what would make /healthz
// fail: the consumer without a connection, or gcn.heartbeat silent, for
// longer than kafkaHealthAfter.
func (k *kafkaBridge) status() *kafkaBridgeStatus {
	st := &kafkaBridgeStatus{Rehandled: k.rehandled.Load()}
	after := time.Duration(k.healthAfter.Load())
	if c := k.consumer; c != nil {
		cs := c.status()
		st.Consumer = &cs
		k.upMu.Lock()
		since := k.lastUp
		if since.IsZero() {
			since = k.started
		}
		k.upMu.Unlock()
		now := time.Now()
		if !since.IsZero() && !cs.Connected && now.Sub(since) > after {
			st.Problems = append(st.Problems, fmt.Sprintf("kafka consumer not connected to %s for %s",
				strings.Join(k.cfg.Bootstrap, ","), now.Sub(since).Round(time.Second)))
		}
		c.mu.Lock()
		hbExists, hbLast := c.hbExists, c.hbLast
		c.mu.Unlock()
		if hbExists {
			last := hbLast
			if last.IsZero() {
				last = since
			}
			if !last.IsZero() && now.Sub(last) > after {
				st.Problems = append(st.Problems, fmt.Sprintf("kafka %s link to %s: last heartbeat %s ago",
					kafkaHeartbeatTopic, strings.Join(k.cfg.Bootstrap, ","), now.Sub(last).Round(time.Second)))
			}
		}
	}
	if p := k.producer; p != nil {
		ps := p.status()
		st.Producer = &ps
	}
	return st
}

// writeMetrics appends the bridge's families to /metrics: the consumer's
// (comet_kafka_messages_total, _skipped_total, _lag, _connected), the
// producer's (comet_kafka_published_total, _publish_errors_total, ...) and
// comet_kafka_rehandled_total.
func (k *kafkaBridge) writeMetrics(w io.Writer) {
	if k.consumer != nil {
		k.consumer.writeMetrics(w)
		fmt.Fprintln(w, "# HELP comet_kafka_rehandled_total Events fetched again from Kafka after a restart and handed to the handlers again (not relayed).")
		fmt.Fprintln(w, "# TYPE comet_kafka_rehandled_total counter")
		fmt.Fprintf(w, "comet_kafka_rehandled_total %d\n", k.rehandled.Load())
	}
	if k.producer != nil {
		k.producer.writeMetrics(w)
	}
}

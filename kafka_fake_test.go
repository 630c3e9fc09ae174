package main

// A small fake Kafka cluster on loopback for the consumer's and producer's
// state machines: ApiVersions, Metadata v8, ListOffsets v5, Fetch v11 (with
// long polling) and Produce v8, partitions movable between nodes, logs whose
// start can be moved, and topics created while running.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type kafkaFakePart struct {
	leader    int32
	logStart  int64
	corruptAt int64 // a batch starting here is served with a bad CRC (-1: never)
	values    [][]byte
	times     []time.Time
}

type kafkaFakeCluster struct {
	t      *testing.T
	mu     sync.Mutex
	change chan struct{} // closed and replaced on every append
	nodes  []net.Listener
	topics map[string][]*kafkaFakePart
	conns  map[net.Conn]bool
	fetchN atomic.Int32
	errs   map[int16]int // api -> count of forced connection drops
	users  map[string]string
	life   int64 // session lifetime ms given to SASL clients
	auths  atomic.Int32
	wg     sync.WaitGroup
}

func newKafkaFakeCluster(t *testing.T, nodes int) *kafkaFakeCluster {
	f := &kafkaFakeCluster{t: t, change: make(chan struct{}), topics: map[string][]*kafkaFakePart{}, conns: map[net.Conn]bool{}, errs: map[int16]int{}}
	for i := 0; i < nodes; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.nodes = append(f.nodes, ln)
		id := int32(i)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				f.mu.Lock()
				f.conns[c] = true
				f.mu.Unlock()
				f.wg.Add(1)
				go func() { defer f.wg.Done(); f.serve(id, c) }()
			}
		}()
	}
	t.Cleanup(f.close)
	return f
}

func (f *kafkaFakeCluster) close() {
	for _, ln := range f.nodes {
		ln.Close()
	}
	f.mu.Lock()
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func (f *kafkaFakeCluster) bootstrap() []string { return []string{f.nodes[0].Addr().String()} }

func (f *kafkaFakeCluster) createTopic(name string, parts int, leader int32) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := 0; i < parts; i++ {
		f.topics[name] = append(f.topics[name], &kafkaFakePart{leader: leader, corruptAt: -1})
	}
}

func (f *kafkaFakeCluster) appendValues(topic string, part int, vals ...string) {
	f.mu.Lock()
	p := f.topics[topic][part]
	for _, v := range vals {
		p.values = append(p.values, []byte(v))
		p.times = append(p.times, time.Now())
	}
	close(f.change)
	f.change = make(chan struct{})
	f.mu.Unlock()
}

func (f *kafkaFakeCluster) moveLeader(topic string, part int, to int32) {
	f.mu.Lock()
	f.topics[topic][part].leader = to
	f.mu.Unlock()
}

func (f *kafkaFakeCluster) truncateBefore(topic string, part int, start int64) {
	f.mu.Lock()
	f.topics[topic][part].logStart = start
	f.mu.Unlock()
}

func (f *kafkaFakeCluster) serve(node int32, c net.Conn) {
	defer c.Close()
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		req := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		d := kafkaWireDec{b: req}
		api, ver, corr := d.i16(), d.i16(), d.i32()
		d.nstr()
		f.mu.Lock()
		drop := f.errs[api] > 0
		if drop {
			f.errs[api]--
		}
		f.mu.Unlock()
		if drop {
			return
		}
		var e kafkaWireEnc
		switch api {
		case kafkaAPIApiVersions:
			e.i16(0)
			e.arr(7)
			for _, k := range []int16{kafkaAPIProduce, kafkaAPIFetch, kafkaAPIListOffsets, kafkaAPIMetadata, kafkaAPIApiVersions, kafkaAPISaslHandshake, kafkaAPISaslAuthenticate} {
				e.i16(k)
				e.i16(0)
				e.i16(map[int16]int16{0: 8, 1: 11, 2: 5, 3: 8, 18: 2, 17: 1, 36: 1}[k])
			}
			if ver >= 1 {
				e.i32(0)
			}
		case kafkaAPIMetadata:
			f.metadata(&e, &d)
		case kafkaAPIListOffsets:
			f.listOffsets(node, &e, &d)
		case kafkaAPIFetch:
			f.fetchN.Add(1)
			f.fetch(node, &e, &d)
		case kafkaAPIProduce:
			f.produce(node, &e, &d)
		case kafkaAPISaslHandshake:
			mech := d.str()
			e.i16(map[bool]int16{true: 0, false: kafkaErrUnsupportedSasl}[mech == "PLAIN"])
			e.arr(1)
			e.str("PLAIN")
		case kafkaAPISaslAuthenticate:
			f.auths.Add(1)
			parts := strings.Split(string(d.bytes()), "\x00")
			f.mu.Lock()
			ok := len(parts) == 3 && f.users[parts[1]] == parts[2] && parts[2] != ""
			life := f.life
			f.mu.Unlock()
			if ok {
				e.i16(0)
				e.nullStr()
				e.bytes([]byte{})
				e.i64(life)
			} else {
				e.i16(kafkaErrSaslAuthFailed)
				e.str("Authentication failed: Invalid username or password")
				e.bytes([]byte{})
				e.i64(0)
			}
		default:
			return
		}
		if d.err != nil {
			f.t.Errorf("fake broker: malformed request api %d v%d", api, ver)
			return
		}
		out := binary.BigEndian.AppendUint32(nil, uint32(len(e.b)+4))
		out = binary.BigEndian.AppendUint32(out, uint32(corr))
		if _, err := c.Write(append(out, e.b...)); err != nil {
			return
		}
	}
}

func (f *kafkaFakeCluster) metadata(e *kafkaWireEnc, d *kafkaWireDec) {
	n := int(d.i32())
	var want []string
	for i := 0; i < n; i++ {
		want = append(want, d.str())
	}
	d.boolean()
	d.boolean()
	d.boolean()
	f.mu.Lock()
	defer f.mu.Unlock()
	e.i32(0)
	e.arr(len(f.nodes))
	for i, ln := range f.nodes {
		a := ln.Addr().(*net.TCPAddr)
		e.i32(int32(i))
		e.str("127.0.0.1")
		e.i32(int32(a.Port))
		e.nullStr()
	}
	e.nullStr()
	e.i32(0)
	if n < 0 {
		for t := range f.topics {
			want = append(want, t)
		}
		sort.Strings(want)
	}
	e.arr(len(want))
	for _, t := range want {
		parts, ok := f.topics[t]
		e.i16(map[bool]int16{true: 0, false: 3}[ok])
		e.str(t)
		e.boolean(false)
		e.arr(len(parts))
		for i, p := range parts {
			e.i16(0)
			e.i32(int32(i))
			e.i32(p.leader)
			e.i32(0)
			for range 3 {
				e.arr(1)
				e.i32(p.leader)
			}
		}
		e.i32(0)
	}
	e.i32(0)
}

// part looks a partition up; the error code when it is not led by node.
func (f *kafkaFakeCluster) part(node int32, topic string, i int32) (*kafkaFakePart, int16) {
	parts, ok := f.topics[topic]
	if !ok || int(i) >= len(parts) {
		return nil, kafkaErrUnknownTopicPartition
	}
	if parts[i].leader != node {
		return nil, kafkaErrNotLeader
	}
	return parts[i], 0
}

func (f *kafkaFakeCluster) listOffsets(node int32, e *kafkaWireEnc, d *kafkaWireDec) {
	d.i32()
	d.i8()
	f.mu.Lock()
	defer f.mu.Unlock()
	e.i32(0)
	nt := int(d.i32())
	e.arr(nt)
	for range nt {
		t := d.str()
		e.str(t)
		np := int(d.i32())
		e.arr(np)
		for range np {
			pi := d.i32()
			d.i32()
			ts := d.i64()
			p, code := f.part(node, t, pi)
			off := int64(-1)
			if code == 0 {
				switch ts {
				case kafkaEarliest:
					off = p.logStart
				case kafkaLatest:
					off = int64(len(p.values))
				default:
					for i, tm := range p.times {
						if int64(i) >= p.logStart && tm.UnixMilli() >= ts {
							off = int64(i)
							break
						}
					}
				}
			}
			e.i32(pi)
			e.i16(code)
			e.i64(-1)
			e.i64(off)
			e.i32(0)
		}
	}
}

func (f *kafkaFakeCluster) fetch(node int32, e *kafkaWireEnc, d *kafkaWireDec) {
	d.i32()
	maxWait := time.Duration(d.i32()) * time.Millisecond
	d.i32()
	d.i32()
	d.i8()
	d.i32()
	d.i32()
	type fp struct {
		t   string
		p   int32
		off int64
	}
	var reqs []fp
	nt := int(d.i32())
	for range nt {
		t := d.str()
		np := int(d.i32())
		for range np {
			p := d.i32()
			d.i32()
			off := d.i64()
			d.i64()
			d.i32()
			reqs = append(reqs, fp{t, p, off})
		}
	}
	d.i32()
	d.str()
	deadline := time.Now().Add(maxWait)
	for {
		f.mu.Lock()
		ready := false
		for _, r := range reqs {
			p, code := f.part(node, r.t, r.p)
			if code != 0 || r.off != int64(len(p.values)) {
				ready = true
			}
		}
		ch := f.change
		if ready || time.Now().After(deadline) {
			break // with the lock held
		}
		f.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
		}
	}
	defer f.mu.Unlock()
	e.i32(0)
	e.i16(0)
	e.i32(0)
	e.arr(len(reqs))
	for _, r := range reqs {
		e.str(r.t)
		e.arr(1)
		p, code := f.part(node, r.t, r.p)
		var records []byte
		hw := int64(0)
		if code == 0 {
			hw = int64(len(p.values))
			if r.off < p.logStart || r.off > hw {
				code = kafkaErrOffsetOutOfRange
			} else if r.off < hw {
				end := hw
				if r.off < p.corruptAt && p.corruptAt < hw {
					end = p.corruptAt // the bad batch comes on its own
				}
				b, err := appendKafkaBatch(nil, p.values[r.off:end], kafkaCodecNone, time.Now())
				if err != nil {
					panic(err)
				}
				binary.BigEndian.PutUint64(b, uint64(r.off)) // base offset (the CRC does not cover it)
				if r.off == p.corruptAt {
					b[len(b)-1] ^= 0xff
					// Serve only the first record so the bad batch ends before the next.
					b, _ = appendKafkaBatch(nil, p.values[r.off:r.off+1], kafkaCodecNone, time.Now())
					binary.BigEndian.PutUint64(b, uint64(r.off))
					b[len(b)-1] ^= 0xff
				}
				records = b
			}
		}
		e.i32(r.p)
		e.i16(code)
		e.i64(hw)
		e.i64(hw)
		e.i64(0)
		e.i32(-1) // aborted transactions: null
		e.i32(-1)
		e.bytes(records)
	}
}

func (f *kafkaFakeCluster) produce(node int32, e *kafkaWireEnc, d *kafkaWireDec) {
	d.nstr()
	d.i16()
	d.i32()
	type res struct {
		t    string
		p    int32
		code int16
		base int64
	}
	var out []res
	nt := int(d.i32())
	for range nt {
		t := d.str()
		np := int(d.i32())
		for range np {
			pi := d.i32()
			batch := d.bytes()
			recs, _, err := decodeKafkaBatches(batch, 0, 1<<20, 1<<20)
			f.mu.Lock()
			p, code := f.part(node, t, pi)
			if code == 0 && err != nil {
				code = kafkaErrCorruptMessage
			}
			var base int64
			if code == 0 {
				base = int64(len(p.values))
				for _, r := range recs {
					p.values = append(p.values, r.value)
					p.times = append(p.times, time.Now())
				}
				close(f.change)
				f.change = make(chan struct{})
			}
			f.mu.Unlock()
			out = append(out, res{t, pi, code, base})
		}
	}
	e.arr(len(out))
	for _, r := range out {
		e.str(r.t)
		e.arr(1)
		e.i32(r.p)
		e.i16(r.code)
		e.i64(r.base)
		e.i64(-1)
		e.i64(0)
		e.arr(0)
		e.nullStr()
	}
	e.i32(0)
}

// ---- consumer harness ----

type kafkaCollected struct {
	mu    sync.Mutex
	got   []string // topic/partition@offset=value
	times []time.Time
	ch    chan struct{}
}

func (k *kafkaCollected) sink(hold bool, held *[]func()) kafkaSink {
	return func(m *kafkaMessage, done func()) {
		k.mu.Lock()
		k.got = append(k.got, fmt.Sprintf("%s/%d@%d=%s", m.topic, m.partition, m.offset, m.value))
		k.times = append(k.times, time.Now())
		if hold {
			*held = append(*held, done)
		}
		k.mu.Unlock()
		if !hold {
			done()
		}
		select {
		case k.ch <- struct{}{}:
		default:
		}
	}
}

func (k *kafkaCollected) wait(t *testing.T, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.After(d)
	for {
		k.mu.Lock()
		if len(k.got) >= n {
			out := append([]string(nil), k.got...)
			k.mu.Unlock()
			return out
		}
		k.mu.Unlock()
		select {
		case <-k.ch:
		case <-deadline:
			k.mu.Lock()
			defer k.mu.Unlock()
			t.Fatalf("got %d of %d messages: %v", len(k.got), n, k.got)
		}
	}
}

type kafkaLogBuf struct {
	mu sync.Mutex
	sb strings.Builder
}

func (l *kafkaLogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sb.Write(p)
}
func (l *kafkaLogBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.sb.String() }

func startKafkaTestConsumer(t *testing.T, f *kafkaFakeCluster, cfg kafkaConfig, dir string, sink kafkaSink) (*kafkaConsumer, *kafkaLogBuf, func()) {
	t.Helper()
	cfg.Bootstrap = f.bootstrap()
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	logs := &kafkaLogBuf{}
	c, err := newKafkaConsumer(&cfg, dir, sink, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { c.run(ctx); close(ended) }()
	stop := func() {
		cancel()
		select {
		case <-ended:
		case <-time.After(2 * time.Second):
			t.Fatal("consumer run did not return within 2 s of cancel")
		}
	}
	t.Cleanup(func() {
		cancel()
		<-ended
	})
	return c, logs, stop
}

func TestKafkaConsumerLeaderChangeAndNewTopic(t *testing.T) {
	f := newKafkaFakeCluster(t, 2)
	f.createTopic("x.a", 2, 0)
	f.appendValues("x.a", 0, "a0", "a1")
	f.appendValues("x.a", 1, "b0")
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	c, logs, stop := startKafkaTestConsumer(t, f, kafkaConfig{Topics: []string{"x.*"}, Start: "earliest", Refresh: time.Second}, t.TempDir(), col.sink(false, nil))
	col.wait(t, 3, 5*time.Second)
	f.moveLeader("x.a", 0, 1)
	f.appendValues("x.a", 0, "a2")
	col.wait(t, 4, 5*time.Second)
	// A topic that appears later begins at its earliest offset.
	f.createTopic("x.late", 1, 1)
	f.appendValues("x.late", 0, "l0", "l1")
	got := col.wait(t, 6, 5*time.Second)
	sort.Strings(got)
	want := []string{"x.a/0@0=a0", "x.a/0@1=a1", "x.a/0@2=a2", "x.a/1@0=b0", "x.late/0@0=l0", "x.late/0@1=l1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v\nwant %v", got, want)
	}
	if !strings.Contains(logs.String(), "NOT_LEADER_OR_FOLLOWER") {
		t.Errorf("leader change not logged:\n%s", logs)
	}
	st := c.status()
	if len(st.Partitions) != 3 || !st.Connected {
		t.Errorf("status %+v", st)
	}
	for _, p := range st.Partitions {
		if p.Lag != 0 || p.Offset != p.HighWatermark || p.LastMessageAgeSeconds == nil || p.State != "fetching" {
			t.Errorf("partition status %+v", p)
		}
	}
	var sb strings.Builder
	c.writeMetrics(&sb)
	for _, want := range []string{`comet_kafka_messages_total{topic="x.a"} 4`, `comet_kafka_lag{topic="x.late",partition="0"} 0`, "comet_kafka_connected 1", "# TYPE comet_kafka_skipped_total counter"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, sb.String())
		}
	}
	start := time.Now()
	stop()
	if d := time.Since(start); d > time.Second {
		t.Errorf("stop took %v", d)
	}
}

func TestKafkaConsumerOffsetsAndRestart(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	f.appendValues("t", 0, "v0", "v1", "v2", "v3")
	dir := t.TempDir()
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	var held []func()
	c, _, stop := startKafkaTestConsumer(t, f, kafkaConfig{Topics: []string{"t"}, Start: "earliest"}, dir, col.sink(true, &held))
	col.wait(t, 4, 5*time.Second)
	// Done out of order: only the prefix 0..1 is complete.
	col.mu.Lock()
	h := held
	col.mu.Unlock()
	h[1]()
	h[3]()
	h[0]()
	if err := c.offsets.commit(nil); err != nil {
		t.Fatal(err)
	}
	stop()
	o, _ := openKafkaOffsets(dir)
	if v, _ := o.get(kafkaTP{"t", 0}); v != 2 {
		t.Fatalf("stored %d, want 2 (message 2 not done)", v)
	}
	// Restart: message 2 comes again, and 3 (done, but after 2).
	f.appendValues("t", 0, "v4")
	col2 := &kafkaCollected{ch: make(chan struct{}, 1)}
	_, _, stop2 := startKafkaTestConsumer(t, f, kafkaConfig{Topics: []string{"t"}}, dir, col2.sink(false, nil))
	got := col2.wait(t, 3, 5*time.Second)
	if strings.Join(got, " ") != "t/0@2=v2 t/0@3=v3 t/0@4=v4" {
		t.Errorf("after restart: %v", got)
	}
	stop2()
	o, _ = openKafkaOffsets(dir)
	if v, _ := o.get(kafkaTP{"t", 0}); v != 5 {
		t.Errorf("stored %d after all done, want 5", v)
	}
}

func TestKafkaConsumerOutOfRangeAndStart(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	f.appendValues("t", 0, "v0", "v1", "v2")
	// Start "latest" at the first start: only new records.
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	dir := t.TempDir()
	c, logs, stop := startKafkaTestConsumer(t, f, kafkaConfig{Topics: []string{"t", "absent.*"}}, dir, col.sink(false, nil))
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := c.status()
		if len(st.Partitions) == 1 && st.Partitions[0].Offset == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never positioned at latest: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	f.appendValues("t", 0, "v3")
	if got := col.wait(t, 1, 5*time.Second); got[0] != "t/0@3=v3" {
		t.Errorf("latest: %v", got)
	}
	// Retention passes our position: reset to the earliest, logged.
	f.mu.Lock()
	p := f.topics["t"][0]
	p.values = append(p.values, []byte("v4"), []byte("v5"), []byte("v6"))
	p.times = append(p.times, time.Now(), time.Now(), time.Now())
	p.logStart = 6
	p.values = p.values[:7]
	f.mu.Unlock()
	// Our next offset (4) is now below the log start.
	f.appendValues("t", 0, "v7")
	got := col.wait(t, 3, 5*time.Second)
	if strings.Join(got, " ") != "t/0@3=v3 t/0@6=v6 t/0@7=v7" {
		t.Errorf("after out of range: %v", got)
	}
	if !strings.Contains(logs.String(), "offset out of range") {
		t.Errorf("no log line:\n%s", logs)
	}
	if n := strings.Count(logs.String(), "no topic matches yet"); n != 1 || !strings.Contains(logs.String(), "pattern=absent.*") {
		t.Errorf("an unmatched pattern should be reported once, got %d:\n%s", n, logs)
	}
	stop()
}

func TestKafkaConsumerStartTime(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	f.appendValues("t", 0, "old0", "old1")
	f.mu.Lock()
	for i := range f.topics["t"][0].times {
		f.topics["t"][0].times[i] = time.Now().Add(-time.Hour)
	}
	f.mu.Unlock()
	f.appendValues("t", 0, "new2")
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	_, _, stop := startKafkaTestConsumer(t, f, kafkaConfig{Topics: []string{"t"}, Start: time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}, "", col.sink(false, nil))
	if got := col.wait(t, 1, 5*time.Second); got[0] != "t/0@2=new2" {
		t.Errorf("start time: %v", got)
	}
	stop()
}

func TestKafkaConsumerInflightBound(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	big := strings.Repeat("x", 1000)
	for range 10 {
		f.appendValues("t", 0, big)
	}
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	var held []func()
	cfg := kafkaConfig{Topics: []string{"t"}, Start: "earliest", MaxInflightBytes: 3000}
	_, _, stop := startKafkaTestConsumer(t, f, cfg, "", col.sink(true, &held))
	col.wait(t, 3, 5*time.Second)
	time.Sleep(200 * time.Millisecond)
	col.mu.Lock()
	n := len(col.got)
	h := held
	col.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d messages handed out with 3000 bytes of room for 1000-byte messages", n)
	}
	h[0]()
	col.wait(t, 4, 5*time.Second)
	stop()
}

func TestKafkaConsumerBrokenConnections(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	f.appendValues("t", 0, "v0")
	f.mu.Lock()
	f.errs[kafkaAPIFetch] = 2
	f.errs[kafkaAPIMetadata] = 1
	f.mu.Unlock()
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	_, _, stop := startKafkaTestConsumer(t, f, kafkaConfig{Topics: []string{"t"}, Start: "earliest"}, "", col.sink(false, nil))
	col.wait(t, 1, 10*time.Second)
	stop()
}

func TestKafkaConsumerLatency(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	col := &kafkaCollected{ch: make(chan struct{}, 100)}
	c, _, stop := startKafkaTestConsumer(t, f, kafkaConfig{Topics: []string{"t"}}, "", col.sink(false, nil))
	defer stop()
	deadline := time.Now().Add(5 * time.Second)
	for c.status().Partitions == nil || len(c.status().Partitions) == 0 || c.status().Partitions[0].Offset < 0 {
		if time.Now().After(deadline) {
			t.Fatal("not positioned")
		}
		time.Sleep(5 * time.Millisecond)
	}
	const n = 50
	sent := make([]time.Time, n)
	for i := range n {
		sent[i] = time.Now()
		f.appendValues("t", 0, fmt.Sprint(i))
		time.Sleep(10 * time.Millisecond) // 100 records/s
	}
	col.wait(t, n, 5*time.Second)
	col.mu.Lock()
	lat := make([]time.Duration, n)
	for i := range n {
		lat[i] = col.times[i].Sub(sent[i])
	}
	col.mu.Unlock()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("append→sink latency at 100/s: p50 %v p99 %v max %v", lat[n/2], lat[n*99/100], lat[n-1])
	if lat[n/2] > 150*time.Millisecond {
		t.Errorf("p50 %v: the consumer is sleeping between fetches", lat[n/2])
	}
}

func TestKafkaProducerFake(t *testing.T) {
	f := newKafkaFakeCluster(t, 2)
	f.createTopic("pub", 3, 1)
	cfg := kafkaConfig{Bootstrap: f.bootstrap(), PublishTopic: "pub", Refresh: time.Second}
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	logs := &kafkaLogBuf{}
	p, err := newKafkaProducer(&cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { p.run(ctx); close(ended) }()
	defer func() { cancel(); <-ended }()
	for i := range 20 {
		p.publish([]byte(fmt.Sprintf("e%d", i)), fmt.Sprintf("ivo://x/y#%d", i%5))
	}
	fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
	defer fcancel()
	if !p.flush(fctx) {
		t.Fatalf("not flushed; logs:\n%s", logs)
	}
	f.mu.Lock()
	total := 0
	for pi, part := range f.topics["pub"] {
		total += len(part.values)
		// Same IVOID, same partition, in publish order.
		last := map[string]int{}
		for _, v := range part.values {
			var i int
			fmt.Sscanf(string(v), "e%d", &i)
			if int(kafkaPartitionHash(fmt.Sprintf("ivo://x/y#%d", i%5))%3) != pi {
				t.Errorf("e%d in partition %d", i, pi)
			}
			if j, ok := last[fmt.Sprint(i%5)]; ok && j > i {
				t.Errorf("order broken in partition %d", pi)
			}
			last[fmt.Sprint(i%5)] = i
		}
	}
	f.mu.Unlock()
	if total != 20 {
		t.Errorf("%d records stored, want 20", total)
	}
	// A leader change and a dropped connection: retried, none lost.
	f.moveLeader("pub", 0, 0)
	f.moveLeader("pub", 1, 0)
	f.mu.Lock()
	f.errs[kafkaAPIProduce] = 1
	f.mu.Unlock()
	for i := 20; i < 30; i++ {
		p.publish([]byte(fmt.Sprintf("e%d", i)), fmt.Sprintf("ivo://x/y#%d", i))
	}
	if !p.flush(fctx) {
		t.Fatalf("not flushed after leader change; logs:\n%s", logs)
	}
	pub, failed := p.counts()
	if pub != 30 || failed != 0 {
		t.Errorf("published %d failed %d", pub, failed)
	}
	// Overflow: dropped and counted, never blocking.
	p.cfg.PublishQueue = 10
	p.publish(make([]byte, 11), "ivo://x/y#big")
	if _, failed := p.counts(); failed != 1 {
		t.Errorf("overflow not counted")
	}
	var sb strings.Builder
	p.writeMetrics(&sb)
	if !strings.Contains(sb.String(), "comet_kafka_published_total 30") || !strings.Contains(sb.String(), "comet_kafka_publish_errors_total 1") {
		t.Errorf("metrics:\n%s", sb.String())
	}
}

func TestKafkaProducerMissingTopic(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	cfg := kafkaConfig{Bootstrap: f.bootstrap(), PublishTopic: "later"}
	cfg.resolve()
	logs := &kafkaLogBuf{}
	p, _ := newKafkaProducer(&cfg, slog.New(slog.NewTextHandler(logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan struct{})
	go func() { p.run(ctx); close(ended) }()
	defer func() { cancel(); <-ended }()
	p.publish([]byte("e"), "ivo://a#1")
	time.Sleep(300 * time.Millisecond)
	if !strings.Contains(logs.String(), "does not exist (not creating it)") {
		t.Errorf("missing topic not logged:\n%s", logs)
	}
	f.createTopic("later", 1, 0)
	fctx, fcancel := context.WithTimeout(ctx, 10*time.Second)
	defer fcancel()
	if !p.flush(fctx) {
		t.Fatal("not delivered after the topic appeared")
	}
}

func TestKafkaConsumerSaslSessionLifetime(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.users = map[string]string{"u": "pw"}
	f.life = 600 // ms: reconnect after 300 ms
	f.createTopic("t", 1, 0)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	cfg := kafkaConfig{Topics: []string{"t"}, Start: "earliest", Security: "sasl_plaintext", Mechanism: "PLAIN", Username: "u", PasswordFile: pw}
	_, logs, stop := startKafkaTestConsumer(t, f, cfg, "", col.sink(false, nil))
	for i := range 15 {
		f.appendValues("t", 0, fmt.Sprint(i))
		time.Sleep(100 * time.Millisecond)
	}
	got := col.wait(t, 15, 5*time.Second)
	if len(got) != 15 || got[14] != "t/0@14=14" {
		t.Errorf("got %v", got)
	}
	if n := f.auths.Load(); n < 4 {
		t.Errorf("%d authentications in 1.5 s with 0.6 s sessions", n)
	}
	stop()
	if strings.Contains(logs.String(), "level=WARN") || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("session renewal should be silent:\n%s", logs)
	}
}

func TestKafkaAuthRefusedLoggedOnce(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.users = map[string]string{"u": "pw"}
	f.createTopic("t", 1, 0)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("wrong"), 0o600)
	cfg := kafkaConfig{Topics: []string{"t"}, Security: "sasl_plaintext", Mechanism: "PLAIN", Username: "u", PasswordFile: pw}
	c, logs, stop := startKafkaTestConsumer(t, f, cfg, "", func(*kafkaMessage, func()) {})
	time.Sleep(3500 * time.Millisecond)
	if n := strings.Count(logs.String(), "authentication refused"); n != 1 || !strings.Contains(logs.String(), "Invalid username or password") {
		t.Errorf("refusal logged %d times:\n%s", n, logs)
	}
	if n := f.auths.Load(); n < 2 || n > 4 {
		t.Errorf("%d attempts in 3.5 s: want slow retries", n)
	}
	// The operator fixes the file and reloads: accepted again, logged.
	os.WriteFile(pw, []byte("pw"), 0o600)
	if err := c.reload(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second) // a reload retries at once
	for !c.connected() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !c.connected() {
		t.Errorf("not connected after the fix:\n%s", logs)
	}
	stop()
}

func TestKafkaCommands(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	dir := t.TempDir()
	var files []string
	for i := range 2 {
		p := filepath.Join(dir, fmt.Sprintf("e%d.xml", i))
		os.WriteFile(p, []byte(fmt.Sprintf(`<voe:VOEvent ivorn="ivo://cmd/test#%d" role="test"/>`, i)), 0o644)
		files = append(files, p)
	}
	runCmd := func(name string, args ...string) (int, string, string) {
		var so, se strings.Builder
		code := commands[name].run(args, strings.NewReader(""), &so, &se)
		return code, so.String(), se.String()
	}
	code, out, errs := runCmd("kafka-publish", append([]string{"--kafka-bootstrap", f.bootstrap()[0], "--topic", "t", "--timeout", "5s"}, files...)...)
	if code != 0 || out != "published 2 of 2\n" {
		t.Fatalf("kafka-publish: %d %q %s", code, out, errs)
	}
	offs := t.TempDir()
	code, out, errs = runCmd("kafka-tail", "--kafka-bootstrap", f.bootstrap()[0], "--kafka-topic", "t", "--kafka-start", "earliest", "--count", "1", "--offsets-dir", offs, "--timeout", "5s")
	if code != 0 || out != "t/0@0 51 ivo://cmd/test#0\n" {
		t.Fatalf("kafka-tail: %d %q %s", code, out, errs)
	}
	code, out, _ = runCmd("kafka-tail", "--kafka-bootstrap", f.bootstrap()[0], "--kafka-topic", "t", "--count", "1", "--offsets-dir", offs, "--timeout", "5s")
	if code != 0 || out != "t/0@1 51 ivo://cmd/test#1\n" {
		t.Fatalf("kafka-tail from stored offsets: %d %q", code, out)
	}
	code, _, _ = runCmd("kafka-tail", "--kafka-bootstrap", f.bootstrap()[0], "--kafka-topic", "t", "--count", "1", "--offsets-dir", offs, "--timeout", "300ms")
	if code != 1 {
		t.Errorf("kafka-tail with nothing to read: exit %d, want 1", code)
	}
	if code, _, errs = runCmd("kafka-tail", "--kafka-topic", "t"); code != 2 || !strings.Contains(errs, "--kafka-bootstrap") {
		t.Errorf("usage: %d %s", code, errs)
	}
	if code, _, _ = runCmd("kafka-publish", "--kafka-bootstrap", "h:1"); code != 2 {
		t.Errorf("publish usage: %d", code)
	}
}

func TestKafkaConsumerHeartbeatTooLargeCorrupt(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("t", 1, 0)
	f.createTopic(kafkaHeartbeatTopic, 1, 0)
	f.appendValues("t", 0, "ok0", strings.Repeat("L", 200), "bad2", "ok3")
	f.mu.Lock()
	f.topics["t"][0].corruptAt = 2
	f.mu.Unlock()
	col := &kafkaCollected{ch: make(chan struct{}, 1)}
	cfg := kafkaConfig{Topics: []string{"*"}, Start: "earliest", MaxValueBytes: 100}
	c, logs, stop := startKafkaTestConsumer(t, f, cfg, "", col.sink(false, nil))
	got := col.wait(t, 3, 5*time.Second)
	if strings.Join(got, " ") != "t/0@0=ok0 t/0@1= t/0@3=ok3" {
		t.Errorf("got %v", got)
	}
	if !strings.Contains(logs.String(), "skipping a record batch") {
		t.Errorf("corrupt batch not logged:\n%s", logs)
	}
	if _, ok := c.heartbeatAge(); ok {
		t.Error("heartbeat age before any heartbeat")
	}
	f.appendValues(kafkaHeartbeatTopic, 0, `{"alert_datetime":"now"}`)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if age, ok := c.heartbeatAge(); ok {
			if age > 5*time.Second {
				t.Errorf("heartbeat age %v", age)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no heartbeat age")
		}
		time.Sleep(10 * time.Millisecond)
	}
	col.mu.Lock()
	for _, g := range col.got {
		if strings.HasPrefix(g, kafkaHeartbeatTopic) {
			t.Errorf("heartbeat handed to the sink: %s", g)
		}
	}
	col.mu.Unlock()
	var sb strings.Builder
	c.writeMetrics(&sb)
	for _, want := range []string{`comet_kafka_skipped_total{reason="too-large"} 1`, `comet_kafka_skipped_total{reason="corrupt"} 1`, `comet_kafka_messages_total{topic="t"} 3`} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("metrics lack %s:\n%s", want, sb.String())
		}
	}
	if strings.Contains(sb.String(), kafkaHeartbeatTopic) {
		t.Errorf("heartbeat in metrics:\n%s", sb.String())
	}
	stop()
}

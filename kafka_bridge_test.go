package main

// Tests of the Kafka bridge inside a real broker, against the loopback fake
// cluster of kafka_fake_test.go: records reach a VTP subscriber byte for
// byte and once; what is not a VOEvent is skipped and counted; what
// admission refuses is not relayed; a restart resumes from the stored
// offsets (no loss, no repeat), and events fetched again after a crash are
// handled again but not relayed; --kafka-publish produces authors' and
// upstreams' events with their exact bytes, never those from Kafka.

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// kafkaTestHandler records the ivorns it handles.
type kafkaTestHandler struct {
	mu  sync.Mutex
	got []string
}

func (h *kafkaTestHandler) name() string { return "kafka-test" }
func (h *kafkaTestHandler) handle(_ context.Context, ev *event) error {
	h.mu.Lock()
	h.got = append(h.got, ev.ivorn)
	h.mu.Unlock()
	return nil
}
func (h *kafkaTestHandler) list() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// kafkaTestPlugin gives the broker one kafkaTestHandler.
type kafkaTestPlugin struct{ h *kafkaTestHandler }

func (p kafkaTestPlugin) pluginName() string                       { return "kafka-test" }
func (p kafkaTestPlugin) addFlags(*flag.FlagSet)                   {}
func (p kafkaTestPlugin) handlers(*slog.Logger) ([]handler, error) { return []handler{p.h}, nil }

// kafkaBrokerConfig is a broadcasting broker consuming topics from f.
func kafkaBrokerConfig(t *testing.T, f *kafkaFakeCluster, dir string, h *kafkaTestHandler, topics ...string) *config {
	cfg := testConfig(t)
	if dir != "" {
		cfg.eventDB = dir
	}
	cfg.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfg.kafka = kafkaConfig{Bootstrap: f.bootstrap(), Topics: topics, Start: "earliest", Refresh: time.Second}
	if err := kafkaResolveOptions(&cfg.kafka); err != nil {
		t.Fatal(err)
	}
	if h != nil {
		cfg.handlers = append(cfg.handlers, kafkaTestPlugin{h})
	}
	return cfg
}

// expectNoEvent fails if s receives an event within d.
func expectNoEvent(t *testing.T, s *testSubscriber, d time.Duration) {
	t.Helper()
	if e := s.nextEvent(d); e != nil {
		t.Errorf("unexpected event relayed:\n%s", e)
	}
}

func mustEvent(t *testing.T, s *testSubscriber, want []byte) {
	t.Helper()
	got := s.nextEvent(5 * time.Second)
	if got == nil {
		t.Fatalf("no event relayed; want\n%s", want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("relayed\n%q\nwant\n%q", got, want)
	}
}

func (f *kafkaFakeCluster) valuesOf(topic string, part int) [][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out [][]byte
	for _, v := range f.topics[topic][part].values {
		out = append(out, bytes.Clone(v))
	}
	return out
}

func TestKafkaBridgeRelaysOnceAndSkips(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("voe.a", 1, 0)
	f.createTopic(kafkaHeartbeatTopic, 1, 0)
	script := filepath.Join(t.TempDir(), "env.sh")
	envOut := filepath.Join(t.TempDir(), "env.out")
	os.WriteFile(script, []byte("#!/bin/sh\necho \"$COMET_IVORN $COMET_KAFKA_TOPIC\" >> "+envOut+"\n"), 0o755)
	cfg, err := parseBrokerArgs([]string{"--local-ivo", "ivo://test/comet", "--broadcast=tcp:0:interface=127.0.0.1",
		"--eventdb", t.TempDir(), "--broadcast-test-interval", "0", "--http", "127.0.0.1:0",
		"--kafka-bootstrap", f.bootstrap()[0], "--kafka-topic", "voe.*", "--kafka-start", "earliest", "--cmd", script}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	tb := startBroker(t, cfg)
	sub := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })

	good1, good2 := testEventBytes("k1"), testEventBytes("k2")
	notXMLWellFormed := bytes.Replace(testEventBytes("bad"), []byte(`<Param name="magnitude" value="18"/>`), []byte(`<Description>R&D</Description>`), 1)
	badIVOID := bytes.Replace(testEventBytes("x"), []byte(`ivo://test.local/sample#x`), []byte(`not-an-ivoid`), 1)
	f.appendValues("voe.a", 0,
		string(good1),
		`{"$schema": "https://gcn.nasa.gov/docs/schema/v4.1.0/gcn/notices/core/Alert.schema.json", "alert_datetime": "2026-12-01T00:00:00Z"}`,
		"TITLE:            GCN/FERMI NOTICE\nNOTICE_DATE:      Tue 01 Dec 26 00:00:00 UT\n",
		string(notXMLWellFormed), string(badIVOID),
		string(good1), // a duplicate within Kafka
		string(good2))
	mustEvent(t, sub, good1)
	mustEvent(t, sub, good2)
	expectNoEvent(t, sub, 300*time.Millisecond)

	if n := tb.m.accepted.Load(); n != 2 {
		t.Errorf("accepted %d, want 2", n)
	}
	if n := tb.m.duplicates.Load(); n != 1 {
		t.Errorf("duplicates %d, want 1", n)
	}
	rejected := int64(0)
	for _, lc := range tb.m.rejected.snapshot() {
		rejected += lc.count
	}
	if rejected != 2 {
		t.Errorf("rejected %v, want 2 (malformed XML, bad IVOID)", tb.m.rejected.snapshot())
	}
	// Every offset passed: the handlers finished or admission dropped it.
	waitFor(t, "offsets stored", func() bool {
		off, ok := tb.kafka.consumer.offsets.get(kafkaTP{"voe.a", 0})
		return ok && off == 7
	})
	waitFor(t, "--cmd runs", func() bool {
		b, _ := os.ReadFile(envOut)
		return strings.Count(string(b), "\n") == 2
	})
	env, _ := os.ReadFile(envOut)
	lines := strings.Split(strings.TrimSpace(string(env)), "\n")
	sort.Strings(lines) // the handler's workers run in parallel
	if strings.Join(lines, "|") != "ivo://test.local/sample#k1 voe.a|ivo://test.local/sample#k2 voe.a" {
		t.Errorf("--cmd environment:\n%s", env)
	}

	base := "http://" + tb.http.addr()
	_, metrics, _ := httpGet(t, base+"/metrics")
	for _, want := range []string{
		`comet_kafka_skipped_total{reason="not-voevent"} 2`,
		`comet_kafka_messages_total{topic="voe.a"} 7`,
		`comet_kafka_lag{topic="voe.a",partition="0"} 0`,
		"comet_kafka_connected 1",
		"comet_kafka_rehandled_total 0",
		"comet_events_accepted_total 2",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, status, _ := httpGet(t, base+"/status")
	for _, want := range []string{`"kafka": {`, `"topic": "voe.a"`, `"high_watermark": 7`, `"lag": 0`, `"last_message_age_seconds": `, `"state": "fetching"`} {
		if !strings.Contains(status, want) {
			t.Errorf("/status lacks %s:\n%s", want, status)
		}
	}
	// gcn.heartbeat is followed from its end: append until one is seen.
	waitFor(t, "heartbeat seen", func() bool {
		f.appendValues(kafkaHeartbeatTopic, 0, `{"alert_datetime": "2026-12-01T00:00:00Z"}`)
		time.Sleep(20 * time.Millisecond)
		_, ok := tb.kafka.consumer.heartbeatAge()
		return ok
	})
	if code, body, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d %s", code, body)
	}
	tb.kafka.healthAfter.Store(int64(time.Millisecond))
	time.Sleep(5 * time.Millisecond)
	if code, body, _ := httpGet(t, base+"/healthz"); code != 503 || !strings.Contains(body, "gcn.heartbeat") {
		t.Errorf("/healthz with a stale heartbeat: %d %s", code, body)
	}
	tb.kafka.healthAfter.Store(int64(kafkaHealthAfter))
}

func TestKafkaBridgeRestartNoLossNoRepeat(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("voe.r", 2, 0)
	dir := t.TempDir()
	ev := func(i int) []byte { return testEventBytes(fmt.Sprintf("r%d", i)) }
	ivorn := func(i int) string { return fmt.Sprintf("ivo://test.local/sample#r%d", i) }
	start := func(h *kafkaTestHandler) (*testBroker, *testSubscriber) {
		tb := startBroker(t, kafkaBrokerConfig(t, f, dir, h, "voe.r"))
		sub := dialSubscriber(t, tb.broadcastAddr(), nil)
		waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
		return tb, sub
	}

	// Run 1: three events, relayed and handled once each.
	h1 := &kafkaTestHandler{}
	tb, sub := start(h1)
	f.appendValues("voe.r", 0, string(ev(1)), string(ev(2)))
	f.appendValues("voe.r", 1, string(ev(3)))
	var got []string
	for range 3 {
		e := sub.nextEvent(5 * time.Second)
		if e == nil {
			t.Fatal("run 1: event missing")
		}
		ri, _ := scanRoot(e)
		got = append(got, ri.ivorn)
	}
	sort.Strings(got)
	if strings.Join(got, " ") != ivorn(1)+" "+ivorn(2)+" "+ivorn(3) {
		t.Fatalf("run 1 relayed %v", got)
	}
	waitFor(t, "run 1 handled", func() bool { return len(h1.list()) == 3 })
	tb.stop()
	offs, err := os.ReadFile(filepath.Join(dir, kafkaOffsetsFile))
	if err != nil || !strings.Contains(string(offs), "voe.r\t0\t2\n") || !strings.Contains(string(offs), "voe.r\t1\t1\n") {
		t.Fatalf("offsets after run 1: %v\n%s", err, offs)
	}

	// Run 2: event 4, appended while the broker was down, is not lost;
	// nothing before it comes again.
	f.appendValues("voe.r", 0, string(ev(4)))
	h2 := &kafkaTestHandler{}
	tb2, sub2 := start(h2)
	waitFor(t, "run 2 handled", func() bool { return len(h2.list()) == 1 })
	if h := h2.list(); h[0] != ivorn(4) {
		t.Errorf("run 2 handled %v", h)
	}
	f.appendValues("voe.r", 1, string(ev(6)))
	// The subscriber may or may not have been connected when event 4 came.
	seen2 := map[string]int{}
	for seen2[ivorn(6)] == 0 {
		e := sub2.nextEvent(5 * time.Second)
		if e == nil {
			t.Fatalf("run 2: event 6 not relayed (got %v)", seen2)
		}
		ri, _ := scanRoot(e)
		seen2[ri.ivorn]++
	}
	expectNoEvent(t, sub2, 300*time.Millisecond)
	if seen2[ivorn(6)] != 1 || seen2[ivorn(4)] > 1 || len(seen2) > 2 || (len(seen2) == 2 && seen2[ivorn(4)] != 1) {
		t.Errorf("run 2 relayed %v, want event 6 (and maybe 4) once", seen2)
	}
	if n, r := tb2.m.accepted.Load(), tb2.m.relayed.Load(); n != 2 || r != 2 {
		t.Errorf("run 2 accepted %d relayed %d, want 2 and 2", n, r)
	}
	tb2.stop()

	// Run 3, after a "crash" that left partition 0's stored offset at 1
	// (events 2 and 4 admitted, their offsets not yet written): they are
	// handled again, not relayed; the new event 5 is relayed and handled.
	os.WriteFile(filepath.Join(dir, kafkaOffsetsFile), []byte(kafkaOffsetsHeader+"\nvoe.r\t0\t1\nvoe.r\t1\t2\n"), 0o600)
	h3 := &kafkaTestHandler{}
	tb3, sub3 := start(h3)
	waitFor(t, "run 3 rehandled", func() bool { return len(h3.list()) == 2 })
	f.appendValues("voe.r", 0, string(ev(5)))
	mustEvent(t, sub3, ev(5))
	expectNoEvent(t, sub3, 300*time.Millisecond)
	waitFor(t, "run 3 handled", func() bool { return len(h3.list()) == 3 })
	if h := strings.Join(h3.list(), " "); h != ivorn(2)+" "+ivorn(4)+" "+ivorn(5) {
		t.Errorf("run 3 handled %s", h)
	}
	if n := tb3.kafka.rehandled.Load(); n != 2 {
		t.Errorf("rehandled %d, want 2", n)
	}
	if n, r := tb3.m.accepted.Load(), tb3.m.relayed.Load(); n != 1 || r != 1 {
		t.Errorf("run 3 accepted %d relayed %d, want 1 and 1", n, r)
	}
	// Past the window (event 5 was new), a duplicate is an ordinary one.
	f.appendValues("voe.r", 0, string(ev(2)))
	waitFor(t, "duplicate seen", func() bool { return tb3.m.duplicates.Load() == 3 })
	time.Sleep(100 * time.Millisecond)
	if n := len(h3.list()); n != 3 {
		t.Errorf("a duplicate past the window was handled: %v", h3.list())
	}
	waitFor(t, "offset past the duplicate", func() bool {
		off, _ := tb3.kafka.consumer.offsets.get(kafkaTP{"voe.r", 0})
		return off == 5
	})
}

func TestKafkaBridgePublish(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("in", 1, 0)
	f.createTopic("pubA", 1, 0)
	f.createTopic("pubB", 2, 0)
	// A: receiver and broadcaster, consumes "in", publishes to pubA.
	cfgA := kafkaBrokerConfig(t, f, "", nil, "in")
	cfgA.receive = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfgA.kafka.PublishTopic = "pubA"
	a := startBroker(t, cfgA)
	// B: subscribes to A (a VTP upstream), publishes to pubB.
	cfgB := testConfig(t)
	cfgB.localIVO = "ivo://test/brokerB"
	cfgB.remotes = []string{a.broadcastAddr()}
	cfgB.kafka = kafkaConfig{Bootstrap: f.bootstrap(), PublishTopic: "pubB"}
	if err := kafkaResolveOptions(&cfgB.kafka); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, cfgB)
	waitFor(t, "B subscribed", func() bool { return subscriberCount(a.broker) == 1 })
	sub := dialSubscriber(t, a.broadcastAddr(), nil)
	waitFor(t, "subscribers", func() bool { return subscriberCount(a.broker) == 2 })

	authored := append(testEventBytes("pub"), "<!-- trailing bytes kept -->\n"...)
	if code := runSendvoTo(t, a.receiveAddr(), authored); code != exitOK {
		t.Fatalf("sendvo exit %d", code)
	}
	mustEvent(t, sub, authored)
	fromKafka := testEventBytes("fromkafka")
	f.appendValues("in", 0, string(fromKafka))
	mustEvent(t, sub, fromKafka)

	waitFor(t, "A published the author's event", func() bool { return len(f.valuesOf("pubA", 0)) >= 1 })
	waitFor(t, "B published the upstream's event", func() bool {
		return len(f.valuesOf("pubB", 0))+len(f.valuesOf("pubB", 1)) >= 1
	})
	// B relays A's event from Kafka too (it came by VTP): wait for it to
	// be admitted, then for both producers to be idle.
	waitFor(t, "B accepted both", func() bool { return b.m.accepted.Load() == 2 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if !a.kafka.producer.flush(ctx) || !b.kafka.producer.flush(ctx) {
		t.Fatal("producers not flushed")
	}
	pa := f.valuesOf("pubA", 0)
	if len(pa) != 1 || !bytes.Equal(pa[0], authored) {
		t.Errorf("pubA holds %q, want only the author's event, byte for byte", pa)
	}
	pb := append(f.valuesOf("pubB", 0), f.valuesOf("pubB", 1)...)
	var names []string
	for _, v := range pb {
		ri, _ := scanRoot(v)
		names = append(names, ri.ivorn)
	}
	sort.Strings(names)
	// B got both by VTP from A (A relays its Kafka event): an upstream's
	// events are published, whatever path they took before.
	if strings.Join(names, " ") != "ivo://test.local/sample#fromkafka ivo://test.local/sample#pub" {
		t.Errorf("pubB holds %v", names)
	}
	for _, v := range pb {
		if ri, _ := scanRoot(v); ri.ivorn == "ivo://test.local/sample#pub" && !bytes.Equal(v, authored) {
			t.Errorf("pubB changed the bytes: %q", v)
		}
	}
	_, metrics, _ := func() (int, string, error) {
		var sb strings.Builder
		a.kafka.writeMetrics(&sb)
		return 0, sb.String(), nil
	}()
	if !strings.Contains(metrics, "comet_kafka_published_total 1") {
		t.Errorf("A's metrics:\n%s", metrics)
	}
}

func TestKafkaBridgeOptions(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseBrokerArgs([]string{"--help"}, &out); err == nil || !strings.Contains(out.String(), "--kafka-bootstrap HOST:PORT") {
		t.Errorf("help:\n%s", out.String())
	}
	for _, o := range []string{"--kafka-topic", "--kafka-security", "--kafka-sasl-mechanism", "--kafka-username", "--kafka-password-file",
		"--kafka-oauth-token-url", "--kafka-client-id", "--kafka-client-secret-file", "--kafka-ca", "--kafka-start", "--kafka-refresh",
		"--kafka-publish", "--gcn-client-id", "--gcn-client-secret-file", "--gcn-domain"} {
		if !strings.Contains(out.String(), "  "+o+" ") {
			t.Errorf("help lacks %s", o)
		}
	}
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string // "" = parses
	}{
		{[]string{"--kafka-topic", "x"}, "--kafka-bootstrap"},
		{[]string{"--kafka-bootstrap", "h:9092", "--kafka-topic", "x"}, ""},
		{[]string{"--kafka-bootstrap", "h:9092", "--kafka-publish", "p"}, "no service requested"},
		{[]string{"--kafka-bootstrap", "h", "--kafka-topic", "x"}, "--kafka-bootstrap"},
		{[]string{"--kafka-bootstrap", "h:1", "--kafka-topic", "x", "--kafka-security", "tls"}, "--kafka-security"},
		{[]string{"--kafka-bootstrap", "h:1", "--kafka-topic", "x", "--kafka-sasl-mechanism", "PLAIN"}, "--kafka-password-file"},
		{[]string{"--kafka-bootstrap", "h:1", "--kafka-topic", "x", "--kafka-start", "yesterday"}, "--kafka-start"},
		{[]string{"--gcn-client-id", "abc"}, "--gcn-client-secret-file"},
		{[]string{"--gcn-client-id", "abc", "--gcn-client-secret-file", "/x"}, ""},
		{[]string{"--remote", "h", "--kafka-bootstrap", "h:1", "--kafka-publish", "a*"}, "--kafka-publish"},
	} {
		cfg, err := parseBrokerArgs(append([]string{"--eventdb", dir}, c.args...), &out)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%v: %v", c.args, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%v: err %v, want one naming %s", c.args, err, c.want)
		case c.want != "":
			if _, ok := err.(*usageError); !ok {
				t.Errorf("%v: %T is not a usage error", c.args, err)
			}
		}
		if err == nil && c.args[0] == "--gcn-client-id" {
			k := cfg.kafka
			if strings.Join(k.Bootstrap, ",") != "kafka.gcn.nasa.gov:9092" || k.Security != "sasl_ssl" || k.Mechanism != "OAUTHBEARER" ||
				k.TokenURL != "https://auth.gcn.nasa.gov/oauth2/token" || strings.Join(k.Topics, ",") != "gcn.classic.voevent.*" {
				t.Errorf("GCN preset: %+v", k)
			}
		}
	}
}

// TestKafkaBridgeLatency measures records appended to the fake cluster →
// the VTP subscriber's read, at 100 records/s (contract section 6 budget:
// p50 < 20 ms, p99 < 100 ms; the figures are logged, not asserted, as a
// shared machine's load decides them).
func TestKafkaBridgeLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("lat", 1, 0)
	tb := startBroker(t, kafkaBrokerConfig(t, f, "", nil, "lat"))
	sub := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	waitFor(t, "fetching", func() bool {
		st := tb.kafka.consumer.status()
		return len(st.Partitions) == 1 && st.Partitions[0].State == "fetching"
	})
	const n = 100
	var sentMu sync.Mutex
	sent := make([]time.Time, n)
	lat := make([]time.Duration, 0, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range n {
			e := sub.nextEvent(5 * time.Second)
			if e == nil {
				return
			}
			now := time.Now()
			ri, _ := scanRoot(e)
			var i int
			fmt.Sscanf(ri.ivorn, "ivo://test.local/sample#lat%d", &i)
			sentMu.Lock()
			lat = append(lat, now.Sub(sent[i]))
			sentMu.Unlock()
		}
	}()
	for i := range n {
		v := string(testEventBytes(fmt.Sprintf("lat%d", i)))
		sentMu.Lock()
		sent[i] = time.Now()
		sentMu.Unlock()
		f.appendValues("lat", 0, v)
		time.Sleep(10 * time.Millisecond)
	}
	<-done
	if len(lat) != n {
		t.Fatalf("%d of %d events relayed", len(lat), n)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("Kafka record appended → VTP subscriber, 100/s, %d events: p50 %v p99 %v max %v (budget p50 < 20ms, p99 < 100ms)",
		n, lat[n/2], lat[n*99/100], lat[n-1])
	if lat[n/2] > 500*time.Millisecond {
		t.Errorf("p50 %v: far over budget", lat[n/2])
	}
}

// TestKafkaBridgeStopsInTime: the broker's bounded shutdown holds with the
// bridge running, against a working cluster and against one that accepts
// connections and never answers.
func TestKafkaBridgeStopsInTime(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.createTopic("s", 1, 0)
	f.createTopic("p", 1, 0)
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	var held []net.Conn
	var heldMu sync.Mutex
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			heldMu.Lock()
			held = append(held, c)
			heldMu.Unlock()
		}
	}()
	defer func() {
		heldMu.Lock()
		for _, c := range held {
			c.Close()
		}
		heldMu.Unlock()
	}()
	for _, bootstrap := range []string{f.bootstrap()[0], mute.Addr().String()} {
		cfg := testConfig(t)
		cfg.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
		cfg.kafka = kafkaConfig{Bootstrap: []string{bootstrap}, Topics: []string{"s"}, PublishTopic: "p", Start: "earliest"}
		if err := kafkaResolveOptions(&cfg.kafka); err != nil {
			t.Fatal(err)
		}
		tb := startBroker(t, cfg)
		f.appendValues("s", 0, string(testEventBytes("stop")))
		time.Sleep(700 * time.Millisecond) // connected (or stuck in a request)
		start := time.Now()
		tb.stop()
		if d := time.Since(start); d > shutdownTimeout {
			t.Errorf("bootstrap %s: shutdown took %v (limit %v)", bootstrap, d, shutdownTimeout)
		} else {
			t.Logf("bootstrap %s: shutdown took %v", bootstrap, d.Round(time.Millisecond))
		}
	}
}

// TestKafkaBridgeReloadSecrets: SIGHUP's reload re-reads the password file,
// and the consumer retries at once with it; /healthz names the link while
// it is down.
func TestKafkaBridgeReloadSecrets(t *testing.T) {
	f := newKafkaFakeCluster(t, 1)
	f.users = map[string]string{"u": "pw"}
	f.createTopic("voe.s", 1, 0)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("wrong\n"), 0o600)
	cfg := testConfig(t)
	cfg.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	cfg.kafka = kafkaConfig{Bootstrap: f.bootstrap(), Topics: []string{"voe.s"}, Start: "earliest",
		Security: "sasl_plaintext", Mechanism: "PLAIN", Username: "u", PasswordFile: pw}
	if err := kafkaResolveOptions(&cfg.kafka); err != nil {
		t.Fatal(err)
	}
	tb := startBroker(t, cfg)
	sub := dialSubscriber(t, tb.broadcastAddr(), nil)
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	waitFor(t, "refused", func() bool { return strings.Contains(tb.logs.String(), "kafka authentication refused") })
	tb.kafka.healthAfter.Store(int64(time.Millisecond))
	// The state may have changed an instant ago (a retry): give it the
	// millisecond.
	waitFor(t, "the link named as a problem", func() bool {
		st := tb.kafka.status()
		return len(st.Problems) > 0 && strings.Contains(st.Problems[0], "not connected to "+f.bootstrap()[0])
	})
	tb.kafka.healthAfter.Store(int64(kafkaHealthAfter))
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	tb.reload()
	f.appendValues("voe.s", 0, string(testEventBytes("after-reload")))
	mustEvent(t, sub, testEventBytes("after-reload"))
	if !strings.Contains(tb.logs.String(), "reloaded Kafka secrets") {
		t.Error("reload not logged")
	}
}

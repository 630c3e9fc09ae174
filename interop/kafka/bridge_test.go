package kafka

// End-to-end tests of the Kafka bridge inside the real comet broker against
// kfake: records produced by franz-go reach a VTP subscriber byte for byte
// (plaintext, and SASL/SCRAM-SHA-256), two comets linked through one topic
// (A publishes what its author sends, B consumes and relays, nothing loops),
// and the produced → VTP subscriber latency at 100 records/s.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// broker runs the comet broker with args until the test ends (SIGTERM, then
// the exit is awaited); its stderr is kept for failures.
func broker(t *testing.T, args ...string) *bg {
	t.Helper()
	b := start(t, args...)
	t.Cleanup(func() {
		b.cmd.Process.Signal(os.Interrupt)
		select {
		case <-b.done:
		case <-time.After(5 * time.Second):
			t.Errorf("comet did not stop within 5 s of SIGINT")
		}
		if t.Failed() {
			t.Logf("comet %v stderr:\n%s", args, b.errText())
		}
	})
	return b
}

// vtpSub is a minimal VTP subscriber: it reads frames and keeps the events
// (anything that is not a Transport message), acking nothing (tests are
// shorter than an iamalive interval).
type vtpSub struct {
	c      net.Conn
	events chan []byte
}

func dialVTP(t *testing.T, addr string, b *bg) *vtpSub {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var c net.Conn
	var err error
	for {
		c, err = net.Dial("tcp", addr)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v; comet stderr:\n%s", addr, err, b.errText())
		}
		time.Sleep(50 * time.Millisecond)
	}
	s := &vtpSub{c: c, events: make(chan []byte, 1000)}
	t.Cleanup(func() { c.Close() })
	go func() {
		for {
			var n [4]byte
			if _, err := io.ReadFull(c, n[:]); err != nil {
				return
			}
			msg := make([]byte, binary.BigEndian.Uint32(n[:]))
			if _, err := io.ReadFull(c, msg); err != nil {
				return
			}
			if !bytes.Contains(msg, []byte("Transport")) {
				s.events <- msg
			}
		}
	}()
	return s
}

func (s *vtpSub) next(t *testing.T, d time.Duration) []byte {
	t.Helper()
	select {
	case e := <-s.events:
		return e
	case <-time.After(d):
		return nil
	}
}

// fetchAll reads every record of topic (one partition) with franz-go.
func fetchAll(t *testing.T, addrs []string, topic string, want int, d time.Duration, extra ...kgo.Opt) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, extra...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out [][]byte
	for ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r.Value) })
		if want > 0 && len(out) >= want {
			break
		}
	}
	return out
}

func waitSubscribed(t *testing.T, b *bg) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(b.errText(), "consuming Kafka topics") {
		if time.Now().After(deadline) {
			t.Fatalf("comet not consuming; stderr:\n%s", b.errText())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestBridgeBroadcast: franz-go → kfake → comet --kafka-topic --broadcast →
// a VTP subscriber, byte for byte and once each; a JSON message is skipped.
func TestBridgeBroadcast(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "voe.in"))
	port := freePort(t)
	b := broker(t, "--local-ivo", "ivo://interop/a", "--broadcast=tcp:"+port+":interface=127.0.0.1", "--eventdb", t.TempDir(),
		"--broadcast-test-interval", "0", "--kafka-bootstrap", bootstrap(c), "--kafka-topic", "voe.*", "--kafka-start", "earliest")
	sub := dialVTP(t, "127.0.0.1:"+port, b)
	vs := values("br", 5)
	produce(t, c.ListenAddrs(), "voe.in", kgo.ZstdCompression(), append([][]byte{[]byte(`{"alert_datetime":"x"}`)}, append(vs, vs[0])...))
	for i, want := range vs {
		got := sub.next(t, 10*time.Second)
		if !bytes.Equal(got, want) {
			t.Fatalf("event %d: got %q\nwant %q\nstderr:\n%s", i, got, want, b.errText())
		}
	}
	if e := sub.next(t, 500*time.Millisecond); e != nil {
		t.Errorf("relayed again: %s", e)
	}
}

// TestBridgeScram: the same over SASL/SCRAM-SHA-256 (sasl_plaintext).
func TestBridgeScram(t *testing.T) {
	c := cluster(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "bob", "hunter2"), kfake.SeedTopics(1, "voe.sec"))
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("hunter2\n"), 0o600)
	port := freePort(t)
	b := broker(t, "--local-ivo", "ivo://interop/a", "--broadcast=tcp:"+port+":interface=127.0.0.1", "--eventdb", filepath.Join(dir, "db"),
		"--broadcast-test-interval", "0", "--kafka-bootstrap", bootstrap(c), "--kafka-topic", "voe.sec", "--kafka-start", "earliest",
		"--kafka-security", "sasl_plaintext", "--kafka-sasl-mechanism", "SCRAM-SHA-256", "--kafka-username", "bob", "--kafka-password-file", pw)
	sub := dialVTP(t, "127.0.0.1:"+port, b)
	auth := kgo.SASL(scram.Auth{User: "bob", Pass: "hunter2"}.AsSha256Mechanism())
	vs := values("scram", 2)
	produce(t, c.ListenAddrs(), "voe.sec", kgo.NoCompression(), vs, auth)
	for i, want := range vs {
		if got := sub.next(t, 10*time.Second); !bytes.Equal(got, want) {
			t.Fatalf("event %d over SCRAM: got %q; stderr:\n%s", i, got, b.errText())
		}
	}
}

// TestBridgeTwoSites: A (receiver) and B (broadcaster) both consume and
// publish one topic. An author's event sent to A is published once by A,
// consumed by B and relayed to B's subscriber once; B does not publish it
// back, and A, finding its own event in the topic, drops it as seen.
func TestBridgeTwoSites(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "site.link"))
	link := []string{"--kafka-bootstrap", bootstrap(c), "--kafka-topic", "site.link", "--kafka-publish", "site.link", "--kafka-start", "earliest", "--broadcast-test-interval", "0", "-v"}
	portA, portB := freePort(t), freePort(t)
	a := broker(t, append([]string{"--local-ivo", "ivo://interop/a", "--receive=tcp:" + portA + ":interface=127.0.0.1", "--eventdb", t.TempDir()}, link...)...)
	b := broker(t, append([]string{"--local-ivo", "ivo://interop/b", "--broadcast=tcp:" + portB + ":interface=127.0.0.1", "--eventdb", t.TempDir()}, link...)...)
	sub := dialVTP(t, "127.0.0.1:"+portB, b)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	time.Sleep(500 * time.Millisecond) // both positioned

	ev := event(7, "site")
	deadline := time.Now().Add(10 * time.Second)
	for {
		send := exec.Command(cometBin, "sendvo", "-h", "127.0.0.1", "-p", portA, "--timeout", "5s")
		send.Stdin = bytes.NewReader(ev)
		out, err := send.CombinedOutput()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sendvo: %v %s; A stderr:\n%s", err, out, a.errText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := sub.next(t, 10*time.Second); !bytes.Equal(got, ev) {
		t.Fatalf("B relayed %q; B stderr:\n%s", got, b.errText())
	}
	if e := sub.next(t, 1500*time.Millisecond); e != nil {
		t.Errorf("B relayed a second copy: %s", e)
	}
	recs := fetchAll(t, c.ListenAddrs(), "site.link", 0, 2*time.Second)
	if len(recs) != 1 || !bytes.Equal(recs[0], ev) {
		t.Errorf("site.link holds %d records, want exactly the author's event once: %q", len(recs), recs)
	}
	if !strings.Contains(a.errText(), "event previously seen") {
		t.Errorf("A did not drop its own event from the topic as seen; stderr:\n%s", a.errText())
	}
}

// TestBridgeLatency: franz-go produce (no linger, uncompressed) → kfake →
// comet → the VTP subscriber's read, at 100 records/s; the figures are
// logged (contract budget: p50 < 20 ms, p99 < 100 ms).
func TestBridgeLatency(t *testing.T) {
	c := cluster(t, kfake.SeedTopics(1, "lat.b"))
	port := freePort(t)
	b := broker(t, "--local-ivo", "ivo://interop/a", "--broadcast=tcp:"+port+":interface=127.0.0.1", "--eventdb", t.TempDir(),
		"--broadcast-test-interval", "0", "--kafka-bootstrap", bootstrap(c), "--kafka-topic", "lat.b")
	sub := dialVTP(t, "127.0.0.1:"+port, b)
	waitSubscribed(t, b)
	time.Sleep(1500 * time.Millisecond) // positioned at the end
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("lat.b"), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 100
	var mu sync.Mutex
	sent := make([]time.Time, n)
	var lat []time.Duration
	got := make(chan struct{})
	go func() {
		defer close(got)
		for range n {
			e := sub.next(t, 10*time.Second)
			if e == nil {
				return
			}
			now := time.Now()
			var k int
			i := bytes.Index(e, []byte("#lat-"))
			if i < 0 {
				continue
			}
			fmt.Sscanf(string(e[i:]), "#lat-%d", &k)
			mu.Lock()
			if k >= 0 && k < n {
				lat = append(lat, now.Sub(sent[k]))
			}
			mu.Unlock()
		}
	}()
	ctx := context.Background()
	for i := range n {
		mu.Lock()
		sent[i] = time.Now()
		mu.Unlock()
		cl.Produce(ctx, &kgo.Record{Value: event(i, "lat")}, nil)
		time.Sleep(10 * time.Millisecond)
	}
	<-got
	mu.Lock()
	defer mu.Unlock()
	if len(lat) != n {
		t.Fatalf("%d of %d events relayed; stderr:\n%s", len(lat), n, b.errText())
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("kgo produce → comet --kafka-topic → VTP subscriber, 100/s via kfake: p50 %v p99 %v max %v (budget p50 < 20ms, p99 < 100ms)",
		lat[n/2], lat[n*99/100], lat[n-1])
	if lat[n/2] > 500*time.Millisecond {
		t.Errorf("p50 %v: far over budget", lat[n/2])
	}
}

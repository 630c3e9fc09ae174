package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// benchFakeBroker is a minimal VTP broker on loopback for testing comet
// bench: its receiver answers each event (ack, or nak in nak mode) and
// closes; its broadcaster sends authenticate and iamalive on connect and
// relays every accepted event, byte for byte, to every subscriber.
type benchFakeBroker struct {
	recv, bcast net.Listener
	mode        string // "ack", "nak", "silent" (never replies), "dup" (relays twice)
	foreign     []byte // an event sent to each subscriber on connect, if set

	mu        sync.Mutex
	subs      map[*benchFakeSub]bool
	conns     map[net.Conn]bool
	ivorns    map[string]int
	sources   map[string]bool
	responses []*transport // what subscribers sent, other than acks
	acks      int

	wg sync.WaitGroup
}

type benchFakeSub struct {
	conn net.Conn
	mu   sync.Mutex // serialises writes
}

func (s *benchFakeSub) send(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	writeFrame(s.conn, b)
}

const benchFakeIVO = "ivo://comet.test/fake"

// startBenchFakeBroker starts a fake broker in the given mode; foreign, if
// not nil, is an event of other traffic sent to each subscriber on connect.
func startBenchFakeBroker(t *testing.T, mode string, foreign []byte) *benchFakeBroker {
	t.Helper()
	b := &benchFakeBroker{mode: mode, foreign: foreign, subs: map[*benchFakeSub]bool{}, conns: map[net.Conn]bool{},
		ivorns: map[string]int{}, sources: map[string]bool{}}
	var err error
	if b.recv, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if b.bcast, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	b.wg.Go(func() { b.accept(b.recv, b.author) })
	b.wg.Go(func() { b.accept(b.bcast, b.subscriber) })
	t.Cleanup(b.close)
	return b
}

func (b *benchFakeBroker) accept(ln net.Listener, serve func(net.Conn)) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.mu.Lock()
		b.conns[c] = true
		b.mu.Unlock()
		b.wg.Go(func() {
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				c.Close()
			}()
			serve(c)
		})
	}
}

func (b *benchFakeBroker) close() {
	b.recv.Close()
	b.bcast.Close()
	b.mu.Lock()
	for c := range b.conns {
		c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *benchFakeBroker) author(c net.Conn) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	raw, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		return
	}
	ri, err := scanRoot(raw)
	if err != nil {
		return
	}
	host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
	b.mu.Lock()
	b.ivorns[ri.ivorn]++
	b.sources[host] = true
	subs := make([]*benchFakeSub, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	now := time.Now()
	switch b.mode {
	case "silent":
		c.Read(make([]byte, 1)) // until the author gives up
		return
	case "nak":
		writeFrame(c, newNak(ri.ivorn, benchFakeIVO, "test says no", now).marshal())
		return
	}
	writeFrame(c, newAck(ri.ivorn, benchFakeIVO, now).marshal())
	for _, s := range subs {
		s.send(raw)
		if b.mode == "dup" {
			s.send(raw)
		}
	}
}

func (b *benchFakeBroker) subscriber(c net.Conn) {
	s := &benchFakeSub{conn: c}
	b.mu.Lock()
	b.subs[s] = true
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	s.send(newBrokerMessage("authenticate", benchFakeIVO, time.Now()).marshal())
	s.send(newBrokerMessage("iamalive", benchFakeIVO, time.Now()).marshal())
	if b.foreign != nil {
		s.send(b.foreign)
	}
	for {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		msg, err := readFrame(c, defaultMaxMessageSize)
		if err != nil {
			return
		}
		tr, err := parseTransport(msg)
		if err != nil {
			continue
		}
		b.mu.Lock()
		if tr.role == "ack" {
			b.acks++
		} else {
			b.responses = append(b.responses, tr)
		}
		b.mu.Unlock()
	}
}

// runBenchArgs runs comet bench and returns its exit code, stdout and stderr.
func runBenchArgs(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runBench(args, nil, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// lastJSON parses the last line of out as a report.
func lastJSON(t *testing.T, out string) benchReport {
	t.Helper()
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	var rep benchReport
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &rep); err != nil {
		t.Fatalf("last line is not a JSON report: %v\n%s", err, out)
	}
	return rep
}

func checkLatency(t *testing.T, name string, l benchLatency, count uint64) {
	t.Helper()
	if l.Count != count {
		t.Errorf("%s: %d samples, want %d", name, l.Count, count)
	}
	if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.Max) {
		t.Errorf("%s: want 0 < p50 <= p99 <= max, got %+v", name, l)
	}
}

func TestBenchAgainstFakeBroker(t *testing.T) {
	b := startBenchFakeBroker(t, "ack", nil)
	args := []string{"-n", "200", "-c", "4", "-s", "2", "--warmup", "10", "--json",
		"--filter", "//Param[@name='Packet_Type']", "--timeout", "20s", "--settle", "5s",
		"--target", b.recv.Addr().String(), "--subscribe", b.bcast.Addr().String()}
	linux := runtime.GOOS == "linux"
	if linux {
		args = append(args, "--pid", strconv.Itoa(os.Getpid()))
	}
	code, out, errOut := runBenchArgs(t, args...)
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("--json printed %d lines, want 1:\n%s", n, out)
	}
	rep := lastJSON(t, out)
	if rep.Sent != 200 || rep.Accepted != 200 || rep.Naks != 0 || rep.Errors != 0 {
		t.Errorf("sent %d accepted %d naks %d errors %d, want 200 200 0 0 (%s)", rep.Sent, rep.Accepted, rep.Naks, rep.Errors, rep.FirstError)
	}
	if rep.AcceptedRate <= 0 || rep.Seconds <= 0 {
		t.Errorf("rate %g over %g s, want positive", rep.AcceptedRate, rep.Seconds)
	}
	checkLatency(t, "ack latency", rep.AckLatency, 200)
	checkLatency(t, "receipt latency", rep.Receipt, 400)
	d := rep.Delivery
	want := benchSubscriberReport{Connected: 2, Authenticated: 2, Expected: 200, ReceivedMin: 200, ReceivedMax: 200,
		Completeness: 1, Iamalive: 2}
	if d != want {
		t.Errorf("delivery %+v, want %+v", d, want)
	}
	if rep.TimedOut {
		t.Error("timed out")
	}
	if linux {
		if rep.Broker == nil || rep.Broker.RSSPeakMiB <= 0 || rep.Broker.Samples < 1 || rep.Broker.PID != os.Getpid() {
			t.Errorf("broker figures %+v, want a peak RSS", rep.Broker)
		}
	}

	// The last acks may still be on their way to the fake broker.
	for wait := time.Now().Add(3 * time.Second); time.Now().Before(wait); time.Sleep(5 * time.Millisecond) {
		b.mu.Lock()
		acks := b.acks
		b.mu.Unlock()
		if acks >= 2*210 {
			break
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ivorns) != 210 {
		t.Errorf("broker saw %d distinct ivorns, want 210", len(b.ivorns))
	}
	for iv, n := range b.ivorns {
		if n != 1 {
			t.Errorf("ivorn %s submitted %d times", iv, n)
		}
		if !strings.HasPrefix(iv, "ivo://nasa.gsfc.gcn/MAXI#bench-") {
			t.Errorf("ivorn %s does not keep the event's authority and path", iv)
		}
	}
	if b.acks != 2*210 {
		t.Errorf("subscribers acked %d events, want 420", b.acks)
	}
	if linux && len(b.sources) < 2 {
		t.Errorf("authors used %d source addresses, want them spread over 127.0.0.x", len(b.sources))
	}
	roles := map[string]int{}
	for _, tr := range b.responses {
		roles[tr.role]++
		if ua := tr.param("User-Agent"); !strings.Contains(ua, "(IVOA-test)") {
			t.Errorf("%s response User-Agent %q lacks the IVOA-test purpose", tr.role, ua)
		}
		if tr.origin != benchFakeIVO {
			t.Errorf("%s response Origin %q, want %q", tr.role, tr.origin, benchFakeIVO)
		}
		if tr.role == "authenticate" && (len(tr.filters) != 1 || tr.filters[0] != "//Param[@name='Packet_Type']") {
			t.Errorf("authenticate response filters %q", tr.filters)
		}
	}
	if roles["authenticate"] != 2 || roles["iamalive"] != 2 {
		t.Errorf("responses by role %v, want 2 authenticate and 2 iamalive", roles)
	}
}

func TestBenchTableAndJSON(t *testing.T) {
	b := startBenchFakeBroker(t, "ack", nil)
	code, out, errOut := runBenchArgs(t, "-n", "20", "-c", "2", "-s", "1", "--timeout", "10s",
		"--target", b.recv.Addr().String(), "--subscribe", b.bcast.Addr().String())
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	for _, want := range []string{"accepted rate", "submit to ack", "submit to receipt", "delivery"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	rep := lastJSON(t, out)
	if rep.Accepted != 20 || rep.Delivery.ReceivedMin != 20 {
		t.Errorf("accepted %d, received %d, want 20 and 20", rep.Accepted, rep.Delivery.ReceivedMin)
	}
}

func TestBenchMisbehavingBrokers(t *testing.T) {
	foreign := bytes.Replace(medianEvent(t), []byte("#Known_source"), []byte("#other_traffic"), 1)
	cases := []struct {
		name     string
		mode     string
		args     []string
		accepted int64
		naks     int64
		errors   int64
		expected int64
		received int64
		dups     int64
		timedOut bool
	}{
		{name: "naks every event", mode: "nak", args: []string{"-n", "30", "--settle", "100ms"}, naks: 30},
		{name: "relays twice", mode: "dup", args: []string{"-n", "25"}, accepted: 25, expected: 25, received: 25, dups: 25},
		{name: "never replies", mode: "silent", args: []string{"-n", "3", "-c", "3", "--timeout", "300ms"}, errors: 3, timedOut: true},
		{name: "filters not expected to match", mode: "ack", args: []string{"-n", "5", "--filter", "false()", "--expect-match=false", "--settle", "50ms"},
			accepted: 5, expected: 0, received: 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := startBenchFakeBroker(t, tc.mode, foreign)
			args := append([]string{"--json", "-s", "1", "--settle", "2s", "--timeout", "10s",
				"--target", b.recv.Addr().String(), "--subscribe", b.bcast.Addr().String()}, tc.args...)
			code, out, errOut := runBenchArgs(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d, stderr %s", code, errOut)
			}
			rep := lastJSON(t, out)
			if rep.Accepted != tc.accepted || rep.Naks != tc.naks || rep.Errors != tc.errors {
				t.Errorf("accepted %d naks %d errors %d, want %d %d %d", rep.Accepted, rep.Naks, rep.Errors, tc.accepted, tc.naks, tc.errors)
			}
			d := rep.Delivery
			if d.Expected != tc.expected || d.ReceivedMin != tc.received || d.Duplicates != tc.dups {
				t.Errorf("expected %d received %d duplicates %d, want %d %d %d", d.Expected, d.ReceivedMin, d.Duplicates, tc.expected, tc.received, tc.dups)
			}
			if d.Unexpected != 1 {
				t.Errorf("%d events from other traffic, want 1", d.Unexpected)
			}
			if rep.TimedOut != tc.timedOut {
				t.Errorf("timed out %v, want %v", rep.TimedOut, tc.timedOut)
			}
			if tc.timedOut && rep.ErrorKinds["cut off by --timeout or interrupt"] != tc.errors {
				t.Errorf("error kinds %v, want %d cut off", rep.ErrorKinds, tc.errors)
			}
			if tc.naks > 0 && rep.NakReasons["test says no"] != tc.naks {
				t.Errorf("nak reasons %v", rep.NakReasons)
			}
		})
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestBenchCannotConnect(t *testing.T) {
	b := startBenchFakeBroker(t, "ack", nil)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"receiver refuses", []string{"-s", "0", "-n", "50", "--target", closedAddr(t)}, "no author could connect"},
		{"broadcaster refuses", []string{"-s", "2", "--target", b.recv.Addr().String(), "--subscribe", closedAddr(t)}, "no subscriber could connect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, _, errOut := runBenchArgs(t, append(tc.args, "--json", "--timeout", "10s")...)
			if code != exitFail {
				t.Errorf("exit %d, want %d", code, exitFail)
			}
			if !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Errorf("stderr %q, want one line with %q", errOut, tc.want)
			}
			if el := time.Since(start); el > 5*time.Second {
				t.Errorf("took %v to give up", el)
			}
		})
	}
}

func TestBenchUsage(t *testing.T) {
	cases := [][]string{
		{"--no-such-flag"},
		{"extra"},
		{"-n", "0"},
		{"-c", "0"},
		{"-s", "-1"},
		{"--warmup", "-1"},
		{"--rate", "-5"},
		{"--timeout", "0s"},
		{"--conn-timeout", "-1s"},
		{"--settle", "-1s"},
		{"--pid", "-3"},
		{"--target", "no-port"},
		{"--subscribe", "no-port"},
		{"-n", "many"},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, out, errOut := runBenchArgs(t, args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d", code, exitUsage)
			}
			if out != "" || errOut == "" {
				t.Errorf("stdout %q, stderr %q: want only stderr", out, errOut)
			}
		})
	}
}

func TestBenchEventFile(t *testing.T) {
	dir := t.TempDir()
	noIvorn := dir + "/no-ivorn.xml"
	os.WriteFile(noIvorn, []byte(`<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" role="test"/>`), 0o644)
	cases := []struct {
		name string
		path string
		want string
	}{
		{"missing file", dir + "/absent.xml", "read event"},
		{"no ivorn", noIvorn, "no ivorn attribute"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runBenchArgs(t, "--event", tc.path, "-s", "0", "--target", closedAddr(t))
			if code != exitFail || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d stderr %q, want %d and %q", code, errOut, exitFail, tc.want)
			}
		})
	}
}

func TestBenchNoSuchPID(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("--pid reads /proc")
	}
	b := startBenchFakeBroker(t, "ack", nil)
	// Above the kernel's largest pid_max (2^22), so no process has it.
	code, out, errOut := runBenchArgs(t, "--pid", "2147483647", "-s", "0", "--target", b.recv.Addr().String())
	if code != exitFail || out != "" || !strings.Contains(errOut, "broker pid 2147483647") {
		t.Errorf("exit %d stdout %q stderr %q, want %d and one error line", code, out, errOut, exitFail)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ivorns) != 0 {
		t.Errorf("submitted %d events with a bad --pid", len(b.ivorns))
	}
}

func TestBenchTemplate(t *testing.T) {
	median := medianEvent(t)
	cases := []struct {
		name      string
		raw       []byte
		oldAttr   string // the ivorn attribute as written in raw
		newAttr   string // as it must be written in event 7
		wantIvorn string
	}{
		{"median event", median,
			`ivorn="ivo://nasa.gsfc.gcn/MAXI#Known_source_Pos_2023-06-13T06:45:17.00_1008892814-0-654"`,
			`ivorn="ivo://nasa.gsfc.gcn/MAXI#bench-r1-7"`, "ivo://nasa.gsfc.gcn/MAXI#bench-r1-7"},
		{"single quotes, no local part",
			[]byte("<?xml version='1.0'?>\n<!-- c -->\n<VOEvent role='test' ivorn='ivo://a.b/c' version='2.0'><Who ivorn=\"x\"/></VOEvent>\n"),
			`ivorn='ivo://a.b/c'`, `ivorn='ivo://a.b/c#bench-r1-7'`, "ivo://a.b/c#bench-r1-7"},
		{"entity in the ivorn",
			[]byte(`<v:VOEvent xmlns:v="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://a.b/c&amp;d#e" role="test"></v:VOEvent>`),
			`ivorn="ivo://a.b/c&amp;d#e"`, `ivorn="ivo://a.b/c&amp;d#bench-r1-7"`, "ivo://a.b/c&d#bench-r1-7"},
		{"prefixed ivorn attribute ignored",
			[]byte(`<VOEvent x:ivorn="ivo://no" ivorn="ivo://yes#1" role="test"/>`),
			`ivorn="ivo://yes#1"`, `ivorn="ivo://yes#bench-r1-7"`, "ivo://yes#bench-r1-7"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tmpl, err := newBenchTemplate(tc.raw, "r1")
			if err != nil {
				t.Fatal(err)
			}
			ev := tmpl.appendEvent(nil, 7)
			want := bytes.Replace(tc.raw, []byte(tc.oldAttr), []byte(tc.newAttr), 1)
			if !bytes.Equal(ev, want) {
				t.Errorf("event 7:\n%s\nwant:\n%s", ev, want)
			}
			ri, err := scanRoot(ev)
			if err != nil {
				t.Fatal(err)
			}
			if ri.ivorn != tc.wantIvorn || tmpl.ivorn(7) != tc.wantIvorn {
				t.Errorf("ivorn %q, template says %q, want %q", ri.ivorn, tmpl.ivorn(7), tc.wantIvorn)
			}
			if n, ok := tmpl.index(ri.ivorn); !ok || n != 7 {
				t.Errorf("index(%q) = %d, %v; want 7, true", ri.ivorn, n, ok)
			}
		})
	}
}

func TestBenchTemplateUniqueIvorns(t *testing.T) {
	tmpl, err := newBenchTemplate(medianEvent(t), "abc")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i := range 1000 {
		ri, err := scanRoot(tmpl.appendEvent(nil, i))
		if err != nil {
			t.Fatal(err)
		}
		if seen[ri.ivorn] {
			t.Fatalf("ivorn %s twice", ri.ivorn)
		}
		seen[ri.ivorn] = true
		if n, ok := tmpl.index(ri.ivorn); !ok || n != i {
			t.Errorf("index(%q) = %d, %v; want %d", ri.ivorn, n, ok, i)
		}
	}
	other, _ := newBenchTemplate(medianEvent(t), "abd")
	if seen[other.ivorn(0)] {
		t.Error("two runs share an ivorn")
	}
	for _, iv := range []string{"ivo://x/y#bench-abd-1", "ivo://x/y#bench-abc-01", "ivo://x/y#bench-abc--1",
		"ivo://x/y#bench-abc-", "ivo://x/y", "ivo://x/y#bench-abc-1x"} {
		if n, ok := tmpl.index(iv); ok {
			t.Errorf("index(%q) = %d, want not ours", iv, n)
		}
	}
}

func TestBenchHist(t *testing.T) {
	var h benchHist
	if got := h.quantile(0.5); got != 0 {
		t.Errorf("empty histogram p50 = %v", got)
	}
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	var other benchHist
	other.record(5 * time.Millisecond)
	other.record(-time.Second)
	cases := []struct {
		name string
		h    *benchHist
		q    float64
		want time.Duration
	}{
		{"p50", &h, 0.50, 500 * time.Microsecond},
		{"p99", &h, 0.99, 990 * time.Microsecond},
		{"p100", &h, 1, 1000 * time.Microsecond},
		{"p0.1", &h, 0.001, 1 * time.Microsecond},
		{"negative counts as zero", &other, 0.5, 0},
		{"max of two", &other, 1, 5 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.h.quantile(tc.q)
			if diff := float64(got-tc.want) / float64(tc.want+1); diff > 0.01 || diff < -0.01 {
				t.Errorf("quantile(%g) = %v, want %v within 1%%", tc.q, got, tc.want)
			}
		})
	}
	h.merge(&other)
	if h.n != 1002 || h.max != int64(5*time.Millisecond) || h.min != 0 {
		t.Errorf("merged: n %d min %d max %d", h.n, h.min, h.max)
	}
	for v := uint64(0); v < 1<<20; v = v*3/2 + 1 {
		mid := benchHistMid(benchHistIndex(v))
		if d := float64(int64(v)-mid) / float64(v+1); d > 0.008 || d < -0.008 {
			t.Errorf("value %d lands in a bucket whose middle is %d", v, mid)
		}
	}
}

func TestParseProc(t *testing.T) {
	status := "Name:\tcomet\nVmPeak:\t  99999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\nThreads:\t7\n"
	rss, hwm, err := parseProcStatus([]byte(status))
	if err != nil || rss != 10240 || hwm != 20480 {
		t.Errorf("status: rss %d hwm %d err %v, want 10240 20480", rss, hwm, err)
	}
	if _, _, err := parseProcStatus([]byte("Name:\tkthreadd\nState:\tS\n")); err == nil {
		t.Error("status without VmRSS parsed")
	}
	cases := []struct {
		name string
		stat string
		want int64
		ok   bool
	}{
		{"plain", "42 (comet) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 100 1000 200", 300, true},
		{"name with spaces and parentheses", "42 (a b) c)) R 1 42 42 0 -1 0 0 0 0 0 7 8 0 0 20 0 1 0 1 1 1", 15, true},
		{"truncated", "42 (comet) S 1 42", 0, false},
		{"no name", "42 comet S", 0, false},
		{"not a number", "42 (comet) S 1 42 42 0 -1 0 0 0 0 0 x 8 0", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseProcStat([]byte(tc.stat))
			if (err == nil) != tc.ok || got != tc.want {
				t.Errorf("got %d, %v; want %d, ok %v", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestBenchRateCap(t *testing.T) {
	b := startBenchFakeBroker(t, "ack", nil)
	code, out, errOut := runBenchArgs(t, "--json", "-n", "20", "-c", "4", "-s", "0", "--rate", "400",
		"--target", b.recv.Addr().String())
	if code != exitOK {
		t.Fatalf("exit %d, stderr %s", code, errOut)
	}
	rep := lastJSON(t, out)
	// 20 events at 400/s: the last starts 19/400 s = 47.5 ms after the first.
	if rep.Accepted != 20 || rep.Seconds < 0.0475 {
		t.Errorf("accepted %d in %.4f s, want 20 in at least 0.0475 s", rep.Accepted, rep.Seconds)
	}
	if rep.AcceptedRate > 450 {
		t.Errorf("rate %.1f/s exceeds the cap of 400/s", rep.AcceptedRate)
	}
}

func TestBenchRootAttrs(t *testing.T) {
	cases := []struct {
		name, raw   string
		role, ivorn string
		ok          bool
	}{
		{"event", `<?xml version="1.0"?><voe:VOEvent ivorn="ivo://a/b#c" role="test"><x/></voe:VOEvent>`, "test", "ivo://a/b#c", true},
		{"BOM, comment and PI first", "\xEF\xBB\xBF<?xml version='1.0'?>\n<!-- a -> b -->\n<?pi x?>\n<V role='utility' ivorn='ivo://a&amp;b'/>", "utility", "ivo://a&b", true},
		{"prefixed attributes ignored", `<V x:role="ack" role="observation"/>`, "observation", "", true},
		{"transport", string(newAck("ivo://a/b#1", "", time.Unix(0, 0)).marshal()), "ack", "", true},
		{"doctype", `<!DOCTYPE x><V role="test"/>`, "", "", false},
		{"text first", `hello <V/>`, "", "", false},
		{"unterminated comment", `<!-- <V role="test"/>`, "", "", false},
		{"empty", ``, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			role, ivorn, err := rootAttrs([]byte(tc.raw))
			if (err == nil) != tc.ok || role != tc.role || ivorn != tc.ivorn {
				t.Errorf("got %q %q %v, want %q %q ok %v", role, ivorn, err, tc.role, tc.ivorn, tc.ok)
			}
		})
	}
}

func TestBenchIsAckFor(t *testing.T) {
	tmpl, err := newBenchTemplate([]byte(`<V ivorn="ivo://a/b&amp;c#x" role="test"/>`), "r")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name  string
		reply []byte
		want  bool
	}{
		{"ack", newAck(tmpl.ivorn(12), "ivo://broker", now).marshal(), true},
		{"ack of another event", newAck(tmpl.ivorn(123), "ivo://broker", now).marshal(), false},
		{"ack of a prefix", newAck(tmpl.ivorn(1), "ivo://broker", now).marshal(), false},
		{"nak", newNak(tmpl.ivorn(12), "ivo://broker", "no", now).marshal(), false},
		{"not XML", []byte("<Origin>ivo://a/b&amp;c#bench-r-12</Origin>"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tmpl.isAckFor(tc.reply, 12); got != tc.want {
				t.Errorf("isAckFor = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBenchReadFrame(t *testing.T) {
	long := bytes.Repeat([]byte("y"), 50)
	big := bytes.Repeat([]byte("z"), 5000) // larger than the reader's buffer: copied into buf
	input := append(append(append(append(frame([]byte("abc")), frame(long)...), frame(big)...), frame([]byte("de"))...), frame(nil)...)
	input = append(input, 0, 0, 1, 0)
	br := bufio.NewReaderSize(bytes.NewReader(input), 4096)
	var buf []byte
	for _, want := range [][]byte{[]byte("abc"), long, big, []byte("de")} {
		got, used, err := benchReadFrame(br, buf, 10000)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("got %q, %v; want %q", got, err, want)
		}
		if copied := len(want) > 4000; copied != (used == 0) || !copied && used != 4+len(want) {
			t.Errorf("frame of %d bytes: used %d", len(want), used)
		}
		if used == 0 {
			buf = got
		}
	}
	if _, _, err := benchReadFrame(br, buf, 100); !errors.Is(err, errEmptyFrame) {
		t.Errorf("zero length: %v", err)
	}
	if _, _, err := benchReadFrame(br, buf, 100); !errors.Is(err, errFrameTooLarge) {
		t.Errorf("256 bytes over a limit of 100: %v", err)
	}
	br = bufio.NewReader(bytes.NewReader(frame(long)[:20]))
	if _, _, err := benchReadFrame(br, nil, 100); err != io.ErrUnexpectedEOF {
		t.Errorf("cut short: %v", err)
	}
	br = bufio.NewReader(bytes.NewReader([]byte{0, 0}))
	if _, _, err := benchReadFrame(br, nil, 100); err != io.ErrUnexpectedEOF {
		t.Errorf("header cut short: %v", err)
	}
	br = bufio.NewReader(bytes.NewReader(nil))
	if _, _, err := benchReadFrame(br, nil, 100); err != io.EOF {
		t.Errorf("clean end: %v", err)
	}
}

func TestBenchInterrupt(t *testing.T) {
	b := startBenchFakeBroker(t, "silent", nil)
	tmpl, err := newBenchTemplate(medianEvent(t), "int")
	if err != nil {
		t.Fatal(err)
	}
	cfg := benchConfig{events: 4, authors: 2, target: b.recv.Addr().String(),
		timeout: time.Minute, connTimeout: time.Minute, settle: time.Minute}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	rep, err := runBenchLoad(ctx, &cfg, tmpl, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("an interrupted run took %v to stop", el)
	}
	if rep.Sent != 2 || rep.ErrorKinds["cut off by --timeout or interrupt"] != 2 {
		t.Errorf("sent %d, errors %v (%s): want the 2 in flight cut off", rep.Sent, rep.ErrorKinds, rep.FirstError)
	}
}

func TestAppendBenchAck(t *testing.T) {
	for _, ivorn := range []string{"ivo://nasa.gsfc.gcn/MAXI#bench-r-12", "ivo://a/b&c<d>e\r#f", ""} {
		t.Run(ivorn, func(t *testing.T) {
			var stamp benchStamp
			got := appendBenchAck([]byte("keep"), ivorn, &stamp)
			var want bytes.Buffer
			want.WriteString("keep")
			writeFrame(&want, newAck(ivorn, "", time.Unix(stamp.sec, 0)).marshal())
			if !bytes.Equal(got, want.Bytes()) {
				t.Errorf("got\n%q\nwant\n%q", got, want.Bytes())
			}
		})
	}
}

package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startStatusServer runs a status server on a loopback port for one test.
func startStatusServer(t *testing.T, m *metrics, status func() brokerStatus) *statusServer {
	t.Helper()
	log, _ := newTestLogger()
	s, err := newStatusServer("127.0.0.1:0", m, status, log)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.serve(); err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.shutdown(ctx)
		wg.Wait()
	})
	return s
}

func get(t *testing.T, s *statusServer, path string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get("http://" + s.addr() + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// parseExposition reads the text format into series -> value, checking
// that every sample belongs to a family declared by HELP and TYPE lines
// and that no series appears twice.
func parseExposition(t *testing.T, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	typed := map[string]bool{}
	helped := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, _ := strings.Cut(rest, " ")
			helped[name] = true
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, typ, _ := strings.Cut(rest, " ")
			if typ != "counter" && typ != "gauge" {
				t.Errorf("family %s has type %q", name, typ)
			}
			if strings.HasSuffix(name, "_total") != (typ == "counter") {
				t.Errorf("family %s: type %s", name, typ)
			}
			typed[name] = true
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Errorf("bad line %q", line)
			continue
		}
		series, value := line[:i], line[i+1:]
		name, _, _ := strings.Cut(series, "{")
		if !typed[name] || !helped[name] {
			t.Errorf("sample %q before its HELP and TYPE", line)
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Errorf("bad value in %q", line)
		}
		if _, dup := out[series]; dup {
			t.Errorf("series %s twice", series)
		}
		out[series] = v
	}
	return out
}

// scenarioStatus is a broker with two listeners, subscribers and upstreams.
func scenarioStatus(now time.Time, receiverUp bool) brokerStatus {
	return brokerStatus{
		Version:  version,
		Started:  now.Add(-time.Hour),
		LocalIVO: "ivo://example.org/broker",
		Listeners: []listenerStatus{
			{Role: "receiver", Address: "0.0.0.0:8098", Up: receiverUp, Error: map[bool]string{true: "", false: "accept: too many open files"}[receiverUp]},
			{Role: "broadcaster", Address: "0.0.0.0:8099", Up: true},
		},
		Peers: []peerStatus{
			{Role: "subscriber", Address: "192.0.2.1:40000", State: "connected", Delivered: 7, AcksOutstanding: 2, Software: "comet/3.1.0"},
			{Role: "subscriber", Address: "[2001:db8::1]:40001", State: "connected", Delivered: 5},
			{Role: "upstream", Address: "voevent.4pisky.org:8099", State: "connected", Since: now.Add(-10 * time.Minute), LastMessage: now.Add(-30 * time.Second)},
			{Role: "upstream", Address: `odd"host\name:8099`, State: "backoff", Since: now.Add(-90 * time.Second)},
		},
		EventDB: eventDBStatus{Dir: "/var/lib/comet", Entries: 42, SizeBytes: 123456, Records: 40, Writes: 30},
	}
}

func TestMetricsScenario(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	var m metrics
	// The scripted scenario: 10 events arrive; 6 are new, 2 duplicates,
	// 2 refused (one unparseable, one with a bad IVOID); each new one is
	// relayed and runs two handlers, one of which fails once; one event
	// overflows the handler queue.
	for range 10 {
		m.received.Add(1)
	}
	for range 6 {
		m.accepted.Add(1)
		m.relayed.Add(1)
		m.handlerRuns.inc("save-event")
		m.handlerRuns.inc("cmd:/usr/local/bin/alert")
		m.signatures.inc("unsigned")
	}
	m.handlerFailures.inc("cmd:/usr/local/bin/alert")
	m.handlerOverflows.Add(1)
	m.duplicates.Add(2)
	m.rejected.inc("xml")
	m.rejected.inc("ivoid")
	m.eventDBErrors.Add(1)
	m.deliveries.Add(12)
	m.deliveryWrites.Add(4)

	body := renderMetrics(&m, scenarioStatus(now, true), now)
	got := parseExposition(t, body)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{`comet_events_received_total`, 10},
		{`comet_events_accepted_total`, 6},
		{`comet_events_rejected_total{reason="xml"}`, 1},
		{`comet_events_rejected_total{reason="ivoid"}`, 1},
		{`comet_events_duplicate_total`, 2},
		{`comet_events_relayed_total`, 6},
		{`comet_deliveries_total`, 12},
		{`comet_delivery_writes_total`, 4},
		{`comet_events_delivered_total{peer="192.0.2.1:40000"}`, 7},
		{`comet_events_delivered_total{peer="[2001:db8::1]:40001"}`, 5},
		{`comet_acks_outstanding{peer="192.0.2.1:40000"}`, 2},
		{`comet_acks_outstanding{peer="[2001:db8::1]:40001"}`, 0},
		{`comet_connections{role="subscriber"}`, 2},
		{`comet_connections{role="upstream"}`, 1},
		{`comet_upstream_up{peer="voevent.4pisky.org:8099"}`, 1},
		{`comet_upstream_up{peer="odd\"host\\name:8099"}`, 0},
		{`comet_upstream_last_message_age_seconds{peer="voevent.4pisky.org:8099"}`, 30},
		{`comet_upstream_last_message_age_seconds{peer="odd\"host\\name:8099"}`, 90},
		{`comet_handler_runs_total{handler="save-event"}`, 6},
		{`comet_handler_runs_total{handler="cmd:/usr/local/bin/alert"}`, 6},
		{`comet_handler_failures_total{handler="cmd:/usr/local/bin/alert"}`, 1},
		{`comet_handler_failures_total{handler="save-event"}`, 0},
		{`comet_handler_queue_overflows_total`, 1},
		{`comet_signatures_total{verdict="unsigned"}`, 6},
		{`comet_eventdb_entries`, 42},
		{`comet_eventdb_size_bytes`, 123456},
		{`comet_eventdb_records_written_total`, 40},
		{`comet_eventdb_writes_total`, 30},
		{`comet_eventdb_errors_total`, 1},
		{`comet_build_info{software="` + softwareName("") + `"}`, 1},
		{`comet_start_time_seconds`, float64(now.Add(-time.Hour).Unix())},
	} {
		v, ok := got[tc.series]
		if !ok {
			t.Errorf("%s missing", tc.series)
			continue
		}
		if v != tc.want {
			t.Errorf("%s = %v, want %v", tc.series, v, tc.want)
		}
	}
	// The scenario's 31 series, plus comet_goroutines, comet_go_heap_inuse_bytes,
	// comet_inflight_bytes and comet_inflight_waits_total.
	if len(got) != 35 || got["comet_goroutines"] < 1 || got["comet_go_heap_inuse_bytes"] <= 0 {
		t.Errorf("%d series, want 35:\n%s", len(got), body)
	}
}

func TestFormatPromValue(t *testing.T) {
	for _, tc := range []struct {
		in   float64
		want string
	}{
		{0, "0"},
		{42, "42"},
		{1795312800, "1795312800"},
		{1795312800.125, "1795312800.125"},
		{0.5, "0.5"},
		{1e20, "1e+20"},
		{math.Inf(1), "+Inf"},
		{math.NaN(), "NaN"},
	} {
		if got := formatPromValue(tc.in); got != tc.want {
			t.Errorf("formatPromValue(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestEscapeLabelValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{`a"b`, `a\"b`},
		{`a\b`, `a\\b`},
		{"a\nb", `a\nb`},
		{"é\tx", "é\tx"},
	} {
		if got := escapeLabelValue(tc.in); got != tc.want {
			t.Errorf("escapeLabelValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStatusEndpoints(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	up := true
	var m metrics
	m.received.Add(3)
	m.rejected.inc("schema")
	s := startStatusServer(t, &m, func() brokerStatus {
		mu.Lock()
		defer mu.Unlock()
		return scenarioStatus(now, up)
	})
	wantServer := "comet/" + version + " go/" + strings.TrimPrefix(runtime.Version(), "go")

	for _, tc := range []struct {
		path, contentType string
		code              int
		bodyHas           string
	}{
		{"/healthz", "text/plain; charset=utf-8", 200, "ok\n"},
		{"/metrics", "text/plain; version=0.0.4; charset=utf-8", 200, "comet_events_received_total 3\n"},
		{"/status", "application/json", 200, `"local_ivo": "ivo://example.org/broker"`},
		{"/nothing", "text/plain; charset=utf-8", 404, "not found"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, s, tc.path)
			if resp.StatusCode != tc.code {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if got := resp.Header.Get("Server"); got != wantServer {
				t.Errorf("Server %q, want %q", got, wantServer)
			}
			if got := resp.Header.Get("Content-Type"); got != tc.contentType {
				t.Errorf("Content-Type %q, want %q", got, tc.contentType)
			}
			if !strings.Contains(body, tc.bodyHas) {
				t.Errorf("body lacks %q:\n%s", tc.bodyHas, body)
			}
		})
	}

	t.Run("status json", func(t *testing.T) {
		_, body := get(t, s, "/status")
		var doc struct {
			Version   string           `json:"version"`
			Software  string           `json:"software"`
			Uptime    float64          `json:"uptime_seconds"`
			Listeners []listenerStatus `json:"listeners"`
			Peers     []peerStatus     `json:"peers"`
			EventDB   eventDBStatus    `json:"eventdb"`
			Counters  statusCounters   `json:"counters"`
		}
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Version != version || doc.Software != wantServer || len(doc.Listeners) != 2 || len(doc.Peers) != 4 ||
			doc.Peers[0].Software != "comet/3.1.0" || doc.EventDB.Entries != 42 ||
			doc.Counters.Received != 3 || doc.Counters.Rejected["schema"] != 1 || doc.Uptime < 3600 {
			t.Errorf("status document:\n%s", body)
		}
	})

	t.Run("healthz down", func(t *testing.T) {
		mu.Lock()
		up = false
		mu.Unlock()
		resp, body := get(t, s, "/healthz")
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("status %d, want 503", resp.StatusCode)
		}
		if want := "receiver 0.0.0.0:8098 down: accept: too many open files\n"; body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	})

	t.Run("post refused", func(t *testing.T) {
		resp, err := http.Post("http://"+s.addr()+"/healthz", "text/plain", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Server") != wantServer {
			t.Errorf("POST: %d, Server %q", resp.StatusCode, resp.Header.Get("Server"))
		}
	})
}

func TestStatusServerEmpty(t *testing.T) {
	// A broker with no listeners and no peers yet is healthy, and its
	// status document has empty lists, not nulls.
	s := startStatusServer(t, &metrics{}, func() brokerStatus { return brokerStatus{Version: version} })
	resp, body := get(t, s, "/healthz")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", resp.StatusCode, body)
	}
	_, body = get(t, s, "/status")
	if !strings.Contains(body, `"listeners": []`) || !strings.Contains(body, `"peers": []`) {
		t.Errorf("status:\n%s", body)
	}
	_, body = get(t, s, "/metrics")
	parseExposition(t, body)
}

func TestStatusServerBindError(t *testing.T) {
	s := startStatusServer(t, &metrics{}, func() brokerStatus { return brokerStatus{} })
	log, _ := newTestLogger()
	if _, err := newStatusServer(s.addr(), &metrics{}, nil, log); err == nil || !strings.Contains(err.Error(), "http: listen "+s.addr()) {
		t.Errorf("second bind: %v", err)
	}
}

// TestStatusServerProtocol checks the hand-written HTTP at its edges.
func TestStatusServerProtocol(t *testing.T) {
	s, err := newStatusServer("127.0.0.1:0", &metrics{}, func() brokerStatus { return brokerStatus{} }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	go s.serve()
	defer s.shutdown(context.Background())
	raw := func(req string) string {
		c, err := net.Dial("tcp", s.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		c.Write([]byte(req))
		b, _ := io.ReadAll(c)
		return string(b)
	}
	cases := []struct{ name, req, status, has, lacks string }{
		{"get with query", "GET /healthz?x=1 HTTP/1.1\r\nHost: a\r\n\r\n", "HTTP/1.1 200 OK", "\r\n\r\nok\n", ""},
		{"head has no body", "HEAD /healthz HTTP/1.1\r\n\r\n", "HTTP/1.1 200 OK", "Content-Length: 3", "ok\n"},
		{"post refused", "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405", "Allow: GET, HEAD", ""},
		{"garbage", "hello\r\n\r\n", "HTTP/1.1 400", "", ""},
		{"http/1.0", "GET /status HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK", "application/json", ""},
		{"header too large", "GET /healthz HTTP/1.1\r\nX: " + strings.Repeat("a", 9000) + "\r\n\r\n", "HTTP/1.1 431", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := raw(tc.req)
			if !strings.HasPrefix(got, tc.status) || !strings.Contains(got, tc.has) || (tc.lacks != "" && strings.Contains(got, tc.lacks)) {
				t.Errorf("got %q", got)
			}
			if !strings.Contains(got, "Server: comet/") || !strings.Contains(got, "Connection: close") {
				t.Errorf("headers: %q", got)
			}
		})
	}
}

// TestStatusServerIdleFlood: 200 idle connections, from one host or from
// many, do not keep /healthz from being answered within a second, and the
// evictions are counted.
func TestStatusServerIdleFlood(t *testing.T) {
	for _, hosts := range []int{1, 100} {
		t.Run(strconv.Itoa(hosts)+" hosts", func(t *testing.T) {
			s := startStatusServer(t, &metrics{}, func() brokerStatus { return brokerStatus{} })
			var idle []net.Conn
			t.Cleanup(func() {
				for _, c := range idle {
					c.Close()
				}
			})
			for i := range 200 {
				d := net.Dialer{Timeout: time.Second}
				if hosts > 1 {
					d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%hosts))}
				}
				c, err := d.Dial("tcp", s.addr())
				if err != nil {
					t.Skipf("dial from %v: %v", d.LocalAddr, err)
				}
				if i%2 == 0 {
					c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n")) // never finished
				}
				idle = append(idle, c)
			}
			start := time.Now()
			c, err := net.DialTimeout("tcp", s.addr(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(start.Add(time.Second))
			if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(c)
			if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200 OK") || !strings.HasSuffix(string(b), "\r\n\r\nok\n") {
				t.Fatalf("after %v: %q, %v", time.Since(start), b, err)
			}
			t.Logf("/healthz answered in %v", time.Since(start))
			_, body := get(t, s, "/metrics")
			series := parseExposition(t, body)
			evicted := series[`comet_http_connections_refused_total{reason="evicted"}`] +
				series[`comet_http_connections_refused_total{reason="host_cap"}`]
			if evicted < 200-httpMaxConns {
				t.Errorf("%v evictions counted, want at least %d:\n%s", evicted, 200-httpMaxConns, body)
			}
			s.mu.Lock()
			open, perHost := s.conns.Len(), s.perHost
			for h, n := range perHost {
				if n > httpMaxPerHost {
					t.Errorf("host %s has %d connections", h, n)
				}
			}
			s.mu.Unlock()
			if open > httpMaxConns {
				t.Errorf("%d connections counted, cap %d", open, httpMaxConns)
			}
		})
	}
}

// TestStatusServerHeaderDeadline: a client that sends nothing is closed
// after httpHeaderWindow, not the old 10 s.
func TestStatusServerHeaderDeadline(t *testing.T) {
	s := startStatusServer(t, &metrics{}, func() brokerStatus { return brokerStatus{} })
	c, err := net.Dial("tcp", s.addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	c.SetDeadline(start.Add(httpHeaderWindow + 3*time.Second))
	c.Write([]byte("GET /healthz HTTP/1.1\r\n"))
	b, _ := io.ReadAll(c)
	took := time.Since(start)
	if took < httpHeaderWindow-100*time.Millisecond || took > httpHeaderWindow+2*time.Second {
		t.Errorf("closed after %v, want about %v", took, httpHeaderWindow)
	}
	if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 400") {
		t.Errorf("answer %q", b)
	}
}

// TestStatusServerShutdownWithIdle: shutdown does not wait for clients that
// never send their request.
func TestStatusServerShutdownWithIdle(t *testing.T) {
	log, _ := newTestLogger()
	s, err := newStatusServer("127.0.0.1:0", &metrics{}, func() brokerStatus { return brokerStatus{} }, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve() }()
	for range 10 {
		c, err := net.Dial("tcp", s.addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v after %v", err, time.Since(start))
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
}

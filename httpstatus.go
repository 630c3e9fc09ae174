// httpstatus.go owns the --http endpoint: /healthz for probes, /metrics in
// the Prometheus text exposition format 0.0.4, and /status as JSON
// (contract section 4). Every response carries the header
// "Server: comet/VERSION go/GOVERSION" (IVOA software identification).
//
// Invariant: the handlers only read; they take one status snapshot and one
// pass over the counters per request and never block the broker.
//
// A probe always gets an answer, however many idle connections anyone
// opens: a client has httpHeaderWindow to send its request line and
// headers; when httpMaxConns are open, a new connection takes the place of
// the oldest one still sending its request (and, past httpMaxPerHost from
// one host, of that host's oldest); only when every connection is already
// being answered is a new one refused. Evictions and refusals are counted
// in comet_http_connections_refused_total.
package main

import (
	"bufio"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// statusServer serves the status endpoints on one listener. It speaks just
// enough HTTP/1.1 for probes, scrapers and curl (GET and HEAD, one request
// per connection), so the binary does without net/http, which would make
// the Raspberry Pi build a third larger.
type statusServer struct {
	ln     net.Listener
	m      *metrics
	status func() brokerStatus
	log    *slog.Logger
	now    func() time.Time
	server string // the Server header

	// extra answers the routes of spoolwire_http.go (/, /events,
	// /events/IVORN) given the path and the raw query; nil: none.
	extra func(path, query string) (code int, ctype string, body []byte)

	mu      sync.Mutex
	conns   *list.List     // of *httpConn, oldest first
	perHost map[string]int // open connections by hostKey

	evicted     atomic.Int64 // idle connections closed for a newer one (cap)
	hostEvicted atomic.Int64 // likewise, for one of the same host (per-host cap)
	refused     atomic.Int64 // new connections closed: none could be evicted

	wg   sync.WaitGroup
	done chan struct{}
	once sync.Once
}

// httpConn is one open connection. reading and gone are guarded by
// statusServer.mu.
type httpConn struct {
	c       net.Conn
	host    string
	reading bool // still sending its request: may be evicted
	gone    bool // evicted or finished: no longer counted
	elem    *list.Element
}

// Limits of the status server.
const (
	httpMaxConns      = 32
	httpMaxPerHost    = 8
	httpMaxHeader     = 8 << 10
	httpHeaderWindow  = 2 * time.Second  // to send the request line and headers
	httpRequestWindow = 10 * time.Second // to write the answer
)

// newStatusServer binds addr (host:port; port 0 picks one) and prepares the
// endpoints; serve starts answering.
func newStatusServer(addr string, m *metrics, status func() brokerStatus, log *slog.Logger) (*statusServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http: listen %s: %v", addr, err)
	}
	return &statusServer{ln: ln, m: m, status: status, log: log, now: time.Now, server: softwareName(""),
		conns: list.New(), perHost: make(map[string]int), done: make(chan struct{})}, nil
}

// addr is the address the server listens on.
func (s *statusServer) addr() string { return s.ln.Addr().String() }

// serve answers requests until shutdown; it returns nil after shutdown.
func (s *statusServer) serve() error {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return nil
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Debug("http: accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		hc := &httpConn{c: c, host: hostKey(c.RemoteAddr()), reading: true}
		if !s.admit(hc) {
			c.Close() // every place is taken by a request being answered
			continue
		}
		s.wg.Add(1)
		go func() { // waited for by shutdown
			defer s.wg.Done()
			defer s.leave(hc)
			s.answer(hc)
		}()
	}
}

// admit counts hc in, making room if needed by evicting the oldest
// connection still sending its request: of the same host when that host is
// at httpMaxPerHost, else of all when httpMaxConns are open. It reports
// false when no room can be made.
func (s *statusServer) admit(hc *httpConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perHost[hc.host] >= httpMaxPerHost {
		v := s.oldestReadingLocked(hc.host)
		if v == nil {
			s.refused.Add(1)
			return false
		}
		s.dropLocked(v)
		v.c.Close()
		s.hostEvicted.Add(1)
	}
	if s.conns.Len() >= httpMaxConns {
		v := s.oldestReadingLocked("")
		if v == nil {
			s.refused.Add(1)
			return false
		}
		s.dropLocked(v)
		v.c.Close()
		s.evicted.Add(1)
	}
	hc.elem = s.conns.PushBack(hc)
	s.perHost[hc.host]++
	return true
}

// oldestReadingLocked is the oldest connection still sending its request,
// of host (any host if ""), or nil.
func (s *statusServer) oldestReadingLocked(host string) *httpConn {
	for e := s.conns.Front(); e != nil; e = e.Next() {
		hc := e.Value.(*httpConn)
		if hc.reading && (host == "" || hc.host == host) {
			return hc
		}
	}
	return nil
}

// dropLocked stops counting hc.
func (s *statusServer) dropLocked(hc *httpConn) {
	if hc.gone {
		return
	}
	hc.gone = true
	s.conns.Remove(hc.elem)
	if n := s.perHost[hc.host]; n > 1 {
		s.perHost[hc.host] = n - 1
	} else {
		delete(s.perHost, hc.host)
	}
}

// leave stops counting hc once its goroutine is done.
func (s *statusServer) leave(hc *httpConn) {
	s.mu.Lock()
	s.dropLocked(hc)
	s.mu.Unlock()
}

// answering marks hc as past its request, so it is no longer evicted; it
// reports false if hc was evicted meanwhile.
func (s *statusServer) answering(hc *httpConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	hc.reading = false
	return !hc.gone
}

// shutdown stops accepting and waits, until ctx is done, for requests in
// progress.
func (s *statusServer) shutdown(ctx context.Context) error {
	s.once.Do(func() { close(s.done) })
	s.ln.Close()
	// Nobody waits for a request that has not arrived yet.
	s.mu.Lock()
	for e := s.conns.Front(); e != nil; e = e.Next() {
		if hc := e.Value.(*httpConn); hc.reading {
			hc.c.Close()
		}
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// answer reads one request from hc and writes the response.
func (s *statusServer) answer(hc *httpConn) {
	c := hc.c
	defer c.Close()
	c.SetDeadline(time.Now().Add(httpHeaderWindow))
	method, path, query, code := spoolwReadHTTPRequest(bufio.NewReaderSize(io.LimitReader(c, httpMaxHeader+1), 1024))
	if !s.answering(hc) {
		return // evicted while sending its request
	}
	c.SetDeadline(time.Now().Add(httpRequestWindow))
	var body []byte
	ctype := "text/plain; charset=utf-8"
	extra := ""
	switch {
	case code != 0:
		body = []byte(httpStatusText(code) + "\n")
	case method != "GET" && method != "HEAD":
		code, extra, body = 405, "Allow: GET, HEAD\r\n", []byte("method not allowed\n")
	case path == "/healthz":
		code, body = s.healthz()
	case path == "/metrics":
		code, ctype, body = 200, "text/plain; version=0.0.4; charset=utf-8", []byte(renderMetrics(s.m, s.status(), s.now())+s.renderConnMetrics())
	case path == "/status":
		code, ctype, body = 200, "application/json", s.statusJSON()
	case s.extra != nil && spoolwIsRoute(path):
		code, ctype, body = s.extra(path, query)
	default:
		code, body = 404, []byte("not found: try /healthz, /metrics or /status\n")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nServer: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\nConnection: close\r\n%s\r\n",
		code, httpStatusText(code), s.server, ctype, len(body), extra)
	bufs := net.Buffers{[]byte(b.String())}
	if method != "HEAD" {
		bufs = append(bufs, body)
	}
	if _, err := bufs.WriteTo(c); err != nil {
		s.log.Debug("http: write", "path", path, "err", err)
	}
}

// renderConnMetrics is the status server's own metric family.
func (s *statusServer) renderConnMetrics() string {
	var p promWriter
	p.byLabel("comet_http_connections_refused_total", "counter",
		"Connections to the status endpoint dropped: idle ones evicted for a newer one (evicted: all places taken; host_cap: too many from its host) and new ones refused (full: every place is answering).",
		"reason", map[string]float64{
			"evicted":  float64(s.evicted.Load()),
			"host_cap": float64(s.hostEvicted.Load()),
			"full":     float64(s.refused.Load()),
		})
	return p.b.String()
}

// readHTTPRequest reads a request line and headers (the body of a GET is
// ignored). A non-zero code is the error to answer with.
func readHTTPRequest(r *bufio.Reader) (method, path string, code int) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", "", 400
	}
	parts := strings.Fields(line)
	if len(parts) != 3 || !strings.HasPrefix(parts[2], "HTTP/1.") {
		return "", "", 400
	}
	method, path = parts[0], parts[1]
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for {
		h, err := r.ReadString('\n')
		if err != nil {
			if r.Buffered() == 0 && errors.Is(err, io.EOF) {
				return method, path, 431 // the header limit cut it off
			}
			return method, path, 400
		}
		if strings.TrimRight(h, "\r\n") == "" {
			return method, path, 0
		}
	}
}

func httpStatusText(code int) string {
	switch code {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 431:
		return "Request Header Fields Too Large"
	case 503:
		return "Service Unavailable"
	}
	return "Error"
}

// healthz answers 200 "ok" while every listener is up, 503 with the reason
// otherwise.
func (s *statusServer) healthz() (int, []byte) {
	st := s.status()
	var down []string
	for _, l := range st.Listeners {
		if !l.Up {
			reason := l.Role + " " + l.Address + " down"
			if l.Error != "" {
				reason += ": " + l.Error
			}
			down = append(down, reason)
		}
	}
	if st.Kafka != nil {
		down = append(down, st.Kafka.Problems...)
	}
	if len(down) > 0 {
		return 503, []byte(strings.Join(down, "\n") + "\n")
	}
	return 200, []byte("ok\n")
}

// statusCounters are the broker-wide counters as /status shows them.
type statusCounters struct {
	Received         int64            `json:"received"`
	Accepted         int64            `json:"accepted"`
	Duplicates       int64            `json:"duplicates"`
	Relayed          int64            `json:"relayed"`
	Rejected         map[string]int64 `json:"rejected"`
	HandlerRuns      map[string]int64 `json:"handler_runs"`
	HandlerFailures  map[string]int64 `json:"handler_failures"`
	HandlerOverflows int64            `json:"handler_overflows"`
	Signatures       map[string]int64 `json:"signatures"`
	EventDBErrors    int64            `json:"eventdb_errors"`
}

// statusDocument is what /status returns: the broker's status with its
// counters.
type statusDocument struct {
	brokerStatus
	Software string         `json:"software"`
	Uptime   float64        `json:"uptime_seconds"`
	Counters statusCounters `json:"counters"`
}

func labelMap(c *labelledCounter) map[string]int64 {
	out := map[string]int64{}
	for _, lc := range c.snapshot() {
		out[lc.label] = lc.count
	}
	return out
}

func (s *statusServer) statusJSON() []byte {
	st := s.status()
	doc := statusDocument{
		brokerStatus: st,
		Software:     softwareName(""),
		Counters: statusCounters{
			Received:         s.m.received.Load(),
			Accepted:         s.m.accepted.Load(),
			Duplicates:       s.m.duplicates.Load(),
			Relayed:          s.m.relayed.Load(),
			Rejected:         labelMap(&s.m.rejected),
			HandlerRuns:      labelMap(&s.m.handlerRuns),
			HandlerFailures:  labelMap(&s.m.handlerFailures),
			HandlerOverflows: s.m.handlerOverflows.Load(),
			Signatures:       labelMap(&s.m.signatures),
			EventDBErrors:    s.m.eventDBErrors.Load(),
		},
	}
	if doc.Listeners == nil {
		doc.Listeners = []listenerStatus{}
	}
	if doc.Peers == nil {
		doc.Peers = []peerStatus{}
	}
	if !st.Started.IsZero() {
		doc.Uptime = s.now().Sub(st.Started).Truncate(time.Millisecond).Seconds()
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		s.log.Error("http: encode /status", "err", err)
		return []byte("{}\n")
	}
	return append(out, '\n')
}

// promWriter writes metric families in the Prometheus text format 0.0.4.
type promWriter struct {
	b strings.Builder
}

// family starts a metric family with its HELP and TYPE lines.
func (p *promWriter) family(name, typ, help string) {
	p.b.WriteString("# HELP " + name + " " + escapeHelp(help) + "\n")
	p.b.WriteString("# TYPE " + name + " " + typ + "\n")
}

// sample writes one sample; label is "" for none.
func (p *promWriter) sample(name, label, value string, v float64) {
	p.b.WriteString(name)
	if label != "" {
		p.b.WriteString("{" + label + `="` + escapeLabelValue(value) + `"}`)
	}
	p.b.WriteByte(' ')
	p.b.WriteString(formatPromValue(v))
	p.b.WriteByte('\n')
}

// single writes a family of one unlabelled sample.
func (p *promWriter) single(name, typ, help string, v float64) {
	p.family(name, typ, help)
	p.sample(name, "", "", v)
}

// byLabel writes a family of one sample per label value, in label order.
func (p *promWriter) byLabel(name, typ, help, label string, values map[string]float64) {
	p.family(name, typ, help)
	p.labelled(name, label, values)
}

// labelled writes one sample per label value, in label order.
func (p *promWriter) labelled(name, label string, values map[string]float64) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.sample(name, label, k, values[k])
	}
}

func counterValues(c *labelledCounter) map[string]float64 {
	out := map[string]float64{}
	for _, lc := range c.snapshot() {
		out[lc.label] = float64(lc.count)
	}
	return out
}

// escapeLabelValue escapes a label value as the text format requires:
// backslash, double quote and line feed.
func escapeLabelValue(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// escapeHelp escapes HELP text: backslash and line feed.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// formatPromValue writes a sample value: plain decimal digits for the
// counts and times we export, exponent form only for huge magnitudes.
func formatPromValue(v float64) string {
	if math.Abs(v) < 1e15 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// renderMetrics builds the /metrics body from the counters and a status
// snapshot taken at now.
func renderMetrics(m *metrics, st brokerStatus, now time.Time) string {
	var p promWriter

	p.family("comet_build_info", "gauge", "Software that serves these metrics (the label says which); always 1.")
	p.sample("comet_build_info", "software", softwareName(""), 1)

	if !st.Started.IsZero() {
		p.single("comet_start_time_seconds", "gauge", "When the broker started, in seconds since the Unix epoch.", float64(st.Started.UnixMilli())/1000)
	}

	p.single("comet_events_received_total", "counter", "Events received from authors and upstream brokers.", float64(m.received.Load()))
	p.single("comet_events_accepted_total", "counter", "New events accepted (handed to handlers and broadcasters).", float64(m.accepted.Load()))
	p.byLabel("comet_events_rejected_total", "counter", "Events refused, by reason.", "reason", counterValues(&m.rejected))
	p.single("comet_events_duplicate_total", "counter", "Events received that had been seen before.", float64(m.duplicates.Load()))
	p.single("comet_events_relayed_total", "counter", "Events offered to the broadcasters.", float64(m.relayed.Load()))
	p.single("comet_deliveries_total", "counter", "Events written to subscribers, over all subscribers.", float64(m.deliveries.Load()))
	p.single("comet_delivery_writes_total", "counter", "Write calls that carried events to subscribers (a busy broker puts several events in one).", float64(m.deliveryWrites.Load()))

	delivered := map[string]float64{}
	acks := map[string]float64{}
	connections := map[string]float64{}
	upstreamUp := map[string]float64{}
	upstreamAge := map[string]float64{}
	for _, ps := range st.Peers {
		if ps.State == "connected" {
			connections[ps.Role]++
		} else if _, ok := connections[ps.Role]; !ok {
			connections[ps.Role] = 0
		}
		switch ps.Role {
		case "subscriber":
			delivered[ps.Address] += float64(ps.Delivered)
			acks[ps.Address] += float64(ps.AcksOutstanding)
		case "upstream":
			up := 0.0
			if ps.State == "connected" {
				up = 1
			}
			upstreamUp[ps.Address] = max(upstreamUp[ps.Address], up)
			last := ps.LastMessage
			if last.IsZero() {
				last = ps.Since
			}
			if !last.IsZero() {
				age := max(now.Sub(last).Seconds(), 0)
				if prev, ok := upstreamAge[ps.Address]; !ok || age < prev {
					upstreamAge[ps.Address] = age
				}
			}
		}
	}
	p.byLabel("comet_events_delivered_total", "counter", "Events sent to each connected subscriber.", "peer", delivered)
	p.byLabel("comet_acks_outstanding", "gauge", "Events sent to each subscriber and not yet acknowledged.", "peer", acks)
	p.byLabel("comet_connections", "gauge", "Open VTP connections, by role.", "role", connections)
	p.byLabel("comet_upstream_up", "gauge", "1 while the subscription to an upstream broker is connected, else 0.", "peer", upstreamUp)
	p.byLabel("comet_upstream_last_message_age_seconds", "gauge", "Seconds since the last message from each upstream broker (or since the connection state last changed).", "peer", upstreamAge)

	p.byLabel("comet_handler_runs_total", "counter", "Event handler runs, by handler.", "handler", counterValues(&m.handlerRuns))
	p.family("comet_handler_failures_total", "counter", "Event handler runs that failed, by handler.")
	failures := counterValues(&m.handlerFailures)
	for _, lc := range m.handlerRuns.snapshot() {
		failures[lc.label] += 0 // a handler that ran and never failed shows 0
	}
	p.labelled("comet_handler_failures_total", "handler", failures)
	p.single("comet_handler_queue_overflows_total", "counter", "Events not handled because the handler queue was full.", float64(m.handlerOverflows.Load()))

	depth, qbytes, laneOver := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for _, h := range st.Handlers {
		depth[h.Name], qbytes[h.Name], laneOver[h.Name] = float64(h.Queued), float64(h.Bytes), float64(h.Overflows)
	}
	p.byLabel("comet_handler_queue_depth", "gauge", "Events waiting for each handler.", "handler", depth)
	p.byLabel("comet_handler_queue_bytes", "gauge", "Bytes of the events waiting for each handler.", "handler", qbytes)
	p.byLabel("comet_handler_overflows_total", "counter", "Events a handler skipped because its queue was full.", "handler", laneOver)

	p.byLabel("comet_limit_hits_total", "counter", "Times a limit against untrusted peers was hit, by option.", "limit", counterValues(&m.limitHits))
	p.byLabel("comet_connections_refused_total", "counter", "Connections refused when accepted, by reason.", "reason", counterValues(&m.connRefused))
	p.single("comet_inflight_bytes", "gauge", "Bytes of messages being read, parsed or judged (--max-inflight-bytes).", float64(st.InflightBytes))
	p.single("comet_inflight_waits_total", "counter", "Readers that waited for room in the in-flight budget.", float64(st.InflightWaits))

	m.tls.render(&p)

	p.byLabel("comet_signatures_total", "counter", "Signature verdicts of new events.", "verdict", counterValues(&m.signatures))

	p.single("comet_eventdb_entries", "gauge", "Events recorded in the event database.", float64(st.EventDB.Entries))
	p.single("comet_eventdb_size_bytes", "gauge", "Size of the event database on disk.", float64(st.EventDB.SizeBytes))
	p.single("comet_eventdb_records_written_total", "counter", "Records written to the event database's log since start.", float64(st.EventDB.Records))
	p.single("comet_eventdb_writes_total", "counter", "Write calls that carried them (records judged together share one).", float64(st.EventDB.Writes))
	p.single("comet_eventdb_errors_total", "counter", "Event database writes that failed.", float64(m.eventDBErrors.Load()))
	p.single("comet_goroutines", "gauge", "Goroutines in the broker process.", float64(runtime.NumGoroutine()))
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	p.single("comet_go_heap_inuse_bytes", "gauge", "Bytes of Go heap in use.", float64(ms.HeapInuse))
	if st.extraMetrics != nil {
		st.extraMetrics(&p.b)
	}
	return p.b.String()
}

// bench.go owns `comet bench`, a load generator for any VTP broker: authors
// that submit events one connection each (as VTP requires), subscribers that
// answer the broker and acknowledge every event, and the bookkeeping that
// turns their timings into the report of bench_report.go.
//
// Invariants: every loop is bounded by a count and by --timeout, every
// connection by a deadline; an event's send time is stored before its first
// byte is written, so a subscriber can never see an event it has no send
// time for.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchMedianEvent is the default event: a median-sized (4,289 bytes) real
// VOEvent from the corpus (see docs/README-bench.md for its provenance).
//
//go:embed benchdata/median.xml
var benchMedianEvent []byte

// Defaults of comet bench.
const (
	benchDefaultEvents      = 1000
	benchDefaultAuthors     = 10
	benchDefaultSubscribers = 1
	benchDefaultTimeout     = 60 * time.Second
	benchDefaultConnTimeout = 10 * time.Second
	benchDefaultSettle      = 5 * time.Second
	benchAuthWait           = 2 * time.Second        // how long subscribers wait for the broker's authenticate
	benchFilterGrace        = 100 * time.Millisecond // time for the broker to install filters
	benchSampleInterval     = 100 * time.Millisecond // --pid sampling
	benchPollInterval       = 5 * time.Millisecond
)

func init() {
	registerCommand(&command{name: "bench", summary: "load generator against any VTP broker", run: runBench})
}

// benchConfig is the parsed command line of comet bench.
type benchConfig struct {
	events      int
	authors     int
	subscribers int
	warmup      int
	target      string
	subscribe   string
	eventFile   string
	rate        float64
	filters     []string
	expectMatch bool
	pid         int
	json        bool
	timeout     time.Duration
	connTimeout time.Duration
	settle      time.Duration
	tls         tlswBench // --tls and its options (bench_tls.go)
}

// parseBenchFlags parses the command line; code is -1 when the run should go
// ahead, else the exit code.
func parseBenchFlags(args []string, stderr io.Writer) (cfg benchConfig, code int) {
	fs := flag.NewFlagSet("comet bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: comet bench [options]\n\nSubmits events to a VTP broker's receiver and receives them as its subscribers;\nreports accepted events/s, latencies, delivery and (with --pid) the broker's memory and CPU.\n\noptions:")
		fs.PrintDefaults()
	}
	fs.IntVar(&cfg.events, "n", benchDefaultEvents, "events to submit (counted)")
	fs.IntVar(&cfg.authors, "c", benchDefaultAuthors, "concurrent authors (one connection per event each)")
	fs.IntVar(&cfg.subscribers, "s", benchDefaultSubscribers, "subscriber connections (0 for a broker without a broadcaster)")
	fs.IntVar(&cfg.warmup, "warmup", 0, "events submitted first and not counted")
	fs.StringVar(&cfg.target, "target", fmt.Sprintf("127.0.0.1:%d", defaultReceivePort), "the broker's receiver, host:port")
	fs.StringVar(&cfg.subscribe, "subscribe", fmt.Sprintf("127.0.0.1:%d", defaultBroadcastPort), "the broker's broadcaster, host:port")
	fs.StringVar(&cfg.eventFile, "event", "", "event file to submit (default: a median-sized real event built in)")
	fs.Float64Var(&cfg.rate, "rate", 0, "cap on submissions per second over all authors (0: as fast as it goes)")
	fs.Func("filter", "XPath filter the subscribers send (repeatable)", func(s string) error {
		cfg.filters = append(cfg.filters, s)
		return nil
	})
	fs.BoolVar(&cfg.expectMatch, "expect-match", true, "with --filter: whether the filters match the event (false: subscribers expect nothing)")
	fs.IntVar(&cfg.pid, "pid", 0, "the broker's process ID: report its peak memory and CPU time (Linux /proc)")
	fs.BoolVar(&cfg.json, "json", false, "print only the JSON line")
	fs.DurationVar(&cfg.timeout, "timeout", benchDefaultTimeout, "stop after this long and report what finished")
	fs.DurationVar(&cfg.connTimeout, "conn-timeout", benchDefaultConnTimeout, "deadline of each connection step (connect, send, reply)")
	fs.DurationVar(&cfg.settle, "settle", benchDefaultSettle, "after the last reply, how long to wait for deliveries to subscribers")
	tlswBenchFlags(fs, &cfg.tls)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, exitOK
		}
		return cfg, exitUsage
	}
	bad := func(format string, a ...any) (benchConfig, int) {
		fmt.Fprintf(stderr, "comet bench: "+format+"\n", a...)
		return cfg, exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return bad("unexpected argument %q", fs.Arg(0))
	case cfg.events < 1:
		return bad("-n must be at least 1, not %d", cfg.events)
	case cfg.authors < 1:
		return bad("-c must be at least 1, not %d", cfg.authors)
	case cfg.subscribers < 0:
		return bad("-s must not be negative, not %d", cfg.subscribers)
	case cfg.warmup < 0:
		return bad("--warmup must not be negative, not %d", cfg.warmup)
	case cfg.rate < 0:
		return bad("--rate must not be negative, not %g", cfg.rate)
	case cfg.pid < 0:
		return bad("--pid must not be negative, not %d", cfg.pid)
	case cfg.timeout <= 0:
		return bad("--timeout must be positive, not %v", cfg.timeout)
	case cfg.connTimeout <= 0:
		return bad("--conn-timeout must be positive, not %v", cfg.connTimeout)
	case cfg.settle < 0:
		return bad("--settle must not be negative, not %v", cfg.settle)
	}
	if _, _, err := net.SplitHostPort(cfg.target); err != nil {
		return bad("--target %q: %v", cfg.target, err)
	}
	if cfg.subscribers > 0 {
		if _, _, err := net.SplitHostPort(cfg.subscribe); err != nil {
			return bad("--subscribe %q: %v", cfg.subscribe, err)
		}
	}
	if err := cfg.tls.build(cfg.target, cfg.subscribe); err != nil {
		return bad("%v", err)
	}
	return cfg, -1
}

func runBench(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	cfg, code := parseBenchFlags(args, stderr)
	if code >= 0 {
		return code
	}
	raw := benchMedianEvent
	if cfg.eventFile != "" {
		var err error
		if raw, err = os.ReadFile(cfg.eventFile); err != nil {
			fmt.Fprintf(stderr, "comet bench: read event: %v\n", err)
			return exitFail
		}
	}
	tmpl, err := newBenchTemplate(raw, newBenchRunID())
	if err != nil {
		name := cfg.eventFile
		if name == "" {
			name = "built-in event"
		}
		fmt.Fprintf(stderr, "comet bench: event %s: %v\n", name, err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := runBenchLoad(ctx, &cfg, tmpl, stderr)
	if rep != nil {
		if !cfg.json {
			rep.writeTable(stdout)
		}
		if werr := rep.writeJSON(stdout); werr != nil {
			fmt.Fprintf(stderr, "comet bench: write report: %v\n", werr)
			return exitFail
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "comet bench: %v\n", err)
		return exitFail
	}
	return exitOK
}

// newBenchRunID returns a short random tag that keeps the IVOIDs of one run
// apart from those of every other run against the same broker.
func newBenchRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// benchTemplate makes the events of a run: the given event with the local
// part (after '#') of its root's ivorn replaced by bench-RUN-N, every other
// byte kept.
type benchTemplate struct {
	prefix  []byte // the event up to the new ivorn's number
	suffix  []byte // the event after the ivorn's value
	ivornP  string // the ivorn (as a parser reads it) up to the number
	originP []byte // ivornP as a Transport message's Origin writes it: "<Origin>" + escaped text
	tag     string // "bench-RUN-": the local part up to the number
	size    int    // the size of event 0
}

// newBenchTemplate finds the root element's ivorn attribute by the light
// scan and splits the event around its value.
func newBenchTemplate(raw []byte, run string) (*benchTemplate, error) {
	ri, err := scanRoot(raw)
	if err != nil {
		return nil, err
	}
	if !ri.hasIvorn {
		return nil, errors.New("root element has no ivorn attribute")
	}
	start, end := -1, -1
	_, _, _, err = scanTagFunc(raw, ri.start, func(k, v []byte) {
		if start < 0 && string(k) == "ivorn" {
			// v is a sub-slice of raw: its offset is the difference of the capacities.
			start = cap(raw) - cap(v)
			end = start + len(v)
		}
	})
	if err != nil {
		return nil, err
	}
	if start < 0 {
		return nil, errors.New("cannot locate the ivorn attribute")
	}
	base := ri.ivorn
	if i := strings.IndexByte(base, '#'); i >= 0 {
		base = base[:i]
	}
	t := &benchTemplate{tag: "bench-" + run + "-"}
	t.ivornP = base + "#" + t.tag
	var o strings.Builder
	o.WriteString("<Origin>")
	escapeText(&o, t.ivornP)
	t.originP = []byte(o.String())
	var b strings.Builder
	escapeAttr(&b, t.ivornP)
	t.prefix = append(append([]byte{}, raw[:start]...), b.String()...)
	t.suffix = append([]byte{}, raw[end:]...)
	t.size = len(t.prefix) + 1 + len(t.suffix)
	return t, nil
}

// appendEvent appends event i to dst.
func (t *benchTemplate) appendEvent(dst []byte, i int) []byte {
	dst = append(dst, t.prefix...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	return append(dst, t.suffix...)
}

// isAckFor reports, without parsing, whether reply is an ack of event i
// written as Comet writes one: root role "ack" and an Origin element that
// holds exactly the event's ivorn. Anything else goes to parseTransport.
func (t *benchTemplate) isAckFor(reply []byte, i int) bool {
	role, _, err := rootAttrs(reply)
	if err != nil || role != "ack" {
		return false
	}
	var tail [24]byte
	end := append(strconv.AppendInt(tail[:0], int64(i), 10), "</Origin>"...)
	for rest := reply; ; {
		k := bytes.Index(rest, t.originP)
		if k < 0 {
			return false
		}
		rest = rest[k+len(t.originP):]
		if bytes.HasPrefix(rest, end) {
			return true
		}
	}
}

// ivorn is the IVOID of event i as a broker reads it.
func (t *benchTemplate) ivorn(i int) string { return t.ivornP + strconv.Itoa(i) }

// index returns the number of an event of this run from its ivorn.
func (t *benchTemplate) index(ivorn string) (int, bool) {
	h := strings.LastIndexByte(ivorn, '#')
	if h < 0 {
		return 0, false
	}
	rest, ok := strings.CutPrefix(ivorn[h+1:], t.tag)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || strconv.Itoa(n) != rest {
		return 0, false
	}
	return n, true
}

// benchRun is the state shared by the authors and subscribers of one run.
// Events are numbered 0..warmup+events-1; the first warmup are not counted.
type benchRun struct {
	cfg      *benchConfig
	tmpl     *benchTemplate
	addr     string // resolved receiver address
	spread   atomic.Bool
	srcNext  atomic.Uint32
	runCtx   context.Context // ends at --timeout or on an interrupt
	base     time.Time       // time origin of sendAt and receipts (monotonic)
	deadline time.Time       // the run's --timeout
	sendAt   []atomic.Int64  // per event: nanoseconds since base, plus one (0: not sent)

	connected atomic.Int64 // author connections that were established
	dialFails atomic.Int64
	abort     context.CancelFunc

	// Counted events only.
	sent     atomic.Int64
	accepted atomic.Int64
	naks     atomic.Int64
	errs     atomic.Int64
	lastDone atomic.Int64 // nanoseconds since base of the last reply or failure

	mu         sync.Mutex
	ackHist    benchHist
	nakReasons map[string]int64
	errKinds   map[string]int64
	firstErr   string
}

func (r *benchRun) now() int64 { return int64(time.Since(r.base)) }

func (r *benchRun) counted(i int) bool { return i >= r.cfg.warmup }

// stopped reports whether the phase has ended: ctx is done or the run's
// deadline has passed (deadlines on sockets can fire before ctx's timer).
func (r *benchRun) stopped(ctx context.Context) bool {
	return ctx.Err() != nil || !time.Now().Before(r.deadline)
}

// connDeadline is the deadline of one connection step: --conn-timeout from
// now, but never past the run's deadline.
func (r *benchRun) connDeadline() time.Time {
	d := time.Now().Add(r.cfg.connTimeout)
	if d.After(r.deadline) {
		return r.deadline
	}
	return d
}

// fail records a failed submission of a counted event.
// The first error is kept whether the event was counted or not.
func (r *benchRun) fail(i int, kind string, err error) {
	if r.stopped(r.runCtx) && errors.Is(err, os.ErrDeadlineExceeded) {
		kind = "cut off by --timeout or interrupt"
	}
	counted := r.counted(i)
	if counted {
		r.errs.Add(1)
		r.done()
	}
	r.mu.Lock()
	if counted {
		r.errKinds[kind]++
	}
	if r.firstErr == "" {
		r.firstErr = fmt.Sprintf("%s %s: %v", kind, r.tmpl.ivorn(i), err)
	}
	r.mu.Unlock()
}

func (r *benchRun) done() {
	t := r.now()
	for {
		old := r.lastDone.Load()
		if t <= old || r.lastDone.CompareAndSwap(old, t) {
			return
		}
	}
}

// dial connects to the receiver, from a spread loopback source address when
// that is on; if a spread source cannot be used (as on systems with only
// 127.0.0.1 configured), spreading is turned off for the rest of the run.
func (r *benchRun) dial(ctx context.Context) (net.Conn, error) {
	d := net.Dialer{Deadline: r.connDeadline()}
	if r.spread.Load() {
		n := r.srcNext.Add(1) % 253
		d.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+n))}
		c, err := d.DialContext(ctx, "tcp", r.addr)
		var se *os.SyscallError
		if err == nil || !errors.As(err, &se) || se.Syscall != "bind" {
			return c, err
		}
		d.LocalAddr = nil
		c, err2 := d.DialContext(ctx, "tcp", r.addr)
		if err2 == nil {
			r.spread.Store(false)
		}
		return c, err2
	}
	return d.DialContext(ctx, "tcp", r.addr)
}

// submit sends event i on a connection of its own and waits for the reply.
func (r *benchRun) submit(ctx context.Context, i int, buf []byte, hist *benchHist) []byte {
	counted := r.counted(i)
	if counted {
		r.sent.Add(1)
	}
	conn, err := r.dial(ctx)
	conn, err = r.cfg.tls.handshake(ctx, conn, err, r.cfg.tls.target, r.connDeadline())
	if err != nil && r.stopped(ctx) {
		if counted {
			r.sent.Add(-1) // stopped before it was sent
		}
		return buf
	}
	if err != nil {
		fails := r.dialFails.Add(1)
		if r.connected.Load() == 0 && fails >= int64(r.cfg.authors) {
			r.abort() // nothing has connected: stop rather than try every event
		}
		r.fail(i, "connect", err)
		return buf
	}
	r.connected.Add(1)
	defer conn.Close()
	conn.SetDeadline(r.connDeadline())
	// An interrupt (or the end of the run) ends the wait for the reply at once.
	defer context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })()
	buf = append(buf[:0], 0, 0, 0, 0)
	buf = r.tmpl.appendEvent(buf, i)
	binary.BigEndian.PutUint32(buf, uint32(len(buf)-4))
	sent := r.now()
	r.sendAt[i].Store(sent + 1)
	if _, err := conn.Write(buf); err != nil {
		r.fail(i, "send", err)
		return buf
	}
	reply, err := readFrame(conn, defaultMaxMessageSize)
	if err != nil {
		if err == io.EOF {
			err = errors.New("connection closed without a reply")
		}
		r.fail(i, "reply", err)
		return buf
	}
	lat := time.Duration(r.now() - sent)
	if r.tmpl.isAckFor(reply, i) {
		if counted {
			r.accepted.Add(1)
			hist.record(lat)
			r.done()
		}
		return buf
	}
	tr, err := parseTransport(reply)
	if err != nil {
		r.fail(i, "reply", err)
		return buf
	}
	ivorn := r.tmpl.ivorn(i)
	switch {
	case tr.role != "ack" && tr.role != "nak":
		r.fail(i, "reply", fmt.Errorf("unexpected %s message", tr.role))
	case tr.origin != ivorn:
		r.fail(i, "reply", fmt.Errorf("%s for another event (Origin %q)", tr.role, tr.origin))
	case !counted:
	case tr.role == "ack":
		r.accepted.Add(1)
		hist.record(lat)
		r.done()
	default:
		r.naks.Add(1)
		r.done()
		reason := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(tr.result), "Event rejected:"))
		if reason == "" {
			reason = "(no reason given)"
		}
		r.mu.Lock()
		if _, known := r.nakReasons[reason]; known || len(r.nakReasons) < 20 {
			r.nakReasons[reason]++
		} else {
			r.nakReasons["(other reasons)"]++
		}
		r.mu.Unlock()
	}
	return buf
}

// runAuthors submits events from..to-1 with the configured concurrency and
// rate, and returns when all are done or ctx ends.
func (r *benchRun) runAuthors(ctx context.Context, from, to int) {
	var next atomic.Int64
	next.Store(int64(from))
	start := time.Now()
	var wg sync.WaitGroup
	for range min(r.cfg.authors, to-from) {
		wg.Go(func() {
			var hist benchHist
			buf := make([]byte, 0, 4+r.tmpl.size+20)
		events:
			for !r.stopped(ctx) {
				i := int(next.Add(1) - 1)
				if i >= to {
					break
				}
				if r.cfg.rate > 0 {
					due := start.Add(time.Duration(float64(i-from) / r.cfg.rate * float64(time.Second)))
					if d := time.Until(due); d > 0 {
						t := time.NewTimer(d)
						select {
						case <-t.C:
						case <-ctx.Done():
							t.Stop()
							break events
						}
					}
				}
				buf = r.submit(ctx, i, buf, &hist)
			}
			r.mu.Lock()
			r.ackHist.merge(&hist)
			r.mu.Unlock()
		})
	}
	wg.Wait()
}

// benchSub is one subscriber connection. Only its own goroutine touches its
// fields until done is closed, except the atomics.
type benchSub struct {
	conn     net.Conn
	received []uint64 // bitset of counted events received
	count    atomic.Int64
	authed   atomic.Bool
	done     chan struct{}

	hist       benchHist
	dups       int64
	unexpected int64
	iamalive   int64
	err        error
}

// runSubscriber answers the broker until the connection ends: the
// authenticate with the filters, iamalive, and an ack for every event.
func (r *benchRun) runSubscriber(s *benchSub) {
	defer close(s.done)
	br := bufio.NewReaderSize(s.conn, 64<<10)
	bw := bufio.NewWriterSize(s.conn, 16<<10)
	var buf []byte // the frame being handled; reused for the next one
	var ack []byte // the framed ack being written; likewise
	var stamp benchStamp
	// The read deadline is a safety net: the run closes the connection.
	s.conn.SetReadDeadline(r.deadline.Add(r.cfg.connTimeout))
	reply := func(t *transport) bool {
		s.conn.SetWriteDeadline(time.Now().Add(r.cfg.connTimeout))
		if err := writeFrame(bw, t.marshal()); err != nil {
			s.err = err
			return false
		}
		return true
	}
	flush := func() bool { // the deadline was set when the batch began
		if err := bw.Flush(); err != nil {
			s.err = err
			return false
		}
		return true
	}
	for {
		// Replies are written in batches: flush before a read could block.
		if bw.Buffered() > 0 && !benchFrameBuffered(br) && !flush() {
			return
		}
		msg, used, err := benchReadFrame(br, buf, defaultMaxMessageSize)
		if err != nil {
			s.err = err
			return
		}
		if used == 0 {
			buf = msg
		}
		at := r.now()
		role, ivorn, err := rootAttrs(msg)
		if err != nil {
			continue // unparsable: ignored, as Comet's subscriber does
		}
		switch {
		case isVOEventRole(role):
			r.receipt(s, ivorn, at)
			if bw.Buffered() == 0 {
				// One deadline per batch of acks, not per ack: it covers
				// the writes of this batch (flush, or bw filling up).
				s.conn.SetWriteDeadline(time.Now().Add(r.cfg.connTimeout))
			}
			ack = appendBenchAck(ack[:0], ivorn, &stamp)
			if _, err := bw.Write(ack); err != nil {
				s.err = err
				return
			}
		case isTransportRole(role):
			tr, err := parseTransport(msg)
			if err != nil {
				continue
			}
			switch tr.role {
			case "authenticate":
				// Flushed at once, so that the filters are in place before the run.
				if !reply(newAuthenticateResponse(tr.origin, "", purposeTest, r.cfg.filters, time.Now())) || !flush() {
					return
				}
				s.authed.Store(true)
			case "iamalive":
				if !reply(newIamaliveResponse(tr.origin, "", purposeTest, time.Now())) {
					return
				}
				s.iamalive++
			}
		}
	}
}

// benchStamp caches the TimeStamp text of the current second.
type benchStamp struct {
	sec  int64
	text []byte
}

func (c *benchStamp) now() []byte {
	t := time.Now().UTC()
	if c.text == nil || t.Unix() != c.sec {
		c.sec = t.Unix()
		c.text = t.AppendFormat(c.text[:0], transportTimeLayout)
	}
	return c.text
}

// appendBenchAck appends a framed ack of the event called ivorn, the same
// bytes as writeFrame of newAck(ivorn, "", now).marshal(), built without a
// Transport value: a subscriber writes one per event.
func appendBenchAck(dst []byte, ivorn string, stamp *benchStamp) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, transportHead...)
	dst = append(dst, "ack\">\n  <Origin>"...)
	for i := 0; i < len(ivorn); i++ {
		switch c := ivorn[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '\r':
			dst = append(dst, "&#13;"...)
		default:
			dst = append(dst, c)
		}
	}
	dst = append(dst, "</Origin>\n  <TimeStamp>"...)
	dst = append(dst, stamp.now()...)
	dst = append(dst, "</TimeStamp>\n</trn:Transport>\n"...)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// benchReadFrame returns the next frame's message. A frame that fits in
// br's buffer is returned in place, not copied (used is its size, which
// the next call discards from br; the message is valid until then); a
// larger one is read into buf (used is 0). A subscriber reads a frame per
// event, so the copy is worth saving.
func benchReadFrame(br *bufio.Reader, buf []byte, max int) (msg []byte, used int, err error) {
	hdr, err := br.Peek(4)
	if err != nil {
		if err == io.EOF && br.Buffered() > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	n := binary.BigEndian.Uint32(hdr)
	if n == 0 || uint64(n)+4 > uint64(br.Size()) {
		msg, err := readFrameInto(br, buf, max) // its errors, and the large frames
		return msg, 0, err
	}
	if uint64(n) > uint64(max) {
		return nil, 0, &frameError{err: errFrameTooLarge, length: n, limit: max}
	}
	frame, err := br.Peek(4 + int(n))
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, 0, err
	}
	br.Discard(4 + int(n)) // the bytes stay in place until the next read
	return frame[4:], 4 + int(n), nil
}

// benchFrameBuffered reports whether a whole frame is already buffered in br,
// so that reading it will not block.
func benchFrameBuffered(br *bufio.Reader) bool {
	n := br.Buffered()
	if n < 4 {
		return false
	}
	hdr, _ := br.Peek(4)
	return uint64(n) >= 4+uint64(binary.BigEndian.Uint32(hdr))
}

// receipt records that subscriber s received the event called ivorn at.
func (r *benchRun) receipt(s *benchSub, ivorn string, at int64) {
	i, ok := r.tmpl.index(ivorn)
	if !ok || i >= len(r.sendAt) {
		s.unexpected++
		return
	}
	if !r.counted(i) {
		return
	}
	w, bit := i/64, uint64(1)<<(i%64)
	if s.received[w]&bit != 0 {
		s.dups++
		return
	}
	s.received[w] |= bit
	s.count.Add(1)
	if sent := r.sendAt[i].Load(); sent > 0 {
		s.hist.record(time.Duration(at - (sent - 1)))
	}
}

// connectSubscribers opens the subscriber connections and waits (briefly)
// for the broker to authenticate each one.
func (r *benchRun) connectSubscribers(ctx context.Context, stderr io.Writer) ([]*benchSub, error) {
	var subs []*benchSub
	var firstErr error
	words := (len(r.sendAt) + 63) / 64
	for range r.cfg.subscribers {
		d := net.Dialer{Deadline: r.connDeadline()}
		c, err := d.DialContext(ctx, "tcp", r.cfg.subscribe)
		c, err = r.cfg.tls.handshake(ctx, c, err, r.cfg.tls.subscribeCfg, r.connDeadline())
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			if len(subs) == 0 {
				break // the first one failed: the others would too
			}
			continue
		}
		s := &benchSub{conn: c, received: make([]uint64, words), done: make(chan struct{})}
		subs = append(subs, s)
		go r.runSubscriber(s)
	}
	if len(subs) == 0 {
		return nil, fmt.Errorf("subscribe %s: no subscriber could connect (use -s 0 for a broker without a broadcaster): %v", r.cfg.subscribe, firstErr)
	}
	if len(subs) < r.cfg.subscribers {
		fmt.Fprintf(stderr, "comet bench: only %d of %d subscribers connected: %v\n", len(subs), r.cfg.subscribers, firstErr)
	}
	wait := time.Now().Add(benchAuthWait)
	for time.Now().Before(wait) && ctx.Err() == nil {
		all := true
		for _, s := range subs {
			if !s.authed.Load() {
				select {
				case <-s.done:
				default:
					all = false
				}
			}
		}
		if all {
			break
		}
		time.Sleep(benchPollInterval)
	}
	if len(r.cfg.filters) > 0 {
		time.Sleep(benchFilterGrace)
	}
	return subs, nil
}

// runBenchLoad runs the whole benchmark. It returns a report whenever the
// run started; the error says why it failed (nothing could connect).
func runBenchLoad(ctx context.Context, cfg *benchConfig, tmpl *benchTemplate, stderr io.Writer) (*benchReport, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	total := cfg.warmup + cfg.events
	r := &benchRun{cfg: cfg, tmpl: tmpl, runCtx: ctx, base: time.Now(), deadline: deadline,
		sendAt: make([]atomic.Int64, total), nakReasons: map[string]int64{}, errKinds: map[string]int64{}}

	ta, err := net.ResolveTCPAddr("tcp", cfg.target)
	if err != nil {
		return nil, fmt.Errorf("target %s: %v", cfg.target, err)
	}
	r.addr = ta.String()
	r.spread.Store(ta.IP.To4() != nil && ta.IP.IsLoopback())

	var sampler *benchSampler
	var brokerCPU *benchPhaseCPU
	self := &benchPhaseCPU{pid: os.Getpid()}
	if cfg.pid > 0 {
		brokerCPU = &benchPhaseCPU{pid: cfg.pid}
		if sampler, err = startBenchSampler(cfg.pid, benchSampleInterval); err != nil {
			return nil, fmt.Errorf("broker pid %d: %v", cfg.pid, err)
		}
	}
	rep := &benchReport{Target: cfg.target, EventBytes: tmpl.size + len(strconv.Itoa(total-1)) - 1,
		Events: cfg.events, Warmup: cfg.warmup, Authors: cfg.authors, Subscribers: cfg.subscribers,
		Filters: len(cfg.filters), RateCap: cfg.rate}
	if cfg.subscribers > 0 {
		rep.Subscribe = cfg.subscribe
	}
	finishSampler := func() {
		if sampler != nil {
			rep.Broker = sampler.finish()
		}
	}

	var subs []*benchSub
	if cfg.subscribers > 0 {
		if subs, err = r.connectSubscribers(ctx, stderr); err != nil {
			finishSampler()
			return nil, err
		}
	}
	closeSubs := func() {
		for _, s := range subs {
			select {
			case <-s.done:
				rep.Delivery.Dropped++
				if rep.Delivery.DropReason == "" && s.err != nil {
					rep.Delivery.DropReason = s.err.Error()
				}
			default:
			}
			s.conn.Close()
		}
		for _, s := range subs {
			<-s.done
		}
	}

	phase, abort := context.WithCancel(ctx)
	defer abort()
	r.abort = abort
	if cfg.warmup > 0 {
		r.runAuthors(phase, 0, cfg.warmup)
	}
	brokerCPU.mark(false)
	self.mark(false)
	start := r.now()
	r.lastDone.Store(start)
	r.runAuthors(phase, cfg.warmup, total)
	end := r.lastDone.Load()

	// Wait for deliveries: every subscriber has every accepted event (or,
	// when the filters are not expected to match, for the settling time).
	expected := r.accepted.Load()
	if len(cfg.filters) > 0 && !cfg.expectMatch {
		expected = 0
	}
	if len(subs) > 0 {
		settle := time.Now().Add(cfg.settle)
		for time.Now().Before(settle) && ctx.Err() == nil {
			complete := expected > 0
			for _, s := range subs {
				select {
				case <-s.done:
					continue
				default:
				}
				if s.count.Load() < expected {
					complete = false
				}
			}
			if complete {
				break
			}
			time.Sleep(benchPollInterval)
		}
	}
	brokerCPU.mark(true)
	self.mark(true)
	rep.TimedOut = ctx.Err() == context.DeadlineExceeded
	closeSubs()
	finishSampler()
	if rep.Broker != nil && brokerCPU.err == nil {
		rep.Broker.PhaseCPUSeconds, rep.Broker.CPUPerEventUS = brokerCPU.seconds(r.accepted.Load())
	}
	rep.Generator = &benchGenerator{}
	if self.err != nil {
		rep.Generator.Error = self.err.Error()
	} else {
		rep.Generator.PhaseCPUSeconds, rep.Generator.CPUPerEventUS = self.seconds(r.accepted.Load())
	}

	rep.Sent = r.sent.Load()
	rep.Accepted = r.accepted.Load()
	rep.Naks = r.naks.Load()
	rep.Errors = r.errs.Load()
	if len(r.errKinds) > 0 {
		rep.ErrorKinds = r.errKinds
	}
	rep.FirstError = r.firstErr
	if len(r.nakReasons) > 0 {
		rep.NakReasons = r.nakReasons
	}
	rep.Seconds = float64(end-start) / 1e9
	if rep.Seconds > 0 {
		rep.AcceptedRate = float64(rep.Accepted) / rep.Seconds
	}
	rep.AckLatency = r.ackHist.summary()

	if len(subs) == 0 {
		expected = 0
	}
	var receipts benchHist
	d := &rep.Delivery
	d.Connected = len(subs)
	d.Expected = expected
	for k, s := range subs {
		receipts.merge(&s.hist)
		n := s.count.Load()
		if k == 0 || n < d.ReceivedMin {
			d.ReceivedMin = n
		}
		d.ReceivedMax = max(d.ReceivedMax, n)
		d.Duplicates += s.dups
		d.Unexpected += s.unexpected
		d.Iamalive += s.iamalive
		if s.authed.Load() {
			d.Authenticated++
		}
	}
	d.Completeness = 1
	if expected > 0 {
		d.Completeness = float64(d.ReceivedMin) / float64(expected)
	}
	rep.Receipt = receipts.summary()

	if r.connected.Load() == 0 {
		return rep, fmt.Errorf("target %s: no author could connect: %s", cfg.target, r.firstErr)
	}
	return rep, nil
}

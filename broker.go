// broker.go owns the broker as a whole: it opens the event database, binds
// the listeners (and the status endpoint), starts the roles (receiver.go,
// broadcaster.go, subscriber.go) and accepts their connections. Admission
// (admission.go) decides what is relayed; shutdown.go stops it all.
//
// Invariants: every goroutine the broker starts is started through b.wg and
// ends when the broker's context is cancelled, and shutdown waits for all of
// them; every connection is tracked (b.conns) so that shutdown can end it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// broker is one running comet.
type broker struct {
	cfg *config
	log *slog.Logger
	db  *eventDB
	m   *metrics
	hq  *handlerQueue

	inflight *byteBudget // --max-inflight-bytes: messages being read, parsed, judged
	rl       *rateLog    // every log line a peer can cause
	penalty  *penaltyBox // hosts refused for a while after repeated garbage
	strikes  garbageStrikes
	now      func() time.Time

	authorWL     atomic.Pointer[whitelist]
	subscriberWL atomic.Pointer[whitelist]
	keyring      atomic.Pointer[keyring] // nil: signatures not checked

	receivers    []*listener
	broadcasters []*broadcaster
	upstreams    []*upstream
	purpose      string // what our subscriptions are for (softid purpose token)

	http *statusServer // nil without --http

	kafka  *kafkaBridge // nil without Kafka options (kafka_bridge.go)
	spoolw *spoolWire   // the spool and replay (spoolwire.go)
	tlsw   *tlswBroker  // TLS listeners and upstreams, peer identities; nil without TLS or --peers

	// dial opens upstream connections and wait sleeps between attempts;
	// tests replace them.
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	wait func(ctx context.Context, d time.Duration) bool

	started time.Time
	wg      sync.WaitGroup

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
}

// Peer-caused log lines: at most peerLogBurst per peer and reason in each
// peerLogWindow (then one line with the count suppressed).
const (
	peerLogBurst  = 5
	peerLogWindow = time.Minute
)

// listener is one bound endpoint with its connection limit.
type listener struct {
	role string // "receiver" or "broadcaster"
	ep   endpoint
	ln   net.Listener
	sem  chan struct{}
	up   atomic.Bool

	perHost *hostLimiter // --max-connections-per-host
}

func (l *listener) addr() string { return l.ln.Addr().String() }

// newBroker opens the event database and binds every listener, so that a
// port in use or an unusable directory fails before anything runs.
func newBroker(cfg *config, log *slog.Logger) (*broker, error) {
	b := &broker{cfg: cfg, log: log, m: &metrics{}, now: time.Now, conns: map[net.Conn]struct{}{}, wait: sleepCtx,
		inflight: newByteBudget(cfg.maxInflightBytes), penalty: newPenaltyBox(time.Now)}
	b.rl = newRateLog(log, peerLogBurst, peerLogWindow, time.Now)
	b.inflight.onWait = func(n int64) {
		b.rl.log(slog.LevelWarn, "", "max-inflight-bytes", "in-flight byte budget full; a reader waits for room", "bytes", n, "limit", cfg.maxInflightBytes)
	}
	dialer := &net.Dialer{Timeout: cfg.dialTimeout}
	b.dial = dialer.DialContext
	if err := b.loadWhitelists(); err != nil {
		return nil, err
	}
	kr, err := loadKeyrings(cfg.keyrings)
	if err != nil {
		return nil, err
	}
	b.keyring.Store(kr)
	b.purpose = purposeScience
	if len(cfg.broadcast) > 0 {
		b.purpose = purposeCopy
	}
	db, err := openEventDB(cfg.eventDB, cfg.eventDBExpiry, log)
	if err != nil {
		return nil, err
	}
	b.db = db
	if b.spoolw, err = openSpoolWire(b); err != nil {
		db.close()
		return nil, err
	}
	fail := func(err error) (*broker, error) {
		b.abandon()
		return nil, err
	}
	for _, ep := range cfg.receive {
		l, err := listen("receiver", ep, cfg.maxConnections, cfg.maxConnectionsPerHost)
		if err != nil {
			return fail(err)
		}
		b.receivers = append(b.receivers, l)
	}
	for _, ep := range cfg.broadcast {
		l, err := listen("broadcaster", ep, cfg.maxConnections, cfg.maxConnectionsPerHost)
		if err != nil {
			return fail(err)
		}
		b.broadcasters = append(b.broadcasters, newBroadcaster(b, l))
	}
	if err := b.tlswSetup(); err != nil {
		return fail(err)
	}
	for _, r := range cfg.remotes {
		b.upstreams = append(b.upstreams, newUpstream(b, r))
	}
	if cfg.httpAddr != "" {
		srv, err := newStatusServer(cfg.httpAddr, b.m, b.status, log)
		if err != nil {
			return fail(fmt.Errorf("status server: %w", err))
		}
		b.http = srv
		srv.extra = b.spoolw.route
	}
	hs, err := buildHandlers(cfg.handlers, log)
	if err != nil {
		return fail(err)
	}
	b.hq = newHandlerQueue(hs, cfg.handlerQueue, cfg.handlerWorkers, b.m, log)
	b.hq.setMaxBytes(cfg.handlerQueueBytes)
	if b.kafka, err = newKafkaBridge(b); err != nil {
		return fail(err)
	}
	return b, nil
}

func listen(role string, ep endpoint, maxConns, maxPerHost int) (*listener, error) {
	if ep.network == "unix" {
		// A stale socket file from an earlier run would stop the bind.
		if fi, err := os.Lstat(ep.address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(ep.address)
		}
	}
	// An author's connection carries one event within --timeout, so TCP
	// keep-alive (four setsockopt calls per accepted connection in Go's
	// default) buys nothing there; subscribers' long-lived connections keep it.
	var lc net.ListenConfig
	if role == "receiver" {
		lc.KeepAlive = -1
	}
	network, address := tlswNetAddr(ep)
	ln, err := lc.Listen(context.Background(), network, address)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot listen on %s: %w", role, ep, err)
	}
	l := &listener{role: role, ep: ep, ln: ln, sem: make(chan struct{}, maxConns), perHost: newHostLimiter(maxPerHost)}
	l.up.Store(true)
	return l, nil
}

// loadWhitelists (re)reads the whitelists; on error the old ones stay.
func (b *broker) loadWhitelists() error {
	aw, err := loadWhitelist(b.cfg.authorWhitelist)
	if err != nil {
		return fmt.Errorf("author whitelist: %w", err)
	}
	sw, err := loadWhitelist(b.cfg.subscriberWL)
	if err != nil {
		return fmt.Errorf("subscriber whitelist: %w", err)
	}
	b.authorWL.Store(aw)
	b.subscriberWL.Store(sw)
	return nil
}

// run starts every role and blocks until ctx is cancelled, then stops
// them within shutdownTimeout (shutdown.go).
func (b *broker) run(ctx context.Context) error {
	b.started = b.now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for _, l := range b.receivers {
		b.log.Info("receiving events", "addr", l.addr())
		b.wg.Go(func() { b.serve(ctx, l, &b.authorWL, b.handleAuthor) })
	}
	for _, bc := range b.broadcasters {
		b.log.Info("broadcasting events", "addr", bc.l.addr())
		b.wg.Go(func() { b.serve(ctx, bc.l, &b.subscriberWL, bc.handleSubscriber) })
		b.wg.Go(func() { bc.tick(ctx) })
		b.wg.Go(func() { bc.pump.run(ctx) })
	}
	for _, u := range b.upstreams {
		b.log.Info("subscribing", "remote", u.addr)
		b.wg.Go(func() { u.run(ctx) })
	}
	if b.kafka != nil {
		b.wg.Go(func() { b.kafka.run(ctx) })
	}
	if b.http != nil {
		b.log.Info("serving status", "addr", b.http.addr())
		b.wg.Go(func() { b.http.serve() })
	}
	b.wg.Go(func() { b.spoolw.run(ctx) })
	<-ctx.Done()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	return b.shutdown(sctx)
}

// abandon releases what newBroker acquired, for a broker that never runs.
func (b *broker) abandon() {
	b.closeListeners()
	if b.http != nil {
		b.http.ln.Close()
	}
	b.spoolw.close()
	b.db.close()
}

func (b *broker) closeListeners() {
	for _, l := range b.receivers {
		l.up.Store(false)
		l.ln.Close()
	}
	for _, bc := range b.broadcasters {
		bc.l.up.Store(false)
		bc.l.ln.Close()
	}
}

// track registers a connection so shutdown can end it; the returned
// function unregisters it.
func (b *broker) track(c net.Conn) func() {
	b.connMu.Lock()
	b.conns[c] = struct{}{}
	b.connMu.Unlock()
	return func() {
		b.connMu.Lock()
		delete(b.conns, c)
		b.connMu.Unlock()
	}
}

// serve accepts connections on l: whitelist first, then the connection
// limit, then handle in a goroutine of its own.
func (b *broker) serve(ctx context.Context, l *listener, wl *atomic.Pointer[whitelist], handle func(context.Context, net.Conn)) {
	if l.ep.network == "unix" {
		b.log.Warn("whitelist does not apply to a Unix socket; use its file permissions", "role", l.role, "path", l.ep.address)
	}
	delay := 5 * time.Millisecond
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: back off briefly.
			b.log.Error("accept failed", "role", l.role, "err", err)
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				return
			}
			delay = min(2*delay, time.Second)
			continue
		}
		delay = 5 * time.Millisecond
		if reason := b.admitConn(l, wl, c); reason != "" {
			b.m.connRefused.inc(reason)
			c.Close()
			continue
		}
		key := hostKey(c.RemoteAddr())
		if b.log.Enabled(ctx, slog.LevelDebug) {
			b.log.Debug("connection accepted", "role", l.role, "peer", c.RemoteAddr().String())
		}
		untrack := b.track(c)
		b.wg.Go(func() {
			defer func() { <-l.sem }()
			defer l.perHost.release(key)
			defer untrack()
			if c = b.tlsw.wrap(ctx, l, c); c == nil {
				return // TLS handshake or role refused (logged)
			}
			handle(ctx, c)
		})
	}
}

// admitConn applies the accept-time rules to a new connection, in order:
// the whitelist, the penalty box (hosts dropped for repeated garbage), the
// listener's connection limit and its per-host limit. It returns the
// refusal's reason ("" to go on), having logged it (rate-limited); on ""
// the connection holds a slot of both limits.
func (b *broker) admitConn(l *listener, wl *atomic.Pointer[whitelist], c net.Conn) string {
	addr := c.RemoteAddr()
	key := hostKey(addr)
	if !wl.Load().allows(addr) {
		b.rl.log(slog.LevelInfo, key, "not-whitelisted", "refused connection from a peer not in the whitelist", "role", l.role, "addr", addr.String())
		return "not-whitelisted"
	}
	if blocked, left := b.penalty.blocked(key); blocked {
		b.rl.log(slog.LevelInfo, key, "penalty", "refused connection from a host dropped for repeated garbage", "role", l.role, "addr", addr.String(), "for", left.Round(time.Second))
		return "penalty"
	}
	select {
	case l.sem <- struct{}{}:
	default:
		b.rl.log(slog.LevelWarn, "", "connection-limit", "connection limit reached; refusing a connection", "role", l.role, "addr", addr.String(), "limit", cap(l.sem))
		return "connection-limit"
	}
	if !l.perHost.acquire(key) {
		<-l.sem
		b.rl.log(slog.LevelWarn, key, "host-limit", "too many connections from one host; refusing a connection", "role", l.role, "addr", addr.String(), "limit", b.cfg.maxConnectionsPerHost)
		return "host-limit"
	}
	return ""
}

// offend counts garbage from the host of addr; a host with
// garbageStrikesMax strikes within a minute (one connection ending in a
// frame error is a strike; a subscriber dropped for repeated garbage is
// that many at once) goes to the penalty box.
func (b *broker) offend(addr net.Addr, why string) {
	key := hostKey(addr)
	if !b.strikes.strike(key, why == "repeated garbage") {
		return
	}
	d := b.penalty.offend(key)
	b.rl.log(slog.LevelWarn, key, "penalty", "host sent garbage; refusing its connections for a while", "addr", addr.String(), "why", why, "for", d.Round(time.Second))
}

// status is the snapshot for /status and /metrics.
func (b *broker) status() brokerStatus {
	st := brokerStatus{Version: version, Started: b.started, LocalIVO: b.cfg.localIVO}
	for _, l := range b.receivers {
		st.Listeners = append(st.Listeners, listenerStatus{Role: l.role, Address: l.addr(), Up: l.up.Load()})
	}
	for _, bc := range b.broadcasters {
		st.Listeners = append(st.Listeners, listenerStatus{Role: bc.l.role, Address: bc.l.addr(), Up: bc.l.up.Load()})
		st.Peers = append(st.Peers, bc.peers()...)
	}
	for _, u := range b.upstreams {
		st.Peers = append(st.Peers, u.status())
	}
	st.EventDB = eventDBStatus{Dir: b.cfg.eventDB, Entries: b.db.len(), SizeBytes: b.db.sizeBytes()}
	st.EventDB.Records, st.EventDB.Writes = b.db.writeCounts()
	if b.hq != nil {
		st.Handlers = b.hq.status()
	}
	st.InflightBytes, st.InflightWaits = b.inflight.inUse(), b.inflight.waits.Load()
	if b.kafka != nil {
		st.Kafka, st.extraMetrics = b.kafka.status(), b.kafka.writeMetrics
	}
	return st
}

// brokerMain runs the broker with the options of twistd comet.
func brokerMain(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseBrokerArgs(args, stdout)
	if err != nil {
		var ue *usageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "comet: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "comet: %v\n", err)
		return exitFail
	}
	return runBrokerProcess(cfg, stderr)
}

// garbageStrikesMax is how many garbage strikes in a minute send a host to
// the penalty box.
const garbageStrikesMax = 5

// garbageStrikes counts garbage per host over the current minute; its
// memory is bounded (a full table starts again).
type garbageStrikes struct {
	mu    sync.Mutex
	m     map[string]int
	since time.Time
}

// strike counts one strike for key (all of them at once with full) and
// reports whether key has now reached garbageStrikesMax.
func (g *garbageStrikes) strike(key string, full bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if g.m == nil || now.Sub(g.since) > time.Minute || len(g.m) >= 4096 {
		g.m, g.since = map[string]int{}, now
	}
	if full {
		g.m[key] = garbageStrikesMax
	} else {
		g.m[key]++
	}
	if g.m[key] >= garbageStrikesMax {
		delete(g.m, key)
		return true
	}
	return false
}

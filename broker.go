// broker.go owns the broker as a whole: it opens the event database, binds
// the listeners, starts the roles (receiver.go, broadcaster.go,
// subscriber.go), hands accepted events to broadcasters and handlers, and
// shuts everything down in order.
//
// Invariants: every goroutine is started through b.wg and ends when the
// broker's context is cancelled; an event is relayed and handled only after
// it has been recorded in the event database (so it is never processed twice),
// and never after a rejection.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
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
	now func() time.Time

	authorWL     atomic.Pointer[whitelist]
	subscriberWL atomic.Pointer[whitelist]
	keyring      atomic.Pointer[keyring] // nil: signatures not checked

	receivers    []*listener
	broadcasters []*broadcaster
	upstreams    []*upstream
	purpose      string // what our subscriptions are for (softid purpose token)

	started time.Time
	wg      sync.WaitGroup

	connMu sync.Mutex
	conns  map[net.Conn]struct{}
}

// listener is one bound endpoint with its connection limit.
type listener struct {
	role string // "receiver" or "broadcaster"
	ep   endpoint
	ln   net.Listener
	sem  chan struct{}
	up   atomic.Bool
}

func (l *listener) addr() string { return l.ln.Addr().String() }

// newBroker opens the event database and binds every listener, so that a
// port in use or an unusable directory fails before anything runs.
func newBroker(cfg *config, log *slog.Logger) (*broker, error) {
	b := &broker{cfg: cfg, log: log, m: &metrics{}, now: time.Now, conns: map[net.Conn]struct{}{}}
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
	fail := func(err error) (*broker, error) {
		b.abandon()
		return nil, err
	}
	for _, ep := range cfg.receive {
		l, err := listen("receiver", ep, cfg.maxConnections)
		if err != nil {
			return fail(err)
		}
		b.receivers = append(b.receivers, l)
	}
	for _, ep := range cfg.broadcast {
		l, err := listen("broadcaster", ep, cfg.maxConnections)
		if err != nil {
			return fail(err)
		}
		b.broadcasters = append(b.broadcasters, newBroadcaster(b, l))
	}
	for _, r := range cfg.remotes {
		b.upstreams = append(b.upstreams, newUpstream(b, r))
	}
	b.hq = newHandlerQueue(cfg.handlers, cfg.handlerQueue, cfg.handlerWorkers, b.m, log)
	return b, nil
}

func listen(role string, ep endpoint, maxConns int) (*listener, error) {
	if ep.network == "unix" {
		// A stale socket file from an earlier run would stop the bind.
		if fi, err := os.Lstat(ep.address); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(ep.address)
		}
	}
	ln, err := net.Listen(ep.network, ep.address)
	if err != nil {
		return nil, fmt.Errorf("%s: cannot listen on %s: %w", role, ep, err)
	}
	l := &listener{role: role, ep: ep, ln: ln, sem: make(chan struct{}, maxConns)}
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

// loadWhitelist builds a whitelist from option values: each is one or more
// networks, or the name of a file of networks (one or more a line, #
// comments), which is read again on every reload. No values at all means
// everything, IPv4 and IPv6.
func loadWhitelist(specs []string) (*whitelist, error) {
	if len(specs) == 0 {
		return defaultWhitelist(), nil
	}
	var nets []string
	for _, s := range specs {
		_, netErr := parseWhitelist([]string{s})
		if netErr == nil {
			nets = append(nets, s)
			continue
		}
		data, err := os.ReadFile(s)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil, netErr // most likely a mistyped network
			}
			return nil, fmt.Errorf("%s: %v", s, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for line := 1; sc.Scan(); line++ {
			t, _, _ := strings.Cut(sc.Text(), "#")
			if strings.TrimSpace(t) == "" {
				continue
			}
			if _, err := parseWhitelist([]string{t}); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", s, line, err)
			}
			nets = append(nets, t)
		}
	}
	if len(nets) == 0 {
		return nil, errors.New("no networks given (an empty whitelist would refuse everyone)")
	}
	return parseWhitelist(nets)
}

// run starts every role and blocks until ctx is cancelled, then stops
// them: listeners closed, in-flight acks finished, event DB synced.
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
	}
	for _, u := range b.upstreams {
		b.log.Info("subscribing", "remote", u.addr)
		b.wg.Go(func() { u.run(ctx) })
	}
	<-ctx.Done()
	return b.shutdown()
}

// shutdownGrace is how long in-flight connections get to finish.
const shutdownGrace = 1200 * time.Millisecond

func (b *broker) shutdown() error {
	b.log.Info("stopping")
	b.closeListeners()
	deadline := b.now().Add(shutdownGrace)
	b.connMu.Lock()
	for c := range b.conns {
		c.SetDeadline(deadline)
	}
	b.connMu.Unlock()
	for _, bc := range b.broadcasters {
		bc.closeAll()
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownGrace + 300*time.Millisecond):
		b.log.Warn("connections still open at shutdown; closing them")
		b.connMu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.connMu.Unlock()
		<-done
	}
	hctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	b.hq.close(hctx)
	cancel()
	if err := b.db.close(); err != nil {
		return fmt.Errorf("eventdb: %w", err)
	}
	b.log.Info("stopped")
	return nil
}

// abandon releases what newBroker acquired, for a broker that never runs.
func (b *broker) abandon() {
	b.closeListeners()
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
		if !wl.Load().allows(c.RemoteAddr()) {
			b.log.Info("refused connection from a peer not in the whitelist", "role", l.role, "peer", c.RemoteAddr().String())
			b.m.rejected.inc("not-whitelisted")
			c.Close()
			continue
		}
		select {
		case l.sem <- struct{}{}:
		default:
			b.log.Warn("connection limit reached; refusing a connection", "role", l.role, "peer", c.RemoteAddr().String(), "limit", cap(l.sem))
			b.m.rejected.inc("connection-limit")
			c.Close()
			continue
		}
		untrack := b.track(c)
		b.wg.Go(func() {
			defer func() { <-l.sem }()
			defer untrack()
			handle(ctx, c)
		})
	}
}

// record decides whether an event is new, remembering it if so; false is a
// duplicate. The event DB record reaches the operating system before record
// returns true, so a killed broker never forgets an event it acked.
func (b *broker) record(ev *event) bool {
	isNew, err := b.db.checkAndRecordKey(ev.key)
	if err != nil {
		// The in-memory record still happened: dedup goes on, only the
		// persistence is lost. Keep relaying; say so loudly.
		b.m.eventDBErrors.Add(1)
		b.log.Error("event database write failed; duplicates are still caught until restart", "ivorn", ev.ivorn, "err", err)
	}
	if !isNew {
		b.m.duplicates.Add(1)
	}
	return isNew
}

// dispatch relays a new event to every broadcaster and queues it for the
// handlers. It never blocks on a subscriber or a handler.
func (b *broker) dispatch(ev *event) {
	b.m.accepted.Add(1)
	if len(b.broadcasters) > 0 {
		b.m.relayed.Add(1)
		for _, bc := range b.broadcasters {
			bc.relay(ev)
		}
	}
	b.hq.submit(ev)
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
	return st
}

// writeMessage writes one framed message with a write deadline.
func writeMessage(c net.Conn, payload []byte, timeout time.Duration) error {
	c.SetWriteDeadline(time.Now().Add(timeout))
	return writeFrame(c, payload)
}

// describeReadError turns a read failure into a log message and level.
func describeReadError(err error) (string, slog.Level) {
	var fe *frameError
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return "peer closed the connection", slog.LevelDebug
	case errors.As(err, &fe):
		return fe.Error(), slog.LevelWarn
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "peer closed the connection in the middle of a message", slog.LevelWarn
	case errors.As(err, &ne) && ne.Timeout():
		return "timed out", slog.LevelInfo
	case errors.Is(err, net.ErrClosed):
		return "connection closed", slog.LevelDebug
	}
	return err.Error(), slog.LevelInfo
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

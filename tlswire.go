// tlswire.go wires the TLS layer (tls_config.go, tls_endpoint.go, peers.go)
// into the broker (contract section 7): the options and endpoint spellings
// at parse time, one TLS handshake per accepted connection in that
// connection's own goroutine, the identity that then rides with the
// connection, the admission rules of TLS identities and pgp: keys, the
// server-side filters of subscribers, TLS upstreams, SIGHUP, and what the
// logs, /status, /metrics and --cmd handlers see of identities.
//
// Invariants:
//   - A TLS endpoint is a plain endpoint value whose network is "tls" or
//     "ssl" and whose address is the rest of its spelling, so the endpoint
//     says everything about itself and parsing keeps no state; it is parsed
//     again (it parsed once already) when the listener is bound.
//   - The accept loop never waits on a handshake: the accept-time checks
//     (whitelist, penalty box, connection and per-host limits) run there as
//     for plain TCP, the handshake in the connection's goroutine, bounded by
//     tlsDefaultHandshakeTimeout (inside the receiver's 20 s).
//   - A listed identity is looked up again by key on every event and at
//     every SIGHUP, so a removed identity is disconnected and a changed one
//     applies to live connections; a CA-verified unlisted one keeps the
//     identity of its handshake.
//   - b.tlsw is nil when nothing TLS or --peers is configured; every
//     method accepts a nil receiver, and the plain path is unchanged then.
package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tlswConfig is the TLS part of the configuration (config.tls).
type tlswConfig struct {
	settings tlsSettings
	given    bool // any TLS option was given

	// handshakeTimeout is not an option: 0 is the contract's 10 s
	// (tlsDefaultHandshakeTimeout); tests shorten it.
	handshakeTimeout time.Duration
}

// addTLSOptions declares the TLS options (called once from newBrokerArgs).
// Their values are checked as they are parsed; tlswCheckConfig checks them
// together once every option is in.
func addTLSOptions(o *optionSet, cfg *config) {
	t := &cfg.tls
	set := func(p *string) funcValue {
		return func(s string) error {
			if s == "" {
				return errors.New("want a file name")
			}
			*p, t.given = s, true
			return nil
		}
	}
	o.add(set(&t.settings.certFile), "FILE", "our TLS certificate (PEM; the chain may follow the leaf), as a server and as a client when asked", "tls-cert")
	o.add(set(&t.settings.keyFile), "FILE", "the key of --tls-cert (PEM)", "tls-key")
	o.add(set(&t.settings.caFile), "FILE", "PEM bundle (or directory of *.pem) that verifies TLS peers: client certificates, and servers of --remote tls: (default: the system roots)", "tls-ca")
	o.add(funcValue(func(s string) error {
		v, err := parseTLSClientAuth(s)
		if err != nil {
			return err
		}
		t.settings.clientAuth, t.given = v, true
		return nil
	}), "MODE", "client certificates on TLS listeners: none, request or require (default none)", "tls-client-auth")
	o.add(funcValue(func(s string) error {
		v, err := parseTLSMinVersion(s)
		if err != nil {
			return err
		}
		t.settings.minVersion, t.given = v, true
		return nil
	}), "VERSION", "lowest TLS version accepted: 1.2 or 1.3 (default 1.2)", "tls-min-version")
	o.add(set(&t.settings.peersFile), "FILE", "the peers file: TLS pins and OpenPGP keys, their names, roles, prefixes and filters (re-read on SIGHUP)", "peers")
}

// tlswIsEndpoint says whether a parsed listening endpoint is a TLS one.
func tlswIsEndpoint(ep endpoint) bool { return ep.network == "tls" || ep.network == "ssl" }

// tlswParseServerEndpoint is parseServerEndpoint's branch for tls: and ssl:.
func tlswParseServerEndpoint(s string) (endpoint, error) {
	if _, err := parseTLSServerEndpoint(s); err != nil {
		return endpoint{}, err
	}
	kind, rest, _ := strings.Cut(s, ":")
	return endpoint{kind, rest}, nil
}

// tlswServerEndpoint parses a TLS endpoint value again.
func tlswServerEndpoint(ep endpoint) (*tlsServerEndpoint, error) {
	return parseTLSServerEndpoint(ep.String())
}

// tlswNetAddr is what net.Listen takes for ep: TCP at the TLS endpoint's
// address, or ep itself.
func tlswNetAddr(ep endpoint) (network, address string) {
	if !tlswIsEndpoint(ep) {
		return ep.network, ep.address
	}
	t, err := tlswServerEndpoint(ep)
	if err != nil {
		return ep.network, ep.address // refused at parse time; net.Listen says so
	}
	return "tcp", t.address
}

// tlswCheckConfig checks the TLS options together (called once from
// parseBrokerArgs): --remote's TLS spellings, the certificates the TLS
// listeners need, and every file they name, which it reads (as the
// whitelists are read) and loads.
func tlswCheckConfig(cfg *config) error {
	need := cfg.tls.given
	for _, ep := range append(append([]endpoint(nil), cfg.receive...), cfg.broadcast...) {
		need = need || tlswIsEndpoint(ep)
	}
	for _, r := range cfg.remotes {
		if isTLSEndpoint(r) {
			if _, err := parseTLSClientEndpoint(r); err != nil {
				return usagef("--remote: %v", err)
			}
			need = true
		}
	}
	if !need {
		return nil
	}
	m, err := newTLSManager(cfg.tls.settings)
	if err != nil {
		return usagef("%v", err)
	}
	for _, ep := range append(append([]endpoint(nil), cfg.receive...), cfg.broadcast...) {
		if !tlswIsEndpoint(ep) {
			continue
		}
		t, err := tlswServerEndpoint(ep)
		if err != nil {
			return usagef("%v", err)
		}
		if _, err := m.serverConfig(t); err != nil {
			return usagef("%s: %v", ep, err)
		}
	}
	return nil
}

// tlswBroker is the broker's TLS component (broker.tlsw).
type tlswBroker struct {
	b *broker
	m *tlsManager

	listeners map[*listener]*tls.Config // TLS listeners and their configuration

	mu        sync.Mutex
	live      map[*tlswConn]struct{} // open TLS connections of our listeners
	upstreams map[string]string      // --remote tls: spelling -> server identity name

	metrics *tlswMetrics
}

// tlswMetrics are the TLS counters (metrics.tls).
type tlswMetrics struct {
	handshakeFailures labelledCounter // by tlsFailureReason
	identityEvents    labelledCounter // new events past the identity rules, by identity
	identityRefused   labelledCounter // events refused by the identity or pgp rules, by identity or key
	roleRefused       labelledCounter // connections ended after the handshake, by identity
}

// render writes the TLS families into /metrics.
func (t *tlswMetrics) render(p *promWriter) {
	p.byLabel("comet_tls_handshake_failures_total", "counter", "TLS handshakes that failed on our listeners or to TLS upstreams, by reason.", "reason", counterValues(&t.handshakeFailures))
	p.byLabel("comet_identity_events_total", "counter", "New events from each TLS identity that passed its rules.", "identity", counterValues(&t.identityEvents))
	p.byLabel("comet_identity_refused_total", "counter", "Events refused by the rules of a TLS identity or an OpenPGP key of the peers file, by identity.", "identity", counterValues(&t.identityRefused))
	p.byLabel("comet_identity_role_refused_total", "counter", "TLS connections ended after the handshake because the identity may not take the listener's role.", "identity", counterValues(&t.roleRefused))
}

// tlswSetup makes the TLS component once the listeners are bound (from
// newBroker): the manager, and each TLS listener's configuration. Without
// TLS or --peers it leaves b.tlsw nil.
func (b *broker) tlswSetup() error {
	cfg := b.cfg
	need := cfg.tls.settings.peersFile != ""
	for _, l := range b.allListeners() {
		need = need || tlswIsEndpoint(l.ep)
	}
	for _, r := range cfg.remotes {
		need = need || isTLSEndpoint(r)
	}
	if !need {
		return nil
	}
	m, err := newTLSManager(cfg.tls.settings)
	if err != nil {
		return err
	}
	w := &tlswBroker{b: b, m: m, listeners: map[*listener]*tls.Config{}, live: map[*tlswConn]struct{}{},
		upstreams: map[string]string{}, metrics: &b.m.tls}
	for _, l := range b.allListeners() {
		if !tlswIsEndpoint(l.ep) {
			continue
		}
		t, err := tlswServerEndpoint(l.ep)
		if err != nil {
			return err
		}
		sc, err := m.serverConfig(t)
		if err != nil {
			return fmt.Errorf("%s: %w", l.ep, err)
		}
		w.listeners[l] = sc
	}
	b.tlsw = w
	w.warnPGPWithoutKeyring()
	return nil
}

func (b *broker) allListeners() []*listener {
	out := append([]*listener(nil), b.receivers...)
	for _, bc := range b.broadcasters {
		out = append(out, bc.l)
	}
	return out
}

// warnPGPWithoutKeyring says once that pgp: prefixes cannot be satisfied
// without a keyring (every event under them is then refused as forged).
func (w *tlswBroker) warnPGPWithoutKeyring() {
	if w.b.keyring.Load() != nil {
		return
	}
	for _, id := range w.m.peers().identities() {
		if id.pgp != "" && len(id.prefixes) > 0 {
			w.b.log.Warn("the peers file claims prefixes for OpenPGP keys but no --keyring is given: every event under them is refused as forged", "key", id.name)
			return
		}
	}
}

// tlswConn is an accepted TLS connection with the identity of its
// handshake; Close removes it from the live set.
type tlswConn struct {
	*tls.Conn
	w    *tlswBroker
	id   *peerIdentity // nil: anonymous
	role string        // "author" or "subscriber"
	once sync.Once

	// limit is when an author's connection must be done: the receiver's
	// timeout counts from the connection, the handshake included.
	limit time.Time
}

// SetDeadline keeps an author's deadlines within the receiver's timeout
// from the connection.
func (c *tlswConn) SetDeadline(t time.Time) error {
	if !c.limit.IsZero() && (t.IsZero() || t.After(c.limit)) {
		t = c.limit
	}
	return c.Conn.SetDeadline(t)
}

// Close ends the connection. An author's gets a TLS close_notify after
// its reply (its own goroutine waits for that write, at most as long as
// crypto/tls allows, 5 s); a subscriber's is closed at once, without one:
// it may be dropped for being slow, from the relay path, where a
// close_notify into a full socket buffer would stall every subscriber.
func (c *tlswConn) Close() error {
	c.forget()
	if c.role == "subscriber" {
		return c.NetConn().Close()
	}
	return c.Conn.Close()
}

// abort closes the connection at once, without a close_notify.
func (c *tlswConn) abort() {
	c.forget()
	c.NetConn().Close()
}

func (c *tlswConn) forget() {
	c.once.Do(func() {
		c.w.mu.Lock()
		delete(c.w.live, c)
		c.w.mu.Unlock()
	})
}

// tlswWriteBuffers writes a subscriber's batch (broadcaster.go): for a TLS
// connection, copied into few large TLS records (net.Buffers would make
// one record and one system call of each 4-byte frame header and each
// event); for a plain one, bufs.WriteTo.
func tlswWriteBuffers(c net.Conn, bufs *net.Buffers) (int64, error) {
	tc := tlswConnOf(c)
	if tc == nil {
		return bufs.WriteTo(c)
	}
	bp := tlswWriteBufs.Get().(*[]byte)
	defer tlswWriteBufs.Put(bp)
	buf := (*bp)[:0]
	var n int64
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		m, err := tc.Conn.Write(buf)
		n += int64(m)
		buf = buf[:0]
		return err
	}
	for _, b := range *bufs {
		for len(b) > 0 {
			if len(buf) == tlswWriteChunk {
				if err := flush(); err != nil {
					return n, err
				}
			}
			k := min(tlswWriteChunk-len(buf), len(b))
			buf = append(buf, b[:k]...)
			b = b[k:]
		}
	}
	err := flush()
	*bufs = (*bufs)[len(*bufs):]
	return n, err
}

// tlswWriteChunk is the most tlswWriteBuffers copies before a write: one
// full TLS record. The buffers are shared, so an idle subscriber holds none.
const tlswWriteChunk = 16 << 10

var tlswWriteBufs = sync.Pool{New: func() any { b := make([]byte, 0, tlswWriteChunk); return &b }}

// current is the identity in force now: a listed one looked up again (nil,
// false: removed from the peers file), a CA-verified one as at the
// handshake unless the file now lists its pin, nil for anonymous.
func (c *tlswConn) current() (*peerIdentity, bool) {
	if c == nil || c.id == nil {
		return nil, true
	}
	pt := c.w.m.peers()
	if !c.id.listed {
		if n := pt.lookupPin(c.id.pin); n != nil {
			return n, true
		}
		return c.id, true
	}
	n := pt.lookupKey(c.id.key())
	return n, n != nil
}

// name is the identity's current name, "" for an anonymous client.
func (c *tlswConn) name() string {
	if c == nil || c.id == nil {
		return ""
	}
	if cur, ok := c.current(); ok && cur != nil {
		return cur.name
	}
	return c.id.name
}

// tlswConnOf is the TLS connection under c, nil for a plain one.
func tlswConnOf(c net.Conn) *tlswConn {
	tc, _ := c.(*tlswConn)
	return tc
}

// tlswConnName is the identity name of c, "" for a plain or anonymous one.
func tlswConnName(c net.Conn) string { return tlswConnOf(c).name() }

// tlswLogWith adds the identity of c to a connection's logger.
func tlswLogWith(log *slog.Logger, c net.Conn) *slog.Logger {
	if n := tlswConnName(c); n != "" {
		return log.With("identity", n)
	}
	return log
}

// tlswLingerConn is an accepted connection during its handshake. If the
// handshake fails, Close first shuts our side and reads (and discards) what
// the client still sends, for at most tlswLinger: a TLS 1.3 client learns
// that its certificate was refused only from our alert, after its own
// handshake finished and while it is already sending its event; closing at
// once, with that event unread, would reset the connection and destroy the
// alert before the client reads it ("broken pipe" instead of the reason).
type tlswLingerConn struct {
	net.Conn
	done atomic.Bool
}

// tlswLinger bounds how long a refused connection is kept to deliver our
// alert (it still holds its slot that long).
const tlswLinger = 250 * time.Millisecond

func (c *tlswLingerConn) Close() error {
	if c.done.Load() {
		return c.Conn.Close()
	}
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.CloseWrite()
		tc.SetReadDeadline(time.Now().Add(tlswLinger))
		io.Copy(io.Discard, io.LimitReader(tc, 1<<20))
	}
	return c.Conn.Close()
}

// tlswRole is the role a listener's peers take.
func tlswRole(l *listener) string {
	if l.role == "receiver" {
		return "author"
	}
	return "subscriber"
}

// wrap runs the TLS side of an accepted connection of l in its own
// goroutine (from serve): c itself for a plain listener; for a TLS one the
// handshake within its deadline, the identity, and the role check. nil
// means c was refused and closed (logged and counted).
func (w *tlswBroker) wrap(ctx context.Context, l *listener, c net.Conn) net.Conn {
	if w == nil {
		return c
	}
	sc := w.listeners[l]
	if sc == nil {
		return c
	}
	b := w.b
	addr := c.RemoteAddr().String()
	host := hostKey(c.RemoteAddr())
	start := b.now()
	lc := &tlswLingerConn{Conn: c}
	conn, id, anonymous, err := w.m.accept(ctx, lc, sc, b.cfg.tls.handshakeTimeout)
	lc.done.Store(true) // from here on, Close closes at once
	if err != nil {
		reason := tlsFailureReason(err)
		if ctx.Err() != nil {
			return nil // stopping
		}
		w.metrics.handshakeFailures.inc(reason)
		b.rl.log(slog.LevelInfo, host, "tls-"+reason, "TLS handshake refused", "role", l.role, "addr", addr,
			"reason", reason, "err", rateTruncate(err.Error(), 256))
		return nil
	}
	role := tlswRole(l)
	if !id.allows(role) {
		w.metrics.roleRefused.inc(id.name)
		b.rl.log(slog.LevelWarn, host, "tls-role", fmt.Sprintf("peer %s may not act as %s; closing", id.name, role),
			"role", l.role, "addr", addr, "identity", id.name, "refused_role", role)
		conn.Close()
		return nil
	}
	tc := &tlswConn{Conn: conn, w: w, id: id, role: role}
	if role == "author" {
		tc.limit = start.Add(b.cfg.receiverTimeout)
	}
	name := tc.name()
	if anonymous {
		name = "(anonymous)"
	}
	cs := conn.ConnectionState()
	// Rate-limited per host and identity: one noisy identity does not hide
	// another's connections from the same address.
	b.rl.log(slog.LevelInfo, host, "tls-connect:"+name, "TLS peer connected", "role", l.role, "addr", addr, "identity", name,
		"tls", tls.VersionName(cs.Version))
	w.mu.Lock()
	w.live[tc] = struct{}{}
	w.mu.Unlock()
	return tc
}

// tlswAdmitRule is admission's identity step for a new event whose
// signature verdict is known: the TLS author's identity (its allow= and
// ivorn-prefix=) and the two-way pgp: rule, for every source. nil admits.
func (b *broker) tlswAdmitRule(ev *event) *rejection {
	w := b.tlsw
	if w == nil {
		return nil
	}
	if ev.tlsFrom != nil {
		id, ok := ev.tlsFrom.current()
		if !ok {
			w.metrics.identityRefused.inc(ev.tlsFrom.id.name)
			return &rejection{class: "identity", reason: fmt.Sprintf("peer %s is no longer listed in the peers file", ev.tlsFrom.id.name)}
		}
		if ok, why := id.authorAllows(ev.ivorn); !ok {
			w.metrics.identityRefused.inc(id.name)
			return &rejection{class: "identity", reason: why}
		}
	}
	pt := w.m.peers()
	if ok, why := pt.signerRule(ev.ivorn, ev.sigVerdict == verdictValid, ev.signer, tlswPrimaryFpr(b.keyring.Load(), ev.signer)...); !ok {
		label := "(forged)"
		if ev.sigVerdict == verdictValid {
			for _, f := range append([]string{ev.signer}, tlswPrimaryFpr(b.keyring.Load(), ev.signer)...) {
				if s := pt.lookupPGP(f); s != nil {
					label = s.name
					break
				}
			}
		}
		w.metrics.identityRefused.inc(label)
		return &rejection{class: "forged", reason: why}
	}
	if n := ev.tlsFrom.name(); n != "" {
		w.metrics.identityEvents.inc(n)
	}
	return nil
}

// tlswPrimaryFpr is the primary key's fingerprint when a subkey made a
// signature (so a peers file may list either), nil otherwise.
func tlswPrimaryFpr(kr *keyring, signer string) []string {
	if kr == nil || signer == "" {
		return nil
	}
	raw, err := hex.DecodeString(signer)
	if err != nil {
		return nil
	}
	for _, ref := range kr.byFpr[string(raw)] {
		if ref.sub != nil && ref.ent != nil && ref.ent.primary != nil {
			return []string{ref.ent.primary.fprHex()}
		}
	}
	return nil
}

// tlswEventPeer is the submitting identity of an event, for COMET_PEER.
func tlswEventPeer(ev *event) string { return ev.tlsFrom.name() }

// tlswWants applies a TLS subscriber's server-side filters (filter= of its
// identity) to an event, before its own: false skips the event. A
// subscriber whose identity was removed is dropped.
func (s *subConn) tlswWants(ev *event) bool {
	tc := tlswConnOf(s.conn)
	if tc == nil || tc.id == nil {
		return true
	}
	id, ok := tc.current()
	if !ok {
		s.drop(errTLSWRemoved)
		return false
	}
	if id == nil || len(id.filters) == 0 {
		return true
	}
	doc, err := ev.tree(&s.bc.b.m.treeParses)
	if err != nil {
		return false
	}
	if !id.filterAllows(doc) {
		s.log.Debug("event rejected by the identity's filter", "ivorn", ev.ivorn, "identity", id.name)
		return false
	}
	return true
}

// errTLSWRemoved ends a connection whose identity left the peers file.
var errTLSWRemoved = errors.New("identity removed from the peers file")

// tlswDial opens an upstream connection (subscriber.go): m.dial for a
// --remote tls:/ssl: spelling, b.dial otherwise.
func (b *broker) tlswDial(ctx context.Context, addr string) (net.Conn, error) {
	if !isTLSEndpoint(addr) || b.tlsw == nil {
		return b.dial(ctx, "tcp", addr)
	}
	w := b.tlsw
	ep, err := parseTLSClientEndpoint(addr)
	if err != nil {
		return nil, err
	}
	conn, err := w.m.dial(ctx, ep, 0)
	if err != nil {
		if ctx.Err() == nil {
			var ne *net.OpError
			if !errors.As(err, &ne) || ne.Op != "dial" {
				reason := tlsFailureReason(err)
				w.metrics.handshakeFailures.inc(reason)
				err = fmt.Errorf("TLS with %s failed (%s): %w", ep.address(), reason, err)
			}
		}
		return nil, err
	}
	name := ""
	if cs := conn.ConnectionState(); len(cs.PeerCertificates) > 0 {
		if id := w.m.peers().lookupPin(tlsPin(cs.PeerCertificates[0])); id != nil {
			name = id.name
		}
	}
	w.mu.Lock()
	w.upstreams[addr] = name
	w.mu.Unlock()
	return tlswUpstreamConn{conn}, nil
}

// tlswUpstreamConn is a TLS upstream connection whose Close closes at once,
// without a close_notify: an upstream that stops reading our acks must not
// hold the session (or the bounded shutdown, which closes it) for the 5 s
// crypto/tls gives that write.
type tlswUpstreamConn struct{ *tls.Conn }

func (c tlswUpstreamConn) Close() error { return c.NetConn().Close() }

// tlswUpstreamIdentity is the identity name of a TLS upstream's server
// (pinned in the peers file), for /status.
func (b *broker) tlswUpstreamIdentity(addr string) string {
	w := b.tlsw
	if w == nil {
		return ""
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.upstreams[addr]
}

// tlswReload re-reads certificates, CAs and the peers file (SIGHUP): a
// file that fails keeps the old set, with the error logged. Live
// connections of identities removed from the file, or no longer allowed
// their role, are closed at once.
func (b *broker) tlswReload() {
	w := b.tlsw
	if w == nil {
		return
	}
	old := w.m.peers()
	if err := w.m.reload(); err != nil {
		b.log.Error("reload failed; keeping the previous TLS files and peers", "err", err)
		return
	}
	removed, changed := old.diff(w.m.peers())
	b.log.Info("reloaded TLS files and peers", "identities", len(w.m.peers().identities()), "removed", len(removed), "changed", len(changed))
	w.warnPGPWithoutKeyring()
	w.disconnectStale()
}

// disconnectStale closes every live connection whose identity is gone or
// may no longer take its role.
func (w *tlswBroker) disconnectStale() {
	w.mu.Lock()
	var stale []*tlswConn
	var why []string
	for c := range w.live {
		if c.id == nil {
			continue
		}
		cur, ok := c.current()
		switch {
		case !ok:
			stale, why = append(stale, c), append(why, "removed from the peers file")
		case !cur.allows(c.role):
			stale, why = append(stale, c), append(why, "may no longer act as "+c.role)
		}
	}
	w.mu.Unlock()
	for i, c := range stale {
		w.b.log.Info("disconnecting TLS peer", "identity", c.id.name, "addr", c.RemoteAddr().String(), "why", why[i])
		c.abort()
	}
}

// tlswLiveCount is the number of open TLS connections on our listeners.
func (b *broker) tlswLiveCount() int {
	if b.tlsw == nil {
		return 0
	}
	b.tlsw.mu.Lock()
	defer b.tlsw.mu.Unlock()
	return len(b.tlsw.live)
}

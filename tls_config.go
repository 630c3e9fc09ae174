// tls_config.go owns the TLS settings of contract section 7 (--tls-cert,
// --tls-key, --tls-ca, --tls-client-auth, --tls-min-version, --peers): it
// loads certificates, CA bundles and the peers file, builds *tls.Config for
// our listeners and dialers, verifies peers (CA chain or pin), names the
// identity of a connection, bounds handshakes and labels their failures.
//
// Invariants:
//   - A tlsManager's loaded files are one immutable tlsState behind an
//     atomic pointer. reload() builds a whole new state or, on any error,
//     keeps the old one; handshakes read the state once at ClientHello
//     (GetConfigForClient / GetClientCertificate), so new handshakes see new
//     files and live connections are never dropped by a reload.
//   - Peer verification is ours, in VerifyConnection, which crypto/tls runs
//     on every handshake including session resumptions (unlike
//     VerifyPeerCertificate), whatever ClientAuth or InsecureSkipVerify say.
//     A client of ours always verifies the server: by pin, else by chain and
//     host name against trustRoots, --tls-ca or the system roots; never
//     nothing.
//   - A pin is "sha256:" + lower-case hex SHA-256 of the leaf's
//     RawSubjectPublicKeyInfo. A pinned certificate is trusted for its key
//     alone: its dates and issuer are not checked (SSH-like); listing it is
//     the trust.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// tlsDefaultHandshakeTimeout bounds a TLS handshake from the connection
// (contract section 7: within 10 s, inside the receiver's 20 s).
const tlsDefaultHandshakeTimeout = 10 * time.Second

// Client authentication modes (--tls-client-auth).
const (
	tlsClientAuthNone    = "none"
	tlsClientAuthRequest = "request"
	tlsClientAuthRequire = "require"
)

// tlsSettings are the TLS options as given on the command line.
type tlsSettings struct {
	certFile, keyFile string // our certificate (PEM, may hold the chain) and key
	caFile            string // PEM bundle (or directory of *.pem) that verifies peers
	clientAuth        string // none, request or require; "" means none
	minVersion        uint16 // tls.VersionTLS12 (default when 0) or tls.VersionTLS13
	peersFile         string // --peers; "" for none
}

// Errors of our own verification; tlsFailureReason labels them.
var (
	errTLSNoClientCert = errors.New("client presented no certificate")
	errTLSUnpinned     = errors.New("certificate is not pinned in the peers file and there is no CA to verify it")
	errTLSPinMismatch  = errors.New("certificate does not match the pin")
)

// tlsVerifyError carries the label of a verification failure and its cause.
type tlsVerifyError struct {
	reason string
	err    error
}

func (e *tlsVerifyError) Error() string { return e.err.Error() }
func (e *tlsVerifyError) Unwrap() error { return e.err }

// tlsPin is the pin of a certificate.
func tlsPin(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tlsPinMatch compares two pins, hex in either case.
func tlsPinMatch(a, b string) bool {
	na, ok1 := peerNormalisePin(a)
	nb, ok2 := peerNormalisePin(b)
	return ok1 && ok2 && na == nb
}

// parseTLSMinVersion parses --tls-min-version.
func parseTLSMinVersion(s string) (uint16, error) {
	switch s {
	case "", "1.2":
		return tls.VersionTLS12, nil
	case "1.3":
		return tls.VersionTLS13, nil
	}
	return 0, fmt.Errorf("invalid --tls-min-version %q (want 1.2 or 1.3)", s)
}

// parseTLSClientAuth checks --tls-client-auth.
func parseTLSClientAuth(s string) (string, error) {
	switch s {
	case "", tlsClientAuthNone:
		return tlsClientAuthNone, nil
	case tlsClientAuthRequest, tlsClientAuthRequire:
		return s, nil
	}
	return "", fmt.Errorf("invalid --tls-client-auth %q (want none, request or require)", s)
}

// tlsCertFiles names one certificate to load: ours, or a ssl: endpoint's.
type tlsCertFiles struct{ cert, key, chain string }

// tlsState is everything loaded from files at one moment; immutable.
type tlsState struct {
	certs  map[tlsCertFiles]*tls.Certificate // every registered certificate
	def    *tls.Certificate                  // --tls-cert/--tls-key, or nil
	caPool *x509.CertPool                    // --tls-ca, or nil
	peers  *peerTable                        // --peers, or nil
	loaded time.Time
}

// tlsManager owns the loaded TLS files and builds configurations from them.
type tlsManager struct {
	settings tlsSettings
	state    atomic.Pointer[tlsState]

	mu    sync.Mutex            // serialises reloads and registrations
	files map[tlsCertFiles]bool // certificates to (re)load besides ours
}

// newTLSManager checks the settings and loads every file they name. With no
// certificate, it can still verify peers and dial (without presenting one).
func newTLSManager(s tlsSettings) (*tlsManager, error) {
	var err error
	if s.clientAuth, err = parseTLSClientAuth(s.clientAuth); err != nil {
		return nil, err
	}
	switch s.minVersion {
	case 0:
		s.minVersion = tls.VersionTLS12
	case tls.VersionTLS12, tls.VersionTLS13:
	default:
		return nil, fmt.Errorf("tls: unsupported minimum version %#x", s.minVersion)
	}
	if (s.certFile == "") != (s.keyFile == "") {
		return nil, errors.New("tls: --tls-cert and --tls-key go together")
	}
	m := &tlsManager{settings: s, files: map[tlsCertFiles]bool{}}
	if err := m.reload(); err != nil {
		return nil, err
	}
	return m, nil
}

// reload re-reads every file (on SIGHUP). On any error the old state stays
// in force and the error is returned. Compare peers() before and after with
// peerTable.diff to disconnect removed identities.
func (m *tlsManager) reload() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := m.load(m.files)
	if err != nil {
		return err
	}
	m.state.Store(st)
	return nil
}

// load reads every file into a new state.
func (m *tlsManager) load(files map[tlsCertFiles]bool) (*tlsState, error) {
	s := m.settings
	st := &tlsState{certs: map[tlsCertFiles]*tls.Certificate{}, loaded: time.Now()}
	if s.certFile != "" {
		def := tlsCertFiles{cert: s.certFile, key: s.keyFile}
		c, err := tlsLoadCertificate(def)
		if err != nil {
			return nil, err
		}
		st.def = c
		st.certs[def] = c
	}
	for f := range files {
		if st.certs[f] != nil {
			continue
		}
		c, err := tlsLoadCertificate(f)
		if err != nil {
			return nil, err
		}
		st.certs[f] = c
	}
	if s.caFile != "" {
		pool, err := tlsLoadCertPool(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("tls: --tls-ca: %v", err)
		}
		st.caPool = pool
	}
	if s.peersFile != "" {
		pt, err := parsePeersFile(s.peersFile)
		if err != nil {
			return nil, err
		}
		st.peers = pt
	}
	return st, nil
}

// peers is the peers table in force (nil without --peers).
func (m *tlsManager) peers() *peerTable { return m.state.Load().peers }

// tlsLoadCertificate loads a PEM certificate (with any chain after it), its
// key, and an optional extra chain file.
func tlsLoadCertificate(f tlsCertFiles) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(f.cert)
	if err != nil {
		return nil, fmt.Errorf("tls: certificate: %v", err)
	}
	keyPEM, err := os.ReadFile(f.key)
	if err != nil {
		return nil, fmt.Errorf("tls: key: %v", err)
	}
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls: %s with %s: %v", f.cert, f.key, err)
	}
	if f.chain != "" {
		chainPEM, err := os.ReadFile(f.chain)
		if err != nil {
			return nil, fmt.Errorf("tls: extraCertChain: %v", err)
		}
		certs, err := tlsParsePEMCertificates(chainPEM)
		if err != nil || len(certs) == 0 {
			return nil, fmt.Errorf("tls: extraCertChain %s: no PEM certificate (%v)", f.chain, err)
		}
		for _, x := range certs {
			c.Certificate = append(c.Certificate, x.Raw)
		}
	}
	return &c, nil
}

// tlsParsePEMCertificates parses every CERTIFICATE block of a PEM file.
func tlsParsePEMCertificates(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
}

// tlsLoadCertPool loads a CA bundle: a PEM file, or a directory whose *.pem
// files are read in name order (Twisted's trustRoots/caCertsDir).
func tlsLoadCertPool(path string) (*x509.CertPool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	files := []string{path}
	if fi.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.pem"))
		if err != nil {
			return nil, err
		}
		sort.Strings(files)
	}
	pool := x509.NewCertPool()
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		certs, err := tlsParsePEMCertificates(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", f, err)
		}
		for _, c := range certs {
			pool.AddCert(c)
			n++
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return pool, nil
}

// tlsVerifyChain verifies a presented chain against roots for a usage, at
// the current time, with the host name if any; roots nil means the system
// roots.
func tlsVerifyChain(certs []*x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, host string) error {
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		DNSName:       host,
		CurrentTime:   time.Now(),
		KeyUsages:     []x509.ExtKeyUsage{usage},
	})
	if err != nil {
		return &tlsVerifyError{reason: tlsX509Reason(err), err: err}
	}
	return nil
}

// tlsX509Reason labels an x509 verification error.
func tlsX509Reason(err error) string {
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	switch {
	case errors.As(err, &ua):
		return "unknown-ca"
	case errors.As(err, &he):
		return "bad-hostname"
	case errors.As(err, &ci):
		switch ci.Reason {
		case x509.Expired:
			return "expired"
		case x509.IncompatibleUsage:
			return "bad-usage"
		}
		return "bad-certificate"
	}
	return "bad-certificate"
}

// tlsCheckPeer accepts a presented chain iff its leaf is pinned in the peers
// table or it verifies against pool (nil pool: no CA, pins only).
func tlsCheckPeer(certs []*x509.Certificate, pt *peerTable, pool *x509.CertPool, usage x509.ExtKeyUsage) error {
	if pt.lookupPin(tlsPin(certs[0])) != nil {
		return nil
	}
	if pool == nil {
		return &tlsVerifyError{reason: "unpinned", err: errTLSUnpinned}
	}
	return tlsVerifyChain(certs, pool, usage, "")
}

// serverConfig builds the configuration for one TLS listener. The
// endpoint's own files (ssl:...:privateKey=...) are loaded now and on every
// reload; without them the listener uses --tls-cert/--tls-key. Use it with
// m.accept (or tls.Server and tlsHandshake) on each accepted conn, not with
// tls.NewListener, whose lazy handshake has no deadline of its own.
func (m *tlsManager) serverConfig(ep *tlsServerEndpoint) (*tls.Config, error) {
	files := tlsCertFiles{cert: m.settings.certFile, key: m.settings.keyFile}
	if ep != nil && ep.keyFile != "" {
		files = tlsCertFiles{cert: ep.certFile, key: ep.keyFile, chain: ep.chainFile}
		m.mu.Lock()
		if !m.files[files] {
			next := map[tlsCertFiles]bool{files: true}
			for f := range m.files {
				next[f] = true
			}
			st, err := m.load(next)
			if err != nil {
				m.mu.Unlock()
				return nil, err
			}
			m.files = next
			m.state.Store(st)
		}
		m.mu.Unlock()
	} else if files.cert == "" {
		return nil, errors.New("tls: a TLS listener needs --tls-cert and --tls-key (or ssl:...:privateKey=...:certKey=...)")
	}
	base := &tls.Config{MinVersion: m.settings.minVersion}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		return m.serverConfigFor(m.state.Load(), files), nil
	}
	return base, nil
}

// serverConfigFor is the per-handshake configuration over one state.
func (m *tlsManager) serverConfigFor(st *tlsState, files tlsCertFiles) *tls.Config {
	cert := st.certs[files]
	mode := m.settings.clientAuth
	cfg := &tls.Config{
		MinVersion:   m.settings.minVersion,
		Certificates: []tls.Certificate{*cert},
	}
	switch mode {
	case tlsClientAuthRequest:
		cfg.ClientAuth = tls.RequestClientCert
	case tlsClientAuthRequire:
		cfg.ClientAuth = tls.RequireAnyClientCert
	default:
		cfg.ClientAuth = tls.NoClientCert
	}
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			if mode == tlsClientAuthRequire {
				return &tlsVerifyError{reason: "no-client-cert", err: errTLSNoClientCert}
			}
			return nil // anonymous: the IP whitelists decide
		}
		if mode == tlsClientAuthNone {
			return nil // not asked for; never looked at
		}
		return tlsCheckPeer(cs.PeerCertificates, st.peers, st.caPool, x509.ExtKeyUsageClientAuth)
	}
	return cfg
}

// peerIdentity names the client of a finished server handshake, against the
// files in force now: see tlsPeerIdentity. Call it after tlsHandshake.
func (m *tlsManager) peerIdentity(cs tls.ConnectionState) (id *peerIdentity, anonymous bool, err error) {
	st := m.state.Load()
	if m.settings.clientAuth == tlsClientAuthNone {
		return nil, true, nil
	}
	return tlsPeerIdentity(cs, st.peers, st.caPool)
}

// tlsPeerIdentity names a TLS client from its handshake: no certificate is
// anonymous; a pinned leaf is its listed identity; a chain that verifies
// against pool is an unlisted identity (listed false) named "ca:" + its
// subject CN (or "ca:" + pin), allowed both roles without restrictions (contract section 7).
// The chain is checked again here, against the table and pool given, so a
// reload between handshake and lookup cannot promote a removed pin.
func tlsPeerIdentity(cs tls.ConnectionState, pt *peerTable, pool *x509.CertPool) (id *peerIdentity, anonymous bool, err error) {
	if len(cs.PeerCertificates) == 0 {
		return nil, true, nil
	}
	leaf := cs.PeerCertificates[0]
	pin := tlsPin(leaf)
	if id := pt.lookupPin(pin); id != nil {
		return id, false, nil
	}
	if pool == nil {
		return nil, false, &tlsVerifyError{reason: "unpinned", err: errTLSUnpinned}
	}
	if err := tlsVerifyChain(cs.PeerCertificates, pool, x509.ExtKeyUsageClientAuth, ""); err != nil {
		return nil, false, err
	}
	// "ca:" keeps it apart from listed names, which cannot hold ':'.
	name := "ca:" + leaf.Subject.CommonName
	if leaf.Subject.CommonName == "" {
		name = "ca:" + pin
	}
	return &peerIdentity{name: name, pin: pin, allowAuthor: true, allowSubscriber: true}, false, nil
}

// tlsClientOptions say how a client of ours verifies a server and what it
// presents.
type tlsClientOptions struct {
	serverName string // host name (or IP) the certificate must name, unless pinned
	rootsPath  string // PEM file or directory; "" for the system roots
	pin        string // sha256:HEX; if set, the server must match it (no host name check)
	certFile   string // our certificate, if any
	keyFile    string
	minVersion uint16
}

// tlsClientConfig builds a client configuration from files (for sendvo and
// tests; the broker uses tlsManager.clientConfig).
func tlsClientConfig(o tlsClientOptions) (*tls.Config, error) {
	var roots *x509.CertPool
	if o.rootsPath != "" {
		p, err := tlsLoadCertPool(o.rootsPath)
		if err != nil {
			return nil, fmt.Errorf("tls: CA: %v", err)
		}
		roots = p
	}
	if o.pin != "" {
		if _, ok := peerNormalisePin(o.pin); !ok {
			return nil, fmt.Errorf("tls: pin %q: want sha256: and 64 hex digits", o.pin)
		}
	}
	var cert *tls.Certificate
	if o.certFile != "" || o.keyFile != "" {
		if o.certFile == "" {
			return nil, errors.New("tls: a client key needs a certificate")
		}
		key := o.keyFile
		if key == "" {
			key = o.certFile
		}
		c, err := tlsLoadCertificate(tlsCertFiles{cert: o.certFile, key: key})
		if err != nil {
			return nil, err
		}
		cert = c
	}
	min := o.minVersion
	if min == 0 {
		min = tls.VersionTLS12
	}
	return tlsBuildClient(o.serverName, roots, o.pin, func() *peerTable { return nil }, func() *tls.Certificate { return cert }, min), nil
}

// tlsBuildClient is the one client configuration: our own verification in
// VerifyConnection (pin, or chain and host name), our certificate if any.
// peers is read per handshake, so a SIGHUP applies to the next redial.
func tlsBuildClient(serverName string, roots *x509.CertPool, pin string, peers func() *peerTable, cert func() *tls.Certificate, min uint16) *tls.Config {
	return &tls.Config{
		ServerName: serverName,
		MinVersion: min,
		// Go's own check is replaced, not dropped: VerifyConnection below
		// checks the pin or the chain and host name on every handshake,
		// resumptions included.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &tlsVerifyError{reason: "bad-certificate", err: errors.New("server presented no certificate")}
			}
			leafPin := tlsPin(cs.PeerCertificates[0])
			if pin != "" {
				if tlsPinMatch(pin, leafPin) {
					return nil
				}
				return &tlsVerifyError{reason: "unpinned", err: fmt.Errorf("%w: server's is %s", errTLSPinMismatch, leafPin)}
			}
			if peers().lookupPin(leafPin) != nil {
				return nil
			}
			return tlsVerifyChain(cs.PeerCertificates, roots, x509.ExtKeyUsageServerAuth, serverName)
		},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := cert(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
	}
}

// clientConfig builds the configuration to dial a --remote tls: endpoint:
// the server is accepted if pinned in the peers file, else it must verify
// with the host name against the endpoint's trustRoots, else --tls-ca, else
// the system roots. We present the endpoint's certificate, else ours.
func (m *tlsManager) clientConfig(ep *tlsClientEndpoint) (*tls.Config, error) {
	st := m.state.Load()
	roots := st.caPool
	if ep.trustRoots != "" {
		p, err := tlsLoadCertPool(ep.trustRoots)
		if err != nil {
			return nil, fmt.Errorf("tls: trustRoots: %v", err)
		}
		roots = p
	}
	var own *tls.Certificate
	if ep.certFile != "" {
		c, err := tlsLoadCertificate(tlsCertFiles{cert: ep.certFile, key: ep.keyFile})
		if err != nil {
			return nil, err
		}
		own = c
	}
	cert := func() *tls.Certificate {
		if own != nil {
			return own
		}
		return m.state.Load().def
	}
	cfg := tlsBuildClient(ep.host, roots, "", m.peers, cert, m.settings.minVersion)
	return cfg, nil
}

// tlsHandshake runs the handshake with a deadline (tlsDefaultHandshakeTimeout
// if timeout <= 0), also ended by ctx; it clears the deadline afterwards.
// Run it in the connection's own goroutine, never in the accept loop.
func tlsHandshake(ctx context.Context, conn *tls.Conn, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = tlsDefaultHandshakeTimeout
	}
	conn.SetDeadline(time.Now().Add(timeout))
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := conn.HandshakeContext(hctx); err != nil {
		return err
	}
	return conn.SetDeadline(time.Time{})
}

// tlsFailureReason gives a short stable label for a handshake (or first
// read) error, for logs and metrics: unknown-ca, expired, bad-hostname,
// bad-usage, bad-certificate, unpinned, no-client-cert, protocol-version,
// not-tls, timeout, canceled, closed or other.
func tlsFailureReason(err error) string {
	if err == nil {
		return ""
	}
	var ve *tlsVerifyError
	if errors.As(err, &ve) {
		return ve.reason
	}
	var cve *tls.CertificateVerificationError
	if errors.As(err, &cve) {
		return tlsX509Reason(cve.Err)
	}
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	if errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he) {
		return tlsX509Reason(err)
	}
	if msg, ok := tlsRemoteAlert(err); ok {
		// What the other side told us: crypto/tls reports a received alert
		// as a *net.OpError "remote error" around its description.
		switch {
		case strings.Contains(msg, "unknown certificate authority"):
			return "unknown-ca"
		case strings.Contains(msg, "expired certificate"):
			return "expired"
		case strings.Contains(msg, "certificate required"):
			return "no-client-cert"
		case strings.Contains(msg, "protocol version not supported"):
			return "protocol-version"
		case strings.Contains(msg, "certificate"):
			return "bad-certificate"
		}
		return "other"
	}
	var alert tls.AlertError
	if errors.As(err, &alert) {
		switch alert {
		case 48:
			return "unknown-ca"
		case 45:
			return "expired"
		case 116:
			return "no-client-cert"
		case 70:
			return "protocol-version"
		case 42, 43, 44, 46:
			return "bad-certificate"
		}
		return "other"
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return "not-tls"
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timeout"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	if errors.Is(err, context.Canceled) {
		return "canceled"
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "didn't provide a certificate"):
		return "no-client-cert"
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version not supported"), strings.Contains(msg, "no mutual version"):
		return "protocol-version"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return "closed"
	}
	return "other"
}

// tlsRemoteAlert reports whether err is an alert received from the peer,
// and its description.
func tlsRemoteAlert(err error) (string, bool) {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "remote error" && op.Err != nil {
		return op.Err.Error(), true
	}
	return "", false
}

// accept is the whole server side for one accepted connection: TLS over
// raw with cfg (from serverConfig), the handshake within timeout (0: the
// 10 s default), and the peer's identity. Call it in the connection's own
// goroutine. On error raw is closed and tlsFailureReason(err) labels it;
// a peer refused after a successful handshake (a reload removed its pin
// meanwhile) gets reason unpinned or that of its chain.
func (m *tlsManager) accept(ctx context.Context, raw net.Conn, cfg *tls.Config, timeout time.Duration) (conn *tls.Conn, id *peerIdentity, anonymous bool, err error) {
	conn = tls.Server(raw, cfg)
	if err := tlsHandshake(ctx, conn, timeout); err != nil {
		raw.Close()
		return nil, nil, false, err
	}
	id, anonymous, err = m.peerIdentity(conn.ConnectionState())
	if err != nil {
		raw.Close()
		return nil, nil, false, err
	}
	return conn, id, anonymous, nil
}

// dial is the whole client side for a --remote tls: endpoint: a fresh
// configuration (so trustRoots and the endpoint's files are re-read on
// every redial, and --tls-ca/--peers as last reloaded), TCP within timeout
// (0: the 10 s default), then the handshake within the same timeout.
func (m *tlsManager) dial(ctx context.Context, ep *tlsClientEndpoint, timeout time.Duration) (*tls.Conn, error) {
	if timeout <= 0 {
		timeout = tlsDefaultHandshakeTimeout
	}
	cfg, err := m.clientConfig(ep)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{Timeout: timeout}
	raw, err := d.DialContext(ctx, "tcp", ep.address())
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := tlsHandshake(ctx, conn, timeout); err != nil {
		raw.Close()
		return nil, err
	}
	return conn, nil
}

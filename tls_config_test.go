package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsTestPKI is a CA made in the test, with helpers to issue leaves.
type tlsTestPKI struct {
	dir    string
	cert   *x509.Certificate
	key    *ecdsa.PrivateKey
	caFile string
	n      int
}

func newTLSTestPKI(t testing.TB, dir, name string) *tlsTestPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := &tlsTestPKI{dir: dir, cert: cert, key: key, caFile: filepath.Join(dir, name+"-ca.pem")}
	tlsTestWritePEM(t, p.caFile, "CERTIFICATE", der)
	return p
}

func tlsTestWritePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// issue makes a leaf for name (DNS name or IP) signed by the CA, valid
// between the given times, and writes it and its key under dir.
func (p *tlsTestPKI) issue(t testing.TB, name string, notBefore, notAfter time.Time) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.n++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(int64(100 + p.n)),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{name}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.cert, &key.PublicKey, p.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	pk, _ := x509.MarshalPKCS8PrivateKey(key)
	base := filepath.Join(p.dir, strings.ReplaceAll(name, ":", "_")+"-"+big.NewInt(int64(p.n)).String())
	tlsTestWritePEM(t, base+".crt", "CERTIFICATE", der)
	tlsTestWritePEM(t, base+".key", "PRIVATE KEY", pk)
	return base + ".crt", base + ".key", cert
}

// tlsTestSelfSigned writes a tls-keygen style certificate; returns its pin.
func tlsTestSelfSigned(t testing.TB, dir, name string) (certFile, keyFile, pin string) {
	t.Helper()
	certPEM, keyPEM, err := tlsSelfSigned(name, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(dir, name)
	for i := 0; ; i++ {
		if _, err := os.Stat(base + ".crt"); err != nil {
			break
		}
		base = filepath.Join(dir, name+"-"+big.NewInt(int64(i)).String())
	}
	os.WriteFile(base+".crt", certPEM, 0o644)
	os.WriteFile(base+".key", keyPEM, 0o600)
	certs, _ := tlsParsePEMCertificates(certPEM)
	return base + ".crt", base + ".key", tlsPin(certs[0])
}

// tlsTestOutcome is what the test server saw of one connection.
type tlsTestOutcome struct {
	err       error
	reason    string
	id        *peerIdentity
	anonymous bool
	resumed   bool
	idErr     error
}

// tlsTestServe runs an accept loop on 127.0.0.1: each connection gets its
// own goroutine running tlsHandshake with timeout; a verified one is sent
// "k" and kept open until the client closes it (or 10 s).
func tlsTestServe(t testing.TB, cfg *tls.Config, m *tlsManager, timeout time.Duration) (string, chan tlsTestOutcome) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	out := make(chan tlsTestOutcome, 1024)
	report := func(o tlsTestOutcome) {
		select {
		case out <- o:
		default:
		}
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := tls.Server(c, cfg)
				if err := tlsHandshake(context.Background(), tc, timeout); err != nil {
					report(tlsTestOutcome{err: err, reason: tlsFailureReason(err)})
					return
				}
				cs := tc.ConnectionState()
				o := tlsTestOutcome{resumed: cs.DidResume}
				if m != nil {
					o.id, o.anonymous, o.idErr = m.peerIdentity(cs)
				}
				tc.Write([]byte("k"))
				report(o)
				tc.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 16)
				for {
					n, err := tc.Read(buf)
					if err != nil {
						return
					}
					tc.Write(buf[:n]) // echo, for the reload test
				}
			}()
		}
	}()
	return ln.Addr().String(), out
}

// tlsTestDial handshakes and reads the server's "k"; the error is the
// handshake's or (TLS 1.3 client certificate refusals) the read's.
func tlsTestDial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, cfg)
	if err := tlsHandshake(context.Background(), c, 5*time.Second); err != nil {
		raw.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil {
		c.Close()
		return nil, err
	}
	c.SetReadDeadline(time.Time{})
	return c, nil
}

func tlsTestNext(t testing.TB, out chan tlsTestOutcome) tlsTestOutcome {
	t.Helper()
	select {
	case o := <-out:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome from the server")
	}
	return tlsTestOutcome{}
}

func tlsTestClient(t testing.TB, o tlsClientOptions) *tls.Config {
	t.Helper()
	cfg, err := tlsClientConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestTLSServerClientAuth(t *testing.T) {
	dir := t.TempDir()
	ca := newTLSTestPKI(t, dir, "ca")
	other := newTLSTestPKI(t, dir, "other")
	srvCert, srvKey, _ := ca.issue(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	pinnedCert, pinnedKey, pin := tlsTestSelfSigned(t, dir, "pinned")
	strangerCert, strangerKey, _ := tlsTestSelfSigned(t, dir, "stranger")
	caClientCert, caClientKey, _ := ca.issue(t, "ca-client.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	otherCert, otherKey, _ := other.issue(t, "other-client.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	expCert, expKey, _ := ca.issue(t, "expired.example", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(strings.ToUpper(pin)+" pinned-peer allow=author ivorn-prefix=ivo://pinned.example\n"), 0o644)

	m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey, caFile: ca.caFile, clientAuth: "require", peersFile: peers})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.serverConfig(&tlsServerEndpoint{address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr, out := tlsTestServe(t, cfg, m, 5*time.Second)
	client := func(cert, key string) tlsClientOptions {
		return tlsClientOptions{serverName: "127.0.0.1", rootsPath: ca.caFile, certFile: cert, keyFile: key}
	}
	cases := []struct {
		name         string
		opts         tlsClientOptions
		maxVersion   uint16
		serverReason string // "" for accepted
		clientReason string
		wantID       string
	}{
		{"pinned self-signed", client(pinnedCert, pinnedKey), 0, "", "", "pinned-peer"},
		{"verified by CA, unlisted", client(caClientCert, caClientKey), 0, "", "", "ca:ca-client.example"},
		{"unpinned self-signed", client(strangerCert, strangerKey), 0, "unknown-ca", "bad-certificate", ""},
		{"wrong CA", client(otherCert, otherKey), 0, "unknown-ca", "bad-certificate", ""},
		{"expired", client(expCert, expKey), 0, "expired", "bad-certificate", ""},
		{"no client certificate", client("", ""), 0, "no-client-cert", "no-client-cert", ""},
		{"TLS 1.1", client(pinnedCert, pinnedKey), tls.VersionTLS11, "protocol-version", "protocol-version", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ccfg := tlsTestClient(t, tc.opts)
			if tc.maxVersion != 0 {
				ccfg.MinVersion, ccfg.MaxVersion = tls.VersionTLS10, tc.maxVersion
			}
			c, err := tlsTestDial(addr, ccfg)
			o := tlsTestNext(t, out)
			if tc.serverReason == "" {
				if err != nil || o.err != nil || o.idErr != nil {
					t.Fatalf("refused: client %v, server %v %v", err, o.err, o.idErr)
				}
				c.Close()
				if o.anonymous || o.id == nil || o.id.name != tc.wantID {
					t.Fatalf("identity %+v anonymous %v, want %s", o.id, o.anonymous, tc.wantID)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatalf("accepted; server said %v", o.err)
			}
			if o.reason != tc.serverReason {
				t.Errorf("server reason %q (%v), want %q", o.reason, o.err, tc.serverReason)
			}
			if got := tlsFailureReason(err); got != tc.clientReason {
				t.Errorf("client reason %q (%v), want %q", got, err, tc.clientReason)
			}
		})
	}
	// The unlisted CA-verified identity has no restrictions; the pinned one has its own.
	pt := m.peers()
	if id := pt.lookupPin(pin); id == nil || id.allowSubscriber {
		t.Errorf("pinned identity %+v", id)
	}
}

func TestTLSClientAuthModes(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey, srvPin := tlsTestSelfSigned(t, dir, "127.0.0.1")
	pinnedCert, pinnedKey, pin := tlsTestSelfSigned(t, dir, "pinned")
	strangerCert, strangerKey, _ := tlsTestSelfSigned(t, dir, "stranger")
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(pin+" pinned-peer\n"), 0o644)
	for _, mode := range []string{"none", "request", "require"} {
		t.Run(mode, func(t *testing.T) {
			// No --tls-ca: pins only.
			m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey, clientAuth: mode, peersFile: peers})
			if err != nil {
				t.Fatal(err)
			}
			cfg, _ := m.serverConfig(nil)
			addr, out := tlsTestServe(t, cfg, m, 5*time.Second)
			try := func(cert, key string) (error, tlsTestOutcome) {
				c, err := tlsTestDial(addr, tlsTestClient(t, tlsClientOptions{pin: srvPin, certFile: cert, keyFile: key}))
				if c != nil {
					c.Close()
				}
				return err, tlsTestNext(t, out)
			}
			// Without a certificate.
			err, o := try("", "")
			switch mode {
			case "require":
				if err == nil || o.reason != "no-client-cert" {
					t.Errorf("require without cert: %v %q", err, o.reason)
				}
			default:
				if err != nil || !o.anonymous || o.id != nil {
					t.Errorf("%s without cert: %v %+v", mode, err, o)
				}
			}
			// A pinned one.
			err, o = try(pinnedCert, pinnedKey)
			switch mode {
			case "none":
				if err != nil || !o.anonymous {
					t.Errorf("none ignores certificates: %v %+v", err, o)
				}
			default:
				if err != nil || o.id == nil || o.id.name != "pinned-peer" {
					t.Errorf("%s pinned: %v %+v", mode, err, o)
				}
			}
			// An unpinned one, with no CA to verify it.
			err, o = try(strangerCert, strangerKey)
			switch mode {
			case "none":
				if err != nil || !o.anonymous {
					t.Errorf("none ignores certificates: %v %+v", err, o)
				}
			default:
				if err == nil || o.reason != "unpinned" {
					t.Errorf("%s unpinned: %v %q", mode, err, o.reason)
				}
			}
		})
	}
}

func TestTLSClientVerifiesServer(t *testing.T) {
	dir := t.TempDir()
	ca := newTLSTestPKI(t, dir, "ca")
	other := newTLSTestPKI(t, dir, "other")
	srvCert, srvKey, _ := ca.issue(t, "broker.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := m.serverConfig(nil)
	addr, _ := tlsTestServe(t, cfg, m, 5*time.Second)
	certs, _ := tlsParsePEMCertificates(must(os.ReadFile(srvCert)))
	srvPin := tlsPin(certs[0])
	cases := []struct {
		name   string
		opts   tlsClientOptions
		reason string
	}{
		{"right CA and name", tlsClientOptions{serverName: "broker.example", rootsPath: ca.caFile}, ""},
		{"CA directory", tlsClientOptions{serverName: "broker.example", rootsPath: dir}, ""},
		{"wrong host name", tlsClientOptions{serverName: "other.example", rootsPath: ca.caFile}, "bad-hostname"},
		{"wrong CA", tlsClientOptions{serverName: "broker.example", rootsPath: other.caFile}, "unknown-ca"},
		{"system roots", tlsClientOptions{serverName: "broker.example"}, "unknown-ca"},
		{"pin, any name", tlsClientOptions{serverName: "127.0.0.1", pin: strings.ToUpper(srvPin[:7]) + strings.ToUpper(srvPin[7:])}, ""},
		{"wrong pin", tlsClientOptions{serverName: "broker.example", rootsPath: ca.caFile, pin: "sha256:" + strings.Repeat("0", 64)}, "unpinned"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tlsTestDial(addr, tlsTestClient(t, tc.opts))
			if tc.reason == "" {
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("accepted")
			}
			if got := tlsFailureReason(err); got != tc.reason {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.reason)
			}
		})
	}
	// A --remote through the manager: the peers file pins the upstream.
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(srvPin+" upstream\n"), 0o644)
	cm, err := newTLSManager(tlsSettings{peersFile: peers})
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := parseTLSClientEndpoint("tls:127.0.0.1:1")
	ccfg, err := cm.clientConfig(ep)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := tlsTestDial(addr, ccfg); err != nil {
		t.Fatalf("pinned upstream: %v", err)
	} else {
		c.Close()
	}
	os.WriteFile(peers, nil, 0o644)
	if err := cm.reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := tlsTestDial(addr, ccfg); tlsFailureReason(err) != "bad-hostname" {
		t.Fatalf("unpinned upstream after reload: %v", err)
	}
	ep, _ = parseTLSClientEndpoint("tls:broker.example:1:trustRoots=" + ca.caFile)
	ccfg, _ = cm.clientConfig(ep)
	if c, err := tlsTestDial(addr, ccfg); err != nil {
		t.Fatalf("trustRoots: %v", err)
	} else {
		c.Close()
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certA, keyA, pinA := tlsTestSelfSigned(t, dir, "a")
	certB, keyB, pinB := tlsTestSelfSigned(t, dir, "b")
	certFile, keyFile := filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key")
	cp := func(from, to string) {
		if err := os.WriteFile(to, must(os.ReadFile(from)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cp(certA, certFile)
	cp(keyA, keyFile)
	m, err := newTLSManager(tlsSettings{certFile: certFile, keyFile: keyFile})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := m.serverConfig(nil)
	addr, _ := tlsTestServe(t, cfg, m, 5*time.Second)
	serverPin := func() string {
		c, err := tlsTestDial(addr, tlsTestClient(t, tlsClientOptions{pin: pinA}))
		if err != nil {
			c, err = tlsTestDial(addr, tlsTestClient(t, tlsClientOptions{pin: pinB}))
			if err != nil {
				t.Fatal(err)
			}
			c.Close()
			return pinB
		}
		c.Close()
		return pinA
	}
	if serverPin() != pinA {
		t.Fatal("not serving A")
	}
	live, err := tlsTestDial(addr, tlsTestClient(t, tlsClientOptions{pin: pinA}))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	cp(certB, certFile)
	cp(keyB, keyFile)
	if err := m.reload(); err != nil {
		t.Fatal(err)
	}
	if serverPin() != pinB {
		t.Fatal("new handshakes do not see B")
	}
	// The connection made before the reload still works.
	live.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := live.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := live.Read(b); err != nil || b[0] != 'x' {
		t.Fatalf("live connection: %v", err)
	}
	// A bad file: the old set stays.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	if err := m.reload(); err == nil {
		t.Fatal("reload of a bad file succeeded")
	}
	if serverPin() != pinB {
		t.Fatal("a bad reload changed the certificate")
	}
	// A bad peers file keeps the old one too.
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(pinA+" a\n"), 0o644)
	pm, err := newTLSManager(tlsSettings{peersFile: peers})
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(peers, []byte(pinA+" a bogus\n"), 0o644)
	if err := pm.reload(); err == nil || !strings.Contains(err.Error(), "peers:1") {
		t.Fatalf("bad peers reload: %v", err)
	}
	if pm.peers().lookupName("a") == nil {
		t.Fatal("bad peers reload dropped the table")
	}
}

func TestTLSResumptionStillVerified(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey, srvPin := tlsTestSelfSigned(t, dir, "127.0.0.1")
	cliCert, cliKey, cliPin := tlsTestSelfSigned(t, dir, "client")
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(cliPin+" client\n"), 0o644)
	m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey, clientAuth: "require", peersFile: peers})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := m.serverConfig(nil)
	addr, out := tlsTestServe(t, cfg, m, 5*time.Second)
	ccfg := tlsTestClient(t, tlsClientOptions{pin: srvPin, certFile: cliCert, keyFile: cliKey})
	ccfg.ClientSessionCache = tls.NewLRUClientSessionCache(8)
	for i := 0; i < 2; i++ {
		c, err := tlsTestDial(addr, ccfg)
		if err != nil {
			t.Fatal(err)
		}
		o := tlsTestNext(t, out)
		if o.err != nil || o.id == nil {
			t.Fatalf("handshake %d: %+v", i, o)
		}
		if i == 1 && !o.resumed {
			t.Fatal("second handshake did not resume; the test proves nothing")
		}
		c.Close()
	}
	// Unpin the client: a resumption must now be refused.
	os.WriteFile(peers, nil, 0o644)
	if err := m.reload(); err != nil {
		t.Fatal(err)
	}
	c, err := tlsTestDial(addr, ccfg)
	if err == nil {
		c.Close()
		t.Fatal("resumed session of an unpinned client accepted")
	}
	if o := tlsTestNext(t, out); o.reason != "unpinned" {
		t.Fatalf("reason %q (%v)", o.reason, o.err)
	}
}

func TestTLSSilentConnectionsDoNotBlock(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey, srvPin := tlsTestSelfSigned(t, dir, "127.0.0.1")
	m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := m.serverConfig(nil)
	addr, out := tlsTestServe(t, cfg, m, 1500*time.Millisecond)
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	start := time.Now()
	c, err := tlsTestDial(addr, tlsTestClient(t, tlsClientOptions{pin: srvPin}))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("honest handshake took %s behind 200 silent connections", d)
	}
	// The silent ones end at the deadline, labelled timeout.
	timeouts := 0
	deadline := time.After(10 * time.Second)
	for timeouts < 200 {
		select {
		case o := <-out:
			if o.reason == "timeout" {
				timeouts++
			}
		case <-deadline:
			t.Fatalf("only %d of 200 silent connections timed out", timeouts)
		}
	}
	// And the server closed them.
	silent[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("silent connection still open")
	}
}

func TestTLSOptionsAndReasons(t *testing.T) {
	for in, want := range map[string]uint16{"": tls.VersionTLS12, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13} {
		if got, err := parseTLSMinVersion(in); err != nil || got != want {
			t.Errorf("parseTLSMinVersion(%q) = %x %v", in, got, err)
		}
	}
	for _, bad := range []string{"1.1", "1.0", "tls1.3", "13"} {
		if _, err := parseTLSMinVersion(bad); err == nil || !strings.Contains(err.Error(), "--tls-min-version") {
			t.Errorf("parseTLSMinVersion(%q): %v", bad, err)
		}
	}
	if _, err := parseTLSClientAuth("verify"); err == nil {
		t.Error("bad client auth accepted")
	}
	if _, err := newTLSManager(tlsSettings{certFile: "x"}); err == nil {
		t.Error("cert without key accepted")
	}
	if _, err := newTLSManager(tlsSettings{clientAuth: "maybe"}); err == nil {
		t.Error("bad mode accepted")
	}
	m, err := newTLSManager(tlsSettings{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.serverConfig(nil); err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Errorf("listener without certificate: %v", err)
	}
	if _, err := m.serverConfig(&tlsServerEndpoint{certFile: "/nonexistent.crt", keyFile: "/nonexistent.key"}); err == nil {
		t.Error("missing endpoint files accepted")
	}
	reasons := map[error]string{
		context.DeadlineExceeded: "timeout",
		context.Canceled:         "canceled",
		errors.New("tls: client offered only unsupported versions: [302]"): "protocol-version",
		tls.AlertError(48):                          "unknown-ca",
		tls.RecordHeaderError{Msg: "x"}:             "not-tls",
		&tlsVerifyError{"expired", errors.New("x")}: "expired",
		errors.New("something"):                     "other",
		net.ErrClosed:                               "closed",
	}
	for err, want := range reasons {
		if got := tlsFailureReason(err); got != want {
			t.Errorf("tlsFailureReason(%v) = %q, want %q", err, got, want)
		}
	}
	if tlsFailureReason(nil) != "" {
		t.Error("nil error has a reason")
	}
}

func TestTLSEndpointCertificates(t *testing.T) {
	// ssl:PORT:privateKey=..:certKey=..:extraCertChain=.. serves its own files.
	dir := t.TempDir()
	ca := newTLSTestPKI(t, dir, "ca")
	leafCert, leafKey, _ := ca.issue(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	ownCert, ownKey, ownPin := tlsTestSelfSigned(t, dir, "own")
	m, err := newTLSManager(tlsSettings{certFile: ownCert, keyFile: ownKey})
	if err != nil {
		t.Fatal(err)
	}
	ep, err := parseTLSServerEndpoint("ssl:0:privateKey=" + leafKey + ":certKey=" + leafCert + ":extraCertChain=" + ca.caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.serverConfig(ep)
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := tlsTestServe(t, cfg, m, 5*time.Second)
	c, err := tlsTestDial(addr, tlsTestClient(t, tlsClientOptions{serverName: "127.0.0.1", rootsPath: ca.caFile}))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.ConnectionState().PeerCertificates); n != 2 {
		t.Errorf("chain of %d certificates, want leaf and extraCertChain", n)
	}
	c.Close()
	// The plain tls: listener of the same manager serves --tls-cert.
	cfg2, _ := m.serverConfig(nil)
	addr2, _ := tlsTestServe(t, cfg2, m, 5*time.Second)
	if c, err := tlsTestDial(addr2, tlsTestClient(t, tlsClientOptions{pin: ownPin})); err != nil {
		t.Fatal(err)
	} else {
		c.Close()
	}
	// A reload also re-reads endpoint files: break one, the reload fails.
	os.WriteFile(leafKey, []byte("junk"), 0o600)
	if err := m.reload(); err == nil {
		t.Fatal("reload with a broken endpoint key succeeded")
	}
}

func TestTLSManagerAcceptAndDial(t *testing.T) {
	dir := t.TempDir()
	srvCert, srvKey, srvPin := tlsTestSelfSigned(t, dir, "127.0.0.1")
	cliCert, cliKey, cliPin := tlsTestSelfSigned(t, dir, "sub")
	srvPeers, cliPeers := filepath.Join(dir, "srv-peers"), filepath.Join(dir, "cli-peers")
	os.WriteFile(srvPeers, []byte(cliPin+" sub allow=subscriber\n"), 0o644)
	os.WriteFile(cliPeers, []byte(srvPin+" upstream\n"), 0o644)
	srv, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey, clientAuth: "require", peersFile: srvPeers})
	if err != nil {
		t.Fatal(err)
	}
	cli, err := newTLSManager(tlsSettings{certFile: cliCert, keyFile: cliKey, peersFile: cliPeers})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := srv.serverConfig(nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type result struct {
		id   *peerIdentity
		anon bool
		err  error
	}
	res := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			res <- result{err: err}
			return
		}
		conn, id, anon, err := srv.accept(context.Background(), raw, cfg, 0)
		if err == nil {
			conn.Write([]byte("k"))
			defer conn.Close()
		}
		res <- result{id, anon, err}
	}()
	ep, _ := parseTLSClientEndpoint("tls:" + ln.Addr().String())
	conn, err := cli.dial(context.Background(), ep, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Read(make([]byte, 1))
	conn.Close()
	r := <-res
	if r.err != nil || r.anon || r.id == nil || r.id.name != "sub" || r.id.allows("author") {
		t.Fatalf("accept: %+v", r)
	}
}

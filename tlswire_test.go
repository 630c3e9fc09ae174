package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// tlswTestEnv is a CA, a server certificate for 127.0.0.1 issued by it,
// and helpers to make TLS brokers and clients on loopback.
type tlswTestEnv struct {
	dir              string
	pki              *tlsTestPKI
	srvCert, srvKey  string
	peersFile        string
	clientCA         string // CA of client certificates (the same PKI)
	serverName       string
	serverClientOpts tlsClientOptions
}

func newTLSWTestEnv(t testing.TB) *tlswTestEnv {
	t.Helper()
	dir := t.TempDir()
	pki := newTLSTestPKI(t, dir, "test-ca")
	c, k, _ := pki.issue(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	e := &tlswTestEnv{dir: dir, pki: pki, srvCert: c, srvKey: k, peersFile: filepath.Join(dir, "peers"), clientCA: pki.caFile, serverName: "127.0.0.1"}
	writeFile(t, e.peersFile, "")
	return e
}

// config is a TLS receiver and a TLS broadcaster on 127.0.0.1, with the
// given client authentication and the env's peers file and CA.
func (e *tlswTestEnv) config(t testing.TB, clientAuth string) *config {
	t.Helper()
	cfg := testConfig(t)
	cfg.receive = []endpoint{tlswTestEndpoint(t, "tls:0:interface=127.0.0.1")}
	cfg.broadcast = []endpoint{tlswTestEndpoint(t, "tls:0:interface=127.0.0.1")}
	cfg.tls.settings = tlsSettings{certFile: e.srvCert, keyFile: e.srvKey, caFile: e.clientCA, clientAuth: clientAuth, peersFile: e.peersFile}
	return cfg
}

func tlswTestEndpoint(t testing.TB, s string) endpoint {
	t.Helper()
	ep, err := parseServerEndpoint(s)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// client is a client configuration that verifies our broker and presents
// certFile/keyFile (none if empty).
func (e *tlswTestEnv) client(t testing.TB, certFile, keyFile string) *tls.Config {
	t.Helper()
	return tlsTestClient(t, tlsClientOptions{serverName: e.serverName, rootsPath: e.pki.caFile, certFile: certFile, keyFile: keyFile})
}

// tlswSubmit sends one event over TLS and returns the reply.
func tlswSubmit(addr string, cfg *tls.Config, ev []byte) (*transport, error) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer raw.Close()
	c := tls.Client(raw, cfg)
	if err := tlsHandshake(context.Background(), c, 5*time.Second); err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if err := writeFrame(c, ev); err != nil {
		return nil, err
	}
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		return nil, err
	}
	return parseTransport(msg)
}

// tlswDialSubscriber is dialSubscriber over TLS; the error is that of the
// handshake or of the first read (the broker speaks first).
func tlswDialSubscriber(t testing.TB, addr string, cfg *tls.Config, filters []string) (*testSubscriber, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c := tls.Client(raw, cfg)
	if err := tlsHandshake(context.Background(), c, 5*time.Second); err != nil {
		raw.Close()
		return nil, err
	}
	s := &testSubscriber{t: t, conn: c, events: make(chan []byte, 1000), others: make(chan *transport, 100), closed: make(chan struct{})}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		c.Close()
		return nil, err
	}
	tr, err := parseTransport(msg)
	if err != nil || tr.role != "authenticate" {
		c.Close()
		return nil, fmt.Errorf("first message: %v %s", err, msg)
	}
	c.SetReadDeadline(time.Time{})
	if filters != nil {
		if err := writeFrame(c, newAuthenticateResponse(tr.origin, "", purposeTest, filters, time.Now()).marshal()); err != nil {
			return nil, err
		}
	}
	go s.loop()
	t.Cleanup(func() { c.Close() })
	return s, nil
}

func mustTLSWSubscriber(t testing.TB, addr string, cfg *tls.Config, filters []string) *testSubscriber {
	t.Helper()
	s, err := tlswDialSubscriber(t, addr, cfg, filters)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// tlswEvent is a schema-valid event with the given ivorn.
func tlswEvent(ivorn string) []byte { return tlswTypedEvent(ivorn, "Packet_Type", "115") }

// tlswTypedEvent is tlswEvent with a Param of the given name and value.
func tlswTypedEvent(ivorn, param, value string) []byte {
	return []byte(`<?xml version='1.0' encoding='UTF-8'?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="` + ivorn + `" role="observation" version="2.0">
  <Who><AuthorIVORN>ivo://test.local/sample</AuthorIVORN><Date>2026-11-22T02:14:27</Date></Who>
  <What><Param name="` + param + `" value="` + value + `"/></What>
</voe:VOEvent>
`)
}

// waitLog waits until the broker's log holds every one of parts on one line.
func waitLog(t testing.TB, tb *testBroker, parts ...string) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a log line with %q", parts), func() bool {
		for _, line := range strings.Split(tb.logs.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return true
			}
		}
		return false
	})
}

// TestTLSWireOptions: the options and endpoint spellings at parse time.
func TestTLSWireOptions(t *testing.T) {
	e := newTLSWTestEnv(t)
	base := []string{"--local-ivo", "ivo://test/comet", "--eventdb", t.TempDir()}
	ok := func(args ...string) *config {
		t.Helper()
		cfg, err := parseBrokerArgs(append(append([]string(nil), base...), args...), io.Discard)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		return cfg
	}
	bad := func(want string, args ...string) {
		t.Helper()
		_, err := parseBrokerArgs(append(append([]string(nil), base...), args...), io.Discard)
		var ue *usageError
		if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want a usage error with %q", args, err, want)
		}
	}
	cfg := ok("--receive", "tls:8098", "--broadcast=tls:8099:interface=127.0.0.1", "--receive=tcp:9000",
		"--tls-cert", e.srvCert, "--tls-key", e.srvKey, "--tls-ca", e.clientCA, "--tls-client-auth", "require",
		"--tls-min-version", "1.3", "--peers", e.peersFile,
		"--remote", "tls:broker.example.org:8099", "--remote", "ssl:host=127.0.0.1:port=8099:caCertsDir="+e.dir, "--remote", "plain.example.org")
	if len(cfg.receive) != 2 || cfg.receive[0].String() != "tls:8098" || cfg.receive[1] != (endpoint{"tcp", ":9000"}) {
		t.Errorf("receive %v", cfg.receive)
	}
	if len(cfg.broadcast) != 1 || cfg.broadcast[0].String() != "tls:8099:interface=127.0.0.1" {
		t.Errorf("broadcast %v", cfg.broadcast)
	}
	if n, a := tlswNetAddr(cfg.broadcast[0]); n != "tcp" || a != "127.0.0.1:8099" {
		t.Errorf("listen %s %s", n, a)
	}
	want := []string{"tls:broker.example.org:8099", "ssl:host=127.0.0.1:port=8099:caCertsDir=" + e.dir, "plain.example.org:8099"}
	if strings.Join(cfg.remotes, " ") != strings.Join(want, " ") {
		t.Errorf("remotes %q", cfg.remotes)
	}
	s := cfg.tls.settings
	if s.certFile != e.srvCert || s.keyFile != e.srvKey || s.caFile != e.clientCA || s.clientAuth != "require" || s.minVersion != tls.VersionTLS13 || s.peersFile != e.peersFile {
		t.Errorf("settings %+v", s)
	}
	// Twisted's server spelling with its own files needs no --tls-cert.
	chain := filepath.Join(e.dir, "chain.pem")
	data, _ := os.ReadFile(e.pki.caFile)
	writeFile(t, chain, string(data))
	cfg = ok("--broadcast", "ssl:8099:privateKey="+e.srvKey+":certKey="+e.srvCert+":extraCertChain="+chain)
	if cfg.broadcast[0].network != "ssl" {
		t.Errorf("ssl endpoint %v", cfg.broadcast[0])
	}
	ok("--remote", "tcp:127.0.0.1:8099", "--peers", e.peersFile) // --peers alone is fine

	bad("--tls-cert and --tls-key", "--receive=tls:8098")
	bad("--tls-cert and --tls-key", "--receive=tls:8098", "--tls-cert", e.srvCert)
	bad("--tls-client-auth", "--receive=tls:8098", "--tls-cert", e.srvCert, "--tls-key", e.srvKey, "--tls-client-auth", "maybe")
	bad("--tls-min-version", "--receive=tls:8098", "--tls-cert", e.srvCert, "--tls-key", e.srvKey, "--tls-min-version", "1.1")
	bad("interface", "--receive=tls:8098:interface=localhost", "--tls-cert", e.srvCert, "--tls-key", e.srvKey)
	bad("no port", "--remote", "tls:host.example")
	bad("certKey without privateKey", "--broadcast=ssl:8099:certKey="+e.srvCert)
	bad("no such file", "--receive=tls:8098", "--tls-cert", e.srvCert+".missing", "--tls-key", e.srvKey)
	badPeers := filepath.Join(e.dir, "bad-peers")
	writeFile(t, badPeers, "sha256:00 alice\n")
	bad(badPeers+":1", "--remote", "127.0.0.1", "--peers", badPeers)
	// --help lists the options.
	var help bytes.Buffer
	parseBrokerArgs([]string{"--help"}, &help)
	for _, o := range []string{"--tls-cert FILE", "--tls-key FILE", "--tls-ca FILE", "--tls-client-auth MODE", "--tls-min-version VERSION", "--peers FILE"} {
		if !strings.Contains(help.String(), o) {
			t.Errorf("--help lacks %s", o)
		}
	}
}

// TestTLSWireEndpointsRunning: every endpoint spelling in running brokers,
// plain and TLS listeners side by side: tls: and ssl: receivers, a tls:
// broadcaster, and upstreams dialled as tls:HOST:PORT:trustRoots=,
// ssl:host=:port=:caCertsDir= and a plain one, each relaying an event.
func TestTLSWireEndpointsRunning(t *testing.T) {
	e := newTLSWTestEnv(t)
	chain := filepath.Join(e.dir, "chain.pem")
	data, _ := os.ReadFile(e.pki.caFile)
	writeFile(t, chain, string(data))
	cfgA := e.config(t, tlsClientAuthRequest)
	cfgA.receive = []endpoint{
		tlswTestEndpoint(t, "tls:0:interface=127.0.0.1"),
		tlswTestEndpoint(t, "ssl:0:privateKey="+e.srvKey+":certKey="+e.srvCert+":extraCertChain="+chain+":interface=127.0.0.1"),
		{"tcp", "127.0.0.1:0"},
	}
	cfgA.broadcast = append(cfgA.broadcast, endpoint{"tcp", "127.0.0.1:0"})
	a := startBroker(t, cfgA)
	tlsBC, plainBC := a.broadcasters[0].l.addr(), a.broadcasters[1].l.addr()
	_, tlsPort, _ := net.SplitHostPort(tlsBC)
	caDir := filepath.Join(e.dir, "cadir")
	os.Mkdir(caDir, 0o755)
	writeFile(t, filepath.Join(caDir, "ca.pem"), string(data))
	srvPEM, _ := os.ReadFile(e.srvCert)
	srvCerts, _ := tlsParsePEMCertificates(srvPEM)
	pinPeers := filepath.Join(e.dir, "pin-peers")
	writeFile(t, pinPeers, tlsPin(srvCerts[0])+" broker-a allow=subscriber\n")
	d3, k3, _ := e.pki.issue(t, "down3", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	d4, k4, _ := e.pki.issue(t, "down4", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	d5, k5, _ := e.pki.issue(t, "down5", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))

	var downs []*testSubscriber
	var pinned *testBroker
	for i, tc := range []struct {
		remote   string
		settings tlsSettings
	}{
		{"tls:127.0.0.1:" + tlsPort + ":trustRoots=" + e.pki.caFile, tlsSettings{}},
		{"ssl:host=127.0.0.1:port=" + tlsPort + ":caCertsDir=" + caDir, tlsSettings{}},
		{plainBC, tlsSettings{}},
		{"tls:127.0.0.1:" + tlsPort, tlsSettings{caFile: e.pki.caFile, certFile: d3, keyFile: k3}},
		{"tls:127.0.0.1:" + tlsPort + ":trustRoots=" + e.pki.caFile + ":certificate=" + d4 + ":privateKey=" + k4, tlsSettings{}},
		{"ssl:host=127.0.0.1:port=" + tlsPort + ":caCertsDir=" + caDir + ":certKey=" + d5 + ":privateKey=" + k5, tlsSettings{}},
		{"tls:[127.0.0.1]:" + tlsPort, tlsSettings{peersFile: pinPeers}}, // the server verified by its pin alone
	} {
		cfgB := testConfig(t)
		cfgB.localIVO = fmt.Sprintf("ivo://test/b%d", i)
		cfgB.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
		cfgB.remotes = []string{tc.remote}
		cfgB.tls.settings = tc.settings
		b := startBroker(t, cfgB)
		downs = append(downs, dialSubscriber(t, b.broadcastAddr(), nil))
		pinned = b
	}
	waitFor(t, "seven brokers subscribed to A", func() bool { return subscriberCount(a.broker) == 7 })
	for _, n := range []string{"ca:down3", "ca:down4", "ca:down5", "(anonymous)"} {
		waitLog(t, a, "TLS peer connected", "role=broadcaster", "identity="+n)
	}
	if st := pinned.upstreams[0].status(); st.Identity != "broker-a" || st.State != "connected" {
		t.Errorf("pinned upstream status %+v", st)
	}
	// The SSL listener presents the extra chain after the leaf.
	sslAddr := a.receivers[1].addr()
	conn, err := tls.Dial("tcp", sslAddr, e.client(t, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(conn.ConnectionState().PeerCertificates); n != 2 {
		t.Errorf("ssl: listener sent %d certificates, want the leaf and the extra chain", n)
	}
	conn.Close()

	for i, l := range a.receivers {
		ev := tlswEvent(fmt.Sprintf("ivo://test.local/spell#%d", i))
		var r *transport
		if i < 2 {
			r, err = tlswSubmit(l.addr(), e.client(t, "", ""), ev)
		} else {
			r = rawExchange(t, l.addr(), ev)
		}
		if err != nil || r == nil || r.role != "ack" {
			t.Fatalf("receiver %s: %v %+v", l.ep, err, r)
		}
		for j, d := range downs {
			if got := d.nextEvent(3 * time.Second); !bytes.Equal(got, ev) {
				t.Fatalf("event via receiver %s, downstream %d: got %q", l.ep, j, got)
			}
		}
	}
}

// TestTLSWireEndToEnd: author -> TLS receiver -> broadcaster -> TLS
// subscriber, byte for byte, with identities in the logs, /status, the
// metrics and COMET_PEER of a --cmd handler.
func TestTLSWireEndToEnd(t *testing.T) {
	e := newTLSWTestEnv(t)
	aliceCrt, aliceKey, alicePin := tlsTestSelfSigned(t, e.dir, "alice")
	bobCrt, bobKey, bobPin := tlsTestSelfSigned(t, e.dir, "bob")
	writeFile(t, e.peersFile, "# test\n"+alicePin+" alice allow=author\n"+bobPin+" bob allow=subscriber\n")
	script := filepath.Join(e.dir, "peer.sh")
	out := filepath.Join(e.dir, "peer.out")
	writeFile(t, script, "#!/bin/sh\ncat >/dev/null\nprintf '%s\\n' \"$COMET_PEER\" >> "+out+"\n")
	os.Chmod(script, 0o755)
	pcfg, err := parseBrokerArgs([]string{"--local-ivo", "ivo://test/comet", "--receive=tls:0:interface=127.0.0.1", "--broadcast=tls:0:interface=127.0.0.1",
		"--tls-cert", e.srvCert, "--tls-key", e.srvKey, "--tls-client-auth", "require", "--peers", e.peersFile,
		"--cmd", script, "--eventdb", t.TempDir(), "--http", "127.0.0.1:0", "--broadcast-test-interval", "0"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	cfg.receive, cfg.broadcast, cfg.tls, cfg.handlers, cfg.httpAddr = pcfg.receive, pcfg.broadcast, pcfg.tls, pcfg.handlers, pcfg.httpAddr
	tb := startBroker(t, cfg)
	sub := mustTLSWSubscriber(t, tb.broadcastAddr(), e.client(t, bobCrt, bobKey), nil)
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	ev := tlswEvent("ivo://test.local/e2e#1")
	r, err := tlswSubmit(tb.receiveAddr(), e.client(t, aliceCrt, aliceKey), ev)
	if err != nil || r.role != "ack" {
		t.Fatalf("submit: %v %+v", err, r)
	}
	if got := sub.nextEvent(3 * time.Second); !bytes.Equal(got, ev) {
		t.Fatalf("subscriber got %q", got)
	}
	// Several events at once, one larger than a TLS record batch, arrive
	// intact and in order.
	var evs [][]byte
	for i := 0; i < 5; i++ {
		evs = append(evs, tlswTypedEvent(fmt.Sprintf("ivo://test.local/e2e#big%d", i), "Packet_Type", strings.Repeat("x", i*40<<10)))
	}
	for _, ev := range evs {
		if r, err := tlswSubmit(tb.receiveAddr(), e.client(t, aliceCrt, aliceKey), ev); err != nil || r.role != "ack" {
			t.Fatalf("submit: %v %+v", err, r)
		}
	}
	for i, ev := range evs {
		if got := sub.nextEvent(3 * time.Second); !bytes.Equal(got, ev) {
			t.Fatalf("event %d: got %d bytes, want %d", i, len(got), len(ev))
		}
	}
	waitLog(t, tb, "TLS peer connected", "identity=alice", "role=receiver")
	waitLog(t, tb, "TLS peer connected", "identity=bob", "role=broadcaster")
	waitLog(t, tb, "accepted event", "identity=alice")
	waitFor(t, "COMET_PEER", func() bool { d, _ := os.ReadFile(out); return string(d) == strings.Repeat("alice\n", 1+len(evs)) })

	_, body, _ := httpGet(t, "http://"+tb.http.addr()+"/status")
	var st struct {
		Peers []peerStatus `json:"peers"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 || st.Peers[0].Identity != "bob" {
		t.Errorf("/status peers %+v", st.Peers)
	}
	_, metrics, _ := httpGet(t, "http://"+tb.http.addr()+"/metrics")
	if !strings.Contains(metrics, `comet_identity_events_total{identity="alice"} 6`) {
		t.Errorf("/metrics lacks alice's event:\n%s", metrics)
	}

	// Roles: bob may not submit, alice may not subscribe; each connection
	// ends after the handshake with a line naming identity and role.
	if r, err := tlswSubmit(tb.receiveAddr(), e.client(t, bobCrt, bobKey), tlswEvent("ivo://test.local/e2e#2")); err == nil {
		t.Errorf("bob submitted: %+v", r)
	}
	waitLog(t, tb, "peer bob may not act as author")
	if _, err := tlswDialSubscriber(t, tb.broadcastAddr(), e.client(t, aliceCrt, aliceKey), nil); err == nil {
		t.Error("alice subscribed")
	}
	waitLog(t, tb, "peer alice may not act as subscriber")
	if got := tb.m.tls.roleRefused.get("bob") + tb.m.tls.roleRefused.get("alice"); got != 2 {
		t.Errorf("role refusals %d", got)
	}
}

// TestTLSWireRefusals: each way a handshake fails is refused with a log
// line (and a counter) naming the reason, on our listeners (client
// certificates, versions) and when we dial an upstream (server
// certificates).
func TestTLSWireRefusals(t *testing.T) {
	e := newTLSWTestEnv(t)
	other := newTLSTestPKI(t, e.dir, "other-ca")
	wrongCA, wrongCAKey, _ := other.issue(t, "mallory", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	expired, expiredKey, _ := e.pki.issue(t, "old", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	unpinned, unpinnedKey, _ := tlsTestSelfSigned(t, e.dir, "stranger")
	otherSrv, otherSrvKey, _ := other.issue(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	elsewhere, elsewhereKey, _ := e.pki.issue(t, "elsewhere.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	oldSrv, oldSrvKey, _ := e.pki.issue(t, "127.0.0.1", time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour))
	good, goodKey, _ := e.pki.issue(t, "carol", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))

	tb := startBroker(t, e.config(t, tlsClientAuthRequire))
	addr := tb.receiveAddr()
	for _, tc := range []struct {
		name, reason string
		cfg          *tls.Config
	}{
		{"wrong CA", "unknown-ca", e.client(t, wrongCA, wrongCAKey)},
		{"expired", "expired", e.client(t, expired, expiredKey)},
		{"unpinned", "unknown-ca", e.client(t, unpinned, unpinnedKey)},
		{"no certificate", "no-client-cert", e.client(t, "", "")},
		{"TLS 1.1", "protocol-version", func() *tls.Config {
			c := e.client(t, good, goodKey)
			c.MinVersion, c.MaxVersion = tls.VersionTLS11, tls.VersionTLS11
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tb.m.tls.handshakeFailures.get(tc.reason)
			if r, err := tlswSubmit(addr, tc.cfg, tlswEvent("ivo://test.local/refused#1")); err == nil {
				t.Fatalf("accepted: %+v", r)
			}
			waitFor(t, "the failure counted", func() bool { return tb.m.tls.handshakeFailures.get(tc.reason) == before+1 })
			waitLog(t, tb, "TLS handshake refused", "reason="+tc.reason)
		})
	}
	// A CA-verified client gets in as ca:CN.
	if r, err := tlswSubmit(addr, e.client(t, good, goodKey), tlswEvent("ivo://test.local/refused#ok")); err != nil || r.role != "ack" {
		t.Fatalf("good client: %v %+v", err, r)
	}
	waitLog(t, tb, "TLS peer connected", "identity=ca:carol")

	// Without a CA, a client certificate must be pinned.
	cfg := e.config(t, tlsClientAuthRequest)
	cfg.tls.settings.caFile = ""
	tb2 := startBroker(t, cfg)
	if _, err := tlswSubmit(tb2.receiveAddr(), e.client(t, unpinned, unpinnedKey), tlswEvent("ivo://test.local/refused#2")); err == nil {
		t.Error("unpinned client accepted")
	}
	waitLog(t, tb2, "TLS handshake refused", "reason=unpinned")
	// request mode: no certificate is anonymous, and welcome.
	if r, err := tlswSubmit(tb2.receiveAddr(), e.client(t, "", ""), tlswEvent("ivo://test.local/anon#1")); err != nil || r.role != "ack" {
		t.Errorf("anonymous in request mode: %v %+v", err, r)
	}

	// Our subscriber verifies the upstream: a wrong host name, an unknown
	// CA and an expired certificate are each refused, and logged.
	for _, tc := range []struct {
		name, reason string
		cert, key    string
	}{
		{"wrong host", "bad-hostname", elsewhere, elsewhereKey},
		{"unknown CA", "unknown-ca", otherSrv, otherSrvKey},
		{"expired", "expired", oldSrv, oldSrvKey},
	} {
		t.Run("upstream "+tc.name, func(t *testing.T) {
			up := testConfig(t)
			up.broadcast = []endpoint{tlswTestEndpoint(t, "tls:0:interface=127.0.0.1")}
			up.tls.settings = tlsSettings{certFile: tc.cert, keyFile: tc.key}
			u := startBroker(t, up)
			_, port, _ := net.SplitHostPort(u.broadcastAddr())
			down := testConfig(t)
			down.remotes = []string{"tls:127.0.0.1:" + port}
			down.tls.settings = tlsSettings{caFile: e.pki.caFile}
			d := startBroker(t, down)
			waitLog(t, d, "cannot connect to upstream broker", "("+tc.reason+")")
			if d.m.tls.handshakeFailures.get(tc.reason) == 0 {
				t.Errorf("upstream failure %s not counted", tc.reason)
			}
		})
	}
}

// TestTLSWireReload: SIGHUP (reload) removing a pin disconnects that peer
// within a second while the others stay; a changed filter= applies to the
// live connection; a bad file keeps the old set and says so.
func TestTLSWireReload(t *testing.T) {
	e := newTLSWTestEnv(t)
	aliceCrt, aliceKey, alicePin := tlsTestSelfSigned(t, e.dir, "alice")
	bobCrt, bobKey, bobPin := tlsTestSelfSigned(t, e.dir, "bob")
	writeFile(t, e.peersFile, alicePin+" alice\n"+bobPin+" bob\n")
	cfg := e.config(t, tlsClientAuthRequire)
	cfg.tls.settings.caFile = ""
	tb := startBroker(t, cfg)
	alice := mustTLSWSubscriber(t, tb.broadcastAddr(), e.client(t, aliceCrt, aliceKey), nil)
	bob := mustTLSWSubscriber(t, tb.broadcastAddr(), e.client(t, bobCrt, bobKey), nil)
	waitFor(t, "two subscribers", func() bool { return subscriberCount(tb.broker) == 2 })

	// A bad file: nothing changes.
	writeFile(t, e.peersFile, alicePin+" alice\nnonsense\n")
	tb.reload()
	waitLog(t, tb, "reload failed; keeping the previous TLS files and peers", "peers:2")
	if subscriberCount(tb.broker) != 2 {
		t.Fatal("a bad peers file disconnected someone")
	}

	writeFile(t, e.peersFile, alicePin+" alice filter=\"//Param[@name='Packet_Type' and @value='115']\"\n")
	start := time.Now()
	tb.reload()
	if !bob.waitClosed(time.Second) {
		t.Fatal("bob still connected a second after his pin was removed")
	}
	t.Logf("bob disconnected after %v", time.Since(start).Round(time.Millisecond))
	waitLog(t, tb, "disconnecting TLS peer", "identity=bob", "removed from the peers file")
	waitFor(t, "one subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	// alice stays, and her new server-side filter applies at once.
	if r, err := tlswSubmit(tb.receiveAddr(), e.client(t, aliceCrt, aliceKey), tlswTypedEvent("ivo://test.local/reload#1", "Packet_Type", "60")); err != nil || r.role != "ack" {
		t.Fatalf("submit: %v %+v", err, r)
	}
	ev := tlswEvent("ivo://test.local/reload#2")
	if r, err := tlswSubmit(tb.receiveAddr(), e.client(t, aliceCrt, aliceKey), ev); err != nil || r.role != "ack" {
		t.Fatalf("submit: %v %+v", err, r)
	}
	if got := alice.nextEvent(3 * time.Second); !bytes.Equal(got, ev) {
		t.Fatalf("alice got %q, want only the event her filter selects", got)
	}
	// bob can no longer connect.
	if _, err := tlswDialSubscriber(t, tb.broadcastAddr(), e.client(t, bobCrt, bobKey), nil); err == nil {
		t.Error("bob reconnected after removal")
	}
	// allow= changed to author only: alice's subscription ends.
	writeFile(t, e.peersFile, alicePin+" alice allow=author\n")
	tb.reload()
	if !alice.waitClosed(time.Second) {
		t.Fatal("alice still subscribed after allow=author")
	}
	waitLog(t, tb, "disconnecting TLS peer", "identity=alice", "may no longer act as subscriber")
}

// TestTLSWireReloadProcess: the same through a real process and SIGHUP.
func TestTLSWireReloadProcess(t *testing.T) {
	e := newTLSWTestEnv(t)
	aliceCrt, aliceKey, alicePin := tlsTestSelfSigned(t, e.dir, "alice")
	bobCrt, bobKey, bobPin := tlsTestSelfSigned(t, e.dir, "bob")
	writeFile(t, e.peersFile, alicePin+" alice\n"+bobPin+" bob\n")
	port := freePort(t)
	p := startProcess(t, "--local-ivo", "ivo://test/comet", "--eventdb", t.TempDir(), "--broadcast=tls:"+port+":interface=127.0.0.1",
		"--broadcast-test-interval", "0", "--tls-cert", e.srvCert, "--tls-key", e.srvKey, "--tls-client-auth", "require", "--peers", e.peersFile)
	addr := "127.0.0.1:" + port
	waitListening(t, addr)
	alice := mustTLSWSubscriber(t, addr, e.client(t, aliceCrt, aliceKey), nil)
	bob := mustTLSWSubscriber(t, addr, e.client(t, bobCrt, bobKey), nil)
	waitFor(t, "both connected", func() bool { return strings.Count(p.logs.String(), "subscriber connected") == 2 })
	writeFile(t, e.peersFile, alicePin+" alice\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	if !bob.waitClosed(time.Second) {
		t.Fatal("bob still connected a second after SIGHUP")
	}
	if alice.waitClosed(200 * time.Millisecond) {
		t.Fatal("alice disconnected too")
	}
}

// TestTLSWireIvornPrefix: ivorn-prefix= by TLS identity and by signing key:
// ack inside, nak outside naming the rule; from an upstream, an event
// refused by the pgp: rule is dropped and counted.
func TestTLSWireIvornPrefix(t *testing.T) {
	e := newTLSWTestEnv(t)
	aliceCrt, aliceKey, alicePin := tlsTestSelfSigned(t, e.dir, "alice")
	pubFile, secFile := testKeyFiles(t, "Signer <s@example.org>")
	kr, err := loadKeyringFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	fpr := kr.entities[0].primary.fprHex()
	writeFile(t, e.peersFile, alicePin+" alice allow=author ivorn-prefix=ivo://alice.example\n"+
		"pgp:"+fpr+" alice-key ivorn-prefix=ivo://signed.example/streams\n")
	cfg := e.config(t, tlsClientAuthRequest)
	cfg.keyrings = []string{pubFile}
	cfg.receive = append(cfg.receive, endpoint{"tcp", "127.0.0.1:0"})
	tb := startBroker(t, cfg)
	sec, err := loadSecretKeyFile(secFile)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(ivorn string) []byte {
		s, err := signEvent(tlswEvent(ivorn), sec, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	alice := e.client(t, aliceCrt, aliceKey)
	anon := e.client(t, "", "")
	for _, tc := range []struct {
		name   string
		client *tls.Config // nil: plain TCP
		ev     []byte
		nak    string // "" for an ack
	}{
		{"alice inside", alice, tlswEvent("ivo://alice.example/x#1"), ""},
		{"alice case-insensitive", alice, tlswEvent("ivo://ALICE.example#2"), ""},
		{"alice outside", alice, tlswEvent("ivo://alice.example.evil/x#1"), "peer alice may submit only under ivo://alice.example"},
		{"anonymous outside alice's prefix", anon, tlswEvent("ivo://bob.example/x#1"), ""},
		{"signed inside", anon, sign("ivo://signed.example/streams/a#1"), ""},
		{"signed inside over plain TCP", nil, sign("ivo://signed.example/streams/b#1"), ""},
		{"unsigned under the key's prefix", anon, tlswEvent("ivo://signed.example/streams/a#2"), "claimed by key alice-key and is unsigned or badly signed: refused as forged"},
		{"unsigned under the key's prefix over plain TCP", nil, tlswEvent("ivo://signed.example/streams/a#3"), "refused as forged"},
		{"signed outside the key's prefix", anon, sign("ivo://signed.example/other#1"), "key alice-key may sign only under ivo://signed.example/streams"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *transport
			var err error
			if tc.client == nil {
				r = rawExchange(t, tb.receivers[1].addr(), tc.ev)
			} else {
				r, err = tlswSubmit(tb.receiveAddr(), tc.client, tc.ev)
			}
			if err != nil || r == nil {
				t.Fatalf("%v %+v", err, r)
			}
			switch {
			case tc.nak == "" && r.role != "ack":
				t.Errorf("got %s %q, want an ack", r.role, r.result)
			case tc.nak != "" && (r.role != "nak" || !strings.Contains(r.result, tc.nak)):
				t.Errorf("got %s %q, want a nak with %q", r.role, r.result, tc.nak)
			}
		})
	}

	// From an upstream: the broker below has the same peers file; an
	// unsigned event under the key's prefix is dropped and counted there.
	down := testConfig(t)
	down.broadcast = []endpoint{{"tcp", "127.0.0.1:0"}}
	plainUp := startBroker(t, receiveConfig(t))
	down.remotes = []string{plainUp.broadcastAddr()}
	down.keyrings = []string{pubFile}
	down.tls.settings = tlsSettings{peersFile: e.peersFile}
	d := startBroker(t, down)
	sub := dialSubscriber(t, d.broadcastAddr(), nil)
	waitFor(t, "down subscribed", func() bool { return subscriberCount(plainUp.broker) == 1 })
	if r := rawExchange(t, plainUp.receiveAddr(), tlswEvent("ivo://signed.example/streams/up#1")); r == nil || r.role != "ack" {
		t.Fatalf("upstream submit %+v", r)
	}
	good := sign("ivo://signed.example/streams/up#2")
	if r := rawExchange(t, plainUp.receiveAddr(), good); r == nil || r.role != "ack" {
		t.Fatalf("upstream submit %+v", r)
	}
	if got := sub.nextEvent(3 * time.Second); !bytes.Equal(got, good) {
		t.Fatalf("downstream got %q, want only the signed event", got)
	}
	if n := d.m.rejected.get("forged"); n != 1 {
		t.Errorf("forged counted %d, want 1", n)
	}
}

// TestTLSWireServerSideFilter: an identity's filter= applies to a
// subscriber that sent no filters, and is ANDed with one that did.
func TestTLSWireServerSideFilter(t *testing.T) {
	e := newTLSWTestEnv(t)
	bobCrt, bobKey, bobPin := tlsTestSelfSigned(t, e.dir, "bob")
	carolCrt, carolKey, carolPin := tlsTestSelfSigned(t, e.dir, "carol")
	writeFile(t, e.peersFile, bobPin+" bob allow=subscriber filter=\"//Param[@name='Packet_Type' and @value='115']\"\n"+
		carolPin+" carol filter=\"//Param[@name='Packet_Type']\"\n")
	cfg := e.config(t, tlsClientAuthRequire)
	cfg.receive = []endpoint{{"tcp", "127.0.0.1:0"}}
	tb := startBroker(t, cfg)
	bob := mustTLSWSubscriber(t, tb.broadcastAddr(), e.client(t, bobCrt, bobKey), nil)
	carol := mustTLSWSubscriber(t, tb.broadcastAddr(), e.client(t, carolCrt, carolKey), []string{"//Param[@value='60']"})
	waitFor(t, "two subscribers", func() bool { return subscriberCount(tb.broker) == 2 })
	time.Sleep(100 * time.Millisecond) // carol's filters installed
	ev115 := tlswEvent("ivo://test.local/f#115")
	ev60 := tlswTypedEvent("ivo://test.local/f#60", "Packet_Type", "60")
	noType := tlswTypedEvent("ivo://test.local/f#none", "Other", "60")
	for _, ev := range [][]byte{ev115, ev60, noType} {
		if r := rawExchange(t, tb.receiveAddr(), ev); r == nil || r.role != "ack" {
			t.Fatalf("submit %+v", r)
		}
	}
	if got := bob.nextEvent(3 * time.Second); !bytes.Equal(got, ev115) {
		t.Errorf("bob got %q, want the 115 event only", got)
	}
	if got := carol.nextEvent(3 * time.Second); !bytes.Equal(got, ev60) {
		t.Errorf("carol got %q, want the 60 event only", got)
	}
	if got := bob.nextEvent(200 * time.Millisecond); got != nil {
		t.Errorf("bob got more: %q", got)
	}
	if got := carol.nextEvent(100 * time.Millisecond); got != nil {
		t.Errorf("carol got more: %q", got)
	}
}

// TestTLSWireSilentHandshakes: 200 connections that never finish a
// handshake do not delay an honest TLS author.
func TestTLSWireSilentHandshakes(t *testing.T) {
	e := newTLSWTestEnv(t)
	cfg := e.config(t, tlsClientAuthNone)
	cfg.maxConnectionsPerHost = 1000
	tb := startBroker(t, cfg)
	var silent []net.Conn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	for i := 0; i < 200; i++ {
		c, err := net.DialTimeout("tcp", tb.receiveAddr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			c.Write([]byte{0x16, 0x03, 0x01}) // a ClientHello that never comes
		}
		silent = append(silent, c)
	}
	client := e.client(t, "", "")
	for i := 0; i < 5; i++ {
		start := time.Now()
		r, err := tlswSubmit(tb.receiveAddr(), client, tlswEvent(fmt.Sprintf("ivo://test.local/honest#%d", i)))
		took := time.Since(start)
		if err != nil || r.role != "ack" {
			t.Fatalf("honest author: %v %+v", err, r)
		}
		if took > time.Second {
			t.Errorf("honest author took %v behind 200 silent handshakes", took)
		}
	}
}

// TestTLSWireHandshakeDeadline: a client that never finishes its handshake
// holds its slot for the handshake deadline only (10 s; shortened here to
// 1 s, as the receiver's timeouts are in other tests), then it is logged
// and counted, and the slot serves an honest author.
func TestTLSWireHandshakeDeadline(t *testing.T) {
	e := newTLSWTestEnv(t)
	cfg := e.config(t, tlsClientAuthNone)
	cfg.maxConnections = 1
	cfg.tls.handshakeTimeout = time.Second
	tb := startBroker(t, cfg)
	c, err := net.Dial("tcp", tb.receiveAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The slot is taken: a second client is refused at once.
	if _, err := tlswSubmit(tb.receiveAddr(), e.client(t, "", ""), tlswEvent("ivo://test.local/during#1")); err == nil {
		t.Error("a second connection got in while the silent one held the only slot")
	}
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	took := time.Since(start)
	if err == nil || took > 1500*time.Millisecond {
		t.Errorf("silent connection closed after %v (%v), want about 1 s", took, err)
	}
	waitLog(t, tb, "TLS handshake refused", "reason=timeout")
	if n := tb.m.tls.handshakeFailures.get("timeout"); n != 1 {
		t.Errorf("timeouts counted %d", n)
	}
	waitFor(t, "the slot freed", func() bool { return len(tb.receivers[0].sem) == 0 })
	if r, err := tlswSubmit(tb.receiveAddr(), e.client(t, "", ""), tlswEvent("ivo://test.local/after#1")); err != nil || r.role != "ack" {
		t.Errorf("slot not freed: %v %+v", err, r)
	}
}

// TestTLSWireReceiverTimeoutFromConnection: an author's receiver timeout
// counts from the connection, the handshake included.
func TestTLSWireReceiverTimeoutFromConnection(t *testing.T) {
	e := newTLSWTestEnv(t)
	cfg := e.config(t, tlsClientAuthNone)
	cfg.receiverTimeout = time.Second
	tb := startBroker(t, cfg)
	start := time.Now()
	raw, err := net.Dial("tcp", tb.receiveAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	time.Sleep(600 * time.Millisecond) // a slow start to the handshake
	c := tls.Client(raw, e.client(t, "", ""))
	if err := tlsHandshake(context.Background(), c, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	took := time.Since(start)
	if err == nil || took < 900*time.Millisecond || took > 1400*time.Millisecond {
		t.Errorf("closed %v after the connection (%v), want about 1 s", took, err)
	}
}

// TestTLSWireSendvoSeesRefusal: sendvo without a certificate, against a
// broker that requires one, is told why (TLS 1.3 sends that alert after the
// client's handshake; the broker keeps the refused connection a moment so
// the alert is read, not reset away), every time.
func TestTLSWireSendvoSeesRefusal(t *testing.T) {
	e := newTLSWTestEnv(t)
	tb := startBroker(t, e.config(t, tlsClientAuthRequire))
	host, port, _ := net.SplitHostPort(tb.receiveAddr())
	file := filepath.Join(e.dir, "ev.xml")
	writeFile(t, file, string(tlswEvent("ivo://test.local/sendvo#1")))
	for i := 0; i < 10; i++ {
		var out, errb bytes.Buffer
		code := runSendvo([]string{"--tls", "-h", host, "-p", port, "--tls-ca", e.pki.caFile, "-f", file, "--timeout", "5s"}, nil, &out, &errb)
		if code != exitFail || !strings.Contains(errb.String(), "(no-client-cert)") {
			t.Fatalf("try %d: %d %q", i, code, errb.String())
		}
	}
}

// TestTLSWireDefaultHandshakeDeadline: the default is the contract's 10 s.
func TestTLSWireDefaultHandshakeDeadline(t *testing.T) {
	if tlsDefaultHandshakeTimeout != 10*time.Second || defaultReceiverTimeout <= tlsDefaultHandshakeTimeout {
		t.Errorf("handshake %v, receiver %v: want 10 s inside the receiver's timeout", tlsDefaultHandshakeTimeout, defaultReceiverTimeout)
	}
	if defaultConfig().tls.handshakeTimeout != 0 {
		t.Error("the default configuration shortens the handshake deadline")
	}
}

// TestTLSWireBench: comet bench measures a TLS receiver.
func TestTLSWireBench(t *testing.T) {
	e := newTLSWTestEnv(t)
	cfg := e.config(t, tlsClientAuthNone)
	tb := startBroker(t, cfg)
	var out, errb bytes.Buffer
	code := runBench([]string{"-n", "20", "-c", "4", "-s", "1", "--json", "--settle", "2s", "--timeout", "20s",
		"--target", tb.receiveAddr(), "--subscribe", tb.broadcastAddr(), "--tls", "--tls-ca", e.pki.caFile}, nil, &out, &errb)
	if code != exitOK {
		t.Fatalf("bench exit %d: %s %s", code, out.String(), errb.String())
	}
	var rep map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &rep); err != nil {
		t.Fatalf("%v: %s", err, out.String())
	}
	if rep["accepted"] != float64(20) {
		t.Errorf("report %s", out.String())
	}
	// A wrong pin refuses every connection.
	out.Reset()
	errb.Reset()
	code = runBench([]string{"-n", "2", "-c", "1", "-s", "0", "--json", "--timeout", "5s", "--target", tb.receiveAddr(), "--tls",
		"--tls-pin", "sha256:" + strings.Repeat("0", 64)}, nil, &out, &errb)
	if code == exitOK && strings.Contains(out.String(), `"accepted":2`) {
		t.Errorf("bench with a wrong pin: %s", out.String())
	}
}

// BenchmarkTLSWireSubmit: connect, TLS handshake (ECDSA P-256, TLS 1.3,
// client certificate checked against a pin), one event and its ack,
// through a whole broker (clients in the same process, sharing its cores);
// b.N submissions from 1 or 10 authors at once. Reports the median and p99
// of handshake + submission, and submissions per second.
func BenchmarkTLSWireSubmit(b *testing.B) {
	e := newTLSWTestEnv(b)
	crt, key, pin := tlsTestSelfSigned(b, e.dir, "author")
	writeFile(b, e.peersFile, pin+" author allow=author\n")
	cfg := e.config(b, tlsClientAuthRequire)
	cfg.broadcast = nil
	cfg.tls.settings.caFile = ""
	tb := startBroker(b, cfg)
	tb.log = newDiscardLogger()
	client := e.client(b, crt, key)
	addr := tb.receiveAddr()
	run := fmt.Sprint(time.Now().UnixNano())
	var serial atomic.Int64 // every event new, across b.N rounds
	for _, authors := range []int{1, 10} {
		b.Run(fmt.Sprintf("authors-%d", authors), func(b *testing.B) {
			lat := make([]time.Duration, b.N)
			var next int64
			var mu sync.Mutex
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < authors; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						mu.Lock()
						i := next
						next++
						mu.Unlock()
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						r, err := tlswSubmit(addr, client, tlswEvent(fmt.Sprintf("ivo://test.local/bench-%s#%d", run, serial.Add(1))))
						if err != nil || r.role != "ack" {
							b.Errorf("submit: %v %+v", err, r)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "submissions/s")
		})
	}
}

// TestTLSWirePrimaryFingerprint: a signature made by a subkey is matched
// against a peers file that lists the primary key.
func TestTLSWirePrimaryFingerprint(t *testing.T) {
	kr, err := loadKeyringFile(filepath.Join("testdata", "vectors", "pgp", "keys", "subkey-ed25519.pub.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	const primary, sub = "17D19F8DF2379B85D47A14405C5602B2E6A95888", "1E6B78931A9EB330CBD1C6BCEB0A8E399AD3F97B"
	if got := tlswPrimaryFpr(kr, sub); len(got) != 1 || got[0] != primary {
		t.Fatalf("primary of the subkey: %q", got)
	}
	if got := tlswPrimaryFpr(kr, primary); got != nil {
		t.Errorf("primary of the primary: %q", got)
	}
	pt, err := parsePeers([]byte("pgp:"+primary+" k ivorn-prefix=ivo://k.example\n"), "peers")
	if err != nil {
		t.Fatal(err)
	}
	if ok, why := pt.signerRule("ivo://k.example/a#1", true, sub, tlswPrimaryFpr(kr, sub)...); !ok {
		t.Errorf("subkey signature under the primary's prefix refused: %s", why)
	}
	if ok, _ := pt.signerRule("ivo://other.example/a#1", true, sub, tlswPrimaryFpr(kr, sub)...); ok {
		t.Error("subkey signature outside the primary's prefix admitted")
	}
}

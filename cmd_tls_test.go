package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

func TestTLSKeygenAndPin(t *testing.T) {
	dir := t.TempDir()
	run := func(f func([]string, *strings.Reader, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := f(args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	keygen := func(args []string, in *strings.Reader, out, errb *bytes.Buffer) int {
		return runTLSKeygen(args, in, out, errb)
	}
	pinCmd := func(args []string, in *strings.Reader, out, errb *bytes.Buffer) int {
		return runPin(args, in, out, errb)
	}
	pinRE := regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)
	for _, tc := range []struct{ name, prefix string }{
		{"broker.example", "dns"}, {"127.0.0.1", "ip"}, {"::1", "ip6"}, {"ivo://broker.example/comet", "ivo"},
	} {
		prefix := filepath.Join(dir, tc.prefix)
		code, out, errs := run(keygen, "--name", tc.name, "-o", prefix)
		if code != exitOK || !pinRE.MatchString(out) {
			t.Fatalf("keygen %s: %d %q %q", tc.name, code, out, errs)
		}
		code, pinOut, _ := run(pinCmd, prefix+".crt")
		if code != exitOK || pinOut != out {
			t.Fatalf("pin %q, keygen said %q", pinOut, out)
		}
		fi, err := os.Stat(prefix + ".key")
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("key mode %v %v", fi.Mode(), err)
		}
		keyPEM := must(os.ReadFile(prefix + ".key"))
		if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
			t.Fatal("key is not PKCS#8 PEM")
		} else if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
			t.Fatal(err)
		}
		certs, _ := tlsParsePEMCertificates(must(os.ReadFile(prefix + ".crt")))
		c := certs[0]
		if c.Subject.CommonName != tc.name || c.NotAfter.Sub(c.NotBefore) < 9*365*24*time.Hour {
			t.Errorf("%s: CN %q, validity %s", tc.name, c.Subject.CommonName, c.NotAfter.Sub(c.NotBefore))
		}
		switch tc.prefix {
		case "dns":
			if len(c.DNSNames) != 1 || c.DNSNames[0] != tc.name || c.VerifyHostname(tc.name) != nil {
				t.Errorf("DNS SAN %v", c.DNSNames)
			}
		case "ip", "ip6":
			if len(c.IPAddresses) != 1 || c.VerifyHostname(tc.name) != nil {
				t.Errorf("IP SAN %v", c.IPAddresses)
			}
		case "ivo":
			if len(c.URIs) != 1 || c.URIs[0].String() != tc.name {
				t.Errorf("URI SAN %v", c.URIs)
			}
		}
		if _, err := tls.LoadX509KeyPair(prefix+".crt", prefix+".key"); err != nil {
			t.Fatal(err)
		}
		// Never overwrites.
		before := must(os.ReadFile(prefix + ".crt"))
		if code, _, errs := run(keygen, "--name", tc.name, "-o", prefix); code != exitFail || !strings.Contains(errs, "exists") {
			t.Fatalf("overwrite: %d %q", code, errs)
		}
		if !bytes.Equal(before, must(os.ReadFile(prefix+".crt"))) {
			t.Fatal("certificate overwritten")
		}
	}
	// Only the key existing also refuses, and leaves no certificate.
	os.WriteFile(filepath.Join(dir, "k.key"), []byte("x"), 0o600)
	if code, _, _ := run(keygen, "--name", "x", "-o", filepath.Join(dir, "k")); code != exitFail {
		t.Fatal("existing key overwritten")
	}
	if _, err := os.Stat(filepath.Join(dir, "k.crt")); err == nil {
		t.Fatal("certificate written beside an existing key")
	}
	for _, args := range [][]string{{}, {"--name", "x"}, {"-o", "p"}, {"--name", "x", "-o", "p", "extra"}, {"--bogus"}} {
		if code, _, _ := run(keygen, args...); code != exitUsage {
			t.Errorf("keygen %q: %d", args, code)
		}
	}
	if code, _, _ := run(pinCmd); code != exitUsage {
		t.Error("pin with no file")
	}
	if code, _, _ := run(pinCmd, filepath.Join(dir, "dns.key")); code != exitFail {
		t.Error("pin of a key file")
	}
	if code, _, _ := run(pinCmd, filepath.Join(dir, "missing")); code != exitFail {
		t.Error("pin of a missing file")
	}
	// Registered commands.
	if commands["tls-keygen"] == nil || commands["pin"] == nil {
		t.Error("commands not registered")
	}
}

const tlsTestEvent = `<?xml version="1.0" encoding="UTF-8"?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" role="test" version="2.0" ivorn="ivo://tls.test/sendvo#1">
<Who><AuthorIVORN>ivo://tls.test/author</AuthorIVORN><Date>2026-12-01T00:00:00</Date></Who>
</voe:VOEvent>
`

// tlsTestVTPServer is a tiny VTP receiver over TLS: per connection it reads
// one frame and answers an ack for the event's ivorn.
func tlsTestVTPServer(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				// A refused handshake lingers, as the broker's do
				// (tlswLingerConn), so the client reads our alert.
				lc := &tlswLingerConn{Conn: c}
				defer lc.Close()
				tc := tls.Server(lc, cfg)
				if tlsHandshake(context.Background(), tc, 5*time.Second) != nil {
					return
				}
				lc.done.Store(true)
				tc.SetDeadline(time.Now().Add(5 * time.Second))
				msg, err := readFrame(tc, defaultMaxMessageSize)
				if err != nil {
					return
				}
				doc, err := parseDocument(msg)
				if err != nil {
					return
				}
				ivorn, _ := doc.elem.attr("ivorn")
				writeFrame(tc, newAck(ivorn, "ivo://tls.test/broker", time.Now()).marshal())
				tc.Read(make([]byte, 1)) // until the client closes
			}()
		}
	}()
	return ln.Addr().String()
}

func TestTLSSendvo(t *testing.T) {
	dir := t.TempDir()
	ca := newTLSTestPKI(t, dir, "ca")
	srvCert, srvKey, _ := ca.issue(t, "127.0.0.1", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	cliCert, cliKey, cliPin := tlsTestSelfSigned(t, dir, "author")
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(cliPin+" author\n"), 0o644)
	m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey, clientAuth: "require", peersFile: peers})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := m.serverConfig(nil)
	addr := tlsTestVTPServer(t, cfg)
	host, port, _ := net.SplitHostPort(addr)
	certs, _ := tlsParsePEMCertificates(must(os.ReadFile(srvCert)))
	srvPin := tlsPin(certs[0])
	file := filepath.Join(dir, "ev.xml")
	os.WriteFile(file, []byte(tlsTestEvent), 0o644)
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runSendvo(args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	id := []string{"--tls-cert", cliCert, "--tls-key", cliKey}
	ok := [][]string{
		append([]string{"--tls", "-h", host, "-p", port, "--tls-ca", ca.caFile, "-f", file}, id...),
		append([]string{"--tls", "-h", "localhost", "-p", port, "--tls-pin", strings.ToUpper(srvPin), "-f", file}, id...),
		append(append([]string{}, id...), "tls:"+addr+":trustRoots="+ca.caFile, file),
		append([]string{"--tls-ca", ca.caFile}, append(id, "tls:"+addr, file)...),
		{"tls:" + addr + ":trustRoots=" + ca.caFile + ":certificate=" + cliCert + ":privateKey=" + cliKey, file},
	}
	for _, args := range ok {
		if code, out, errs := run(args...); code != exitOK || !strings.Contains(out, "ack received for ivo://tls.test/sendvo#1") {
			t.Errorf("%q: %d %q %q", args, code, out, errs)
		}
	}
	fails := []struct {
		args   []string
		reason string
	}{
		{append([]string{"--tls", "-h", host, "-p", port, "-f", file}, id...), "(unknown-ca)"},
		{append([]string{"--tls", "-h", "localhost", "-p", port, "--tls-ca", ca.caFile, "-f", file}, id...), "(bad-hostname)"},
		{append([]string{"--tls", "-h", host, "-p", port, "--tls-pin", "sha256:" + strings.Repeat("a", 64), "-f", file}, id...), "(unpinned)"},
		{[]string{"--tls", "-h", host, "-p", port, "--tls-ca", ca.caFile, "-f", file}, "(no-client-cert)"},
	}
	for _, tc := range fails {
		code, _, errs := run(tc.args...)
		if code != exitFail || !strings.Contains(errs, tc.reason) || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "TLS with ") {
			t.Errorf("%q: %d %q, want one line with %s", tc.args, code, errs, tc.reason)
		}
	}
	// A plain receiver spoken to with TLS: a TLS failure, not a hang.
	plain, _ := net.Listen("tcp", "127.0.0.1:0")
	defer plain.Close()
	go func() {
		c, err := plain.Accept()
		if err == nil {
			c.Write([]byte("\x00\x00\x00\x05hello"))
			time.Sleep(100 * time.Millisecond)
			c.Close()
		}
	}()
	if code, _, errs := run("--tls", "--tls-ca", ca.caFile, plain.Addr().String(), file); code != exitFail || !strings.Contains(errs, "(not-tls)") {
		t.Errorf("plain peer: %d %q", code, errs)
	}
	usage := [][]string{
		{"--tls-ca", ca.caFile, "-h", host, "-p", port, "-f", file}, // TLS options without --tls
		{"--tls", "--tls-pin", "sha256:xyz", "-h", host, "-p", port, "-f", file},
		{"tls:" + host, file},
		{"--tls", "--tls-ca", filepath.Join(dir, "missing.pem"), "-h", host, "-p", port, "-f", file},
	}
	for _, args := range usage {
		if code, _, errs := run(args...); code != exitUsage {
			t.Errorf("%q: %d %q, want usage", args, code, errs)
		}
	}
}

// BenchmarkTLSSubmit measures one TLS 1.3 submission with ECDSA P-256
// certificates on loopback: connect, handshake (with a client certificate
// checked against a pin), one event, its ack. It reports the median and p99.
func BenchmarkTLSSubmit(b *testing.B) {
	dir := b.TempDir()
	srvCert, srvKey, srvPin := tlsTestSelfSigned(b, dir, "127.0.0.1")
	cliCert, cliKey, cliPin := tlsTestSelfSigned(b, dir, "author")
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(cliPin+" author\n"), 0o644)
	m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey, clientAuth: "require", peersFile: peers})
	if err != nil {
		b.Fatal(err)
	}
	cfg, _ := m.serverConfig(nil)
	addr := tlsTestVTPServer(b, cfg)
	ccfg := tlsTestClient(b, tlsClientOptions{pin: srvPin, certFile: cliCert, keyFile: cliKey})
	dial := func(addr string, timeout time.Duration) (net.Conn, error) { return tlsDialSubmit(addr, ccfg, timeout) }
	event := []byte(tlsTestEvent)
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		reply, err := sendEventVia(dial, addr, event, 5*time.Second)
		if err != nil || reply.role != "ack" {
			b.Fatal(err)
		}
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}

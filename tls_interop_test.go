package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tlsNeedTwisted skips unless python3 with Twisted and pyOpenSSL is there
// (Debian: apt-get install -y python3-twisted python3-openssl).
func tlsNeedTwisted(t *testing.T) string {
	t.Helper()
	// The first python3 on PATH may be a private one without Debian's
	// packages; try the system one too.
	var tried []string
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		py, err := exec.LookPath(cand)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		out, err := exec.CommandContext(ctx, py, "-c", "import twisted.internet.ssl, OpenSSL, service_identity").CombinedOutput()
		cancel()
		if err == nil {
			return py
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		tried = append(tried, py+": "+lines[len(lines)-1])
	}
	t.Skipf("no python3 with Twisted, pyOpenSSL and service_identity (%s): skipping the Twisted interop test (apt-get install -y python3-twisted python3-openssl)", strings.Join(tried, "; "))
	return ""
}

// TestTLSTwistedInterop: comet sendvo tls: against a Twisted "ssl:" server,
// and a Twisted "tls:...:trustRoots=DIR" client against our TLS server.
func TestTLSTwistedInterop(t *testing.T) {
	py := tlsNeedTwisted(t)
	dir := t.TempDir()
	cert, key, pin := tlsTestSelfSigned(t, dir, "127.0.0.1")
	event := filepath.Join(dir, "ev.xml")
	os.WriteFile(event, []byte(tlsTestEvent), 0o644)

	t.Run("sendvo to Twisted server", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, py, filepath.Join("testdata", "tls", "twisted_vtp_server.py"), key, cert)
		stdout, _ := cmd.StdoutPipe()
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		lines := make(chan string, 1)
		go func() {
			s := bufio.NewScanner(stdout)
			if s.Scan() {
				lines <- s.Text()
			}
			close(lines)
		}()
		var port string
		select {
		case port = <-lines:
		case <-time.After(30 * time.Second):
			t.Fatalf("Twisted server did not start: %s", stderr.String())
		}
		if port == "" || strings.HasPrefix(port, "error") {
			t.Fatalf("Twisted server: %q %s", port, stderr.String())
		}
		for _, args := range [][]string{
			{"--tls-ca", cert, "tls:127.0.0.1:" + port, event},
			{"--tls", "-h", "localhost", "-p", port, "--tls-pin", pin, "-f", event},
		} {
			var out, errb bytes.Buffer
			if code := runSendvo(args, strings.NewReader(""), &out, &errb); code != exitOK || !strings.Contains(out.String(), "ack received for ivo://tls.test/sendvo#1") {
				t.Errorf("%q: %d %q %q", args, code, out.String(), errb.String())
			}
		}
	})

	t.Run("Twisted client to our server", func(t *testing.T) {
		m, err := newTLSManager(tlsSettings{certFile: cert, keyFile: key})
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := m.serverConfig(nil)
		addr := tlsTestVTPServer(t, cfg)
		port := addr[strings.LastIndex(addr, ":")+1:]
		trust := filepath.Join(dir, "trust")
		os.Mkdir(trust, 0o755)
		os.WriteFile(filepath.Join(trust, "broker.pem"), must(os.ReadFile(cert)), 0o644)
		run := func(trustDir string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, py, filepath.Join("testdata", "tls", "twisted_tls_client.py"), "127.0.0.1", port, trustDir, event).CombinedOutput()
			return string(out), err
		}
		if out, err := run(trust); err != nil || !strings.Contains(out, "ack") {
			t.Fatalf("Twisted client: %v %s", err, out)
		}
		// It does verify: with a trust directory that lacks our certificate it fails.
		other := filepath.Join(dir, "other")
		os.Mkdir(other, 0o755)
		otherCert, _, _ := tlsTestSelfSigned(t, dir, "10.0.0.1")
		os.WriteFile(filepath.Join(other, "x.pem"), must(os.ReadFile(otherCert)), 0o644)
		if out, err := run(other); err == nil || strings.Contains(out, "ack") {
			t.Fatalf("Twisted client accepted an unknown server: %s", out)
		}
	})
}

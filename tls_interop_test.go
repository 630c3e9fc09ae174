package main

import (
	"bufio"
	"bytes"
	"context"
	"net"
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

// tlsFreePort finds a loopback port that was free a moment ago.
func tlsFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// tlsStartStunnel runs stunnel in the foreground with conf until the test
// ends, and waits until it accepts on addr.
func tlsStartStunnel(t *testing.T, stunnel, dir, name, conf, addr string) {
	t.Helper()
	path := filepath.Join(dir, name+".conf")
	os.WriteFile(path, []byte("foreground = yes\npid =\ndebug = 4\n"+conf), 0o600)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, stunnel, path)
	var logb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logb, &logb
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		cancel()
		if t.Failed() {
			t.Logf("stunnel %s log:\n%s", name, logb.String())
		}
	})
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("stunnel %s did not listen on %s:\n%s", name, addr, logb.String())
}

// TestTLSStunnelInterop checks the stunnel configurations of notes/tls.md:
// a plain author reaching our TLS receiver through stunnel in client mode
// (presenting a pinned certificate), and our sendvo --tls reaching a plain
// receiver through stunnel in server mode.
func TestTLSStunnelInterop(t *testing.T) {
	stunnel, err := exec.LookPath("stunnel4")
	if err != nil {
		if stunnel, err = exec.LookPath("stunnel"); err != nil {
			t.Skip("stunnel not installed: skipping (apt-get install -y stunnel4)")
		}
	}
	dir := t.TempDir()
	srvCert, srvKey, srvPin := tlsTestSelfSigned(t, dir, "127.0.0.1")
	cliCert, cliKey, cliPin := tlsTestSelfSigned(t, dir, "plain-author")
	peers := filepath.Join(dir, "peers")
	os.WriteFile(peers, []byte(cliPin+" plain-author allow=author\n"), 0o644)
	event := filepath.Join(dir, "ev.xml")
	os.WriteFile(event, []byte(tlsTestEvent), 0o644)
	sendvo := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := runSendvo(args, strings.NewReader(""), &out, &errb)
		return code, out.String() + errb.String()
	}

	t.Run("plain author through stunnel client", func(t *testing.T) {
		m, err := newTLSManager(tlsSettings{certFile: srvCert, keyFile: srvKey, clientAuth: "require", peersFile: peers})
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := m.serverConfig(nil)
		tlsAddr := tlsTestVTPServer(t, cfg)
		local := tlsFreePort(t)
		tlsStartStunnel(t, stunnel, dir, "client", "[comet-author]\nclient = yes\naccept = "+local+"\nconnect = "+tlsAddr+
			"\nverifyChain = yes\nCAfile = "+srvCert+"\ncheckIP = 127.0.0.1\ncert = "+cliCert+"\nkey = "+cliKey+"\n", local)
		if code, out := sendvo(local, event); code != exitOK || !strings.Contains(out, "ack received") {
			t.Fatalf("%d %s", code, out)
		}
	})

	t.Run("sendvo --tls through stunnel server", func(t *testing.T) {
		plain := tlsPlainVTPServer(t)
		front := tlsFreePort(t)
		tlsStartStunnel(t, stunnel, dir, "server", "[comet-receiver]\naccept = "+front+"\nconnect = "+plain+
			"\ncert = "+srvCert+"\nkey = "+srvKey+"\n", front)
		if code, out := sendvo("--tls-pin", srvPin, "tls:"+front, event); code != exitOK || !strings.Contains(out, "ack received") {
			t.Fatalf("%d %s", code, out)
		}
	})
}

// tlsPlainVTPServer is tlsTestVTPServer without TLS.
func tlsPlainVTPServer(t *testing.T) string {
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
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				msg, err := readFrame(c, defaultMaxMessageSize)
				if err != nil {
					return
				}
				doc, err := parseDocument(msg)
				if err != nil {
					return
				}
				ivorn, _ := doc.elem.attr("ivorn")
				writeFrame(c, newAck(ivorn, "ivo://tls.test/plain", time.Now()).marshal())
				c.Read(make([]byte, 1))
			}()
		}
	}()
	return ln.Addr().String()
}

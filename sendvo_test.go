package main

import (
	"bytes"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSendvoOutcomes(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	host, port, _ := net.SplitHostPort(tb.receiveAddr())
	dir := t.TempDir()
	file := filepath.Join(dir, "ev.xml")
	writeFile(t, file, string(testEventBytes("sendvo")))
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := runSendvo(args, strings.NewReader(""), &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := run("-h", host, "-p", port, "-f", file); code != exitOK || !strings.Contains(out, "ack received") {
		t.Errorf("ack: %d %q", code, out)
	}
	if code, _, errs := run("--host", host, "--port", port, "--file", file); code != exitFail || !strings.Contains(errs, "Previously seen") {
		t.Errorf("nak: %d %q", code, errs)
	}
	// The later Comet's positional form.
	file2 := filepath.Join(dir, "ev2.xml")
	writeFile(t, file2, string(testEventBytes("sendvo-2")))
	if code, _, errs := run(net.JoinHostPort(host, port), file2); code != exitOK {
		t.Errorf("positional: %d %q", code, errs)
	}
	if code, _, _ := run("-h", host, "-p", port, "-f", filepath.Join(dir, "missing.xml")); code != exitUsage {
		t.Errorf("missing file: %d", code)
	}
	if code, _, _ := run("--bogus"); code != exitUsage {
		t.Errorf("bad option: %d", code)
	}
	notXML := filepath.Join(dir, "bad.xml")
	writeFile(t, notXML, "<a>")
	if code, _, errs := run("-h", host, "-p", port, "-f", notXML); code != exitFail || !strings.Contains(errs, "well-formed") {
		t.Errorf("malformed: %d %q", code, errs)
	}
	// Nothing listening.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	_, deadPort, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	if code, _, _ := run("-h", "127.0.0.1", "-p", deadPort, "-f", file); code != exitFail {
		t.Errorf("connection refused: %d", code)
	}
}

func TestSendvoTimeout(t *testing.T) {
	// A broker that reads and never answers: sendvo must give up.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			readFrame(c, defaultMaxMessageSize)
			time.Sleep(2 * time.Second)
		}
	}()
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	var out, errb bytes.Buffer
	start := time.Now()
	code := runSendvo([]string{"-h", host, "-p", port, "--timeout", "300ms"}, bytes.NewReader(testEventBytes("t")), &out, &errb)
	if code != exitFail || !strings.Contains(errb.String(), "within 300ms") || time.Since(start) > 2*time.Second {
		t.Errorf("exit %d after %v: %q", code, time.Since(start), errb.String())
	}
}

func TestCometSendvoName(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch("/usr/bin/comet-sendvo", []string{"--bogus"}, nil, &out, &errb); code != exitUsage {
		t.Errorf("comet-sendvo name: exit %d", code)
	}
}

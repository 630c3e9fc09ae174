package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func httpGet(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestStatusAfterScenario: the counters of /metrics and /status right
// after a scripted scenario on a real broker.
func TestStatusAfterScenario(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	srv, err := newStatusServer("127.0.0.1:0", tb.m, tb.status, tb.log)
	if err != nil {
		t.Fatal(err)
	}
	go srv.serve()
	defer srv.shutdown(t.Context())
	base := "http://" + srv.addr()
	sub := dialSubscriber(t, tb.broadcastAddr(), []string{}) // identifies itself, no filters
	waitFor(t, "subscriber identified", func() bool {
		p := tb.broadcasters[0].peers()
		return len(p) == 1 && p[0].Software != ""
	})

	rawExchange(t, tb.receiveAddr(), testEventBytes("st-1"))                                                        // accepted, relayed
	rawExchange(t, tb.receiveAddr(), testEventBytes("st-1"))                                                        // duplicate
	rawExchange(t, tb.receiveAddr(), []byte(strings.Replace(string(testEventBytes("x")), "sample#x", "sample", 1))) // ivoid
	rawExchange(t, tb.receiveAddr(), []byte("<a><b></a>"))                                                          // xml-syntax, closed
	if sub.nextEvent(2*time.Second) == nil {
		t.Fatal("subscriber got nothing")
	}
	waitFor(t, "ack counted", func() bool { return tb.broadcasters[0].peers()[0].AcksOutstanding == 0 })

	code, body, hdr := httpGet(t, base+"/metrics")
	if code != 200 || !strings.HasPrefix(hdr.Get("Server"), "comet/"+version+" go/") {
		t.Fatalf("metrics: %d, Server %q", code, hdr.Get("Server"))
	}
	for _, want := range []string{
		"comet_events_received_total 4",
		"comet_events_accepted_total 1",
		"comet_events_duplicate_total 1",
		"comet_events_relayed_total 1",
		`comet_events_rejected_total{reason="ivoid"} 1`,
		`comet_events_rejected_total{reason="xml-syntax"} 1`,
		`comet_connections{role="subscriber"} 1`,
		"comet_eventdb_entries 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if !strings.Contains(body, "comet_events_delivered_total{peer=") {
		t.Error("/metrics lacks per-subscriber deliveries")
	}
	code, body, _ = httpGet(t, base+"/status")
	if code != 200 || !strings.Contains(body, `"role": "subscriber"`) || !strings.Contains(body, `"software": "comet/`) {
		t.Errorf("/status: %d %s", code, body)
	}
	if code, _, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz with every listener up: %d", code)
	}
	tb.receivers[0].up.Store(false)
	tb.receivers[0].ln.Close()
	if code, body, _ := httpGet(t, base+"/healthz"); code != 503 || !strings.Contains(body, "receiver") {
		t.Errorf("/healthz with the receiver down: %d %q", code, body)
	}
}

// TestProcessSystemdNotify runs the real binary with NOTIFY_SOCKET and
// WATCHDOG_USEC and reads what it tells systemd.
func TestProcessSystemdNotify(t *testing.T) {
	dir, err := os.MkdirTemp("", "sd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	port := freePort(t)
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", "")
	p := startProcess(t, "--receive=tcp:"+port+":interface=127.0.0.1", "--local-ivo=ivo://test/sd", "--eventdb", t.TempDir())
	got := map[string]bool{}
	read := func(want string) {
		t.Helper()
		buf := make([]byte, 512)
		deadline := time.Now().Add(5 * time.Second)
		for !got[want] {
			conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s: %v (got %v)", want, err, got)
			}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				got[line] = true
			}
		}
	}
	read("READY=1")
	read("WATCHDOG=1")
	p.cmd.Process.Signal(os.Interrupt)
	read("STOPPING=1")
	<-p.done
	if p.err != nil {
		t.Errorf("exit: %v", p.err)
	}
}

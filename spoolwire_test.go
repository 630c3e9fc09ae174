// spoolwire_test.go tests the spool's wiring on loopback: asked-for replay
// (exactly the missed events, once, in order, filters applied; nothing old
// for a subscriber that does not ask), our --remote subscriber catching up
// after a restart, --remote-replay=false, retention by age and bytes, a
// torn segment at restart, a kill -9 during submissions, the HTTP routes
// and the page.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// spoolwEventBytes is a small valid event with a magnitude and padding.
func spoolwEventBytes(local string, mag, pad int) []byte {
	return []byte(`<?xml version='1.0' encoding='UTF-8'?>
<voe:VOEvent xmlns:voe="http://www.ivoa.net/xml/VOEvent/v2.0" ivorn="ivo://test.local/spool#` + local + `" role="observation" version="2.0">
  <Who><AuthorIVORN>ivo://test.local/spool</AuthorIVORN><Date>2026-11-22T02:14:27</Date></Who>
  <What><Param name="magnitude" value="` + fmt.Sprint(mag) + `"/><Description>` + strings.Repeat("x", pad) + `</Description></What>
</voe:VOEvent>
`)
}

func spoolwIvorn(local string) string { return "ivo://test.local/spool#" + local }

// spoolwDial connects a subscriber that sends an authenticate response
// with the given filters and, unless since is "", replay-since.
func spoolwDial(t testing.TB, addr string, filters []string, since string) *testSubscriber {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	s := &testSubscriber{t: t, conn: c, events: make(chan []byte, 20000), others: make(chan *transport, 100), closed: make(chan struct{})}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		t.Fatalf("waiting for authenticate: %v", err)
	}
	tr, err := parseTransport(msg)
	if err != nil || tr.role != "authenticate" {
		t.Fatalf("first message: %v %s", err, msg)
	}
	c.SetReadDeadline(time.Time{})
	var extra []param
	if since != "" {
		extra = append(extra, param{spoolwParamReplaySince, since})
	}
	resp := newAuthenticateResponse(tr.origin, "", purposeTest, filters, time.Now(), extra...)
	if err := writeFrame(c, resp.marshal()); err != nil {
		t.Fatal(err)
	}
	go s.loop()
	t.Cleanup(func() { c.Close() })
	return s
}

// spoolwCollect reads events until none comes for quiet, returning their
// ivorns (and bytes).
func spoolwCollect(s *testSubscriber, quiet time.Duration) (ivorns []string, raws [][]byte) {
	for {
		e := s.nextEvent(quiet)
		if e == nil {
			return
		}
		ri, _ := scanRoot(e)
		ivorns = append(ivorns, ri.ivorn)
		raws = append(raws, e)
	}
}

func spoolwSend(t testing.TB, tb *testBroker, locals ...string) {
	t.Helper()
	for _, l := range locals {
		if code := runSendvoTo(t, tb.receiveAddr(), spoolwEventBytes(l, 18, 0)); code != exitOK {
			t.Fatalf("sendvo %s: exit %d", l, code)
		}
	}
}

func spoolwWantIvorns(t *testing.T, what string, got []string, locals ...string) {
	t.Helper()
	var want []string
	for _, l := range locals {
		want = append(want, spoolwIvorn(l))
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s: got %d events %v\nwant %d %v", what, len(got), got, len(want), want)
	}
}

// TestSpoolwReplaySince: replay-since returns exactly the events received
// since then, once and in order, then live ones; a subscriber that does not
// ask gets nothing old.
func TestSpoolwReplaySince(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	spoolwSend(t, tb, "a", "b", "c")
	mid := time.Now()
	spoolwSend(t, tb, "d", "e")
	all := spoolwDial(t, tb.broadcastAddr(), []string{}, "2000-01-01T00:00:00Z")
	// An offset and a fraction: the same instant as mid.
	fromMid := spoolwDial(t, tb.broadcastAddr(), []string{}, mid.In(time.FixedZone("", 2*3600+30*60)).Format(time.RFC3339Nano))
	plain := dialSubscriber(t, tb.broadcastAddr(), []string{})
	waitFor(t, "three subscribers", func() bool { return subscriberCount(tb.broker) == 3 })
	got, _ := spoolwCollect(all, 500*time.Millisecond)
	spoolwWantIvorns(t, "replay since 2000", got, "a", "b", "c", "d", "e")
	got, _ = spoolwCollect(fromMid, 200*time.Millisecond)
	spoolwWantIvorns(t, "replay since the middle", got, "d", "e")
	got, _ = spoolwCollect(plain, 200*time.Millisecond)
	spoolwWantIvorns(t, "no replay asked", got)

	spoolwSend(t, tb, "f")
	for name, s := range map[string]*testSubscriber{"all": all, "fromMid": fromMid, "plain": plain} {
		got, _ := spoolwCollect(s, 300*time.Millisecond)
		spoolwWantIvorns(t, name+" after a live event", got, "f")
	}
	// Inclusive: since the exact received time of "b".
	var bTime time.Time
	for _, e := range tb.spoolw.sp.recent(10, time.Time{}) {
		if e.ivorn == spoolwIvorn("b") {
			bTime = e.received
		}
	}
	exact := spoolwDial(t, tb.broadcastAddr(), nil, bTime.Format(time.RFC3339Nano))
	got, _ = spoolwCollect(exact, 300*time.Millisecond)
	spoolwWantIvorns(t, "replay since b's time", got, "b", "c", "d", "e", "f")
}

// TestSpoolwReplayFilters: the subscriber's filters apply to replayed
// events as to live ones.
func TestSpoolwReplayFilters(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	for i, mag := range []int{12, 19, 15, 20} {
		if code := runSendvoTo(t, tb.receiveAddr(), spoolwEventBytes(fmt.Sprint("m", i), mag, 0)); code != exitOK {
			t.Fatal(code)
		}
	}
	s := spoolwDial(t, tb.broadcastAddr(), []string{`//Param[@name="magnitude" and @value > 16]`}, "1970-01-01T00:00:00Z")
	got, _ := spoolwCollect(s, 400*time.Millisecond)
	spoolwWantIvorns(t, "filtered replay", got, "m1", "m3")
}

// TestSpoolwReplayHandOff: events submitted while a long replay runs
// arrive exactly once, the replayed ones in spool order first.
func TestSpoolwReplayHandOff(t *testing.T) {
	cfg := receiveConfig(t)
	tb := startBroker(t, cfg)
	const old, during = 400, 150
	for i := range old {
		ev := spoolwEventBytes(fmt.Sprint("old", i), 18, 0)
		if role := submitOnce(tb.receiveAddr(), ev); role != "ack" {
			t.Fatalf("old %d: %q", i, role)
		}
	}
	var wg sync.WaitGroup
	s := spoolwDial(t, tb.broadcastAddr(), nil, "1970-01-01T00:00:00Z")
	// (Events sent before the broker reads the ask go live first.)
	waitFor(t, "replay asked", func() bool { return spoolwStarted(tb.broker) == 1 })
	wg.Go(func() {
		for i := range during {
			submitOnce(tb.receiveAddr(), spoolwEventBytes(fmt.Sprint("new", i), 18, 0))
		}
	})
	seen := map[string]int{}
	var order []string
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < old+during && time.Now().Before(deadline) {
		e := s.nextEvent(2 * time.Second)
		if e == nil {
			break
		}
		ri, _ := scanRoot(e)
		seen[ri.ivorn]++
		order = append(order, ri.ivorn)
	}
	wg.Wait()
	extra, _ := spoolwCollect(s, 300*time.Millisecond)
	for _, iv := range extra {
		seen[iv]++
	}
	if len(seen) != old+during {
		t.Errorf("got %d distinct events, want %d", len(seen), old+during)
	}
	for iv, n := range seen {
		if n != 1 {
			t.Errorf("%s: %d copies", iv, n)
		}
	}
	for i := 0; i < old && i < len(order); i++ {
		if order[i] != spoolwIvorn(fmt.Sprint("old", i)) {
			t.Fatalf("event %d is %s, want old%d", i, order[i], i)
		}
	}
}

// TestSpoolwRemoteCatchUp: our subscriber is stopped, events are sent to
// its upstream, and once restarted with the same event DB it receives
// every event it missed, none twice.
func TestSpoolwRemoteCatchUp(t *testing.T) {
	a := startBroker(t, receiveConfig(t))
	cfgB := testConfig(t)
	cfgB.localIVO = "ivo://test/brokerB"
	cfgB.remotes = []string{a.broadcastAddr()}
	cfgB.httpAddr = "127.0.0.1:0"
	b1 := startBroker(t, cfgB)
	waitFor(t, "B subscribed", func() bool { return subscriberCount(a.broker) == 1 })
	spoolwSend(t, a, "r1", "r2")
	waitFor(t, "B has r1 and r2", func() bool { return b1.m.accepted.Load() == 2 })
	b1.stop()
	waitFor(t, "B gone", func() bool { return subscriberCount(a.broker) == 0 })
	pos, err := os.ReadFile(filepath.Join(cfgB.eventDB, cursorRemoteName))
	if err != nil || !strings.Contains(string(pos), a.broadcastAddr()) {
		t.Fatalf("remote-replay memory after stop: %v %s", err, pos)
	}
	spoolwSend(t, a, "r3", "r4", "r5")

	b2 := startBroker(t, cfgB)
	waitFor(t, "B caught up", func() bool { return b2.m.accepted.Load() == 3 })
	time.Sleep(300 * time.Millisecond)
	if n := b2.m.accepted.Load(); n != 3 {
		t.Errorf("restarted B accepted %d events, want 3", n)
	}
	if d := b2.m.duplicates.Load(); d != 2 {
		t.Errorf("restarted B dropped %d duplicates (the overlap r1, r2), want 2", d)
	}
	var got []string
	for _, e := range b2.spoolw.sp.recent(100, time.Time{}) {
		got = append([]string{e.ivorn}, got...)
	}
	spoolwWantIvorns(t, "B's spool", got, "r1", "r2", "r3", "r4", "r5")
}

// spoolwAuthResponse runs a fake upstream that sends authenticate and
// returns the bytes of our subscriber's response.
func spoolwAuthResponse(t *testing.T, remember bool, replay bool) (string, string) {
	t.Helper()
	got := make(chan []byte, 1)
	up := startFakeUpstream(t, func(n int, c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		writeFrame(c, newBrokerMessage("authenticate", "ivo://test/up", time.Now()).marshal())
		msg, err := readFrame(c, defaultMaxMessageSize)
		if err == nil && n == 1 {
			got <- msg
		}
		readFrame(c, defaultMaxMessageSize) // until our side stops
	})
	addr := up.ln.Addr().String()
	cfg := testConfig(t)
	cfg.remotes = []string{addr}
	cfg.spool.remoteReplay = replay
	last := time.Date(2026, 5, 4, 3, 2, 11, 500_000_000, time.UTC)
	if remember {
		rem, err := openCursorRemote(cfg.eventDB, nil)
		if err != nil {
			t.Fatal(err)
		}
		rem.noteEvent(addr, last)
		if err := rem.close(); err != nil {
			t.Fatal(err)
		}
	}
	startBroker(t, cfg)
	select {
	case msg := <-got:
		return string(msg), last.Add(-10 * time.Second).Format(time.RFC3339Nano)
	case <-time.After(5 * time.Second):
		t.Fatal("no authenticate response")
	}
	return "", ""
}

// TestSpoolwRemoteReplayParam: our subscriber asks replay-since the last
// event minus 10 s; never with --remote-replay=false, nor without memory.
func TestSpoolwRemoteReplayParam(t *testing.T) {
	resp, want := spoolwAuthResponse(t, true, true)
	if !strings.Contains(resp, `<Param name="replay-since" value="`+want+`"/>`) {
		t.Errorf("with memory: response lacks replay-since %s:\n%s", want, resp)
	}
	resp, _ = spoolwAuthResponse(t, true, false)
	if strings.Contains(resp, "replay-since") {
		t.Errorf("--remote-replay=false asked:\n%s", resp)
	}
	resp, _ = spoolwAuthResponse(t, false, true)
	if strings.Contains(resp, "replay-since") {
		t.Errorf("without memory asked:\n%s", resp)
	}
	cfg, err := parseBrokerArgs([]string{"--remote", "127.0.0.1:9", "--remote-replay=false"}, nil)
	if err != nil || cfg.spool.remoteReplay {
		t.Errorf("--remote-replay=false: %v %+v", err, cfg.spool)
	}
}

// TestSpoolwOptions: the options' defaults and checks.
func TestSpoolwOptions(t *testing.T) {
	cfg, err := parseBrokerArgs([]string{"--remote", "127.0.0.1:9"}, nil)
	if err != nil || cfg.spool.maxAge != 24*time.Hour || cfg.spool.maxBytes != 64<<20 || !cfg.spool.remoteReplay {
		t.Fatalf("defaults: %v %+v", err, cfg.spool)
	}
	cfg, err = parseBrokerArgs([]string{"--remote", "127.0.0.1:9", "--spool-max-age", "0", "--spool-max-bytes", "1MB"}, nil)
	if err != nil || cfg.spool.maxAge != 0 || cfg.spool.maxBytes != 1000000 {
		t.Fatalf("set: %v %+v", err, cfg.spool)
	}
	for _, bad := range [][]string{{"--spool-max-bytes", "0"}, {"--spool-max-bytes", "1KiB"}, {"--spool-max-bytes", "lots"}, {"--spool-max-age", "-1h"}} {
		if _, err := parseBrokerArgs(append([]string{"--remote", "127.0.0.1:9"}, bad...), nil); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
}

// TestSpoolwSpoolOff: with --spool-max-age 0 nothing is spooled, a replay
// ask is ignored and /events says off.
func TestSpoolwSpoolOff(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.spool.maxAge = 0
	cfg.httpAddr = "127.0.0.1:0"
	tb := startBroker(t, cfg)
	spoolwSend(t, tb, "off1")
	s := spoolwDial(t, tb.broadcastAddr(), nil, "1970-01-01T00:00:00Z")
	waitFor(t, "subscriber", func() bool { return subscriberCount(tb.broker) == 1 })
	spoolwSend(t, tb, "off2")
	got, _ := spoolwCollect(s, 300*time.Millisecond)
	spoolwWantIvorns(t, "spool off", got, "off2")
	_, body, _ := httpGet(t, "http://"+tb.http.addr()+"/events")
	if !strings.Contains(body, `"spool":"off"`) {
		t.Errorf("/events with the spool off: %s", body)
	}
	if _, err := os.Stat(filepath.Join(cfg.eventDB, "spool")); err == nil {
		t.Errorf("spool directory made with the spool off")
	}
}

// TestSpoolwRetentionAge: events older than --spool-max-age are neither
// listed nor replayed (the spool's clock is injected).
func TestSpoolwRetentionAge(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cfg := receiveConfig(t)
	cfg.spool.maxAge = time.Hour
	cfg.spool.now = clock
	tb := startBroker(t, cfg)
	spoolwSend(t, tb, "age1", "age2")
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if n := len(tb.spoolw.sp.recent(10, time.Time{})); n != 0 {
		t.Errorf("%d events listed past --spool-max-age", n)
	}
	s := spoolwDial(t, tb.broadcastAddr(), nil, "1970-01-01T00:00:00Z")
	got, _ := spoolwCollect(s, 300*time.Millisecond)
	spoolwWantIvorns(t, "replay past max age", got)
}

// TestSpoolwRetentionBytes: the spool holds --spool-max-bytes (within one
// segment), the oldest going first.
func TestSpoolwRetentionBytes(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.spool.maxBytes = 64 << 10
	tb := startBroker(t, cfg)
	for i := range 60 {
		if role := submitOnce(tb.receiveAddr(), spoolwEventBytes(fmt.Sprint("big", i), 18, 3000)); role != "ack" {
			t.Fatalf("event %d: %q", i, role)
		}
	}
	sp := tb.spoolw.sp
	if err := sp.sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.prune(time.Now()); err != nil {
		t.Fatal(err)
	}
	st := sp.stats()
	if seg := cfg.spool.maxBytes / 8; st.bytes > cfg.spool.maxBytes+seg {
		t.Errorf("spool holds %d bytes, cap %d (+ one segment %d)", st.bytes, cfg.spool.maxBytes, seg)
	}
	if _, ok := sp.get(spoolwIvorn("big0")); ok {
		t.Errorf("the oldest event is still spooled")
	}
	if _, ok := sp.get(spoolwIvorn("big59")); !ok {
		t.Errorf("the newest event is not spooled")
	}
	t.Logf("%d events, %d bytes in %d segments", st.events, st.bytes, st.segments)
}

// TestSpoolwTornSegment: garbage at the end of the head segment (a torn
// write) is cut at the next start; what was whole is kept and replayed.
func TestSpoolwTornSegment(t *testing.T) {
	cfg := receiveConfig(t)
	tb := startBroker(t, cfg)
	spoolwSend(t, tb, "t1", "t2")
	tb.stop()
	segs, _ := filepath.Glob(filepath.Join(cfg.eventDB, "spool", "*.seg"))
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	head := segs[len(segs)-1]
	before, _ := os.Stat(head)
	f, err := os.OpenFile(head, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0, 0, 0x10, 0, 1, 2, 3, 4, 5, 6, 7}) // a record header promising more
	f.Close()
	tb2 := startBroker(t, cfg)
	if !strings.Contains(tb2.logs.String(), "truncating torn or corrupt end of segment") {
		t.Errorf("no log line about the torn end")
	}
	if after, _ := os.Stat(head); after.Size() != before.Size() {
		t.Errorf("head is %d bytes after restart, want %d", after.Size(), before.Size())
	}
	spoolwSend(t, tb2, "t3")
	s := spoolwDial(t, tb2.broadcastAddr(), nil, "1970-01-01T00:00:00Z")
	got, _ := spoolwCollect(s, 300*time.Millisecond)
	spoolwWantIvorns(t, "replay after a torn end", got, "t1", "t2", "t3")
}

// TestSpoolwKillNine: a broker killed with SIGKILL during submissions
// replays, after restart, every event it acknowledged, byte for byte.
func TestSpoolwKillNine(t *testing.T) {
	dir := t.TempDir()
	rport, bport := freePort(t), freePort(t)
	args := []string{"--receive=tcp:" + rport + ":interface=127.0.0.1", "--broadcast=tcp:" + bport + ":interface=127.0.0.1",
		"--local-ivo", "ivo://test/kill", "--eventdb", dir, "--broadcast-test-interval", "0"}
	p := startProcess(t, args...)
	raddr := "127.0.0.1:" + rport
	waitListening(t, raddr)
	sent := map[string][]byte{}
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				local := fmt.Sprintf("k%d-%d", w, i)
				ev := spoolwEventBytes(local, 18, 200)
				if submitOnce(raddr, ev) == "ack" {
					mu.Lock()
					sent[spoolwIvorn(local)] = ev
					mu.Unlock()
				}
			}
		})
	}
	time.Sleep(700 * time.Millisecond)
	p.cmd.Process.Kill()
	<-p.done
	close(stop)
	wg.Wait()
	if len(sent) == 0 {
		t.Fatal("no event acknowledged before the kill")
	}
	p2 := startProcess(t, args...)
	waitListening(t, "127.0.0.1:"+bport)
	_ = p2
	s := spoolwDial(t, "127.0.0.1:"+bport, nil, "1970-01-01T00:00:00Z")
	ivorns, raws := spoolwCollect(s, time.Second)
	got := map[string][]byte{}
	for i, iv := range ivorns {
		got[iv] = raws[i]
	}
	for iv, raw := range sent {
		if g, ok := got[iv]; !ok {
			t.Errorf("acknowledged %s not replayed", iv)
		} else if !bytes.Equal(g, raw) {
			t.Errorf("%s replayed with other bytes", iv)
		}
	}
	t.Logf("%d events acknowledged before the kill, %d replayed", len(sent), len(got))
}

// TestSpoolwHTTP: /events lists the newest first with their fields,
// limit and since apply, /events/IVORN returns the exact bytes (404 when
// unknown), and the page shows the listeners and a chart.
func TestSpoolwHTTP(t *testing.T) {
	cfg := receiveConfig(t)
	cfg.httpAddr = "127.0.0.1:0"
	tb := startBroker(t, cfg)
	spoolwSend(t, tb, "h1", "h2")
	mid := time.Now()
	spoolwSend(t, tb, "h3")
	base := "http://" + tb.http.addr()
	code, body, hdr := httpGet(t, base+"/events")
	var doc struct {
		Spool  string            `json:"spool"`
		Events []spoolwEventJSON `json:"events"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || code != 200 || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("/events: %d %v %s", code, err, body)
	}
	if doc.Spool != "on" || len(doc.Events) != 3 || doc.Events[0].Ivorn != spoolwIvorn("h3") || doc.Events[2].Ivorn != spoolwIvorn("h1") {
		t.Fatalf("/events: %s", body)
	}
	e := doc.Events[0]
	if e.Seq == 0 && doc.Events[2].Seq != 0 || e.Role != "observation" || !strings.HasPrefix(e.Source, "author 127.0.0.1:") || e.Bytes != len(spoolwEventBytes("h3", 18, 0)) {
		t.Errorf("event fields: %+v", e)
	}
	if tm, err := time.Parse(time.RFC3339Nano, e.Received); err != nil || !strings.Contains(e.Received, ".") || time.Since(tm) > time.Minute {
		t.Errorf("received %q: %v", e.Received, err)
	}
	_, body, _ = httpGet(t, base+"/events?limit=1")
	if strings.Count(body, `"ivorn"`) != 1 {
		t.Errorf("limit=1: %s", body)
	}
	_, body, _ = httpGet(t, base+"/events?since="+url.QueryEscape(mid.Format(time.RFC3339Nano)))
	if strings.Count(body, `"ivorn"`) != 1 || !strings.Contains(body, "h3") {
		t.Errorf("since: %s", body)
	}
	if code, _, _ := httpGet(t, base+"/events?limit=x"); code != 400 {
		t.Errorf("limit=x: %d", code)
	}
	code, body, hdr = httpGet(t, base+"/events/"+strings.ReplaceAll(url.PathEscape(spoolwIvorn("h3")), "#", "%23"))
	if code != 200 || body != string(spoolwEventBytes("h3", 18, 0)) || hdr.Get("Content-Type") != "application/xml" {
		t.Errorf("/events/IVORN: %d %q %s", code, hdr.Get("Content-Type"), body)
	}
	if code, _, _ := httpGet(t, base+"/events/"+url.PathEscape("ivo://nobody/x#y")); code != 404 {
		t.Errorf("unknown ivorn: %d", code)
	}
	code, body, hdr = httpGet(t, base+"/")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{tb.receiveAddr(), tb.broadcastAddr(), "<svg", `name="viewport"`, spoolwIvorn("h3")} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "http://", "https://"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	if code, _, _ := httpGet(t, base+"/nothing"); code != 404 {
		t.Errorf("/nothing: %d", code)
	}
}

// TestSpoolwRates: the per-minute counts of the chart.
func TestSpoolwRates(t *testing.T) {
	c := &spoolWire{b: &broker{now: time.Now}, verdicts: map[string]string{}}
	c.count(&event{ivorn: "ivo://a/b#1", sigVerdict: "valid"})
	c.count(&event{ivorn: "ivo://a/b#2"})
	r := c.rates(time.Now())
	if len(r) != spoolwRateBuckets || r[len(r)-1] != 2 {
		t.Fatalf("rates: %v", r)
	}
	if r := c.rates(time.Now().Add(2 * time.Hour)); r[len(r)-1] != 0 {
		t.Errorf("an hour later: %v", r)
	}
	if c.verdict("ivo://a/b#1") != "valid" {
		t.Errorf("verdict not kept")
	}
	if got := spoolwHTMLEscaper.Replace(`<script a="b">&'`); got != "&lt;script a=&#34;b&#34;&gt;&amp;&#39;" {
		t.Errorf("escaped: %s", got)
	}
	if svg := spoolwChart(r); !strings.HasPrefix(svg, "<svg") || !strings.Contains(svg, "<rect") {
		t.Errorf("chart: %s", svg)
	}
}

// TestSpoolwManyReplays: more subscribers replay at once than may run
// together; those waiting for their turn still get everything once.
func TestSpoolwManyReplays(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	var locals []string
	for i := range 30 {
		locals = append(locals, fmt.Sprint("many", i))
	}
	spoolwSend(t, tb, locals...)
	var subs []*testSubscriber
	for range spoolwMaxReplays + 3 {
		subs = append(subs, spoolwDial(t, tb.broadcastAddr(), nil, "1970-01-01T00:00:00Z"))
	}
	waitFor(t, "every replay asked", func() bool { return spoolwStarted(tb.broker) == len(subs) })
	spoolwSend(t, tb, "many-live")
	for i, s := range subs {
		got, _ := spoolwCollect(s, 500*time.Millisecond)
		spoolwWantIvorns(t, fmt.Sprint("subscriber ", i), got, append(locals, "many-live")...)
	}
}

// TestSpoolwReplayStopsWithSubscriber: a subscriber that stops reading in
// the middle of a replay and then goes leaves no replay behind (the
// broker's leak check at stop would see it too).
func TestSpoolwReplayStopsWithSubscriber(t *testing.T) {
	tb := startBroker(t, receiveConfig(t))
	for i, raw := range uniqueEvents(t, 600) {
		ri, _ := scanRoot(raw)
		if _, err := tb.spoolw.sp.append(spoolEntry{role: ri.role, source: "author test", ivorn: ri.ivorn, raw: raw}); err != nil {
			t.Fatal(i, err)
		}
	}
	c, err := net.Dial("tcp", tb.broadcastAddr())
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	msg, err := readFrame(c, defaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := parseTransport(msg)
	writeFrame(c, newAuthenticateResponse(tr.origin, "", purposeTest, nil, time.Now(), param{spoolwParamReplaySince, "1970-01-01T00:00:00Z"}).marshal())
	// Read everything, ack nothing: the replay must stall on its bound of
	// unacknowledged events (not on a full socket).
	c.SetDeadline(time.Time{})
	go func() {
		for {
			if _, err := readFrame(c, defaultMaxMessageSize); err != nil {
				return
			}
		}
	}()
	waitFor(t, "replay stalled on unacknowledged events", func() bool {
		for _, bc := range tb.broadcasters {
			bc.mu.Lock()
			defer bc.mu.Unlock()
			for s := range bc.subs {
				return s.sent.Load() >= spoolwReplayUnacked && s.spw.replaying
			}
		}
		return false
	})
	c.Close()
	waitFor(t, "subscriber gone", func() bool { return subscriberCount(tb.broker) == 0 })
	if n := len(tb.spoolw.slots); n != 0 {
		t.Errorf("%d replay slots still taken", n)
	}
}

// spoolwStarted counts the subscribers whose replay has begun.
func spoolwStarted(b *broker) int {
	n := 0
	for _, bc := range b.broadcasters {
		bc.mu.Lock()
		for s := range bc.subs {
			if s.spw.started {
				n++
			}
		}
		bc.mu.Unlock()
	}
	return n
}

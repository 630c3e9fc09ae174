package main

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

func TestHostKey(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for _, tc := range []struct {
		addr net.Addr
		want string
	}{
		{tcp("192.0.2.7:8099"), "192.0.2.7"},
		{tcp("192.0.2.7:1"), "192.0.2.7"},
		{tcp("[::ffff:192.0.2.7]:8099"), "192.0.2.7"},
		{tcp("[2001:db8:1:2:3:4:5:6]:80"), "2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:2:ffff:ffff:ffff:ffff]:80"), "2001:db8:1:2::/64"},
		{tcp("[2001:db8:1:3::1]:80"), "2001:db8:1:3::/64"},
		{tcp("[fe80::1%lo]:80"), "fe80::/64"},
		{tcp("[::1]:80"), "::/64"},
		{&net.UDPAddr{IP: net.ParseIP("198.51.100.1"), Port: 5}, "198.51.100.1"},
		{&net.UnixAddr{Name: "/run/comet.sock", Net: "unix"}, "unix"},
		{&net.UnixAddr{Name: "", Net: "unix"}, "unix"},
		{&net.TCPAddr{}, "unknown"},
		{nil, "unknown"},
	} {
		if got := hostKey(tc.addr); got != tc.want {
			t.Errorf("hostKey(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestHostLimiterEdges: 64 allowed, the 65th refused; release frees one
// place; the map forgets a host at zero; hosts in one /64 share a cap.
func TestHostLimiterEdges(t *testing.T) {
	l := newHostLimiter(defaultMaxConnectionsPerHost)
	for i := range 64 {
		if !l.acquire("192.0.2.1") {
			t.Fatalf("connection %d refused", i+1)
		}
	}
	if l.acquire("192.0.2.1") {
		t.Fatal("65th connection allowed")
	}
	if !l.acquire("192.0.2.2") {
		t.Fatal("another host refused")
	}
	if l.refusedTotal() != 1 {
		t.Errorf("refused = %d, want 1", l.refusedTotal())
	}
	l.release("192.0.2.1")
	if !l.acquire("192.0.2.1") {
		t.Fatal("refused after a release")
	}
	if l.acquire("192.0.2.1") {
		t.Fatal("allowed past the cap after one release and one acquire")
	}
	for range 64 {
		l.release("192.0.2.1")
	}
	l.release("192.0.2.2")
	l.release("192.0.2.2") // one too many: harmless
	if l.hosts() != 0 || l.count("192.0.2.1") != 0 {
		t.Errorf("after releasing all: %d hosts, %d connections", l.hosts(), l.count("192.0.2.1"))
	}

	// IPv6: every address of one /64 counts against one cap.
	l = newHostLimiter(64)
	for i := range 64 {
		a := &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("2001:db8:0:1::%x", i+1)), Port: 1000 + i}
		if !l.acquire(hostKey(a)) {
			t.Fatalf("IPv6 connection %d refused", i+1)
		}
	}
	if l.acquire(hostKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:0:1:ffff::9"), Port: 1})) {
		t.Error("65th connection from one /64 allowed")
	}
	if !l.acquire(hostKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:0:2::1"), Port: 1})) {
		t.Error("a connection from the next /64 refused")
	}

	// No limit.
	l = newHostLimiter(0)
	for range 1000 {
		if !l.acquire("h") {
			t.Fatal("unlimited limiter refused")
		}
	}
}

func TestHostLimiterConcurrent(t *testing.T) {
	l := newHostLimiter(10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := 0
	for range 50 {
		wg.Go(func() {
			if l.acquire("h") {
				mu.Lock()
				got++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if got != 10 || l.count("h") != 10 {
		t.Errorf("%d acquired, count %d; want 10", got, l.count("h"))
	}
}

// TestPenaltyBox: 1 s doubling to 10 min, forgotten after an hour clean.
func TestPenaltyBox(t *testing.T) {
	clk := newFakeClock()
	p := newPenaltyBox(clk.now)
	if b, _ := p.blocked("h"); b {
		t.Fatal("unknown host blocked")
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i, w := range want {
		if d := p.offend("h"); d != w {
			t.Fatalf("offence %d: blocked %v, want %v", i+1, d, w)
		}
		if b, left := p.blocked("h"); !b || left != w {
			t.Fatalf("offence %d: blocked = %v, %v; want true, %v", i+1, b, left, w)
		}
		clk.advance(w - time.Nanosecond)
		if b, _ := p.blocked("h"); !b {
			t.Fatalf("offence %d: free before %v", i+1, w)
		}
		clk.advance(time.Nanosecond)
		if b, _ := p.blocked("h"); b {
			t.Fatalf("offence %d: still blocked after %v", i+1, w)
		}
	}
	if b, _ := p.blocked("other"); b {
		t.Error("another host blocked")
	}
	var d time.Duration
	for range 40 {
		d = p.offend("h")
	}
	if d != penaltyMax {
		t.Errorf("after many offences blocked %v, want %v", d, penaltyMax)
	}
	// An hour after the last offence the host starts again.
	clk.advance(penaltyForget - time.Second)
	if d := p.offend("h"); d != penaltyMax {
		t.Errorf("offence within the hour: %v, want %v", d, penaltyMax)
	}
	clk.advance(penaltyForget)
	if b, _ := p.blocked("h"); b {
		t.Error("blocked an hour after the last offence")
	}
	if p.size() != 0 {
		t.Errorf("forgotten host still held (%d)", p.size())
	}
	if d := p.offend("h"); d != penaltyFirst {
		t.Errorf("first offence after being forgotten: %v, want %v", d, penaltyFirst)
	}
}

// TestPenaltyBoxBounded: 100,000 offending hosts keep the box at its cap,
// and the most recently blocked stay blocked.
func TestPenaltyBoxBounded(t *testing.T) {
	clk := newFakeClock()
	p := newPenaltyBox(clk.now)
	for i := range 100_000 {
		p.offend(fmt.Sprintf("h%d", i))
		if p.size() > penaltyMaxHosts {
			t.Fatalf("%d hosts held", p.size())
		}
		clk.advance(time.Microsecond)
	}
	if b, _ := p.blocked("h99999"); !b {
		t.Error("the latest offender is not blocked")
	}
	if p.evictedTotal() == 0 {
		t.Error("nothing counted as evicted")
	}
	clk.advance(penaltyForget)
	for _, h := range []string{"h99999", "h99000", "h5"} {
		if b, _ := p.blocked(h); b {
			t.Errorf("%s blocked an hour after its offence", h)
		}
	}
	// A full box of new offenders: the clean old ones make room for them.
	for i := range penaltyMaxHosts {
		p.offend(fmt.Sprintf("n%d", i))
	}
	if b, _ := p.blocked("n0"); !b || p.size() > penaltyMaxHosts {
		t.Errorf("new offenders after an hour: n0 blocked %v, %d held", b, p.size())
	}
}

// hostlimit.go owns the per-host limits against untrusted peers (contract
// section 10): hostKey, which says which connections come from one host;
// hostLimiter, the per-listener cap --max-connections-per-host (default 64;
// one over the cap is closed at once); and penaltyBox, which refuses a host
// dropped for repeated garbage for a growing while.
//
// Invariants: a host is an IPv4 address, an IPv6 /64 (one subscriber's
// allocation; an IPv4-mapped IPv6 address counts as its IPv4 address), or
// one key for every unix-socket peer; hostLimiter holds an entry only for a
// host with connections open, so its memory follows the connections;
// penaltyBox holds at most penaltyMaxHosts hosts and forgets one after
// penaltyForget without an offence.
package main

import (
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// hostKey is the host a connection counts against. Peers on unix sockets
// (or of any address type without an IP) share the key "unix" or the
// network name.
func hostKey(addr net.Addr) string {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UDPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.IPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	case *net.UnixAddr:
		return "unix"
	case nil:
		return "unknown"
	default:
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			ip = ap.Addr()
		} else if p, err := netip.ParseAddr(addr.String()); err == nil {
			ip = p
		} else {
			return addr.Network()
		}
	}
	if !ip.IsValid() {
		return "unknown"
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	return netip.PrefixFrom(ip, 64).Masked().String()
}

// defaultMaxConnectionsPerHost is the --max-connections-per-host default.
const defaultMaxConnectionsPerHost = 64

// hostLimiter caps the connections one host has open on one listener. Its
// methods are safe for concurrent use and O(1).
type hostLimiter struct {
	max     int
	mu      sync.Mutex
	open    map[string]int
	refused atomic.Int64
}

// newHostLimiter returns a limiter allowing limit connections per host; limit
// below 1 means no limit.
func newHostLimiter(limit int) *hostLimiter {
	return &hostLimiter{max: limit, open: make(map[string]int)}
}

// acquire counts a new connection from key and reports whether it is within
// the cap. On false nothing was counted: close the connection and do not
// call release.
func (l *hostLimiter) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.open[key]
	if l.max > 0 && n >= l.max {
		l.refused.Add(1)
		return false
	}
	l.open[key] = n + 1
	return true
}

// release forgets one connection from key counted by a successful acquire.
func (l *hostLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch n := l.open[key]; {
	case n > 1:
		l.open[key] = n - 1
	case n == 1:
		delete(l.open, key)
	}
}

// count is the number of connections key has open.
func (l *hostLimiter) count(key string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open[key]
}

// hosts is the number of hosts with connections open.
func (l *hostLimiter) hosts() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// refusedTotal is how many connections acquire refused (for the counter).
func (l *hostLimiter) refusedTotal() int64 { return l.refused.Load() }

// Penalty box bounds: the first offence blocks a host for penaltyFirst, each
// further one doubles that up to penaltyMax; a host with no offence for
// penaltyForget starts again from nothing.
const (
	penaltyFirst    = time.Second
	penaltyMax      = 10 * time.Minute
	penaltyForget   = time.Hour
	penaltyMaxHosts = 4096
)

// penaltyEntry is one host's record.
type penaltyEntry struct {
	strikes int       // offences since last forgotten
	last    time.Time // the last offence
	until   time.Time // refused until then
}

// penaltyBox refuses hosts dropped for repeated garbage for a growing while.
// Its methods are safe for concurrent use.
type penaltyBox struct {
	now     func() time.Time
	mu      sync.Mutex
	hosts   map[string]*penaltyEntry
	evicted atomic.Int64
	refused atomic.Int64
}

// newPenaltyBox returns an empty box; now is the clock (time.Now in the
// broker).
func newPenaltyBox(now func() time.Time) *penaltyBox {
	if now == nil {
		now = time.Now
	}
	return &penaltyBox{now: now, hosts: make(map[string]*penaltyEntry)}
}

// offend records that key was dropped for garbage and returns how long it
// is now refused: 1 s, then 2 s, 4 s ... up to 10 min.
func (p *penaltyBox) offend(key string) time.Duration {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.hosts[key]
	if ok && now.Sub(e.last) >= penaltyForget {
		*e = penaltyEntry{}
	}
	if !ok {
		if len(p.hosts) >= penaltyMaxHosts {
			p.makeRoomLocked(now)
		}
		e = &penaltyEntry{}
		p.hosts[key] = e
	}
	e.strikes++
	d := penaltyMax
	if e.strikes <= 30 {
		d = min(penaltyFirst<<(e.strikes-1), penaltyMax)
	}
	e.last = now
	e.until = now.Add(d)
	return d
}

// makeRoomLocked forgets every host clean for penaltyForget and, if that
// frees nothing, the eighth of the hosts whose blocks end first (the least
// dangerous to forget), so that a flood of new offenders costs O(log n)
// each, amortised.
func (p *penaltyBox) makeRoomLocked(now time.Time) {
	type held struct {
		key   string
		until time.Time
	}
	all := make([]held, 0, len(p.hosts))
	for k, e := range p.hosts {
		if now.Sub(e.last) >= penaltyForget {
			delete(p.hosts, k)
			continue
		}
		all = append(all, held{k, e.until})
	}
	if len(p.hosts) < penaltyMaxHosts {
		return
	}
	slices.SortFunc(all, func(a, b held) int { return a.until.Compare(b.until) })
	for _, h := range all[:max(1, len(all)/8)] {
		delete(p.hosts, h.key)
		p.evicted.Add(1)
	}
}

// blocked reports whether key is refused now, and for how much longer.
func (p *penaltyBox) blocked(key string) (bool, time.Duration) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	e, ok := p.hosts[key]
	if !ok {
		return false, 0
	}
	if now.Sub(e.last) >= penaltyForget {
		delete(p.hosts, key)
		return false, 0
	}
	if left := e.until.Sub(now); left > 0 {
		p.refused.Add(1)
		return true, left
	}
	return false, 0
}

// size is the number of hosts remembered.
func (p *penaltyBox) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.hosts)
}

// evictedTotal is how many hosts were forgotten early to make room.
func (p *penaltyBox) evictedTotal() int64 { return p.evicted.Load() }

// refusedTotal is how many times blocked reported a host refused.
func (p *penaltyBox) refusedTotal() int64 { return p.refused.Load() }

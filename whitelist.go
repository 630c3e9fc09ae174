// whitelist.go owns the IP whitelists checked when an author or a subscriber
// connects (--author-whitelist, --subscriber-whitelist and their aliases).
//
// A spec is what Python's ipaddress.ip_network accepts in strict mode, as
// Comet parses it: CIDR (10.0.0.0/8, 2001:db8::/32), an IPv4 dot-decimal
// netmask (10.0.0.0/255.0.0.0) or hostmask (10.0.0.0/0.255.255.255), or a
// bare address (a /32 or /128). A network with host bits set is an error.
//
// Invariants: a whitelist is immutable once parsed, so any goroutine may
// call allows; IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), as peers or in
// specs, are treated as the IPv4 address they carry; zones are ignored on
// peers and refused in specs.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// whitelist is a set of IP networks. The zero value admits no TCP peer.
type whitelist struct {
	prefixes []netip.Prefix
}

// defaultWhitelist admits every IPv4 and IPv6 peer.
func defaultWhitelist() *whitelist {
	return &whitelist{prefixes: []netip.Prefix{
		netip.MustParsePrefix("0.0.0.0/0"),
		netip.MustParsePrefix("::/0"),
	}}
}

// parseWhitelist parses the values of every occurrence of a whitelist option;
// they accumulate. A value may hold several specs separated by commas or
// spaces. An empty list, or only empty values, gives a whitelist that admits
// no TCP peer (Comet's behaviour for the option given with no networks).
func parseWhitelist(specs []string) (*whitelist, error) {
	w := &whitelist{}
	seen := map[netip.Prefix]bool{}
	for _, value := range specs {
		for _, spec := range strings.FieldsFunc(value, func(r rune) bool {
			return r == ',' || r == ' ' || r == '\t' || r == '\n'
		}) {
			p, err := parseNetworkSpec(spec)
			if err != nil {
				return nil, err
			}
			if !seen[p] {
				seen[p] = true
				w.prefixes = append(w.prefixes, p)
			}
		}
	}
	return w, nil
}

// parseNetworkSpec parses one network as Python's ip_network(spec,
// strict=True) does, and returns it with IPv4-mapped networks as IPv4.
func parseNetworkSpec(spec string) (netip.Prefix, error) {
	addrPart, maskPart, hasMask := strings.Cut(spec, "/")
	if strings.Contains(addrPart, "%") {
		return netip.Prefix{}, fmt.Errorf("whitelist: %q: a zone (%%...) has no place in a network", spec)
	}
	addr, err := netip.ParseAddr(addrPart)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("whitelist: %q: %q is not an IPv4 or IPv6 address", spec, addrPart)
	}
	bits := addr.BitLen()
	if hasMask {
		bits, err = parseMask(addr, maskPart)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("whitelist: %q: %v", spec, err)
		}
	}
	p := netip.PrefixFrom(addr, bits)
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("whitelist: %q has host bits set (did you mean %s, or %s for the one host?)",
			spec, m, netip.PrefixFrom(addr, addr.BitLen()))
	}
	if addr.Is4In6() && bits >= 96 {
		p = netip.PrefixFrom(addr.Unmap(), bits-96)
	}
	return p, nil
}

// parseMask reads what follows the slash: a prefix length in decimal (leading
// zeros allowed, as in Python), or for IPv4 a dot-decimal netmask or hostmask.
func parseMask(addr netip.Addr, mask string) (int, error) {
	if mask != "" && strings.Trim(mask, "0123456789") == "" {
		n, err := strconv.Atoi(mask)
		if err != nil || n > addr.BitLen() {
			return 0, fmt.Errorf("prefix length %s is out of range 0..%d", mask, addr.BitLen())
		}
		return n, nil
	}
	if !addr.Is4() {
		return 0, fmt.Errorf("%q is not a prefix length (IPv6 takes only /0../128)", mask)
	}
	m, err := netip.ParseAddr(mask)
	if err != nil || !m.Is4() {
		return 0, fmt.Errorf("%q is not a prefix length or a dot-decimal netmask", mask)
	}
	b := m.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if n, ok := contiguousOnes(v); ok {
		return n, nil // netmask, e.g. 255.0.0.0
	}
	if n, ok := contiguousOnes(^v); ok {
		return n, nil // hostmask, e.g. 0.255.255.255
	}
	return 0, fmt.Errorf("%s is neither a netmask nor a hostmask (its bits are not contiguous)", mask)
}

// contiguousOnes reports whether v is n one bits followed by 32-n zero bits.
func contiguousOnes(v uint32) (int, bool) {
	n := 0
	for n < 32 && v&(1<<(31-n)) != 0 {
		n++
	}
	return n, n == 32 || v<<n == 0
}

// allows reports whether a peer may connect. TCP (and UDP or IP) peers are
// matched by address; Unix-domain peers are always allowed (the caller logs a
// warning, as Comet does); anything else is refused.
func (w *whitelist) allows(addr net.Addr) bool {
	var ip net.IP
	switch a := addr.(type) {
	case nil:
		return false
	case *net.UnixAddr:
		return true
	case *net.TCPAddr:
		if a == nil {
			return false
		}
		ip = a.IP
	case *net.UDPAddr:
		if a == nil {
			return false
		}
		ip = a.IP
	case *net.IPAddr:
		if a == nil {
			return false
		}
		ip = a.IP
	default:
		switch addr.Network() {
		case "unix", "unixgram", "unixpacket":
			return true
		}
		if ap, err := netip.ParseAddrPort(addr.String()); err == nil {
			return w.allowsAddr(ap.Addr())
		}
		if a, err := netip.ParseAddr(addr.String()); err == nil {
			return w.allowsAddr(a)
		}
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return false
	}
	return w.allowsAddr(a)
}

// allowsAddr reports whether an IP address lies in any listed network. The
// zone is ignored and an IPv4-mapped address is matched as IPv4.
func (w *whitelist) allowsAddr(a netip.Addr) bool {
	a = a.WithZone("").Unmap()
	for _, p := range w.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// String lists the networks, for logs and --help: "0.0.0.0/0, ::/0", or
// "none" for a whitelist that admits no TCP peer.
func (w *whitelist) String() string {
	if len(w.prefixes) == 0 {
		return "none"
	}
	parts := make([]string, len(w.prefixes))
	for i, p := range w.prefixes {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
}

// loadWhitelist builds a whitelist from option values: each is one or more
// networks, or the name of a file of networks (one or more a line, #
// comments), which is read again on every reload. No values at all means
// everything, IPv4 and IPv6.
func loadWhitelist(specs []string) (*whitelist, error) {
	if len(specs) == 0 {
		return defaultWhitelist(), nil
	}
	var nets []string
	for _, s := range specs {
		_, netErr := parseWhitelist([]string{s})
		if netErr == nil {
			nets = append(nets, s)
			continue
		}
		data, err := os.ReadFile(s)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && looksLikeNetwork(s) {
				return nil, netErr // most likely a mistyped network
			}
			return nil, fmt.Errorf("%s: %v", s, err)
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for line := 1; sc.Scan(); line++ {
			t, _, _ := strings.Cut(sc.Text(), "#")
			if strings.TrimSpace(t) == "" {
				continue
			}
			if _, err := parseWhitelist([]string{t}); err != nil {
				return nil, fmt.Errorf("%s:%d: %v", s, line, err)
			}
			nets = append(nets, t)
		}
	}
	if len(nets) == 0 {
		return nil, errors.New("no networks given (an empty whitelist would refuse everyone)")
	}
	return parseWhitelist(nets)
}

package main

import (
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestParseNetworkSpec(t *testing.T) {
	tests := []struct {
		spec    string
		want    string // canonical prefix; "" when an error is expected
		wantErr string // substring of the error
	}{
		// CIDR
		{"10.0.0.0/8", "10.0.0.0/8", ""},
		{"0.0.0.0/0", "0.0.0.0/0", ""},
		{"127.0.0.1/32", "127.0.0.1/32", ""},
		{"192.168.1.0/24", "192.168.1.0/24", ""},
		{"10.0.0.0/08", "10.0.0.0/8", ""}, // Python accepts leading zeros in the length
		{"::/0", "::/0", ""},
		{"::1/128", "::1/128", ""},
		{"2001:db8::/32", "2001:db8::/32", ""},
		{"2001:DB8::/32", "2001:db8::/32", ""},
		// dot-decimal netmask and hostmask (IPv4 only)
		{"10.0.0.0/255.0.0.0", "10.0.0.0/8", ""},
		{"127.0.0.1/255.255.255.255", "127.0.0.1/32", ""},
		{"0.0.0.0/0.0.0.0", "0.0.0.0/0", ""},
		{"172.16.0.0/255.240.0.0", "172.16.0.0/12", ""},
		{"10.0.0.0/0.255.255.255", "10.0.0.0/8", ""},
		{"192.168.1.0/0.0.0.255", "192.168.1.0/24", ""},
		{"10.0.0.0/255.0.255.0", "", "neither a netmask nor a hostmask"},
		{"2001:db8::/ffff:ffff::", "", "IPv6 takes only"},
		// bare addresses
		{"10.0.0.1", "10.0.0.1/32", ""},
		{"2001:db8::1", "2001:db8::1/128", ""},
		// IPv4-mapped IPv6 networks become IPv4
		{"::ffff:10.0.0.0/104", "10.0.0.0/8", ""},
		{"::ffff:10.0.0.1", "10.0.0.1/32", ""},
		{"::ffff:0:0/96", "0.0.0.0/0", ""},
		// host bits set: refused, naming the network meant
		{"10.0.0.1/24", "", "did you mean 10.0.0.0/24, or 10.0.0.1/32"},
		{"2001:db8::1/32", "", "did you mean 2001:db8::/32"},
		{"10.0.0.1/255.0.0.0", "", "host bits set"},
		{"1.2.3.4/0", "", "did you mean 0.0.0.0/0"},
		// malformed
		{"10.0.0.0/33", "", "out of range 0..32"},
		{"::/129", "", "out of range 0..128"},
		{"10.0.0.0/", "", "not a prefix length"},
		{"10.0.0.0/-1", "", "not a prefix length"},
		{"10.0.0.0/8/8", "", "not a prefix length"},
		{"10.0.0", "", "not an IPv4 or IPv6 address"},
		{"010.0.0.0/8", "", "not an IPv4 or IPv6 address"},
		{"256.0.0.0/8", "", "not an IPv4 or IPv6 address"},
		{"example.org", "", "not an IPv4 or IPv6 address"},
		{"/8", "", "not an IPv4 or IPv6 address"},
		{"fe80::%eth0/64", "", "zone"},
		{"fe80::1%eth0", "", "zone"},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			p, err := parseNetworkSpec(tc.spec)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("parsed as %s, want error containing %q", p, tc.wantErr)
				}
				if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), tc.spec) {
					t.Errorf("error %q, want one containing %q and naming the spec", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func tcpPeer(s string) net.Addr {
	return net.TCPAddrFromAddrPort(netip.MustParseAddrPort(s))
}

func TestWhitelistAllows(t *testing.T) {
	tests := []struct {
		name  string
		specs []string
		peer  net.Addr
		want  bool
	}{
		{"default ipv4", nil, tcpPeer("192.0.2.7:1234"), true},
		{"default ipv6", nil, tcpPeer("[2001:db8::7]:1234"), true},
		{"default mapped", nil, tcpPeer("[::ffff:192.0.2.7]:1234"), true},
		{"default loopback", nil, tcpPeer("127.0.0.1:1"), true},
		{"empty list refuses", []string{}, tcpPeer("127.0.0.1:1"), false},
		{"empty value refuses", []string{""}, tcpPeer("127.0.0.1:1"), false},
		{"empty list admits unix", []string{}, &net.UnixAddr{Name: "/tmp/s", Net: "unix"}, true},
		{"empty list admits unnamed unix", []string{}, &net.UnixAddr{Net: "unix"}, true},
		{"host in /32", []string{"127.0.0.1/32"}, tcpPeer("127.0.0.1:9"), true},
		{"neighbour of /32", []string{"127.0.0.1/32"}, tcpPeer("127.0.0.2:9"), false},
		{"bare address", []string{"10.1.2.3"}, tcpPeer("10.1.2.3:9"), true},
		{"inside /8", []string{"10.0.0.0/8"}, tcpPeer("10.255.255.255:9"), true},
		{"outside /8", []string{"10.0.0.0/8"}, tcpPeer("11.0.0.0:9"), false},
		{"netmask", []string{"10.0.0.0/255.0.0.0"}, tcpPeer("10.9.9.9:9"), true},
		{"hostmask", []string{"10.0.0.0/0.255.255.255"}, tcpPeer("10.9.9.9:9"), true},
		{"ipv4 /0", []string{"0.0.0.0/0"}, tcpPeer("203.0.113.1:9"), true},
		{"ipv4 /0 refuses ipv6", []string{"0.0.0.0/0"}, tcpPeer("[2001:db8::1]:9"), false},
		{"ipv6 /0 refuses ipv4", []string{"::/0"}, tcpPeer("203.0.113.1:9"), false},
		{"ipv6 /0", []string{"::/0"}, tcpPeer("[2001:db8::1]:9"), true},
		{"mapped peer in ipv4 network", []string{"10.0.0.0/8"}, tcpPeer("[::ffff:10.1.1.1]:9"), true},
		{"mapped peer outside ipv4 network", []string{"10.0.0.0/8"}, tcpPeer("[::ffff:11.1.1.1]:9"), false},
		{"mapped peer in ipv4 /0", []string{"0.0.0.0/0"}, tcpPeer("[::ffff:11.1.1.1]:9"), true},
		{"mapped spec admits ipv4 peer", []string{"::ffff:10.0.0.0/104"}, tcpPeer("10.1.1.1:9"), true},
		{"ipv4 peer as 16-byte slice", []string{"10.0.0.0/8"}, &net.TCPAddr{IP: net.ParseIP("10.1.1.1").To16(), Port: 9}, true},
		{"ipv6 /128", []string{"::1/128"}, tcpPeer("[::1]:9"), true},
		{"ipv6 /128 neighbour", []string{"::1/128"}, tcpPeer("[::2]:9"), false},
		{"ipv6 /32", []string{"2001:db8::/32"}, tcpPeer("[2001:db8:ffff::1]:9"), true},
		{"ipv6 zone ignored", []string{"fe80::/10"}, &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 9}, true},
		{"ipv6 zone outside", []string{"2001:db8::/32"}, &net.TCPAddr{IP: net.ParseIP("fe80::1"), Zone: "eth0", Port: 9}, false},
		{"cumulative first", []string{"10.0.0.0/8", "192.168.0.0/16"}, tcpPeer("10.0.0.1:9"), true},
		{"cumulative second", []string{"10.0.0.0/8", "192.168.0.0/16"}, tcpPeer("192.168.3.4:9"), true},
		{"cumulative neither", []string{"10.0.0.0/8", "192.168.0.0/16"}, tcpPeer("172.16.0.1:9"), false},
		{"several in one value", []string{"10.0.0.0/8, 192.168.0.0/16 ::1"}, tcpPeer("[::1]:9"), true},
		{"udp peer", []string{"10.0.0.0/8"}, &net.UDPAddr{IP: net.ParseIP("10.0.0.1"), Port: 9}, true},
		{"ip peer", []string{"10.0.0.0/8"}, &net.IPAddr{IP: net.ParseIP("10.0.0.1")}, true},
		{"nil peer", []string{"0.0.0.0/0"}, nil, false},
		{"nil tcp peer", []string{"0.0.0.0/0"}, (*net.TCPAddr)(nil), false},
		{"tcp peer without ip", []string{"0.0.0.0/0"}, &net.TCPAddr{Port: 9}, false},
		{"other addr type", []string{"10.0.0.0/8"}, otherAddr{"tcp", "10.0.0.1:9"}, true},
		{"other addr type outside", []string{"10.0.0.0/8"}, otherAddr{"tcp", "11.0.0.1:9"}, false},
		{"other unix type", []string{}, otherAddr{"unixpacket", "@x"}, true},
		{"other unparsable", []string{"0.0.0.0/0"}, otherAddr{"pipe", "pipe"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := defaultWhitelist()
			if tc.specs != nil {
				var err error
				if w, err = parseWhitelist(tc.specs); err != nil {
					t.Fatal(err)
				}
			}
			if got := w.allows(tc.peer); got != tc.want {
				t.Errorf("allows(%v) with %s = %v, want %v", tc.peer, w, got, tc.want)
			}
		})
	}
}

type otherAddr struct{ network, s string }

func (a otherAddr) Network() string { return a.network }
func (a otherAddr) String() string  { return a.s }

func TestParseWhitelist(t *testing.T) {
	tests := []struct {
		specs   []string
		want    string
		wantErr string
	}{
		{nil, "none", ""},
		{[]string{"", " "}, "none", ""},
		{[]string{"10.0.0.0/8"}, "10.0.0.0/8", ""},
		{[]string{"10.0.0.0/8", "10.0.0.0/255.0.0.0", "::/0"}, "10.0.0.0/8, ::/0", ""},
		{[]string{"10.0.0.0/8,192.168.0.0/16", "2001:db8::/32"}, "10.0.0.0/8, 192.168.0.0/16, 2001:db8::/32", ""},
		{[]string{"10.0.0.0/8", "10.0.0.1/8"}, "", `"10.0.0.1/8" has host bits set`},
		{[]string{"10.0.0.0/8", "nonsense"}, "", `"nonsense"`},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.specs, "|"), func(t *testing.T) {
			w, err := parseWhitelist(tc.specs)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := w.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
	if got, want := defaultWhitelist().String(), "0.0.0.0/0, ::/0"; got != want {
		t.Errorf("defaultWhitelist().String() = %q, want %q", got, want)
	}
}

func TestContiguousOnes(t *testing.T) {
	tests := []struct {
		v    uint32
		n    int
		isOK bool
	}{
		{0, 0, true},
		{0xffffffff, 32, true},
		{0xff000000, 8, true},
		{0xfffffffe, 31, true},
		{0x80000000, 1, true},
		{0x00ffffff, 0, false},
		{0xff00ff00, 8, false},
		{0x00000001, 0, false},
	}
	for _, tc := range tests {
		n, ok := contiguousOnes(tc.v)
		if ok != tc.isOK || (ok && n != tc.n) {
			t.Errorf("contiguousOnes(%#x) = %d, %v; want %d, %v", tc.v, n, ok, tc.n, tc.isOK)
		}
	}
}

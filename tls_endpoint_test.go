package main

import (
	"net"
	"strings"
	"testing"
)

func TestTLSServerEndpointSpellings(t *testing.T) {
	cases := []struct {
		name, in string
		want     tlsServerEndpoint
		err      string // substring of the error; "" for success
	}{
		{"tls port", "tls:8098", tlsServerEndpoint{address: ":8098"}, ""},
		{"tls port=", "tls:port=8098", tlsServerEndpoint{address: ":8098"}, ""},
		{"tls interface v4", "tls:8098:interface=127.0.0.1", tlsServerEndpoint{address: "127.0.0.1:8098"}, ""},
		{"tls interface v6 bare", "tls:8098:interface=::1", tlsServerEndpoint{address: "[::1]:8098"}, ""},
		{"tls interface v6 escaped", `tls:8098:interface=\:\:1`, tlsServerEndpoint{address: "[::1]:8098"}, ""},
		{"tls interface v6 bracketed", "tls:8098:interface=[2001:db8::1]", tlsServerEndpoint{address: "[2001:db8::1]:8098"}, ""},
		{"tls backlog ignored", "tls:8098:backlog=50", tlsServerEndpoint{address: ":8098"}, ""},
		{"tls port 0", "tls:0", tlsServerEndpoint{address: ":0"}, ""},
		{"ssl full", "ssl:8099:privateKey=k.pem:certKey=c.pem", tlsServerEndpoint{address: ":8099", certFile: "c.pem", keyFile: "k.pem"}, ""},
		{"ssl chain and interface", "ssl:8099:privateKey=/a/k.pem:certKey=/a/c.pem:extraCertChain=/a/ch.pem:interface=::", tlsServerEndpoint{address: "[::]:8099", certFile: "/a/c.pem", keyFile: "/a/k.pem", chainFile: "/a/ch.pem"}, ""},
		{"ssl port= keyword", "ssl:port=8099:certKey=c.pem:privateKey=k.pem", tlsServerEndpoint{address: ":8099", certFile: "c.pem", keyFile: "k.pem"}, ""},
		{"ssl combined pem", "ssl:8099:privateKey=both.pem", tlsServerEndpoint{address: ":8099", certFile: "both.pem", keyFile: "both.pem"}, ""},
		{"ssl without files uses options", "ssl:8099", tlsServerEndpoint{address: ":8099"}, ""},
		{"no port", "tls:", tlsServerEndpoint{}, "no port"},
		{"bad port", "tls:http", tlsServerEndpoint{}, `bad port "http"`},
		{"port out of range", "tls:70000", tlsServerEndpoint{}, "bad port"},
		{"two ports", "tls:1:2", tlsServerEndpoint{}, `unexpected field "2"`},
		{"tls has no privateKey", "tls:8098:privateKey=k.pem", tlsServerEndpoint{}, `unknown parameter "privateKey"`},
		{"unknown param", "ssl:8099:sslmethod=TLSv1_METHOD", tlsServerEndpoint{}, `unknown parameter "sslmethod"`},
		{"certKey alone", "ssl:8099:certKey=c.pem", tlsServerEndpoint{}, "certKey without privateKey"},
		{"chain alone", "ssl:8099:extraCertChain=c.pem", tlsServerEndpoint{}, "extraCertChain without"},
		{"empty key", "ssl:8099:privateKey=", tlsServerEndpoint{}, "empty privateKey"},
		{"interface not IP", "tls:8098:interface=localhost", tlsServerEndpoint{}, "not an IP address"},
		{"duplicate", "tls:8098:interface=::1:interface=::2", tlsServerEndpoint{}, "given twice"},
		{"trailing backslash", `tls:8098\`, tlsServerEndpoint{}, "trailing backslash"},
		{"unbalanced", "tls:8098:interface=[::1", tlsServerEndpoint{}, "unbalanced"},
		{"tcp is not tls", "tcp:8098", tlsServerEndpoint{}, "want tls:PORT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTLSServerEndpoint(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.in) {
					t.Fatalf("%q: err %v, want one naming the spelling and %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.in, err)
			}
			if *got != tc.want {
				t.Fatalf("%q: got %+v, want %+v", tc.in, *got, tc.want)
			}
		})
	}
}

func TestTLSClientEndpointSpellings(t *testing.T) {
	cases := []struct {
		name, in string
		want     tlsClientEndpoint
		err      string
	}{
		{"tls host port", "tls:broker.example:8099", tlsClientEndpoint{host: "broker.example", port: "8099"}, ""},
		{"tls ipv6 brackets", "tls:[2001:db8::1]:8099", tlsClientEndpoint{host: "2001:db8::1", port: "8099"}, ""},
		{"tls ipv6 escaped", `tls:\:\:1:8099`, tlsClientEndpoint{host: "::1", port: "8099"}, ""},
		{"tls trustRoots", "tls:h:8099:trustRoots=/etc/ca", tlsClientEndpoint{host: "h", port: "8099", trustRoots: "/etc/ca"}, ""},
		{"tls full", "tls:h:8099:trustRoots=ca.pem:certificate=me.crt:privateKey=me.key", tlsClientEndpoint{host: "h", port: "8099", trustRoots: "ca.pem", certFile: "me.crt", keyFile: "me.key"}, ""},
		{"tls certificate alone", "tls:h:8099:certificate=both.pem", tlsClientEndpoint{host: "h", port: "8099", certFile: "both.pem", keyFile: "both.pem"}, ""},
		{"tls keywords", "tls:host=h:port=8099", tlsClientEndpoint{host: "h", port: "8099"}, ""},
		{"ssl keywords", "ssl:host=h:port=8099", tlsClientEndpoint{host: "h", port: "8099"}, ""},
		{"ssl caCertsDir", "ssl:host=h:port=8099:caCertsDir=/etc/ssl/certs", tlsClientEndpoint{host: "h", port: "8099", trustRoots: "/etc/ssl/certs"}, ""},
		{"ssl client cert", "ssl:host=h:port=8099:certKey=me.crt:privateKey=me.key", tlsClientEndpoint{host: "h", port: "8099", certFile: "me.crt", keyFile: "me.key"}, ""},
		{"ssl positional", "ssl:h:8099", tlsClientEndpoint{host: "h", port: "8099"}, ""},
		{"ssl ipv6 brackets", "ssl:host=[::1]:port=8099", tlsClientEndpoint{host: "::1", port: "8099"}, ""},
		{"ssl ipv6 bare", "ssl:host=::1:port=8099", tlsClientEndpoint{host: "::1", port: "8099"}, ""},
		{"ipv6 unbracketed", "tls:::1:8099", tlsClientEndpoint{}, "IPv6 host goes in brackets"},
		{"no port", "tls:h", tlsClientEndpoint{}, "no port"},
		{"no host", "ssl:port=8099", tlsClientEndpoint{}, "no host"},
		{"port zero", "tls:h:0", tlsClientEndpoint{}, "bad port"},
		{"bad port", "tls:h:x", tlsClientEndpoint{}, `bad port "x"`},
		{"key without cert", "tls:h:1:privateKey=k", tlsClientEndpoint{}, "privateKey without certificate"},
		{"tls has no caCertsDir", "tls:h:1:caCertsDir=/x", tlsClientEndpoint{}, `unknown parameter "caCertsDir"`},
		{"ssl has no trustRoots", "ssl:host=h:port=1:trustRoots=/x", tlsClientEndpoint{}, `unknown parameter "trustRoots"`},
		{"empty trustRoots", "tls:h:1:trustRoots=", tlsClientEndpoint{}, "empty trustRoots"},
		{"duplicate", "ssl:host=a:host=b:port=1", tlsClientEndpoint{}, "host given twice"},
		{"bad host", "tls:[a:b]:1", tlsClientEndpoint{}, "bad host"},
		{"not tls", "tcp:h:1", tlsClientEndpoint{}, "want tls:HOST:PORT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTLSClientEndpoint(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), tc.in) {
					t.Fatalf("%q: err %v, want one naming the spelling and %q", tc.in, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%q: %v", tc.in, err)
			}
			if *got != tc.want {
				t.Fatalf("%q: got %+v, want %+v", tc.in, *got, tc.want)
			}
		})
	}
	ep, _ := parseTLSClientEndpoint("tls:[::1]:8099")
	if ep.address() != "[::1]:8099" {
		t.Errorf("address %q", ep.address())
	}
	if !isTLSEndpoint("tls:1") || !isTLSEndpoint("ssl:1") || isTLSEndpoint("tcp:1") || isTLSEndpoint("8098") {
		t.Error("isTLSEndpoint")
	}
}

// FuzzTLSEndpoint: the parsers never panic, and what they accept is usable:
// a listening address that net.SplitHostPort takes, a client port in range.
func FuzzTLSEndpoint(f *testing.F) {
	for _, s := range []string{
		"tls:8098:interface=::1", `tls:8098:interface=\:\:1`, "ssl:8099:privateKey=k:certKey=c:extraCertChain=x",
		"tls:[::1]:8099:trustRoots=/a:certificate=c:privateKey=k", "ssl:host=[::1]:port=1:caCertsDir=/d", "tls:a]:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ep, err := parseTLSServerEndpoint(s); err == nil {
			if _, _, err := net.SplitHostPort(ep.address); err != nil {
				t.Fatalf("%q gave address %q: %v", s, ep.address, err)
			}
			if ep.keyFile == "" && (ep.certFile != "" || ep.chainFile != "") {
				t.Fatalf("%q: files without a key: %+v", s, ep)
			}
		}
		if ep, err := parseTLSClientEndpoint(s); err == nil {
			if ep.host == "" || ep.port == "" || (ep.keyFile != "") != (ep.certFile != "") {
				t.Fatalf("%q: %+v", s, ep)
			}
			if _, _, err := net.SplitHostPort(ep.address()); err != nil {
				t.Fatalf("%q gave address %q: %v", s, ep.address(), err)
			}
		}
	})
}

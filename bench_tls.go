// bench_tls.go owns comet bench's TLS options (--tls, --tls-ca, --tls-pin,
// --tls-cert, --tls-key, --tls-server-name): with --tls every author and
// subscriber connection runs a TLS handshake (within the connection step's
// deadline) before VTP, so a TLS receiver and broadcaster can be measured.
// The server is verified as sendvo verifies it: by pin, else by chain and
// host name against --tls-ca or the system roots.
package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"net"
	"time"
)

// tlswBench is bench's TLS configuration.
type tlswBench struct {
	on                   bool
	ca, pin, cert, key   string
	serverName           string
	target, subscribeCfg *tls.Config // built by build
}

// tlswBenchFlags declares the TLS options on bench's flag set.
func tlswBenchFlags(fs *flag.FlagSet, t *tlswBench) {
	fs.BoolVar(&t.on, "tls", false, "connect to the receiver and the broadcaster over TLS")
	fs.StringVar(&t.ca, "tls-ca", "", "PEM bundle that verifies the broker (default: the system roots)")
	fs.StringVar(&t.pin, "tls-pin", "", "accept only the broker whose certificate has this pin (sha256:HEX); no host name check then")
	fs.StringVar(&t.cert, "tls-cert", "", "client certificate (PEM) for a broker that asks for one")
	fs.StringVar(&t.key, "tls-key", "", "its key (PEM; default: in --tls-cert)")
	fs.StringVar(&t.serverName, "tls-server-name", "", "host name the broker's certificate must name (default: the host of --target / --subscribe)")
}

// build checks the options and makes the client configurations.
func (t *tlswBench) build(target, subscribe string) error {
	if !t.on {
		if t.ca != "" || t.pin != "" || t.cert != "" || t.key != "" || t.serverName != "" {
			return fmt.Errorf("--tls-ca, --tls-pin, --tls-cert, --tls-key and --tls-server-name need --tls")
		}
		return nil
	}
	mk := func(addr string) (*tls.Config, error) {
		name := t.serverName
		if name == "" {
			name, _, _ = net.SplitHostPort(addr)
		}
		return tlsClientConfig(tlsClientOptions{serverName: name, rootsPath: t.ca, pin: t.pin, certFile: t.cert, keyFile: t.key})
	}
	var err error
	if t.target, err = mk(target); err != nil {
		return err
	}
	t.subscribeCfg, err = mk(subscribe)
	return err
}

// handshake turns a dialled connection into a TLS one (when --tls), within
// deadline; on error the connection is closed.
func (t *tlswBench) handshake(ctx context.Context, c net.Conn, err error, cfg *tls.Config, deadline time.Time) (net.Conn, error) {
	if err != nil || cfg == nil {
		return c, err
	}
	tc := tls.Client(c, cfg)
	if err := tlsHandshake(ctx, tc, time.Until(deadline)); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS (%s): %w", tlsFailureReason(err), err)
	}
	return tc, nil
}

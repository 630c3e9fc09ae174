// sendvo.go owns the author tool, `comet sendvo` (also run as comet-sendvo):
// it sends one event to a broker's receiver and waits for the matching ack
// or nak. Unlike Comet's, it gives up after a timeout (contract difference 3).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"
)

func init() {
	registerCommand(&command{name: "sendvo", summary: "send one event to a broker and wait for its ack or nak", run: runSendvo})
}

func runSendvo(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("comet sendvo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	host := "localhost"
	port := defaultReceivePort
	file := "-"
	timeout := defaultReceiverTimeout
	verbose := 0
	for _, n := range []string{"h", "host"} {
		fs.StringVar(&host, n, host, "broker host")
	}
	for _, n := range []string{"p", "port"} {
		fs.IntVar(&port, n, port, "broker receive port")
	}
	for _, n := range []string{"f", "file"} {
		fs.StringVar(&file, n, file, "event file (- for standard input)")
	}
	fs.DurationVar(&timeout, "timeout", timeout, "give up if no ack or nak arrives within this time")
	signKey := ""
	fs.StringVar(&signKey, "sign-key", "", "sign the event with this secret key (from comet keygen) before sending")
	useTLS := false
	var tlsOpts tlsClientOptions
	fs.BoolVar(&useTLS, "tls", false, "submit over TLS (implied by a tls: or ssl: target)")
	fs.StringVar(&tlsOpts.rootsPath, "tls-ca", "", "PEM file or directory of *.pem that verifies the broker (default: the system roots)")
	fs.StringVar(&tlsOpts.certFile, "tls-cert", "", "our certificate (PEM), if the broker asks for one")
	fs.StringVar(&tlsOpts.keyFile, "tls-key", "", "its key (PEM)")
	fs.StringVar(&tlsOpts.pin, "tls-pin", "", "accept only a broker with this pin (sha256:HEX); no host name check then")
	for _, n := range []string{"v", "verbose"} {
		fs.Var(counter{&verbose, 1}, n, "print the reply")
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: comet sendvo [-h HOST] [-p PORT] [-f FILE] [--timeout D] [--sign-key FILE] [--tls [--tls-ca F] [--tls-pin sha256:HEX] [--tls-cert F --tls-key F]]\n       comet sendvo [HOST[:PORT] | tls:HOST:PORT] FILE")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	// The later Comet's form: comet-sendvo [target] event.
	switch fs.NArg() {
	case 0:
	case 1:
		file = fs.Arg(0)
	case 2:
		hp := fs.Arg(0)
		if isTLSEndpoint(hp) {
			ep, err := parseTLSClientEndpoint(hp)
			if err != nil {
				fmt.Fprintf(stderr, "comet sendvo: %v\n", err)
				return exitUsage
			}
			useTLS = true
			host = ep.host
			port, _ = strconv.Atoi(ep.port)
			if ep.trustRoots != "" {
				tlsOpts.rootsPath = ep.trustRoots
			}
			if ep.certFile != "" {
				tlsOpts.certFile, tlsOpts.keyFile = ep.certFile, ep.keyFile
			}
		} else if h, p, err := net.SplitHostPort(hp); err == nil {
			n, err := strconv.Atoi(p)
			if err != nil {
				fmt.Fprintf(stderr, "comet sendvo: bad port in %q\n", hp)
				return exitUsage
			}
			host, port = h, n
		} else {
			host = hp
		}
		file = fs.Arg(1)
	default:
		fmt.Fprintln(stderr, "comet sendvo: too many arguments")
		return exitUsage
	}
	if port <= 0 || port > 65535 || timeout <= 0 {
		fmt.Fprintln(stderr, "comet sendvo: port must be 1-65535 and --timeout positive")
		return exitUsage
	}
	var dial func(addr string, timeout time.Duration) (net.Conn, error)
	if !useTLS && (tlsOpts.rootsPath != "" || tlsOpts.certFile != "" || tlsOpts.keyFile != "" || tlsOpts.pin != "") {
		fmt.Fprintln(stderr, "comet sendvo: --tls-ca, --tls-cert, --tls-key and --tls-pin need --tls or a tls: target")
		return exitUsage
	}
	if useTLS {
		tlsOpts.serverName = host
		cfg, err := tlsClientConfig(tlsOpts)
		if err != nil {
			fmt.Fprintf(stderr, "comet sendvo: %v\n", err)
			return exitUsage
		}
		dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			return tlsDialSubmit(addr, cfg, timeout)
		}
	}
	var raw []byte
	var err error
	if file == "-" {
		raw, err = io.ReadAll(stdin)
	} else {
		raw, err = os.ReadFile(file)
	}
	if err != nil {
		fmt.Fprintf(stderr, "comet sendvo: %v\n", err)
		return exitUsage
	}
	name := file
	if file == "-" {
		name = "standard input"
	}
	if signKey != "" {
		key, err := loadSecretKeyFile(signKey)
		if err != nil {
			fmt.Fprintf(stderr, "comet sendvo: %s: %v\n", signKey, err)
			return exitFail
		}
		signed, err := signEvent(raw, key, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "comet sendvo: signing %s: %v\n", name, err)
			return exitFail
		}
		raw = signed
	}
	reply, err := sendEventVia(dial, net.JoinHostPort(host, strconv.Itoa(port)), raw, timeout)
	if err != nil {
		fmt.Fprintf(stderr, "comet sendvo: %s: %v\n", name, err)
		return exitFail
	}
	if verbose > 0 {
		stdout.Write(reply.marshal())
	}
	if reply.role == "nak" {
		reason := reply.result
		if reason == "" {
			reason = "no reason given"
		}
		fmt.Fprintf(stderr, "comet sendvo: %s: nak from broker: %s\n", name, reason)
		return exitFail
	}
	fmt.Fprintf(stdout, "ack received for %s\n", reply.origin)
	return exitOK
}

// sendEvent submits one event over plain TCP and waits for the ack or nak
// whose Origin is its ivorn. Replies for other ivorns and unreadable ones are
// skipped.
func sendEvent(addr string, raw []byte, timeout time.Duration) (*transport, error) {
	return sendEventVia(nil, addr, raw, timeout)
}

// tlsSubmitError is a TLS failure while submitting, labelled for the user.
type tlsSubmitError struct {
	addr string
	err  error
}

func (e *tlsSubmitError) Error() string {
	return fmt.Sprintf("TLS with %s failed (%s): %v", e.addr, tlsFailureReason(e.err), e.err)
}
func (e *tlsSubmitError) Unwrap() error { return e.err }

// tlsDialSubmit dials addr and completes the TLS handshake within timeout.
func tlsDialSubmit(addr string, cfg *tls.Config, timeout time.Duration) (net.Conn, error) {
	raw, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, cfg)
	if err := tlsHandshake(context.Background(), conn, timeout); err != nil {
		raw.Close()
		return nil, &tlsSubmitError{addr, err}
	}
	return conn, nil
}

// sendEventVia is sendEvent over a connection from dial (nil: plain TCP).
func sendEventVia(dial func(addr string, timeout time.Duration) (net.Conn, error), addr string, raw []byte, timeout time.Duration) (*transport, error) {
	isTLS := dial != nil
	if dial == nil {
		dial = func(addr string, timeout time.Duration) (net.Conn, error) {
			return net.DialTimeout("tcp", addr, timeout)
		}
	}
	doc, err := parseDocument(raw)
	if err != nil {
		return nil, fmt.Errorf("not a well-formed XML document: %v", err)
	}
	role, _ := doc.elem.attr("role")
	if !isVOEventRole(role) {
		return nil, fmt.Errorf("not a VOEvent (root role %q)", role)
	}
	ivorn, ok := doc.elem.attr("ivorn")
	if !ok {
		return nil, errors.New("the event has no ivorn")
	}
	deadline := time.Now().Add(timeout)
	conn, err := dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	// Over TLS 1.3 a server that refuses our certificate says so only after
	// our handshake has finished: its alert comes with the first read.
	tlsAlert := func(err error) error {
		if _, ok := tlsRemoteAlert(err); isTLS && ok {
			return &tlsSubmitError{addr, err}
		}
		return nil
	}
	if err := writeFrame(conn, raw); err != nil {
		if te := tlsAlert(err); te != nil {
			return nil, te
		}
		if isTLS {
			// The server may have refused us with an alert and closed
			// before our write: the alert is still there to be read.
			conn.SetReadDeadline(time.Now().Add(time.Second))
			var b [1]byte
			if _, rerr := conn.Read(b[:]); rerr != nil {
				if te := tlsAlert(rerr); te != nil {
					return nil, te
				}
			}
		}
		return nil, fmt.Errorf("sending to %s: %v", addr, err)
	}
	for {
		msg, err := readFrame(conn, defaultMaxMessageSize)
		if err != nil {
			if te := tlsAlert(err); te != nil {
				return nil, te
			}
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				return nil, fmt.Errorf("no ack or nak from %s within %s", addr, timeout)
			case errors.Is(err, io.EOF):
				return nil, fmt.Errorf("%s closed the connection without an ack or nak", addr)
			}
			return nil, fmt.Errorf("reading from %s: %v", addr, err)
		}
		tr, err := parseTransport(msg)
		if err != nil || (tr.role != "ack" && tr.role != "nak") || tr.origin != ivorn {
			continue
		}
		return tr, nil
	}
}

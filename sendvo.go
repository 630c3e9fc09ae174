// sendvo.go owns the author tool, `comet sendvo` (also run as comet-sendvo):
// it sends one event to a broker's receiver and waits for the matching ack
// or nak. Unlike Comet's, it gives up after a timeout (contract difference 3).
package main

import (
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
	for _, n := range []string{"v", "verbose"} {
		fs.Var(counter{&verbose, 1}, n, "print the reply")
	}
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: comet sendvo [-h HOST] [-p PORT] [-f FILE] [--timeout D] [--sign-key FILE]\n       comet sendvo [HOST[:PORT]] FILE")
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
		if h, p, err := net.SplitHostPort(hp); err == nil {
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
	reply, err := sendEvent(net.JoinHostPort(host, strconv.Itoa(port)), raw, timeout)
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

// sendEvent submits one event and waits for the ack or nak whose Origin is
// its ivorn. Replies for other ivorns and unreadable ones are skipped.
func sendEvent(addr string, raw []byte, timeout time.Duration) (*transport, error) {
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
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(deadline)
	if err := writeFrame(conn, raw); err != nil {
		return nil, fmt.Errorf("sending to %s: %v", addr, err)
	}
	for {
		msg, err := readFrame(conn, defaultMaxMessageSize)
		if err != nil {
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

// config.go owns the broker's command line: the options of twistd comet
// (Comet 3.1 spellings first, the later Comet's as aliases), their defaults,
// and the checks made before anything starts. Each option is declared once
// (newBrokerArgs), with its help line; a parse returns the whole
// configuration as a value, the handler plugins' options included, and
// keeps no state of its own. Parsing reads the environment (for the event
// database's default directory) and the whitelist files it is given (to
// check them), and nothing else: no network, no writes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
)

// Protocol timings and limits. Comet's values; tests shorten them.
const (
	defaultIamaliveInterval     = 60 * time.Second
	defaultReceiverTimeout      = 20 * time.Second
	defaultSubscriberTimeout    = 120 * time.Second
	defaultMaxOutstandingAcks   = 10
	defaultSubscriberQueue      = 4096 // events waiting for one subscriber
	defaultMaxConnections       = 1024 // concurrent connections per listener
	defaultSubscriberQueueBytes = 8 << 20
	defaultFilterBudget         = 20 * time.Millisecond
	defaultWriteTimeout         = 30 * time.Second
	defaultDialTimeout          = 30 * time.Second
	defaultBackoffBase          = time.Second
	defaultBackoffMax           = 60 * time.Second
	defaultBackoffReset         = 30 * time.Second
	defaultTestInterval         = 3600 * time.Second
)

// endpoint is a listen address: network "tcp" or "unix".
type endpoint struct {
	network, address string
}

func (e endpoint) String() string { return e.network + ":" + e.address }

// config is everything the broker needs to run.
type config struct {
	receive, broadcast []endpoint
	localIVO           string
	eventDB            string
	eventDBExpiry      time.Duration
	testInterval       time.Duration
	authorWhitelist    []string
	subscriberWL       []string
	remotes            []string // host:port
	filters            []string
	maxMessageSize     int
	httpAddr           string
	keyrings           []string
	requireSignature   bool
	verbosity          int // 0 info, >0 more, <0 less
	pidfile, logfile   string
	maxConnections     int
	subscriberQueue    int
	handlerQueue       int
	handlerQueueBytes  int64

	// Limits against untrusted peers (contract section 10).
	maxConnectionsPerHost int
	maxInflightBytes      int64
	subscriberQueueBytes  int64
	filterBudget          time.Duration
	handlerWorkers        int

	handlers []handlerPlugin // the handler plugins' parsed options

	kafka kafkaConfig  // the Kafka bridge (contract section 8; kafka_bridge_config.go)
	spool spoolwConfig // the spool and replay (spoolwire.go)
	tls   tlswConfig   // TLS and the peers file (contract section 7; tlswire.go)

	// Timings, not options: Comet's values unless a test changes them.
	iamaliveInterval   time.Duration
	receiverTimeout    time.Duration
	subscriberTimeout  time.Duration
	maxOutstandingAcks int
	writeTimeout       time.Duration
	dialTimeout        time.Duration
	backoffBase        time.Duration
	backoffMax         time.Duration
	backoffReset       time.Duration
}

func defaultConfig() *config {
	return &config{
		eventDB:           defaultEventDBDir(),
		eventDBExpiry:     defaultEventDBExpiry,
		testInterval:      defaultTestInterval,
		maxMessageSize:    defaultMaxMessageSize,
		maxConnections:    defaultMaxConnections,
		subscriberQueue:   defaultSubscriberQueue,
		handlerQueue:      defaultHandlerQueue,
		handlerQueueBytes: defaultHandlerQueueBytes,

		maxConnectionsPerHost: defaultMaxConnectionsPerHost,
		maxInflightBytes:      defaultMaxInflightBytes,
		subscriberQueueBytes:  defaultSubscriberQueueBytes,
		filterBudget:          defaultFilterBudget,
		handlerWorkers:        defaultHandlerWorkers,
		iamaliveInterval:      defaultIamaliveInterval,
		receiverTimeout:       defaultReceiverTimeout,
		subscriberTimeout:     defaultSubscriberTimeout,
		maxOutstandingAcks:    defaultMaxOutstandingAcks,
		writeTimeout:          defaultWriteTimeout,
		dialTimeout:           defaultDialTimeout,
		backoffBase:           defaultBackoffBase,
		backoffMax:            defaultBackoffMax,
		backoffReset:          defaultBackoffReset,
		spool:                 spoolwDefaultConfig(),
	}
}

// usageError is a command line that cannot run; main exits 2 with it.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// optionalEndpoint is --receive / --broadcast: on its own it turns the role
// on at the port of --receive-port / --broadcast-port; with a value it adds
// that endpoint.
type optionalEndpoint struct {
	on        *bool
	endpoints *[]endpoint
}

func (o optionalEndpoint) String() string   { return "" }
func (o optionalEndpoint) IsBoolFlag() bool { return true }
func (o optionalEndpoint) Set(s string) error {
	if s == "true" {
		*o.on = true
		return nil
	}
	if s == "false" {
		return nil
	}
	e, err := parseServerEndpoint(s)
	if err != nil {
		return err
	}
	*o.endpoints = append(*o.endpoints, e)
	return nil
}

// parseServerEndpoint reads tcp:PORT[:interface=ADDR][:backlog=N], unix:PATH
// (with optional :mode=... and :lockfile=...), or a bare port number.
func parseServerEndpoint(s string) (endpoint, error) {
	if isTLSEndpoint(s) {
		return tlswParseServerEndpoint(s) // tls:PORT[:interface=ADDR], ssl:PORT:privateKey=...
	}
	if p, err := strconv.Atoi(s); err == nil {
		if p < 0 || p > 65535 {
			return endpoint{}, fmt.Errorf("invalid endpoint %q: port out of range", s)
		}
		return endpoint{"tcp", ":" + strconv.Itoa(p)}, nil
	}
	kind, rest, ok := strings.Cut(s, ":")
	if !ok || rest == "" {
		return endpoint{}, fmt.Errorf("invalid endpoint %q (want tcp:PORT[:interface=ADDR] or unix:PATH)", s)
	}
	switch kind {
	case "tcp", "tcp6":
		port, params, _ := strings.Cut(rest, ":")
		port = strings.TrimPrefix(port, "port=")
		p, err := strconv.Atoi(port)
		if err != nil || p < 0 || p > 65535 {
			return endpoint{}, fmt.Errorf("invalid endpoint %q: bad port %q", s, port)
		}
		host := ""
		// key=value parameters separated by ':'; an IPv6 interface
		// address has colons of its own, so a value runs to the next ":key=".
		for params != "" {
			n := paramKeyLen(params)
			if n < 0 {
				return endpoint{}, fmt.Errorf("invalid endpoint %q: bad parameter %q", s, params)
			}
			key := params[:n-1]
			params = params[n:]
			value := params
			if next := nextParam(params); next >= 0 {
				value, params = params[:next], params[next+1:]
			} else {
				params = ""
			}
			switch key {
			case "interface":
				host = value
			case "backlog":
			default:
				return endpoint{}, fmt.Errorf("invalid endpoint %q: unknown parameter %q", s, key)
			}
		}
		return endpoint{"tcp", net.JoinHostPort(host, strconv.Itoa(p))}, nil
	case "unix":
		path := rest
		if strings.HasPrefix(path, "address=") {
			path = path[len("address="):]
		}
		for _, suffix := range []string{":mode=", ":lockfile="} {
			if i := strings.Index(path, suffix); i >= 0 {
				path = path[:i]
			}
		}
		if path == "" {
			return endpoint{}, fmt.Errorf("invalid endpoint %q: empty path", s)
		}
		return endpoint{"unix", path}, nil
	}
	return endpoint{}, fmt.Errorf("invalid endpoint %q (want tcp:PORT[:interface=ADDR] or unix:PATH)", s)
}

// paramKeyLen is the length of the "key=" (lower-case letters, then '=')
// that s starts with, or -1.
func paramKeyLen(s string) int {
	i := 0
	for i < len(s) && 'a' <= s[i] && s[i] <= 'z' {
		i++
	}
	if i == 0 || i == len(s) || s[i] != '=' {
		return -1
	}
	return i + 1
}

// nextParam is the index of the first ':' in s that starts a ":key=", or
// -1 (regexp would cost the binary a quarter of a megabyte for this).
func nextParam(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' && paramKeyLen(s[i+1:]) > 0 {
			return i
		}
	}
	return -1
}

// parseRemote reads --remote's host[:port] (and Twisted's tcp:HOST[:PORT]),
// with 8099 as the default port.
func parseRemote(s string) (string, error) {
	t := strings.TrimPrefix(s, "tcp:")
	if t == "" {
		return "", fmt.Errorf("invalid remote %q", s)
	}
	host, port, err := net.SplitHostPort(t)
	if err != nil {
		// No port, or an IPv6 address without brackets.
		if strings.Count(t, ":") > 1 && !strings.HasPrefix(t, "[") {
			return net.JoinHostPort(t, strconv.Itoa(defaultBroadcastPort)), nil
		}
		if strings.Contains(t, ":") {
			return "", fmt.Errorf("invalid remote %q (want host[:port])", s)
		}
		return net.JoinHostPort(t, strconv.Itoa(defaultBroadcastPort)), nil
	}
	p, err := strconv.Atoi(port)
	if host == "" || err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("invalid remote %q (want host[:port])", s)
	}
	return net.JoinHostPort(host, port), nil
}

// stringList is a repeatable string option.
type stringList struct{ v *[]string }

func (l stringList) String() string { return "" }
func (l stringList) Set(s string) error {
	*l.v = append(*l.v, s)
	return nil
}

// counter is -v / -q: each use moves the level by one.
type counter struct {
	v    *int
	step int
}

func (c counter) String() string   { return "" }
func (c counter) IsBoolFlag() bool { return true }
func (c counter) Set(s string) error {
	if s == "true" {
		*c.v += c.step
	}
	return nil
}

// option is one line of --help, in the order of twistd comet --help.
type option struct {
	names []string // spellings, the primary first
	arg   string   // placeholder for a value, "" for a switch
	usage string
}

// optionSet declares each option once: its flag under every spelling, and
// its line of --help.
type optionSet struct {
	fs   *flag.FlagSet
	help []option
}

// add declares v under names (the primary first) with its help line.
func (o *optionSet) add(v flag.Value, arg, usage string, names ...string) {
	for _, n := range names {
		o.fs.Var(v, n, "")
	}
	o.help = append(o.help, option{names, arg, usage})
}

// Typed shorthands for add.
func (o *optionSet) str(p *string, arg, usage string, names ...string) {
	o.add((*optString)(p), arg, usage, names...)
}
func (o *optionSet) integer(p *int, arg, usage string, names ...string) {
	o.add((*optInt)(p), arg, usage, names...)
}
func (o *optionSet) boolean(p *bool, usage string, names ...string) {
	o.add((*optBool)(p), "", usage, names...)
}
func (o *optionSet) duration(p *time.Duration, arg, usage string, names ...string) {
	o.add((*optDuration)(p), arg, usage, names...)
}
func (o *optionSet) list(p *[]string, arg, usage string, names ...string) {
	o.add(stringList{p}, arg, usage, names...)
}

// flag.Value implementations for the shorthands (flag's own are not
// exported).
type (
	optString   string
	optInt      int
	optBool     bool
	optDuration time.Duration
)

func (v *optString) String() string     { return string(*v) }
func (v *optString) Set(s string) error { *v = optString(s); return nil }
func (v *optInt) String() string        { return strconv.Itoa(int(*v)) }
func (v *optInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("want an integer, got %q", s)
	}
	*v = optInt(n)
	return nil
}
func (v *optBool) String() string   { return strconv.FormatBool(bool(*v)) }
func (v *optBool) IsBoolFlag() bool { return true }
func (v *optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false, got %q", s)
	}
	*v = optBool(b)
	return nil
}
func (v *optDuration) String() string { return time.Duration(*v).String() }
func (v *optDuration) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 30s or 5m, got %q", s)
	}
	*v = optDuration(d)
	return nil
}

// brokerArgs is one parse of the broker's command line: the configuration
// and the switches that only shape it (the role switches and their ports).
type brokerArgs struct {
	cfg                        *config
	receiveOn, broadcastOn     bool
	receivePort, broadcastPort int
	nodaemon                   bool
	opts                       optionSet
}

// newBrokerArgs declares every broker option, once, on a fresh flag set
// whose values land in a fresh default configuration.
func newBrokerArgs() *brokerArgs {
	a := &brokerArgs{cfg: defaultConfig(), receivePort: defaultReceivePort, broadcastPort: defaultBroadcastPort}
	cfg := a.cfg
	o := &a.opts
	o.fs = flag.NewFlagSet("comet", flag.ContinueOnError)
	o.fs.SetOutput(io.Discard)

	o.add(optionalEndpoint{&a.receiveOn, &cfg.receive}, "", "listen for authors' events (also --receive=tcp:PORT[:interface=ADDR], tls:PORT[:interface=ADDR], ssl:PORT:... or unix:PATH; repeatable)", "r", "receive")
	o.add(optionalEndpoint{&a.broadcastOn, &cfg.broadcast}, "", "listen for subscribers and relay events to them (same endpoint forms)", "b", "broadcast")
	o.integer(&a.receivePort, "PORT", "TCP port for receiving events (default 8098)", "receive-port")
	o.integer(&a.broadcastPort, "PORT", "TCP port for broadcasting events (default 8099)", "broadcast-port")
	o.str(&cfg.localIVO, "IVOID", "this broker's IVOA identifier; required with --receive or --broadcast", "local-ivo")
	o.str(&cfg.eventDB, "DIR", "directory of the event database (default $STATE_DIRECTORY, else $XDG_STATE_HOME/comet or ~/.local/state/comet, else a private comet-UID directory in the temporary directory; never /tmp itself)", "eventdb")
	o.add(funcValue(func(s string) error {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return fmt.Errorf("want a whole number of seconds, got %q", s)
		}
		cfg.testInterval = time.Duration(n) * time.Second
		return nil
	}), "SECONDS", "interval between test event broadcasts; 0 disables (default 3600)", "broadcast-test-interval")
	o.list(&cfg.authorWhitelist, "NETWORK", "network (CIDR or address/netmask) allowed to submit; repeatable (default all IPv4 and IPv6)", "author-whitelist", "receive-whitelist")
	o.list(&cfg.subscriberWL, "NETWORK", "network allowed to subscribe; repeatable (default all IPv4 and IPv6)", "subscriber-whitelist", "broadcast-whitelist")
	o.list(&cfg.remotes, "HOST[:PORT]", "subscribe to a remote broker (port 8099 by default; tls:HOST:PORT over TLS); repeatable", "remote", "subscribe")
	o.list(&cfg.filters, "XPATH", "XPath 1.0 filter sent to every remote; repeatable", "filter")
	cfg.handlers = handlerPlugins()
	for _, p := range cfg.handlers {
		before := map[string]bool{}
		o.fs.VisitAll(func(f *flag.Flag) { before[f.Name] = true })
		p.addFlags(o.fs)
		o.fs.VisitAll(func(f *flag.Flag) {
			if !before[f.Name] {
				arg, usage := flag.UnquoteUsage(f)
				if arg == "value" || arg == "string" {
					arg = "VALUE"
				}
				o.help = append(o.help, option{[]string{f.Name}, strings.ToUpper(arg), usage})
			}
		})
	}
	o.add(counter{&cfg.verbosity, 1}, "", "more logging; repeatable", "v", "verbose")
	o.add(counter{&cfg.verbosity, -1}, "", "less logging; repeatable", "q", "quiet")
	o.boolean(&a.nodaemon, "accepted and ignored: comet always runs in the foreground", "n", "nodaemon")
	o.str(&cfg.pidfile, "FILE", "write the process ID to FILE", "pidfile")
	o.str(&cfg.logfile, "FILE", "log to FILE instead of stderr (reopened on SIGHUP)", "l", "logfile")
	// Options of our own.
	o.list(&cfg.keyrings, "FILE", "OpenPGP keyring of trusted event signers; repeatable", "keyring")
	o.boolean(&cfg.requireSignature, "refuse (receiver) or drop (subscriber) events without a valid signature", "require-signature")
	o.str(&cfg.httpAddr, "ADDR", "serve /healthz, /metrics, /status, /events and a status page at / on ADDR (e.g. 127.0.0.1:8090)", "http")
	o.integer(&cfg.maxMessageSize, "BYTES", "largest message accepted (default 1048576; Comet's is 99999)", "max-message-size")
	o.duration(&cfg.eventDBExpiry, "DURATION", "forget events older than this (default 720h, 30 days)", "eventdb-expiry")
	o.integer(&cfg.maxConnections, "N", "concurrent connections per listener (default 1024)", "max-connections")
	o.integer(&cfg.subscriberQueue, "N", "events queued for one subscriber before it is dropped (default 4096)", "subscriber-queue")
	o.integer(&cfg.handlerQueue, "N", "events waiting for handlers before new ones are dropped and counted (default 1024)", "handler-queue")
	o.integer(&cfg.handlerWorkers, "N", "events one handler handles at once (default 4)", "handler-workers")
	o.integer(&cfg.maxConnectionsPerHost, "N", "connections per listener from one address, one /64 for IPv6 (default 64)", "max-connections-per-host")
	o.bytes(&cfg.maxInflightBytes, "BYTES", "bytes of messages being read or parsed at once, all connections together (default 16MiB)", "max-inflight-bytes")
	o.bytes(&cfg.subscriberQueueBytes, "BYTES", "bytes queued for one subscriber before it is dropped (default 8MiB)", "subscriber-queue-bytes")
	o.bytes(&cfg.handlerQueueBytes, "BYTES", "bytes waiting for the handlers, all together (default 8MiB)", "handler-queue-bytes")
	o.duration(&cfg.filterBudget, "DURATION", "CPU one subscriber's filters may spend on one event (default 20ms)", "filter-budget")
	kafkaAddOptions(o, &cfg.kafka)
	addSpoolOptions(o, cfg)
	addTLSOptions(o, cfg)
	return a
}

func (o *optionSet) bytes(p *int64, arg, usage string, names ...string) {
	o.add((*optBytes)(p), arg, usage, names...)
}

// optBytes is a byte size: an integer of bytes, or with KiB, MiB, GiB
// (binary) or KB, MB, GB (decimal).
type optBytes int64

func (v *optBytes) String() string { return strconv.FormatInt(int64(*v), 10) }
func (v *optBytes) Set(s string) error {
	n, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*v = optBytes(n)
	return nil
}

// parseByteSize parses a size in bytes: an integer, optionally followed by
// KiB, MiB or GiB (powers of 1024) or KB, MB or GB (powers of 1000), with
// or without a space; "B" alone means bytes.
func parseByteSize(str string) (int64, error) {
	t := strings.TrimSpace(str)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("byte size %q: want an integer number of bytes, optionally with KiB, MiB, GiB, KB, MB or GB", str)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("byte size %q: too large", str)
	}
	var mult int64
	switch unit := strings.TrimSpace(t[i:]); strings.ToLower(unit) {
	case "", "b":
		mult = 1
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "kb":
		mult = 1e3
	case "mb":
		mult = 1e6
	case "gb":
		mult = 1e9
	default:
		return 0, fmt.Errorf("byte size %q: unknown unit %q (want KiB, MiB, GiB, KB, MB or GB)", str, unit)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("byte size %q: too large", str)
	}
	return n * mult, nil
}

// funcValue is an option whose value a function checks and stores.
type funcValue func(string) error

func (f funcValue) String() string     { return "" }
func (f funcValue) Set(s string) error { return f(s) }

// writeHelp prints the options in the order of twistd comet --help.
func writeHelp(w io.Writer, opts []option) {
	fmt.Fprintln(w, "Usage: comet [options]\n       comet COMMAND [options]   (commands: "+strings.Join(commandNames(), ", ")+")\n\nOptions:")
	for _, o := range opts {
		var names []string
		for _, n := range o.names {
			if len(n) == 1 {
				names = append(names, "-"+n)
			} else {
				names = append(names, "--"+n)
			}
		}
		left := strings.Join(names, ", ")
		if o.arg != "" {
			left += " " + o.arg
		}
		if len(left) > 40 {
			fmt.Fprintf(w, "  %s\n  %-40s %s\n", left, "", o.usage)
		} else {
			fmt.Fprintf(w, "  %-40s %s\n", left, o.usage)
		}
	}
}

// preprocessArgs lets --receive and --broadcast take their endpoint as the
// next argument (the later Comet's --receive tcp:PORT), and lets one
// whitelist option take several networks (--receive-whitelist A B).
func preprocessArgs(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		out = append(out, a)
		if a == "--" {
			out = append(out, args[i+1:]...)
			break
		}
		name := strings.TrimLeft(a, "-")
		if !strings.HasPrefix(a, "-") || strings.Contains(name, "=") {
			continue
		}
		switch name {
		case "r", "receive", "b", "broadcast":
			if i+1 < len(args) && looksLikeEndpoint(args[i+1]) {
				out[len(out)-1] = a + "=" + args[i+1]
				i++
			}
		case "author-whitelist", "receive-whitelist", "subscriber-whitelist", "broadcast-whitelist":
			// The first value is the option's own; following ones that
			// look like networks repeat the option.
			if i+1 < len(args) {
				out = append(out, args[i+1])
				i++
				for i+1 < len(args) && looksLikeNetwork(args[i+1]) {
					out = append(out, a, args[i+1])
					i++
				}
			}
		}
	}
	return out
}

func looksLikeEndpoint(s string) bool {
	if isTLSEndpoint(s) {
		return true
	}
	if _, err := strconv.Atoi(s); err == nil {
		return true
	}
	return strings.HasPrefix(s, "tcp:") || strings.HasPrefix(s, "tcp6:") || strings.HasPrefix(s, "unix:")
}

func looksLikeNetwork(s string) bool {
	if strings.HasPrefix(s, "-") || s == "" {
		return false
	}
	addr, _, _ := strings.Cut(s, "/")
	return net.ParseIP(addr) != nil
}

// parseBrokerArgs turns the command line into a config. errHelp means
// --help was asked for (the help text is written to stdout). Parsing reads
// the environment for the event database's default directory and reads the
// whitelist files named by the whitelist options, to check them; it touches
// no network and writes nothing. Every call returns a configuration of its
// own: nothing is kept between calls.
func parseBrokerArgs(args []string, stdout io.Writer) (*config, error) {
	a := newBrokerArgs()
	cfg := a.cfg
	if err := a.opts.fs.Parse(preprocessArgs(args)); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeHelp(stdout, a.opts.help)
			return nil, flag.ErrHelp
		}
		return nil, usagef("%v", err)
	}
	if a.opts.fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", a.opts.fs.Arg(0))
	}
	if a.receiveOn && len(cfg.receive) == 0 {
		cfg.receive = append(cfg.receive, endpoint{"tcp", ":" + strconv.Itoa(a.receivePort)})
	}
	if a.broadcastOn && len(cfg.broadcast) == 0 {
		cfg.broadcast = append(cfg.broadcast, endpoint{"tcp", ":" + strconv.Itoa(a.broadcastPort)})
	}
	if err := kafkaResolveOptions(&cfg.kafka); err != nil {
		return nil, err
	}
	if len(cfg.receive)+len(cfg.broadcast)+len(cfg.remotes) == 0 && !cfg.kafka.consumes() {
		return nil, usagef("no service requested: give --receive, --broadcast, --remote or --kafka-topic (see --help)")
	}
	if cfg.localIVO != "" && !validIVOID(cfg.localIVO) {
		return nil, usagef("--local-ivo: invalid IVOA identifier %q; required format: ivo://authorityID/resourceKey#local_ID", cfg.localIVO)
	}
	if cfg.localIVO == "" && len(cfg.receive)+len(cfg.broadcast) > 0 {
		return nil, usagef("IVOA identifier required (--local-ivo) with --receive or --broadcast")
	}
	for i, r := range cfg.remotes {
		if isTLSEndpoint(r) {
			continue // tls:HOST:PORT, ssl:host=H:port=P: checked by tlswCheckConfig
		}
		hp, err := parseRemote(r)
		if err != nil {
			return nil, usagef("--remote: %v", err)
		}
		cfg.remotes[i] = hp
	}
	if cfg.maxMessageSize < 1 {
		return nil, usagef("--max-message-size must be at least 1")
	}
	if cfg.maxConnections < 1 || cfg.subscriberQueue < 1 || cfg.handlerQueue < 1 || cfg.handlerWorkers < 1 || cfg.maxConnectionsPerHost < 1 {
		return nil, usagef("--max-connections, --max-connections-per-host, --subscriber-queue, --handler-queue and --handler-workers must be at least 1")
	}
	if cfg.maxInflightBytes < 1 || cfg.subscriberQueueBytes < 1 || cfg.handlerQueueBytes < 1 {
		return nil, usagef("--max-inflight-bytes, --subscriber-queue-bytes and --handler-queue-bytes must be at least 1 byte")
	}
	if cfg.filterBudget <= 0 {
		return nil, usagef("--filter-budget must be positive")
	}
	if cfg.eventDBExpiry <= 0 {
		return nil, usagef("--eventdb-expiry must be positive")
	}
	if cfg.requireSignature && len(cfg.keyrings) == 0 {
		return nil, usagef("--require-signature needs at least one --keyring")
	}
	for _, f := range cfg.filters {
		if _, err := compileXPath(f); err != nil {
			return nil, usagef("--filter: invalid XPath expression %q: %v", f, err)
		}
	}
	if _, err := loadWhitelist(cfg.authorWhitelist); err != nil {
		return nil, usagef("--author-whitelist: %v", err)
	}
	if _, err := loadWhitelist(cfg.subscriberWL); err != nil {
		return nil, usagef("--subscriber-whitelist: %v", err)
	}
	if err := tlswCheckConfig(cfg); err != nil {
		return nil, err
	}
	for _, p := range cfg.handlers {
		// Check the plugins' options now (a bad --cmd-timeout is a usage
		// error); the broker builds the handlers again when it starts.
		if _, err := p.handlers(nil); err != nil {
			return nil, usagef("handler %s: %v", p.pluginName(), err)
		}
	}
	return cfg, nil
}

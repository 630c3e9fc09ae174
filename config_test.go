package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

func parseArgs(t *testing.T, args ...string) (*config, error) {
	t.Helper()
	var out bytes.Buffer
	return parseBrokerArgs(args, &out)
}

func TestOptionsRoles(t *testing.T) {
	ivo := "--local-ivo=ivo://comet/test"
	cases := []struct {
		name               string
		args               []string
		receive, broadcast []string
		remotes            []string
		err                string
	}{
		{"no role", []string{ivo}, nil, nil, nil, "no service requested"},
		{"bare receive", []string{"--receive", ivo}, []string{"tcp::8098"}, nil, nil, ""},
		{"short flags", []string{"-r", "-b", ivo}, []string{"tcp::8098"}, []string{"tcp::8099"}, nil, ""},
		{"receive port", []string{"--receive", "--receive-port", "1234", ivo}, []string{"tcp::1234"}, nil, nil, ""},
		{"receive endpoint", []string{"--receive=tcp:1", ivo}, []string{"tcp::1"}, nil, nil, ""},
		{"receive endpoint as next arg", []string{"--receive", "tcp:1", ivo}, []string{"tcp::1"}, nil, nil, ""},
		{"receive bare port", []string{"--receive", "1", ivo}, []string{"tcp::1"}, nil, nil, ""},
		{"receive interface", []string{"--receive=tcp:8098:interface=127.0.0.1", ivo}, []string{"tcp:127.0.0.1:8098"}, nil, nil, ""},
		{"receive IPv6 interface", []string{"--receive=tcp:8098:interface=::1", ivo}, []string{"tcp:[::1]:8098"}, nil, nil, ""},
		{"two receive endpoints", []string{"--receive=tcp:1", "--receive=tcp:2", ivo}, []string{"tcp::1", "tcp::2"}, nil, nil, ""},
		{"unix", []string{"--receive=unix:/test", ivo}, []string{"unix:/test"}, nil, nil, ""},
		{"bad endpoint", []string{"--receive=bad", ivo}, nil, nil, nil, "invalid endpoint"},
		{"empty tcp", []string{"--receive=tcp:", ivo}, nil, nil, nil, "invalid endpoint"},
		{"broadcast endpoint", []string{"--broadcast", "tcp:5", ivo}, nil, []string{"tcp::5"}, nil, ""},
		{"receive needs local-ivo", []string{"--receive"}, nil, nil, nil, "--local-ivo"},
		{"broadcast needs local-ivo", []string{"--broadcast"}, nil, nil, nil, "--local-ivo"},
		{"bad local-ivo", []string{"--receive", "--local-ivo=bad_ivo"}, nil, nil, nil, "invalid IVOA identifier"},
		{"subscribe only, no ivo", []string{"--remote", "test"}, nil, nil, []string{"test:8099"}, ""},
		{"remote forms", []string{"--remote", "tcp:test:8099", "--subscribe", "test:1234", "--remote=tcp:h"}, nil, nil, []string{"test:8099", "test:1234", "h:8099"}, ""},
		{"remote IPv6", []string{"--remote", "[::1]:9000"}, nil, nil, []string{"[::1]:9000"}, ""},
		{"bad remote", []string{"--remote", "tcp:tcp:tcp"}, nil, nil, nil, "invalid remote"},
		{"stray argument", []string{"--remote", "a", "b"}, nil, nil, nil, "unexpected argument"},
		{"unknown option", []string{"--frobnicate"}, nil, nil, nil, "frobnicate"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseArgs(t, tc.args...)
			if tc.err != "" {
				var ue *usageError
				if err == nil || !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want a usage error mentioning %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			eq := func(what string, got []endpoint, want []string) {
				var g []string
				for _, e := range got {
					g = append(g, e.String())
				}
				if strings.Join(g, ",") != strings.Join(want, ",") {
					t.Errorf("%s = %v, want %v", what, g, want)
				}
			}
			eq("receive", cfg.receive, tc.receive)
			eq("broadcast", cfg.broadcast, tc.broadcast)
			if strings.Join(cfg.remotes, ",") != strings.Join(tc.remotes, ",") {
				t.Errorf("remotes = %v, want %v", cfg.remotes, tc.remotes)
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	// Not a shared temporary directory: with no state directory, home or
	// XDG directory, a private per-user one under it.
	t.Setenv("STATE_DIRECTORY", "")
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	t.Setenv("TMPDIR", "/var/tmp/x")
	cfg, err := parseArgs(t, "-r", "--local-ivo", "ivo://comet/test")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.eventDB != "/var/tmp/x/comet-"+strconv.Itoa(os.Geteuid()) || cfg.testInterval.Seconds() != 3600 || cfg.maxMessageSize != 1<<20 ||
		cfg.eventDBExpiry.Hours() != 720 || cfg.verbosity != 0 {
		t.Errorf("defaults: %+v", cfg)
	}
	t.Setenv("STATE_DIRECTORY", "/var/lib/comet:/other")
	if defaultEventDBDir() != "/var/lib/comet" {
		t.Errorf("STATE_DIRECTORY not used: %s", defaultEventDBDir())
	}
	cfg, err = parseArgs(t, "-r", "--local-ivo=ivo://comet/test", "--eventdb", "/example", "--broadcast-test-interval", "0", "-v", "-v", "-q", "-n")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.eventDB != "/example" || cfg.testInterval != 0 || cfg.verbosity != 1 {
		t.Errorf("parsed: %+v", cfg)
	}
	if _, err := parseArgs(t, "-r", "--local-ivo=ivo://comet/test", "--broadcast-test-interval", "soon"); err == nil {
		t.Error("non-integer test interval accepted")
	}
}

func TestOptionsWhitelistsAndFilters(t *testing.T) {
	ivo := "--local-ivo=ivo://comet/test"
	cfg, err := parseArgs(t, "-r", ivo, "--receive-whitelist", "10.0.0.0/8", "192.168.0.0/16", "--author-whitelist", "::1/128", "--subscriber-whitelist=127.0.0.1/255.255.255.255")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.authorWhitelist, ",") != "10.0.0.0/8,192.168.0.0/16,::1/128" {
		t.Errorf("author whitelist %v", cfg.authorWhitelist)
	}
	if strings.Join(cfg.subscriberWL, ",") != "127.0.0.1/255.255.255.255" {
		t.Errorf("subscriber whitelist %v", cfg.subscriberWL)
	}
	if _, err := parseArgs(t, "-r", ivo, "--author-whitelist", "no-such-file-or-network"); err == nil {
		t.Error("a value that is neither a network nor a file was accepted")
	}
	if _, err := parseArgs(t, "-r", ivo, "--author-whitelist", "10.0.0.1/24"); err == nil || !strings.Contains(err.Error(), "10.0.0.0/24") {
		t.Errorf("host bits set: %v", err)
	}
	wlFile := t.TempDir() + "/authors"
	writeFile(t, wlFile, "# our network\n10.1.0.0/16  192.168.7.0/24\n\n::1\n")
	cfg, err = parseArgs(t, "-r", ivo, "--author-whitelist", wlFile)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := loadWhitelist(cfg.authorWhitelist)
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"10.1.2.3": true, "192.168.7.9": true, "::1": true, "10.2.0.1": false} {
		if got := wl.allows(&net.TCPAddr{IP: net.ParseIP(addr)}); got != want {
			t.Errorf("whitelist from file: %s allowed=%v", addr, got)
		}
	}
	writeFile(t, wlFile, "10.1.0.0/16\nnonsense\n")
	if _, err := loadWhitelist(cfg.authorWhitelist); err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("bad line: %v", err)
	}
	cfg, err = parseArgs(t, "--remote", "a", "--filter", "//Who", "--filter", "//What")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.filters) != 2 {
		t.Errorf("filters %v", cfg.filters)
	}
}

func TestHelpListsOptionsInOrder(t *testing.T) {
	var out bytes.Buffer
	_, err := parseBrokerArgs([]string{"--help"}, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v", err)
	}
	help := out.String()
	order := []string{"--receive", "--broadcast", "--receive-port", "--broadcast-port", "--local-ivo", "--eventdb",
		"--broadcast-test-interval", "--author-whitelist", "--subscriber-whitelist", "--remote", "--filter",
		"--verbose", "--quiet", "--nodaemon", "--pidfile", "--logfile", "--keyring", "--require-signature", "--http",
		"--max-message-size", "--eventdb-expiry"}
	last := -1
	for _, o := range order {
		i := strings.Index(help, o)
		if i < 0 {
			t.Errorf("help does not list %s", o)
			continue
		}
		if i < last {
			t.Errorf("%s listed out of order", o)
		}
		last = i
	}
}

func TestBrokerMainExitCodes(t *testing.T) {
	var out, errb bytes.Buffer
	if code := brokerMain([]string{"--local-ivo=ivo://comet/test"}, &out, &errb); code != exitUsage || !strings.Contains(errb.String(), "no service") {
		t.Errorf("no role: exit %d, %q", code, errb.String())
	}
	errb.Reset()
	if code := brokerMain([]string{"--help"}, &out, &errb); code != exitOK {
		t.Errorf("--help: exit %d", code)
	}
	errb.Reset()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	_, port, _ := net.SplitHostPort(busy.Addr().String())
	if code := brokerMain([]string{"--receive=tcp:" + port + ":interface=127.0.0.1", "--local-ivo=ivo://comet/test", "--eventdb", t.TempDir()}, &out, &errb); code != exitFail || !strings.Contains(errb.String(), "cannot listen") {
		t.Errorf("port in use: exit %d, %q", code, errb.String())
	}
}

func TestDispatchVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := dispatch("comet", []string{"version"}, nil, &out, &errb); code != exitOK || !strings.HasPrefix(out.String(), "comet "+version+" go") {
		t.Errorf("version: %d %q", code, out.String())
	}
}

func TestParseServerEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"tcp:12345":                      "tcp::12345",
		"1234":                           "tcp::1234",
		"unix:/dev/null":                 "unix:/dev/null",
		"unix:/tmp/x.sock:mode=0666":     "unix:/tmp/x.sock",
		"tcp:99:interface=0.0.0.0":       "tcp:0.0.0.0:99",
		"tcp:99:backlog=5:interface=::1": "tcp:[::1]:99",
		"tcp:port=7":                     "tcp::7",
	} {
		e, err := parseServerEndpoint(in)
		if err != nil || e.String() != want {
			t.Errorf("%s: %v %v, want %s", in, e, err, want)
		}
	}
	for _, bad := range []string{"tcp:", "bad", "tcp:x", "tcp:70000", "udp:1", "unix:", "tcp:1:colour=red"} {
		if _, err := parseServerEndpoint(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

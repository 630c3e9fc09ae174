//go:build unix

package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func cmdTestPath(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", "cmd", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCmdCopiesEvent(t *testing.T) {
	out := filepath.Join(t.TempDir(), "event.xml")
	t.Setenv("COMET_TEST_OUT", out)
	t.Setenv("COMET_TEST_INHERITED", "yes")
	raw := medianEvent(t)
	for _, tc := range []struct {
		name, verdict, signer string
		wantEnv               string
	}{
		{"unchecked", "", "", "COMET_IVORN=ivo://nasa.gsfc.gcn/MAXI#1\nCOMET_ROLE=observation\nCOMET_SIGNATURE=unchecked\nCOMET_SIGNER=\nINHERITED=yes\n"},
		{"signed", "valid", "0123ABCD", "COMET_IVORN=ivo://nasa.gsfc.gcn/MAXI#1\nCOMET_ROLE=observation\nCOMET_SIGNATURE=valid\nCOMET_SIGNER=0123ABCD\nINHERITED=yes\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, _ := newTestLogger()
			h := &cmdHandler{path: cmdTestPath(t, "copy-stdin.sh"), log: log}
			ev := &event{raw: raw, ivorn: "ivo://nasa.gsfc.gcn/MAXI#1", role: "observation", sigVerdict: tc.verdict, signer: tc.signer}
			if err := h.handle(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, raw) {
				t.Errorf("command read %d bytes, not the event's %d", len(got), len(raw))
			}
			env, err := os.ReadFile(out + ".env")
			if err != nil {
				t.Fatal(err)
			}
			if string(env) != tc.wantEnv {
				t.Errorf("environment:\n%s\nwant:\n%s", env, tc.wantEnv)
			}
		})
	}
}

func TestCmdFailures(t *testing.T) {
	t.Setenv("COMET_TEST_OUT", filepath.Join(t.TempDir(), "pid"))
	for _, tc := range []struct {
		name, script string
		timeout      time.Duration
		wantErr      string
	}{
		{"non-zero exit", "exit-99.sh", 0, "exit-99.sh returned non-zero (99)"},
		{"killed by a signal", "kill-self.sh", 0, "kill-self.sh was killed (signal: killed)"},
		{"not executable", "not-executable.txt", 0, "not-executable.txt is not executable"},
		{"missing", "no-such-script", 0, "no-such-script is not executable"},
		{"timeout", "hang.sh", 200 * time.Millisecond, "hang.sh timed out after 200ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := newTestLogger()
			var m metrics
			h := &cmdHandler{path: cmdTestPath(t, tc.script), timeout: tc.timeout, log: log}
			q := newHandlerQueue([]handler{h}, 1, 1, &m, log)
			begin := time.Now()
			q.submit(testEvent("ivo://x/y#1", "<e/>"))
			q.close(context.Background())
			if d := time.Since(begin); d > 5*time.Second {
				t.Errorf("took %v", d)
			}
			if got := m.handlerFailures.get(h.name()); got != 1 {
				t.Errorf("failures = %d, want 1", got)
			}
			line := ""
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, "level=WARN") && strings.Contains(l, "event handler failed") {
					line = l
				}
			}
			if !strings.Contains(line, tc.wantErr) || !strings.Contains(line, "handler=cmd:"+h.path) {
				t.Errorf("warning %q does not name the command and %q\nlogs:\n%s", line, tc.wantErr, logs)
			}
		})
	}
}

func TestCmdTimeoutKillsProcessGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("COMET_TEST_OUT", pidFile)
	log, _ := newTestLogger()
	h := &cmdHandler{path: cmdTestPath(t, "hang.sh"), timeout: 300 * time.Millisecond, log: log}
	if err := h.handle(context.Background(), testEvent("ivo://x/y#1", "<e/>")); err == nil {
		t.Fatal("hang.sh did not fail")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for processRunning(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the script's child %d outlived the timeout", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCmdShutdownStopsCommand(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	t.Setenv("COMET_TEST_OUT", pidFile)
	log, logs := newTestLogger()
	h := &cmdHandler{path: cmdTestPath(t, "hang.sh"), log: log} // no timeout
	q := newHandlerQueue([]handler{h}, 4, 1, nil, log)
	q.submit(testEvent("ivo://x/y#1", "<e/>"))
	q.submit(testEvent("ivo://x/y#2", "<e/>"))
	for deadline := time.Now().Add(5 * time.Second); ; { // wait for the first to start
		if b, _ := os.ReadFile(pidFile); len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hang.sh did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	begin := time.Now()
	q.close(ctx)
	if d := time.Since(begin); d > 2*time.Second {
		t.Errorf("close took %v", d)
	}
	for _, want := range []string{"hang.sh stopped at shutdown", "handler queue abandoned events at shutdown", "events=1"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestCmdOutputLogged(t *testing.T) {
	log, logs := newTestLogger()
	h := &cmdHandler{path: cmdTestPath(t, "exit-99.sh"), log: log}
	h.handle(context.Background(), testEvent("ivo://x/y#1", "<e/>"))
	for _, want := range []string{
		`level=DEBUG msg="cmd output" handler=cmd:` + h.path + ` ivorn=ivo://x/y#1 stream=stdout line="to stdout"`,
		"stream=stderr line=\"bad \uFFFD byte\"",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

func TestLineLogger(t *testing.T) {
	log, logs := newTestLogger()
	l := newLineLogger(log, "cmd:x", "stdout", "ivo://a/b#c")
	l.Write([]byte("one\ntw"))
	l.Write([]byte("o\r\nthr"))
	l.Write([]byte(strings.Repeat("z", cmdMaxLine+1)))
	l.flush()
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		_, v, _ := strings.Cut(line, " line=")
		got = append(got, v)
	}
	want := []string{"one", "two", "thr" + strings.Repeat("z", cmdMaxLine-3), strings.Repeat("z", 4)}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines %q, want %q", got, want)
	}
	// With debug off nothing is kept.
	quiet := slog.New(slog.NewTextHandler(logs, nil))
	q := newLineLogger(quiet, "cmd:x", "stdout", "")
	q.Write([]byte("a\nb"))
	if len(q.buf) != 0 {
		t.Errorf("buffered %q with debug off", q.buf)
	}
}

// processRunning reports whether pid is a live process: one that exists and,
// where /proc tells, is not a zombie waiting for its new parent to reap it.
func processRunning(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}

func TestCmdPathRelativeToWorkingDirectory(t *testing.T) {
	// PATH is a file name relative to the working directory, never looked
	// up in $PATH: "true" exists in $PATH but not here.
	t.Setenv("COMET_TEST_OUT", filepath.Join(t.TempDir(), "event.xml"))
	t.Chdir(filepath.Join("testdata", "cmd"))
	log, _ := newTestLogger()
	for _, tc := range []struct {
		path    string
		wantErr string
	}{
		{"copy-stdin.sh", ""},
		{"true", "true is not executable"},
	} {
		h := &cmdHandler{path: tc.path, log: log}
		err := h.handle(context.Background(), testEvent("ivo://x/y#1", "<e/>"))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tc.wantErr) || (tc.wantErr == "") != (err == nil) {
			t.Errorf("%s: err %v, want %q", tc.path, err, tc.wantErr)
		}
	}
}

func TestCmdFullQueue(t *testing.T) {
	// One worker busy with a hanging command and a queue of one: the third
	// event overflows at once and is counted; the others time out.
	t.Setenv("COMET_TEST_OUT", filepath.Join(t.TempDir(), "pid"))
	log, logs := newTestLogger()
	var m metrics
	h := &cmdHandler{path: cmdTestPath(t, "hang.sh"), timeout: 200 * time.Millisecond, log: log}
	q := newHandlerQueue([]handler{h}, 1, 1, &m, log)
	var accepted int
	for i := range 3 {
		if q.submit(testEvent("ivo://x/y#"+strconv.Itoa(i), "<e/>")) {
			accepted++
		}
	}
	q.close(context.Background())
	// The worker may not have taken the first event before the second
	// arrived, so two or one of the three fit.
	if over := m.handlerOverflows.Load(); over != int64(3-accepted) || over < 1 {
		t.Errorf("accepted %d, overflows %d", accepted, over)
	}
	if runs := m.handlerRuns.get(h.name()); runs != int64(accepted) {
		t.Errorf("runs %d, want %d", runs, accepted)
	}
	if fails := m.handlerFailures.get(h.name()); fails != int64(accepted) {
		t.Errorf("failures %d, want %d", fails, accepted)
	}
	if !strings.Contains(logs.String(), "handler queue full") {
		t.Errorf("overflow not logged:\n%s", logs)
	}
}

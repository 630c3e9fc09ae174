package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"
)

// syncBuffer is a bytes.Buffer safe for concurrent log writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newTestLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func testEvent(ivorn string, raw string) *event {
	return &event{raw: []byte(raw), ivorn: ivorn, role: "observation", received: time.Now()}
}

// funcHandler is a handler made of a function.
type funcHandler struct {
	n string
	f func(ctx context.Context, ev *event) error
}

func (h *funcHandler) name() string                                { return h.n }
func (h *funcHandler) handle(ctx context.Context, ev *event) error { return h.f(ctx, ev) }

func TestHandlerPluginsOrder(t *testing.T) {
	// cmd runs first, as in Comet, whatever the file names; the built-in
	// plugins follow in file name order (a site's own plugin may sit
	// anywhere after cmd).
	var got []string
	for _, p := range handlerPlugins() {
		switch p.pluginName() {
		case "cmd", "print-event", "save-event":
			got = append(got, p.pluginName())
		}
	}
	want := []string{"cmd", "print-event", "save-event"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("built-in plugins in order %v, want %v", got, want)
	}
	if first := handlerPlugins()[0].pluginName(); first != "cmd" {
		t.Errorf("first plugin %q, want cmd", first)
	}
}

func TestHandlerFlagsInHelp(t *testing.T) {
	fs := flag.NewFlagSet("comet", flag.ContinueOnError)
	addHandlerFlags(fs)
	var help bytes.Buffer
	fs.SetOutput(&help)
	fs.PrintDefaults()
	for _, name := range []string{"-cmd PATH", "-cmd-timeout DURATION", "-print-event", "-save-event", "-save-event-directory"} {
		if !strings.Contains(help.String(), name) {
			t.Errorf("help lacks %q:\n%s", name, help.String())
		}
	}
}

func TestBuildHandlersDisabled(t *testing.T) {
	// With no options set, the registered plugins give no handlers.
	log, _ := newTestLogger()
	hs, err := buildHandlers(handlerPlugins(), log)
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 0 {
		t.Errorf("got %d handlers with nothing enabled", len(hs))
	}
}

func TestPluginHandlersFromFlags(t *testing.T) {
	log, _ := newTestLogger()
	dir := t.TempDir()
	plugins := []handlerPlugin{&cmdPlugin{}, &printPlugin{out: &bytes.Buffer{}}, &savePlugin{}}
	fs := flag.NewFlagSet("comet", flag.ContinueOnError)
	for _, p := range plugins {
		p.addFlags(fs)
	}
	args := []string{"--cmd", "/bin/a", "--save-event", "--cmd=/bin/b", "--print-event",
		"--save-event-directory", dir, "--cmd-timeout", "3s"}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range plugins {
		hs, err := p.handlers(log)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hs {
			got = append(got, h.name())
		}
	}
	want := "cmd:/bin/a,cmd:/bin/b,print-event,save-event"
	if strings.Join(got, ",") != want {
		t.Errorf("handlers = %v, want %s", got, want)
	}
}

func TestHandlerQueueRunsEveryHandler(t *testing.T) {
	log, logs := newTestLogger()
	var m metrics
	var okRuns atomic.Int64
	hs := []handler{
		&funcHandler{"fails", func(context.Context, *event) error { return errors.New("on purpose") }},
		&funcHandler{"panics", func(context.Context, *event) error { panic("boom") }},
		&funcHandler{"ok", func(context.Context, *event) error { okRuns.Add(1); return nil }},
	}
	q := newHandlerQueue(hs, 16, 2, &m, log)
	const n = 10
	for i := range n {
		if !q.submit(testEvent("ivo://x/y#"+string(rune('a'+i)), "<e/>")) {
			t.Fatalf("submit %d refused", i)
		}
	}
	q.close(context.Background())
	if got := okRuns.Load(); got != n {
		t.Errorf("ok handler ran %d times, want %d", got, n)
	}
	for _, tc := range []struct {
		name           string
		runs, failures int64
	}{
		{"fails", n, n},
		{"panics", n, n},
		{"ok", n, 0},
	} {
		if got := m.handlerRuns.get(tc.name); got != tc.runs {
			t.Errorf("%s runs = %d, want %d", tc.name, got, tc.runs)
		}
		if got := m.handlerFailures.get(tc.name); got != tc.failures {
			t.Errorf("%s failures = %d, want %d", tc.name, got, tc.failures)
		}
	}
	if !strings.Contains(logs.String(), `err="panic: boom"`) {
		t.Errorf("panic not logged:\n%s", logs)
	}
	if q.submit(testEvent("ivo://x/y#late", "<e/>")) {
		t.Error("submit after close accepted")
	}
}

func TestHandlerQueueOverflow(t *testing.T) {
	log, logs := newTestLogger()
	var m metrics
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var runs atomic.Int64
	h := &funcHandler{"slow", func(ctx context.Context, ev *event) error {
		runs.Add(1)
		select {
		case started <- struct{}{}:
		default:
		}
		<-release
		return nil
	}}
	q := newHandlerQueue([]handler{h}, 2, 1, &m, log)
	if !q.submit(testEvent("ivo://x/y#0", "<e/>")) {
		t.Fatal("first submit refused")
	}
	<-started // the only worker is now busy
	for i := 1; i <= 2; i++ {
		if !q.submit(testEvent("ivo://x/y#queued", "<e/>")) {
			t.Fatalf("submit %d refused with room in the queue", i)
		}
	}
	begin := time.Now()
	if q.submit(testEvent("ivo://x/y#over", "<e/>")) {
		t.Fatal("submit to a full queue accepted")
	}
	if d := time.Since(begin); d > time.Second {
		t.Errorf("submit to a full queue took %v", d)
	}
	if got := m.handlerOverflows.Load(); got != 1 {
		t.Errorf("overflows = %d, want 1", got)
	}
	if !strings.Contains(logs.String(), "handler queue full") || !strings.Contains(logs.String(), "ivorn=ivo://x/y#over") {
		t.Errorf("overflow not logged:\n%s", logs)
	}
	close(release)
	q.close(context.Background())
	if got := runs.Load(); got != 3 {
		t.Errorf("runs = %d, want 3 (the overflowing event must not run)", got)
	}
}

func TestHandlerQueueCloseAbandons(t *testing.T) {
	before := runtime.NumGoroutine()
	log, logs := newTestLogger()
	var m metrics
	started := make(chan struct{}, 1)
	h := &funcHandler{"stuck", func(ctx context.Context, ev *event) error {
		select {
		case started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}}
	q := newHandlerQueue([]handler{h}, 8, 1, &m, log)
	for range 5 {
		q.submit(testEvent("ivo://x/y#z", "<e/>"))
	}
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	begin := time.Now()
	q.close(ctx)
	if d := time.Since(begin); d > time.Second {
		t.Errorf("close took %v", d)
	}
	if !strings.Contains(logs.String(), "handler queue abandoned events at shutdown") || !strings.Contains(logs.String(), "events=4") {
		t.Errorf("abandon not logged with the count:\n%s", logs)
	}
	if got := m.handlerFailures.get("stuck"); got != 1 {
		t.Errorf("failures = %d, want 1 (the interrupted run)", got)
	}
	waitGoroutines(t, before)
}

// waitGoroutines fails the test if the goroutine count does not come back
// down to want.
func waitGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("goroutines: %d, want <= %d\n%s", runtime.NumGoroutine(), want, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHandlerQueueNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	log, _ := newTestLogger()
	hs := []handler{
		&funcHandler{"a", func(context.Context, *event) error { return nil }},
		&funcHandler{"b", func(context.Context, *event) error { return nil }},
	}
	q := newHandlerQueue(hs, 4, 3, nil, log)
	q.submit(testEvent("ivo://x/y#z", "<e/>"))
	q.close(context.Background())
	waitGoroutines(t, before)
}

func TestPrintEvent(t *testing.T) {
	raw := medianEvent(t)
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"median event", string(raw), string(raw) + map[bool]string{true: "", false: "\n"}[bytes.HasSuffix(raw, []byte("\n"))]},
		{"no newline", "<?xml version='1.0' encoding='ISO-8859-1'?><e a='\xe9'/>", "<?xml version='1.0' encoding='ISO-8859-1'?><e a='\xe9'/>\n"},
		{"newline kept", "<e/>\n", "<e/>\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			p := &printPlugin{out: &out}
			fs := flag.NewFlagSet("comet", flag.ContinueOnError)
			p.addFlags(fs)
			if err := fs.Parse([]string{"--print-event"}); err != nil {
				t.Fatal(err)
			}
			log, _ := newTestLogger()
			hs, err := p.handlers(log)
			if err != nil || len(hs) != 1 {
				t.Fatalf("handlers = %v, %v", hs, err)
			}
			if err := hs[0].handle(context.Background(), testEvent("ivo://x/y#z", tc.raw)); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want {
				t.Errorf("printed %q, want %q", out.String(), tc.want)
			}
		})
	}
}

func TestSaveFileName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"abcd", "abcd"},
		{"1234", "1234"},
		{"1a2b", "1a2b"},
		{".abc", "abc"},
		{"a.bc", "a.bc"},
		{"ab/c", "ab_c"},
		{"a*bc", "abc"},
		{"a||b", "ab"},
		{`a\/b`, "a__b"},
		{"ivo://test.ivoid/1234#5678", "ivo__test.ivoid_12345678"},
		{"ivo://comet.broker/test#1234567890", "ivo__comet.broker_test1234567890"},
		{"..abc", ".abc"},
		{"ivo://x/é#1", "ivo__x_1"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := saveFileName(tc.in); got != tc.want {
				t.Errorf("saveFileName(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestSaveCandidateName: names up to 255 bytes are Comet's; longer ones are
// cut to exactly 255 bytes ending in a hash of the whole, distinct for
// names that differ only past the cut, and never split a UTF-8 sequence.
func TestSaveCandidateName(t *testing.T) {
	at255 := strings.Repeat("a", 255)
	if got := saveCandidateName(at255, 0); got != at255 {
		t.Errorf("255-byte name changed to %q", got)
	}
	if got := saveCandidateName(strings.Repeat("a", 254), 1); got != strings.Repeat("a", 254)+"_" {
		t.Errorf("254 bytes and one underscore changed to %q", got)
	}
	seen := map[string]string{}
	for _, full := range []string{
		strings.Repeat("a", 256),
		strings.Repeat("a", 255) + "b",
		strings.Repeat("a", 300),
		strings.Repeat("a", 300) + "x",
		strings.Repeat("b", 10000),
	} {
		got := saveCandidateName(full, 0)
		if len(got) != saveNameMax {
			t.Errorf("%d-byte name cut to %d bytes, want %d", len(full), len(got), saveNameMax)
		}
		if !strings.HasPrefix(got, full[:saveNameMax-1-saveHashDigits]+"_") {
			t.Errorf("%d-byte name cut to %q: not its prefix and a hash", len(full), got)
		}
		if saveFileName(got) != got {
			t.Errorf("cut name %q leaves Comet's alphabet", got)
		}
		if prev, dup := seen[got]; dup {
			t.Errorf("%q and %q (%d bytes) give one name", prev, full, len(full))
		}
		seen[got] = full
	}
	// Candidates past the limit stay distinct and within it.
	long := strings.Repeat("c", 250)
	names := map[string]bool{}
	for i := range 20 {
		n := saveCandidateName(long, i)
		if len(n) > saveNameMax || names[n] {
			t.Errorf("candidate %d: %q (%d bytes) too long or repeated", i, n, len(n))
		}
		names[n] = true
	}
	// A multi-byte character straddling the cut is kept whole or dropped.
	for pad := range 4 {
		full := strings.Repeat("a", saveNameMax-1-saveHashDigits-pad) + strings.Repeat("é", 40)
		got := saveCandidateName(full, 0)
		if !utf8.ValidString(got) || len(got) > saveNameMax {
			t.Errorf("pad %d: %q is %d bytes, valid UTF-8 %v", pad, got, len(got), utf8.ValidString(got))
		}
	}
}

// TestSaveEventLongIvorn: an ivorn whose name is over NAME_MAX is saved under
// a cut, hashed name; two that differ only at the end get two files.
func TestSaveEventLongIvorn(t *testing.T) {
	dir := t.TempDir()
	h := newTestSaveHandler(t, dir)
	local := strings.Repeat("x", 400)
	for i, ivorn := range []string{
		"ivo://a/b#" + strings.Repeat("y", 255-len("ivo__a_b")), // exactly 255 bytes of name
		"ivo://a/b#" + local + "1",
		"ivo://a/b#" + local + "2",
		"ivo://a/b#" + "é" + local + "1", // é is dropped by Comet's rule: same name as the second
	} {
		raw := []byte(fmt.Sprintf("<e n='%d'/>", i))
		if err := h.handle(context.Background(), &event{raw: raw, ivorn: ivorn}); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 4 {
		t.Fatalf("%d files, want 4", len(ents))
	}
	for _, e := range ents {
		if len(e.Name()) > saveNameMax {
			t.Errorf("file name of %d bytes", len(e.Name()))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ivo__a_b"+strings.Repeat("y", 255-len("ivo__a_b")))); err != nil {
		t.Errorf("255-byte name not kept as Comet gives it: %v", err)
	}
}

func newTestSaveHandler(t *testing.T, dir string) handler {
	t.Helper()
	p := &savePlugin{}
	fs := flag.NewFlagSet("comet", flag.ContinueOnError)
	p.addFlags(fs)
	if err := fs.Parse([]string{"--save-event", "--save-event-directory", dir}); err != nil {
		t.Fatal(err)
	}
	log, _ := newTestLogger()
	hs, err := p.handlers(log)
	if err != nil || len(hs) != 1 {
		t.Fatalf("handlers = %v, %v", hs, err)
	}
	return hs[0]
}

func TestSaveEvent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "made", "on", "demand")
	h := newTestSaveHandler(t, dir)
	ctx := context.Background()
	raw := medianEvent(t)
	const ivorn = "ivo://nasa.gsfc.gcn/MAXI#Known_source_1"
	steps := []struct {
		name string
		raw  []byte
		want []string // files in dir afterwards
	}{
		{"first", raw, []string{"ivo__nasa.gsfc.gcn_MAXIKnown_source_1"}},
		{"same bytes again", raw, []string{"ivo__nasa.gsfc.gcn_MAXIKnown_source_1"}},
		{"different event, same name", []byte("<other/>"), []string{"ivo__nasa.gsfc.gcn_MAXIKnown_source_1", "ivo__nasa.gsfc.gcn_MAXIKnown_source_1_"}},
		{"third", []byte("<third/>"), []string{"ivo__nasa.gsfc.gcn_MAXIKnown_source_1", "ivo__nasa.gsfc.gcn_MAXIKnown_source_1_", "ivo__nasa.gsfc.gcn_MAXIKnown_source_1__"}},
		{"second again", []byte("<other/>"), []string{"ivo__nasa.gsfc.gcn_MAXIKnown_source_1", "ivo__nasa.gsfc.gcn_MAXIKnown_source_1_", "ivo__nasa.gsfc.gcn_MAXIKnown_source_1__"}},
	}
	for _, st := range steps {
		if err := h.handle(ctx, &event{raw: st.raw, ivorn: ivorn}); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range ents {
			got = append(got, e.Name())
		}
		if strings.Join(got, " ") != strings.Join(st.want, " ") {
			t.Errorf("%s: files %v, want %v", st.name, got, st.want)
		}
	}
	for name, want := range map[string][]byte{
		"ivo__nasa.gsfc.gcn_MAXIKnown_source_1":   raw,
		"ivo__nasa.gsfc.gcn_MAXIKnown_source_1_":  []byte("<other/>"),
		"ivo__nasa.gsfc.gcn_MAXIKnown_source_1__": []byte("<third/>"),
	} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s holds %d bytes, not the event's %d", name, len(got), len(want))
		}
	}
}

func TestSaveEventWithoutHardLinks(t *testing.T) {
	// On a file system without hard links the name is reserved with
	// O_EXCL and the complete file renamed over the reservation.
	linkFile = func(string, string) error { return errors.ErrUnsupported }
	defer func() { linkFile = os.Link }()
	dir := t.TempDir()
	h := newTestSaveHandler(t, dir)
	for _, raw := range []string{"<one/>", "<two/>", "<one/>"} {
		if err := h.handle(context.Background(), &event{raw: []byte(raw), ivorn: "ivo://a/b#c"}); err != nil {
			t.Fatal(err)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		got = append(got, e.Name()+"="+string(b))
	}
	if want := "ivo__a_bc=<one/> ivo__a_bc_=<two/>"; strings.Join(got, " ") != want {
		t.Errorf("files %q, want %q", got, want)
	}
}

func TestSaveEventConcurrent(t *testing.T) {
	// Different events with the same name, saved at once, all land in
	// distinct files; none is lost or overwritten.
	dir := t.TempDir()
	h := newTestSaveHandler(t, dir)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			raw := []byte("<e n='" + strings.Repeat("x", i) + "'/>")
			if err := h.handle(context.Background(), &event{raw: raw, ivorn: "ivo://a/b#c"}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		seen[string(b)] = true
	}
	if len(ents) != n || len(seen) != n {
		t.Errorf("%d files with %d distinct contents, want %d", len(ents), len(seen), n)
	}
}

func TestSaveEventBadName(t *testing.T) {
	h := newTestSaveHandler(t, t.TempDir())
	for _, ivorn := range []string{"", "***", "..", "..."} {
		if err := h.handle(context.Background(), &event{raw: []byte("<e/>"), ivorn: ivorn}); err == nil {
			t.Errorf("ivorn %q saved", ivorn)
		}
	}
}

func TestSaveEventDefaultDir(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	p := &savePlugin{enabled: true}
	log, _ := newTestLogger()
	hs, err := p.handlers(log)
	if err != nil {
		t.Fatal(err)
	}
	if got := hs[0].(*saveHandler).dir; got != wd {
		t.Errorf("default directory %s, want the working directory %s", got, wd)
	}
}

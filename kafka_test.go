package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKafkaScramRFC7677(t *testing.T) {
	s, err := newKafkaScram("SCRAM-SHA-256", "user", "pencil", "rOprNGfwEbeRWgbNEkqO")
	if err != nil {
		t.Fatal(err)
	}
	if got := s.clientFirst(); got != "n,,n=user,r=rOprNGfwEbeRWgbNEkqO" {
		t.Errorf("client-first %q", got)
	}
	final, err := s.clientFinal("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
	if err != nil {
		t.Fatal(err)
	}
	if want := "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="; final != want {
		t.Errorf("client-final\n got %q\nwant %q", final, want)
	}
	if err := s.verifyServer("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err != nil {
		t.Errorf("server signature: %v", err)
	}
	if err := s.verifyServer("v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="); err == nil {
		t.Error("a wrong server signature verified")
	}
	if err := s.verifyServer("e=invalid-proof"); err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Errorf("server error: %v", err)
	}
	s2, _ := newKafkaScram("SCRAM-SHA-512", "a=b,c", "p", "abc")
	if s2.clientFirst() != "n,,n=a=3Db=2Cc,r=abc" {
		t.Errorf("saslname escaping: %q", s2.clientFirst())
	}
	for _, bad := range []string{
		"r=zzz,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",        // nonce not ours
		"r=abc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",        // not extended
		"r=abcdef,s=!!,i=4096",                           // bad salt
		"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0",        // iterations
		"r=abcdef,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999", // iterations
		"e=other-error",
	} {
		if _, err := s2.clientFinal(bad); err == nil {
			t.Errorf("server-first %q accepted", bad)
		}
	}
}

func TestKafkaOAuthBearerInitialResponse(t *testing.T) {
	if got := string(kafkaOAuthBearerInitial("eyJ.a-b_c~d+e/f.=")); got != "n,,\x01auth=Bearer eyJ.a-b_c~d+e/f.=\x01\x01" {
		t.Errorf("%q", got)
	}
}

func TestKafkaReauthTiming(t *testing.T) {
	for _, c := range []struct{ l, want time.Duration }{
		{time.Hour, 48 * time.Minute},
		{100 * time.Second, 70 * time.Second},
		{10 * time.Second, 5 * time.Second},
	} {
		if got := kafkaReauthAfter(c.l); got != c.want {
			t.Errorf("lifetime %v: reauth after %v, want %v", c.l, got, c.want)
		}
	}
}

func TestKafkaGlobMatch(t *testing.T) {
	for _, c := range []struct {
		p, n string
		want bool
	}{
		{"gcn.classic.voevent.*", "gcn.classic.voevent.SWIFT_BAT_GRB_POS", true},
		{"gcn.classic.voevent.*", "gcn.classic.voevent.", true},
		{"gcn.classic.voevent.*", "gcn.classic.text.X", false},
		{"gcn.classic.voevent.*", "gcnXclassic.voevent.X", false}, // '.' is literal
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"*", "", true},
		{"*x*y", "axbxy", true},
		{"*x*y", "axbxyz", false},
		{"[abc]", "[abc]", true}, // no classes: literal
		{"[abc]", "a", false},
		{"gcn.notices.*.voevent.*", "gcn.notices.svom.voevent.grm", true},
	} {
		if got := kafkaGlobMatch(c.p, c.n); got != c.want {
			t.Errorf("match(%q, %q) = %v", c.p, c.n, got)
		}
	}
}

func TestKafkaConfigResolve(t *testing.T) {
	dir := t.TempDir()
	sec := filepath.Join(dir, "s")
	os.WriteFile(sec, []byte("x\n"), 0o600)
	c := kafkaConfig{GCNClientID: "id", GCNClientSecretFile: sec}
	if err := c.resolve(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Bootstrap, ",") != "kafka.gcn.nasa.gov:9092" || c.Security != "sasl_ssl" || c.Mechanism != "OAUTHBEARER" ||
		c.TokenURL != "https://auth.gcn.nasa.gov/oauth2/token" || strings.Join(c.Topics, ",") != "gcn.classic.voevent.*" ||
		c.ClientID != "id" || c.Start != "latest" || c.Refresh != 2*time.Minute {
		t.Errorf("GCN preset: %+v", c)
	}
	again := c
	if err := again.resolve(); err != nil || strings.Join(again.Bootstrap, ",") != strings.Join(c.Bootstrap, ",") {
		t.Errorf("resolve is not idempotent: %v", err)
	}
	c = kafkaConfig{GCNClientID: "id", GCNClientSecretFile: sec, GCNDomain: "test.gcn.nasa.gov", Topics: []string{"gcn.heartbeat"}}
	if err := c.resolve(); err != nil || c.Bootstrap[0] != "kafka.test.gcn.nasa.gov:9092" || c.Topics[0] != "gcn.heartbeat" || c.TokenURL != "https://auth.test.gcn.nasa.gov/oauth2/token" {
		t.Errorf("GCN test domain: %+v %v", c, err)
	}
	c = kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, CAFile: "ca.pem"}
	if err := c.resolve(); err != nil || c.Security != "ssl" {
		t.Errorf("--kafka-ca alone means ssl: %+v %v", c, err)
	}
	c = kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Mechanism: "PLAIN", Username: "u", PasswordFile: sec}
	if err := c.resolve(); err != nil || c.Security != "sasl_ssl" {
		t.Errorf("mechanism means sasl_ssl: %+v %v", c, err)
	}
	c = kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Start: "2026-01-02T03:04:05Z"}
	if err := c.resolve(); err != nil || c.startTimestamp() != time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMilli() {
		t.Errorf("start time: %v", err)
	}
	for _, bad := range []struct {
		c    kafkaConfig
		want string
	}{
		{kafkaConfig{Topics: []string{"t"}}, "--kafka-bootstrap"},
		{kafkaConfig{Bootstrap: []string{"nohost"}, Topics: []string{"t"}}, "--kafka-bootstrap"},
		{kafkaConfig{Bootstrap: []string{"h:1"}}, "--kafka-topic"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Security: "tls"}, "--kafka-security"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Security: "sasl_ssl"}, "--kafka-sasl-mechanism"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Mechanism: "GSSAPI"}, "--kafka-sasl-mechanism"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Mechanism: "SCRAM-SHA-256"}, "--kafka-username"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Mechanism: "OAUTHBEARER"}, "--kafka-oauth-token-url"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Mechanism: "OAUTHBEARER", TokenURL: "http://x", ClientID: "i", ClientSecretFile: sec}, "https"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Start: "yesterday"}, "--kafka-start"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, Refresh: time.Millisecond}, "--kafka-refresh"},
		{kafkaConfig{Bootstrap: []string{"h:1"}, PublishTopic: "a*"}, "--kafka-publish"},
		{kafkaConfig{GCNClientID: "id"}, "--gcn-client-secret-file"},
		{kafkaConfig{GCNClientID: "id", GCNClientSecretFile: sec, Mechanism: "PLAIN"}, "--kafka-sasl-mechanism"},
	} {
		err := bad.c.resolve()
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%+v: error %v, want one naming %s", bad.c, err, bad.want)
		}
	}
}

func TestKafkaReadSecret(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]string{"abc\n": "abc", "abc": "abc", "abc\n\n": "abc\n", "abc\r\n": "abc", " a b ": " a b "} {
		p := filepath.Join(dir, "s")
		os.WriteFile(p, []byte(in), 0o600)
		if got, err := kafkaReadSecret(p); err != nil || got != want {
			t.Errorf("%q: %q %v", in, got, err)
		}
	}
	os.WriteFile(filepath.Join(dir, "e"), []byte("\n"), 0o600)
	if _, err := kafkaReadSecret(filepath.Join(dir, "e")); err == nil {
		t.Error("an empty secret was accepted")
	}
}

func TestKafkaOffsetsStore(t *testing.T) {
	dir := t.TempDir()
	o, err := openKafkaOffsets(dir)
	if err != nil {
		t.Fatal(err)
	}
	syncs := 0
	sync := func() error { syncs++; return nil }
	if err := o.commit(sync); err != nil || syncs != 0 {
		t.Fatalf("an unchanged commit synced or failed: %v %d", err, syncs)
	}
	o.set(kafkaTP{"a.b", 0}, 10)
	o.set(kafkaTP{"a.b", 3}, 7)
	o.set(kafkaTP{"c", 1}, 0)
	if err := o.commit(sync); err != nil || syncs != 1 {
		t.Fatalf("commit: %v, %d syncs", err, syncs)
	}
	if err := o.commit(sync); err != nil || syncs != 1 {
		t.Fatalf("second commit without change: %v, %d syncs", err, syncs)
	}
	o.set(kafkaTP{"c", 1}, 5)
	boom := errors.New("disk gone")
	if err := o.commit(func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("a failed sync must stop the write: %v", err)
	}
	o2, _ := openKafkaOffsets(dir)
	if v, _ := o2.get(kafkaTP{"c", 1}); v != 0 {
		t.Errorf("position written although the sync failed: %d", v)
	}
	if err := o.commit(nil); err != nil {
		t.Fatal(err)
	}
	o2, err = openKafkaOffsets(dir)
	if err != nil {
		t.Fatal(err)
	}
	for tp, want := range map[kafkaTP]int64{{"a.b", 0}: 10, {"a.b", 3}: 7, {"c", 1}: 5} {
		if v, ok := o2.get(tp); !ok || v != want {
			t.Errorf("%v: %d %v", tp, v, ok)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, kafkaOffsetsFile+".tmp")); err == nil {
		t.Error("temp file left behind")
	}
	path := filepath.Join(dir, kafkaOffsetsFile)
	for _, bad := range []string{"garbage\n", kafkaOffsetsHeader + "\nt\t0\n", kafkaOffsetsHeader + "\nt\tx\t1\n", kafkaOffsetsHeader + "\nt\t0\t-5\n"} {
		os.WriteFile(path, []byte(bad), 0o600)
		if _, err := openKafkaOffsets(dir); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	os.Remove(path)
	os.WriteFile(filepath.Join(dir, "elsewhere"), []byte(kafkaOffsetsHeader+"\n"), 0o600)
	os.Symlink(filepath.Join(dir, "elsewhere"), path)
	if _, err := openKafkaOffsets(dir); err == nil {
		t.Error("a symlinked offsets file was followed")
	}
	m, _ := openKafkaOffsets("")
	m.set(kafkaTP{"x", 0}, 1)
	if err := m.commit(func() error { t.Error("memory-only store synced"); return nil }); err != nil {
		t.Fatal(err)
	}
}

func TestKafkaTrackerOutOfOrder(t *testing.T) {
	var stored []int64
	tr := newKafkaTracker(100, func(n int64) { stored = append(stored, n) })
	d100 := tr.handOut(100)
	d101 := tr.handOut(101)
	d103 := tr.handOut(103) // 102 was a control record
	tr.skipTo(104)
	last := func() int64 { return stored[len(stored)-1] }
	if last() != 100 {
		t.Fatalf("stored %d before any done", last())
	}
	d103()
	if last() != 100 {
		t.Errorf("after 103 done: %d, want 100", last())
	}
	d101()
	d101() // idempotent
	if last() != 100 {
		t.Errorf("after 101 done: %d, want 100", last())
	}
	d100()
	if last() != 104 {
		t.Errorf("after all done: %d, want 104", last())
	}
	tr.skipTo(110)
	if last() != 110 || tr.outstanding() != 0 {
		t.Errorf("skip: %d", last())
	}
	d := tr.handOut(110)
	tr.reset(5)
	d() // done of a forgotten message must not move the position
	if last() != 5 {
		t.Errorf("after reset: %d", last())
	}
}

// ---- token source ----

func kafkaTestTLSServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *tls.Config) {
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, &tls.Config{RootCAs: pool}
}

func TestKafkaTokenSource(t *testing.T) {
	var requests atomic.Int32
	var secret atomic.Value
	secret.Store("s3cret")
	srv, tc := kafkaTestTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		time.Sleep(50 * time.Millisecond) // let concurrent callers pile up
		id, sec, ok := r.BasicAuth()
		r.ParseForm()
		if r.Method != "POST" || r.Header.Get("Accept") != "application/json" || r.Form.Get("grant_type") != "client_credentials" ||
			!ok || id != "client" || sec != secret.Load().(string) {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":"invalid_client","error_description":"bad secret"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":"tok%d","expires_in":100,"token_type":"Bearer"}`, n)
	})
	dir := t.TempDir()
	sf := filepath.Join(dir, "secret")
	os.WriteFile(sf, []byte("s3cret\n"), 0o600)
	ts, err := newKafkaTokenSource(srv.URL+"/oauth2/token", "client", sf, tc)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	now := time.Now()
	ts.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	get := func(n int) []string {
		out := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := ts.token(ctx)
				if err != nil {
					out[i] = "error: " + err.Error()
				} else {
					out[i] = tok
				}
			}()
		}
		wg.Wait()
		return out
	}
	for _, tok := range get(40) {
		if tok != "tok1" {
			t.Fatalf("token %q", tok)
		}
	}
	if n := requests.Load(); n != 1 {
		t.Fatalf("%d token requests for 40 concurrent callers, want 1", n)
	}
	advance(79 * time.Second)
	get(10)
	if n := requests.Load(); n != 1 {
		t.Errorf("refreshed before 80%% of the lifetime: %d requests", n)
	}
	advance(2 * time.Second)
	for _, tok := range get(30) {
		if tok != "tok2" {
			t.Fatalf("after 80%%: token %q", tok)
		}
	}
	if n := requests.Load(); n != 2 {
		t.Errorf("%d requests after one refresh, want 2", n)
	}
	// The secret changes at the endpoint: the refresh fails, the old token
	// still serves until it expires, the error is not retried at once.
	secret.Store("rotated")
	advance(81 * time.Second)
	if toks := get(5); toks[0] != "tok2" {
		t.Errorf("unexpired token should still serve: %q", toks[0])
	}
	if n := requests.Load(); n != 3 {
		t.Errorf("failing refresh: %d requests, want 3", n)
	}
	advance(3 * time.Second) // within the retry back-off
	if toks := get(5); toks[0] != "tok2" || requests.Load() != 3 {
		t.Errorf("a failure was retried at once: %d requests, %q", requests.Load(), toks[0])
	}
	advance(20 * time.Second) // past expiry and the back-off: one more try
	toks := get(5)
	if !strings.HasPrefix(toks[0], "error:") || !strings.Contains(toks[0], "bad secret") || requests.Load() != 4 {
		t.Errorf("expired and failing: %q, %d requests", toks[0], requests.Load())
	}
	advance(time.Second)
	if toks := get(5); !strings.HasPrefix(toks[0], "error:") || requests.Load() != 4 {
		t.Errorf("back-off not kept: %q, %d requests", toks[0], requests.Load())
	}
	os.WriteFile(sf, []byte("rotated\n"), 0o600)
	if err := ts.reload(); err != nil {
		t.Fatal(err)
	}
	if toks := get(5); toks[0] != "tok5" {
		t.Errorf("after reload: %q", toks[0])
	}
	if _, err := newKafkaTokenSource("http://127.0.0.1/x", "c", sf, nil); err == nil {
		t.Error("http:// token URL accepted")
	}
}

func TestKafkaTokenSourceTLSVerified(t *testing.T) {
	srv, _ := kafkaTestTLSServer(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"access_token":"x","expires_in":60}`)
	})
	sf := filepath.Join(t.TempDir(), "s")
	os.WriteFile(sf, []byte("s"), 0o600)
	ts, _ := newKafkaTokenSource(srv.URL, "c", sf, &tls.Config{}) // system roots: must not trust httptest
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := ts.token(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v", err)
	}
}

func TestKafkaHTTPResponses(t *testing.T) {
	long := strings.Repeat("a", kafkaHTTPMaxLine+10)
	for _, c := range []struct {
		name, in string
		status   int
		body     string
		err      string
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 200, "hello", ""},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", 200, "hello", ""},
		{"eof", "HTTP/1.0 401 Unauthorized\r\n\r\n{\"error\":1}", 401, `{"error":1}`, ""},
		{"continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 200, "ok", ""},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", 200, "ok", ""},
		{"big length", "HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", 0, "", "body"},
		{"big chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n", 0, "", "body"},
		{"big eof body", "HTTP/1.1 200 OK\r\n\r\n" + strings.Repeat("x", kafkaHTTPMaxBody+1), 0, "", "body"},
		{"long header", "HTTP/1.1 200 OK\r\nX: " + long + "\r\n\r\n", 0, "", "header too long"},
		{"many headers", "HTTP/1.1 200 OK\r\n" + strings.Repeat("X: y\r\n", kafkaHTTPMaxHeaders/6+1) + "\r\n", 0, "", "header too long"},
		{"bad status", "SMTP ready\r\n\r\n", 0, "", "status line"},
		{"bad code", "HTTP/1.1 abc\r\n\r\n", 0, "", "status line"},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 0, "", "content-length"},
		{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 0, "", "content-length"},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, "", "chunk size"},
		{"chunk no crlf", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX0\r\n\r\n", 0, "", "CRLF"},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 0, "", "EOF"},
		{"gzip encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, "", "transfer-encoding"},
		{"no header end", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n", 0, "", "EOF"},
	} {
		st, body, err := kafkaHTTPReadResponse(bufio.NewReaderSize(strings.NewReader(c.in), 4096), kafkaHTTPMaxBody)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || st != c.status || string(body) != c.body {
			t.Errorf("%s: %d %q %v", c.name, st, body, err)
		}
	}
}

func TestKafkaHTTPPostTimeout(t *testing.T) {
	// A server that accepts and never answers: the POST ends at its deadline.
	block := make(chan struct{})
	srv, tc := kafkaTestTLSServer(t, func(w http.ResponseWriter, r *http.Request) { <-block })
	defer close(block)
	u, _ := url.Parse(srv.URL + "/t")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, _, err := kafkaHTTPPost(ctx, u, tc, nil, []byte("x")); err == nil {
		t.Fatal("no error from a silent server")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestKafkaFindIvorn(t *testing.T) {
	if got := kafkaFindIvorn([]byte(`<voe:VOEvent ivorn="ivo://a/b#c" role="test">`)); got != "ivo://a/b#c" {
		t.Error(got)
	}
	if got := kafkaFindIvorn([]byte(`<VOEvent role='x' ivorn='ivo://q#1'>`)); got != "ivo://q#1" {
		t.Error(got)
	}
	if got := kafkaFindIvorn([]byte(strings.Repeat(" ", 5000) + `ivorn="ivo://late"`)); got != "?" {
		t.Error(got)
	}
	if got := kafkaFindIvorn([]byte(`{"json": true}`)); got != "?" {
		t.Error(got)
	}
}

func TestKafkaPartitionHash(t *testing.T) {
	// FNV-1a 32: the empty string hashes to the offset basis; "a" to 0xe40c292c.
	if kafkaPartitionHash("") != 0x811c9dc5 || kafkaPartitionHash("a") != 0xe40c292c {
		t.Errorf("fnv-1a: %x %x", kafkaPartitionHash(""), kafkaPartitionHash("a"))
	}
}

func TestKafkaSharedTokenSource(t *testing.T) {
	sf := filepath.Join(t.TempDir(), "s")
	os.WriteFile(sf, []byte("s"), 0o600)
	cfg := kafkaConfig{Bootstrap: []string{"h:1"}, Topics: []string{"t"}, PublishTopic: "p", Mechanism: "OAUTHBEARER",
		TokenURL: "https://127.0.0.1:1/token", ClientID: "c", ClientSecretFile: sf}
	if err := cfg.resolve(); err != nil {
		t.Fatal(err)
	}
	c, err := newKafkaConsumer(&cfg, "", func(*kafkaMessage, func()) {}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newKafkaProducer(&cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.k.tokens == nil || c.k.tokens != p.k.tokens {
		t.Error("consumer and producer must share one token source")
	}
}

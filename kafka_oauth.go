// kafka_oauth.go owns the OAuth 2.0 client-credentials token source behind
// SASL/OAUTHBEARER, and the minimal HTTPS/1.1 client it uses (the product has
// no net/http, on purpose). Invariants: one token serves every connection;
// it is fetched once per refresh (at 80 % of its lifetime), concurrent callers
// wait for that one fetch; a failed fetch is not repeated for a growing while;
// every size and time of the HTTP exchange is bounded.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// HTTP limits.
const (
	kafkaHTTPMaxLine    = 8 << 10
	kafkaHTTPMaxHeaders = 64 << 10
	kafkaHTTPMaxBody    = 64 << 10
	kafkaHTTPTimeout    = 15 * time.Second
)

type kafkaTokenSource struct {
	tokenURL   *url.URL
	clientID   string
	secretFile string
	tls        *tls.Config
	now        func() time.Time

	mu        sync.Mutex
	secret    string
	tok       string
	expires   time.Time
	refreshAt time.Time
	fetching  chan struct{} // closed when the fetch in progress ends
	lastErr   error
	retryAt   time.Time
	backoff   time.Duration
	requests  int // token requests sent, for tests and metrics
}

func newKafkaTokenSource(tokenURL, clientID, secretFile string, tlsConf *tls.Config) (*kafkaTokenSource, error) {
	u, err := url.Parse(tokenURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("--kafka-oauth-token-url %q: want an https:// URL", tokenURL)
	}
	s := &kafkaTokenSource{tokenURL: u, clientID: clientID, secretFile: secretFile, tls: tlsConf, now: time.Now}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// reload re-reads the client secret; the next refresh uses it.
func (s *kafkaTokenSource) reload() error {
	sec, err := kafkaReadSecret(s.secretFile)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if sec != s.secret {
		s.secret = sec
		s.retryAt = time.Time{} // a new secret may work at once
		s.backoff = 0
	}
	s.mu.Unlock()
	return nil
}

// kafkaReadSecret reads a secret file, without one trailing newline.
func kafkaReadSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret file: %w", err)
	}
	s := string(b)
	if strings.HasSuffix(s, "\r\n") {
		s = s[:len(s)-2]
	} else {
		s = strings.TrimSuffix(s, "\n")
	}
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

// token returns the current token, fetching a new one when it is due; only
// one fetch runs at a time and every caller waits for it.
func (s *kafkaTokenSource) token(ctx context.Context) (string, error) {
	for {
		s.mu.Lock()
		now := s.now()
		if s.tok != "" && now.Before(s.refreshAt) {
			t := s.tok
			s.mu.Unlock()
			return t, nil
		}
		if s.fetching == nil {
			if now.Before(s.retryAt) {
				// Failing: do not ask again yet; an unexpired token still serves.
				t, err := s.tok, s.lastErr
				s.mu.Unlock()
				if t != "" && now.Before(s.expires) {
					return t, nil
				}
				return "", err
			}
			// This caller fetches, in its own goroutine (nothing outlives
			// the caller's run); the others wait for it.
			ch := make(chan struct{})
			s.fetching = ch
			secret := s.secret
			s.requests++
			s.mu.Unlock()
			s.fetch(ctx, secret, ch)
			if err := ctx.Err(); err != nil {
				return "", err
			}
			continue
		}
		ch := s.fetching
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return "", ctx.Err()
		}
		s.mu.Lock()
		if s.lastErr != nil && s.tok == "" {
			err := s.lastErr
			s.mu.Unlock()
			return "", err
		}
		s.mu.Unlock()
	}
}

// fetch runs one token request; a request cut short by the caller's
// cancellation counts as no attempt (a waiter starts another).
func (s *kafkaTokenSource) fetch(parent context.Context, secret string, ch chan struct{}) {
	ctx, cancel := context.WithTimeout(parent, kafkaHTTPTimeout)
	defer cancel()
	tok, life, err := s.request(ctx, secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if err != nil && parent.Err() != nil {
		// cancelled: leave the state as it was
	} else if err != nil {
		s.lastErr = err
		s.backoff = min(max(2*s.backoff, 5*time.Second), 5*time.Minute)
		s.retryAt = now.Add(s.backoff)
		if now.After(s.expires) {
			s.tok = ""
		}
	} else {
		s.tok, s.lastErr, s.backoff, s.retryAt = tok, nil, 0, time.Time{}
		s.expires = now.Add(life)
		s.refreshAt = now.Add(life * 8 / 10)
	}
	s.fetching = nil
	close(ch)
}

func (s *kafkaTokenSource) request(ctx context.Context, secret string) (string, time.Duration, error) {
	auth := base64.StdEncoding.EncodeToString([]byte(s.clientID + ":" + secret))
	hdr := []string{
		"Authorization: Basic " + auth,
		"Content-Type: application/x-www-form-urlencoded",
		"Accept: application/json",
	}
	status, body, err := kafkaHTTPPost(ctx, s.tokenURL, s.tls, hdr, []byte("grant_type=client_credentials"))
	if err != nil {
		return "", 0, fmt.Errorf("token endpoint %s: %w", s.tokenURL.Host, err)
	}
	var r struct {
		AccessToken string          `json:"access_token"`
		ExpiresIn   json.RawMessage `json:"expires_in"`
		Error       string          `json:"error"`
		ErrorDesc   string          `json:"error_description"`
	}
	jerr := json.Unmarshal(body, &r)
	if status != 200 {
		why := r.Error
		if r.ErrorDesc != "" {
			why += ": " + r.ErrorDesc
		}
		if jerr != nil || why == "" {
			why = kafkaTruncate(string(body), 200)
		}
		return "", 0, fmt.Errorf("token endpoint %s: HTTP %d %s", s.tokenURL.Host, status, why)
	}
	if jerr != nil || r.AccessToken == "" {
		return "", 0, fmt.Errorf("token endpoint %s: reply has no access_token", s.tokenURL.Host)
	}
	exp, err := strconv.ParseFloat(strings.Trim(string(r.ExpiresIn), `"`), 64)
	if err != nil || exp <= 0 {
		exp = 3600 // RFC 6749: expires_in is recommended, not required
	}
	exp = min(exp, 86400*7)
	return r.AccessToken, time.Duration(exp * float64(time.Second)), nil
}

// kafkaHTTPPost performs one HTTPS/1.1 POST and returns the status and body.
// Headers are complete lines without CRLF. The connection is closed after.
func kafkaHTTPPost(ctx context.Context, u *url.URL, tlsConf *tls.Config, headers []string, body []byte) (int, []byte, error) {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "443")
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return 0, nil, err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	} else {
		nc.SetDeadline(time.Now().Add(kafkaHTTPTimeout))
	}
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	var cfg *tls.Config
	if tlsConf != nil {
		cfg = tlsConf.Clone()
	} else {
		cfg = &tls.Config{}
	}
	cfg.ServerName = u.Hostname()
	cfg.NextProtos = []string{"http/1.1"}
	tc := tls.Client(nc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		return 0, nil, err
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: comet/%s\r\nConnection: close\r\nContent-Length: %d\r\n", path, u.Host, version, len(body))
	for _, h := range headers {
		req.WriteString(h)
		req.WriteString("\r\n")
	}
	req.WriteString("\r\n")
	req.Write(body)
	if _, err := tc.Write(req.Bytes()); err != nil {
		return 0, nil, err
	}
	return kafkaHTTPReadResponse(bufio.NewReaderSize(tc, 4096), kafkaHTTPMaxBody)
}

var errKafkaHTTP = errors.New("malformed HTTP response")

// kafkaHTTPReadResponse reads a status line, headers and a body delimited by
// Content-Length, chunked encoding, or the end of the connection, each bounded.
func kafkaHTTPReadResponse(br *bufio.Reader, maxBody int) (int, []byte, error) {
	total := 0
	line := func() (string, error) {
		var b []byte
		for {
			frag, err := br.ReadSlice('\n')
			b = append(b, frag...)
			total += len(frag)
			if len(b) > kafkaHTTPMaxLine || total > kafkaHTTPMaxHeaders {
				return "", fmt.Errorf("%w: header too long", errKafkaHTTP)
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				return "", err
			}
			return strings.TrimRight(string(b), "\r\n"), nil
		}
	}
	var status int
	for {
		sl, err := line()
		if err != nil {
			return 0, nil, err
		}
		proto, rest, ok := strings.Cut(sl, " ")
		if !ok || !strings.HasPrefix(proto, "HTTP/1.") || len(rest) < 3 {
			return 0, nil, fmt.Errorf("%w: status line %q", errKafkaHTTP, kafkaTruncate(sl, 80))
		}
		status, err = strconv.Atoi(rest[:3])
		if err != nil || status < 100 || status > 999 {
			return 0, nil, fmt.Errorf("%w: status line %q", errKafkaHTTP, kafkaTruncate(sl, 80))
		}
		if status >= 200 || status == 101 {
			break
		}
		for { // skip a 1xx response's headers
			h, err := line()
			if err != nil {
				return 0, nil, err
			}
			if h == "" {
				break
			}
		}
	}
	length, chunked := -1, false
	for {
		h, err := line()
		if err != nil {
			return 0, nil, err
		}
		if h == "" {
			break
		}
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			return 0, nil, fmt.Errorf("%w: header line %q", errKafkaHTTP, kafkaTruncate(h, 80))
		}
		v = strings.TrimSpace(v)
		switch strings.ToLower(strings.TrimSpace(k)) {
		case "content-length":
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return 0, nil, fmt.Errorf("%w: content-length %q", errKafkaHTTP, kafkaTruncate(v, 40))
			}
			length = n
		case "transfer-encoding":
			if strings.EqualFold(v, "chunked") {
				chunked = true
			} else if !strings.EqualFold(v, "identity") {
				return 0, nil, fmt.Errorf("%w: transfer-encoding %q", errKafkaHTTP, kafkaTruncate(v, 40))
			}
		}
	}
	switch {
	case chunked:
		var body []byte
		for {
			total = 0
			sz, err := line()
			if err != nil {
				return 0, nil, err
			}
			sz, _, _ = strings.Cut(sz, ";")
			n, err := strconv.ParseInt(strings.TrimSpace(sz), 16, 32)
			if err != nil || n < 0 {
				return 0, nil, fmt.Errorf("%w: chunk size %q", errKafkaHTTP, kafkaTruncate(sz, 40))
			}
			if n == 0 {
				break
			}
			if len(body)+int(n) > maxBody {
				return 0, nil, fmt.Errorf("%w: body over %d bytes", errKafkaHTTP, maxBody)
			}
			start := len(body)
			body = append(body, make([]byte, n)...)
			if _, err := io.ReadFull(br, body[start:]); err != nil {
				return 0, nil, err
			}
			if crlf, err := line(); err != nil || crlf != "" {
				return 0, nil, fmt.Errorf("%w: chunk not followed by CRLF", errKafkaHTTP)
			}
		}
		return status, body, nil // trailers ignored
	case length >= 0:
		if length > maxBody {
			return 0, nil, fmt.Errorf("%w: body of %d bytes over %d", errKafkaHTTP, length, maxBody)
		}
		body := make([]byte, length)
		if _, err := io.ReadFull(br, body); err != nil {
			return 0, nil, err
		}
		return status, body, nil
	default:
		body, err := io.ReadAll(io.LimitReader(br, int64(maxBody)+1))
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, err
		}
		if len(body) > maxBody {
			return 0, nil, fmt.Errorf("%w: body over %d bytes", errKafkaHTTP, maxBody)
		}
		return status, body, nil
	}
}

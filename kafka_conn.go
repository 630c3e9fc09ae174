// kafka_conn.go owns one connection to one Kafka broker: dial with a timeout,
// optional TLS (a CA bundle or the system roots, host names checked),
// ApiVersions negotiation, SASL (PLAIN, SCRAM-SHA-256/512 with the server's
// signature verified, OAUTHBEARER), and synchronous request/response round
// trips with checked correlation ids, a deadline per request and a bounded
// response size. A connection is used by one goroutine at a time; a failed
// round trip leaves it broken, and the owner dials again.
package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

var (
	// errKafkaSessionExpired: the SASL session is near its end; dial again.
	errKafkaSessionExpired = errors.New("kafka: sasl session lifetime reached, reconnecting")
	// errKafkaBroken: an earlier round trip failed; the connection is unusable.
	errKafkaBroken = errors.New("kafka: connection broken")
)

// kafkaAuthError is a refused authentication; msg is the broker's words.
type kafkaAuthError struct {
	mechanism string
	msg       string
}

func (e *kafkaAuthError) Error() string {
	return "kafka: " + e.mechanism + " authentication failed: " + e.msg
}

// kafkaDialer holds what every connection to a cluster shares.
type kafkaDialer struct {
	clientID    string
	tls         *tls.Config // nil for plaintext
	mechanism   string      // "" for none
	username    string
	password    func() string
	token       func(ctx context.Context) (string, error) // OAUTHBEARER
	dialTimeout time.Duration
	reqTimeout  time.Duration
	maxResponse int
}

type kafkaConn struct {
	addr     string
	nc       net.Conn
	br       *bufio.Reader
	d        *kafkaDialer
	corr     int32
	versions map[int16]int16
	reauthAt time.Time // zero when the session does not expire
	broken   bool
	stop     func() bool
}

// dial connects to addr and authenticates. ctx cancellation closes the
// connection at any later time.
func (d *kafkaDialer) dial(ctx context.Context, addr string) (*kafkaConn, error) {
	dctx, cancel := context.WithTimeout(ctx, d.dialTimeout)
	defer cancel()
	var nd net.Dialer
	nc, err := nd.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if d.tls != nil {
		cfg := d.tls.Clone()
		if cfg.ServerName == "" {
			host, _, _ := net.SplitHostPort(addr)
			cfg.ServerName = host
		}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(dctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls with %s: %w", addr, err)
		}
		nc = tc
	}
	c := &kafkaConn{addr: addr, nc: nc, br: bufio.NewReaderSize(nc, 64<<10), d: d}
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	if err := c.negotiate(ctx); err != nil {
		c.close()
		return nil, err
	}
	if d.mechanism != "" {
		if err := c.authenticate(ctx); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

func (c *kafkaConn) close() {
	if c.stop != nil {
		c.stop()
	}
	c.nc.Close()
	c.broken = true
}

// version is the negotiated version of api, or false when none is common.
func (c *kafkaConn) version(api int16) (int16, bool) {
	v, ok := c.versions[api]
	return v, ok
}

func (c *kafkaConn) negotiate(ctx context.Context) error {
	c.versions = map[int16]int16{kafkaAPIApiVersions: 2}
	for _, v := range []int16{2, 0} {
		resp, err := c.roundTrip(ctx, kafkaAPIApiVersions, v, nil, 0)
		if err != nil {
			return err
		}
		r, err := decodeKafkaApiVersions(resp, v)
		if err != nil {
			return fmt.Errorf("api versions from %s: %w", c.addr, err)
		}
		if r.errCode == kafkaErrUnsupportedVersion && v != 0 {
			continue
		}
		if r.errCode != 0 {
			return fmt.Errorf("api versions from %s: %w", c.addr, kafkaErrCode(r.errCode, ""))
		}
		c.versions = kafkaPickVersions(r.versions)
		for _, api := range []int16{kafkaAPIMetadata} {
			if _, ok := c.versions[api]; !ok {
				return fmt.Errorf("broker %s supports no usable version of api %d", c.addr, api)
			}
		}
		return nil
	}
	return fmt.Errorf("broker %s refused every ApiVersions version", c.addr)
}

// roundTrip sends one request and returns the response body after the
// correlation id. extra widens the deadline (a Fetch's max wait).
func (c *kafkaConn) roundTrip(ctx context.Context, api, version int16, body []byte, extra time.Duration) ([]byte, error) {
	if c.broken {
		return nil, errKafkaBroken
	}
	if !c.reauthAt.IsZero() && time.Now().After(c.reauthAt) {
		c.close() // the owner dials again (a fresh token, a new session)
		return nil, errKafkaSessionExpired
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.corr++
	req := kafkaRequest(api, version, c.corr, c.d.clientID, body)
	c.nc.SetDeadline(time.Now().Add(c.d.reqTimeout + extra))
	resp, err := c.exchange(req)
	if err != nil {
		c.broken = true
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("kafka %s: %w", c.addr, err)
	}
	return resp, nil
}

func (c *kafkaConn) exchange(req []byte) ([]byte, error) {
	if _, err := c.nc.Write(req); err != nil {
		return nil, err
	}
	var hdr [8]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return nil, err
	}
	size := int(int32(binary.BigEndian.Uint32(hdr[:4])))
	if size < 4 || size > c.d.maxResponse {
		return nil, fmt.Errorf("response size %d outside 4..%d", size, c.d.maxResponse)
	}
	if corr := int32(binary.BigEndian.Uint32(hdr[4:])); corr != c.corr {
		return nil, fmt.Errorf("correlation id %d, want %d", corr, c.corr)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, err
	}
	return body, nil
}

// ---- SASL ----

func (c *kafkaConn) authenticate(ctx context.Context) error {
	mech := c.d.mechanism
	resp, err := c.roundTrip(ctx, kafkaAPISaslHandshake, 1, encodeKafkaSaslHandshake(mech), 0)
	if err != nil {
		return err
	}
	hs, err := decodeKafkaSaslHandshake(resp)
	if err != nil {
		return fmt.Errorf("sasl handshake with %s: %w", c.addr, err)
	}
	if hs.errCode != 0 {
		return &kafkaAuthError{mechanism: mech, msg: fmt.Sprintf("broker offers %s: %v", strings.Join(hs.mechanisms, ","), kafkaErrCode(hs.errCode, ""))}
	}
	var lifetime int64
	switch mech {
	case "PLAIN":
		msg := "\x00" + c.d.username + "\x00" + c.d.password()
		_, lifetime, err = c.saslStep(ctx, []byte(msg))
	case "SCRAM-SHA-256", "SCRAM-SHA-512":
		lifetime, err = c.scram(ctx)
	case "OAUTHBEARER":
		lifetime, err = c.oauthBearer(ctx)
	default:
		err = fmt.Errorf("unknown sasl mechanism %q", mech)
	}
	var ae *kafkaAuthError
	if err != nil && !errors.As(err, &ae) && ctx.Err() == nil && c.broken {
		// Some brokers (kfake, SaslHandshake-less paths) refuse by
		// closing the connection in the middle of the exchange.
		err = &kafkaAuthError{mechanism: mech, msg: "the broker closed the connection during authentication"}
	}
	if err != nil {
		return err
	}
	if lifetime > 0 {
		l := time.Duration(lifetime) * time.Millisecond
		c.reauthAt = time.Now().Add(kafkaReauthAfter(l))
	}
	return nil
}

// kafkaReauthAfter is when to leave a session of lifetime l: at 80 % or 30 s
// before its end, whichever is earlier (never before half of it).
func kafkaReauthAfter(l time.Duration) time.Duration {
	a := min(l*8/10, l-30*time.Second)
	return max(a, l/2)
}

// saslStep sends one SaslAuthenticate and returns the server's bytes.
func (c *kafkaConn) saslStep(ctx context.Context, msg []byte) ([]byte, int64, error) {
	v, ok := c.version(kafkaAPISaslAuthenticate)
	if !ok {
		return nil, 0, errors.New("broker does not support SaslAuthenticate v0-1")
	}
	resp, err := c.roundTrip(ctx, kafkaAPISaslAuthenticate, v, encodeKafkaSaslAuthenticate(msg), 0)
	if err != nil {
		return nil, 0, err
	}
	r, err := decodeKafkaSaslAuthenticate(resp, v)
	if err != nil {
		return nil, 0, fmt.Errorf("sasl authenticate with %s: %w", c.addr, err)
	}
	if r.errCode != 0 {
		m := r.errMsg
		if m == "" {
			m = kafkaErrName(r.errCode)
		}
		return nil, 0, &kafkaAuthError{mechanism: c.d.mechanism, msg: m}
	}
	return r.auth, r.lifetimeMs, nil
}

// kafkaOAuthBearerInitial is the RFC 7628 client initial response.
func kafkaOAuthBearerInitial(token string) []byte {
	return []byte("n,,\x01auth=Bearer " + token + "\x01\x01")
}

func (c *kafkaConn) oauthBearer(ctx context.Context) (int64, error) {
	tok, err := c.d.token(ctx)
	if err != nil {
		return 0, &kafkaAuthError{mechanism: "OAUTHBEARER", msg: "no token: " + err.Error()}
	}
	srv, lifetime, err := c.saslStep(ctx, kafkaOAuthBearerInitial(tok))
	if err != nil {
		return 0, err
	}
	if len(srv) > 0 {
		// An error challenge (JSON such as {"status":"invalid_token"}):
		// answer with a single 0x01; the broker then fails the exchange.
		_, _, err := c.saslStep(ctx, []byte{1})
		if err == nil {
			err = &kafkaAuthError{mechanism: "OAUTHBEARER", msg: string(srv)}
		}
		var ae *kafkaAuthError
		if errors.As(err, &ae) && !strings.Contains(ae.msg, string(srv)) {
			ae.msg = ae.msg + ": " + kafkaTruncate(string(srv), 200)
		}
		return 0, err
	}
	return lifetime, nil
}

func (c *kafkaConn) scram(ctx context.Context) (int64, error) {
	s, err := newKafkaScram(c.d.mechanism, c.d.username, c.d.password(), "")
	if err != nil {
		return 0, err
	}
	srvFirst, _, err := c.saslStep(ctx, []byte(s.clientFirst()))
	if err != nil {
		return 0, err
	}
	final, err := s.clientFinal(string(srvFirst))
	if err != nil {
		return 0, &kafkaAuthError{mechanism: c.d.mechanism, msg: err.Error()}
	}
	srvFinal, lifetime, err := c.saslStep(ctx, []byte(final))
	if err != nil {
		return 0, err
	}
	if err := s.verifyServer(string(srvFinal)); err != nil {
		return 0, &kafkaAuthError{mechanism: c.d.mechanism, msg: err.Error()}
	}
	return lifetime, nil
}

// kafkaScram is one client side of a SCRAM exchange (RFC 5802, RFC 7677).
type kafkaScram struct {
	h           func() hash.Hash
	user, pass  string
	nonce       string
	authMessage string
	saltedPass  []byte
}

func newKafkaScram(mech, user, pass, nonce string) (*kafkaScram, error) {
	s := &kafkaScram{user: user, pass: pass, nonce: nonce}
	switch mech {
	case "SCRAM-SHA-256":
		s.h = sha256.New
	case "SCRAM-SHA-512":
		s.h = sha512.New
	default:
		return nil, fmt.Errorf("unknown scram mechanism %q", mech)
	}
	if s.nonce == "" {
		var b [24]byte
		rand.Read(b[:])
		s.nonce = base64.RawURLEncoding.EncodeToString(b[:])
	}
	return s, nil
}

func (s *kafkaScram) clientFirstBare() string {
	u := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.user)
	return "n=" + u + ",r=" + s.nonce
}

func (s *kafkaScram) clientFirst() string { return "n,," + s.clientFirstBare() }

func (s *kafkaScram) hmac(key []byte, msg string) []byte {
	m := hmac.New(s.h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func (s *kafkaScram) clientFinal(serverFirst string) (string, error) {
	var nonce, salt64 string
	iter := -1
	for _, f := range strings.Split(serverFirst, ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt64 = f[2:]
		case strings.HasPrefix(f, "i="):
			n, err := strconv.Atoi(f[2:])
			if err == nil {
				iter = n
			}
		case strings.HasPrefix(f, "e="):
			return "", errors.New("server error " + kafkaTruncate(f[2:], 200))
		case strings.HasPrefix(f, "m="):
			return "", errors.New("server requires an unsupported extension")
		}
	}
	if !strings.HasPrefix(nonce, s.nonce) || len(nonce) == len(s.nonce) {
		return "", errors.New("server nonce does not extend ours")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil || len(salt) == 0 {
		return "", errors.New("bad salt in server-first message")
	}
	if iter < 1 || iter > 1<<20 {
		return "", fmt.Errorf("iteration count %d outside 1..%d", iter, 1<<20)
	}
	s.saltedPass, err = pbkdf2.Key(s.h, s.pass, salt, iter, s.h().Size())
	if err != nil {
		return "", err
	}
	withoutProof := "c=biws,r=" + nonce
	s.authMessage = s.clientFirstBare() + "," + serverFirst + "," + withoutProof
	clientKey := s.hmac(s.saltedPass, "Client Key")
	hs := s.h()
	hs.Write(clientKey)
	storedKey := hs.Sum(nil)
	sig := s.hmac(storedKey, s.authMessage)
	proof := make([]byte, len(clientKey))
	for i := range clientKey {
		proof[i] = clientKey[i] ^ sig[i]
	}
	return withoutProof + ",p=" + base64.StdEncoding.EncodeToString(proof), nil
}

func (s *kafkaScram) verifyServer(serverFinal string) error {
	if strings.HasPrefix(serverFinal, "e=") {
		return errors.New("server error " + kafkaTruncate(serverFinal[2:], 200))
	}
	v, ok := strings.CutPrefix(strings.SplitN(serverFinal, ",", 2)[0], "v=")
	if !ok {
		return errors.New("server-final message has no signature")
	}
	got, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return errors.New("server signature is not base64")
	}
	want := s.hmac(s.hmac(s.saltedPass, "Server Key"), s.authMessage)
	if !hmac.Equal(got, want) {
		return errors.New("server signature does not verify (not the real broker?)")
	}
	return nil
}

// kafkaTruncate shortens peer-supplied text for log lines.
func kafkaTruncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

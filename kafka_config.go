// kafka_config.go owns the Kafka bridge's configuration (every option of
// contract section 8, their defaults and the GCN preset), its command-line
// flags, and what the consumer and producer share: the dialer built from the
// configuration (TLS, SASL secrets, the one OAuth token source), cluster
// metadata requests, jittered back-off and rate-limited logging.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"time"
)

// kafkaConfig is every Kafka option; resolve fills the defaults.
type kafkaConfig struct {
	Bootstrap        []string // host:port
	Topics           []string // names or globs
	Security         string   // plaintext | ssl | sasl_plaintext | sasl_ssl
	Mechanism        string   // PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 | OAUTHBEARER
	Username         string
	PasswordFile     string
	TokenURL         string
	ClientID         string
	ClientSecretFile string
	CAFile           string
	Start            string // earliest | latest | RFC 3339 time
	Refresh          time.Duration
	PublishTopic     string

	GCNClientID         string
	GCNClientSecretFile string
	GCNDomain           string

	// Not options of the contract; zero means the default.
	ClientName       string // the Kafka client.id header; default "comet"
	MaxInflightBytes int    // bytes handed to the sink and not done; default 16 MiB
	MaxValueBytes    int    // larger record values are skipped as too-large
	PublishQueue     int    // bytes queued for --kafka-publish; default 8 MiB

	startTime time.Time // parsed Start when a time
}

// kafkaStringList is a repeatable flag.
type kafkaStringList struct{ p *[]string }

func (l kafkaStringList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}
func (l kafkaStringList) Set(v string) error { *l.p = append(*l.p, v); return nil }

// kafkaAddFlags declares the Kafka options of contract section 8 on fs.
func kafkaAddFlags(fs *flag.FlagSet, c *kafkaConfig) {
	fs.Func("kafka-bootstrap", "Kafka cluster `HOST:PORT[,HOST:PORT]`", func(v string) error {
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				c.Bootstrap = append(c.Bootstrap, a)
			}
		}
		return nil
	})
	fs.Var(kafkaStringList{&c.Topics}, "kafka-topic", "Kafka topic name or glob (`PATTERN`, repeatable)")
	fs.StringVar(&c.Security, "kafka-security", "", "plaintext|ssl|sasl_plaintext|sasl_ssl (default plaintext, or sasl_ssl with a mechanism)")
	fs.StringVar(&c.Mechanism, "kafka-sasl-mechanism", "", "PLAIN|SCRAM-SHA-256|SCRAM-SHA-512|OAUTHBEARER")
	fs.StringVar(&c.Username, "kafka-username", "", "SASL user name (PLAIN, SCRAM)")
	fs.StringVar(&c.PasswordFile, "kafka-password-file", "", "file holding the SASL password")
	fs.StringVar(&c.TokenURL, "kafka-oauth-token-url", "", "OAuth 2.0 token endpoint (OAUTHBEARER)")
	fs.StringVar(&c.ClientID, "kafka-client-id", "", "OAuth 2.0 client id")
	fs.StringVar(&c.ClientSecretFile, "kafka-client-secret-file", "", "file holding the OAuth 2.0 client secret")
	fs.StringVar(&c.CAFile, "kafka-ca", "", "PEM bundle verifying the brokers and token endpoint (default system roots)")
	fs.StringVar(&c.Start, "kafka-start", "", "earliest|latest|RFC3339-TIME: where a partition without stored offset begins (default latest)")
	fs.DurationVar(&c.Refresh, "kafka-refresh", 0, "how often topic globs are matched again (default 2m)")
	fs.StringVar(&c.PublishTopic, "kafka-publish", "", "produce accepted events to this `TOPIC`")
	fs.StringVar(&c.GCNClientID, "gcn-client-id", "", "GCN Kafka client id (GCN preset)")
	fs.StringVar(&c.GCNClientSecretFile, "gcn-client-secret-file", "", "file holding the GCN client secret")
	fs.StringVar(&c.GCNDomain, "gcn-domain", "", "GCN domain (default gcn.nasa.gov)")
}

// enabled says whether any Kafka consumption or publication is configured.
func (c *kafkaConfig) enabled() bool {
	return len(c.Bootstrap) > 0 || c.GCNClientID != ""
}

// resolve applies the GCN preset and the defaults and validates.
func (c *kafkaConfig) resolve() error {
	if c.GCNClientID != "" || c.GCNClientSecretFile != "" || c.GCNDomain != "" {
		if c.GCNClientID == "" {
			return errors.New("--gcn-client-secret-file and --gcn-domain need --gcn-client-id")
		}
		if c.GCNClientSecretFile == "" {
			return errors.New("--gcn-client-id needs --gcn-client-secret-file")
		}
		if c.GCNDomain == "" {
			c.GCNDomain = "gcn.nasa.gov"
		}
		if c.Mechanism != "" && c.Mechanism != "OAUTHBEARER" {
			return fmt.Errorf("--kafka-sasl-mechanism %s conflicts with --gcn-client-id (GCN uses OAUTHBEARER)", c.Mechanism)
		}
		if (c.ClientID != "" && c.ClientID != c.GCNClientID) || (c.ClientSecretFile != "" && c.ClientSecretFile != c.GCNClientSecretFile) {
			return errors.New("--kafka-client-id/--kafka-client-secret-file conflict with --gcn-client-id")
		}
		if len(c.Bootstrap) == 0 {
			c.Bootstrap = []string{"kafka." + c.GCNDomain + ":9092"}
		}
		if c.Security == "" {
			c.Security = "sasl_ssl"
		}
		c.Mechanism = "OAUTHBEARER"
		if c.TokenURL == "" {
			c.TokenURL = "https://auth." + c.GCNDomain + "/oauth2/token"
		}
		c.ClientID, c.ClientSecretFile = c.GCNClientID, c.GCNClientSecretFile
		if len(c.Topics) == 0 && c.PublishTopic == "" {
			c.Topics = []string{"gcn.classic.voevent.*"}
		}
	}
	if len(c.Bootstrap) == 0 {
		return errors.New("kafka: --kafka-bootstrap (or --gcn-client-id) is required")
	}
	for _, a := range c.Bootstrap {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("--kafka-bootstrap %q: want HOST:PORT", a)
		}
	}
	if len(c.Topics) == 0 && c.PublishTopic == "" {
		return errors.New("kafka: --kafka-topic or --kafka-publish is required with --kafka-bootstrap")
	}
	for _, t := range c.Topics {
		if t == "" || len(t) > 249 || strings.ContainsAny(t, " \t\n/,") {
			return fmt.Errorf("--kafka-topic %q: not a topic name or glob", t)
		}
	}
	if c.PublishTopic != "" && (len(c.PublishTopic) > 249 || strings.ContainsAny(c.PublishTopic, "*? \t\n/,")) {
		return fmt.Errorf("--kafka-publish %q: not a topic name", c.PublishTopic)
	}
	switch c.Mechanism {
	case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER":
	default:
		return fmt.Errorf("--kafka-sasl-mechanism %q: want PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER", c.Mechanism)
	}
	if c.Security == "" {
		switch {
		case c.Mechanism != "":
			c.Security = "sasl_ssl"
		case c.CAFile != "":
			c.Security = "ssl"
		default:
			c.Security = "plaintext"
		}
	}
	switch c.Security {
	case "plaintext", "ssl":
		if c.Mechanism != "" {
			return fmt.Errorf("--kafka-security %s with --kafka-sasl-mechanism %s: use sasl_plaintext or sasl_ssl", c.Security, c.Mechanism)
		}
	case "sasl_plaintext", "sasl_ssl":
		if c.Mechanism == "" {
			return fmt.Errorf("--kafka-security %s needs --kafka-sasl-mechanism", c.Security)
		}
	default:
		return fmt.Errorf("--kafka-security %q: want plaintext, ssl, sasl_plaintext or sasl_ssl", c.Security)
	}
	switch c.Mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.Username == "" || c.PasswordFile == "" {
			return fmt.Errorf("--kafka-sasl-mechanism %s needs --kafka-username and --kafka-password-file", c.Mechanism)
		}
	case "OAUTHBEARER":
		if c.TokenURL == "" || c.ClientID == "" || c.ClientSecretFile == "" {
			return errors.New("--kafka-sasl-mechanism OAUTHBEARER needs --kafka-oauth-token-url, --kafka-client-id and --kafka-client-secret-file")
		}
		if !strings.HasPrefix(c.TokenURL, "https://") {
			return fmt.Errorf("--kafka-oauth-token-url %q: want an https:// URL", c.TokenURL)
		}
	}
	switch c.Start {
	case "":
		c.Start = "latest"
	case "earliest", "latest":
	default:
		t, err := time.Parse(time.RFC3339, c.Start)
		if err != nil {
			return fmt.Errorf("--kafka-start %q: want earliest, latest or an RFC 3339 time", c.Start)
		}
		c.startTime = t
	}
	if c.Refresh == 0 {
		c.Refresh = 2 * time.Minute
	}
	if c.Refresh < time.Second {
		return fmt.Errorf("--kafka-refresh %v: want at least 1s", c.Refresh)
	}
	if c.ClientName == "" {
		c.ClientName = "comet"
	}
	if c.MaxInflightBytes <= 0 {
		c.MaxInflightBytes = 16 << 20
	}
	if c.MaxValueBytes <= 0 {
		c.MaxValueBytes = kafkaDefaultMaxValueBytes
	}
	if c.PublishQueue <= 0 {
		c.PublishQueue = 8 << 20
	}
	return nil
}

// startTimestamp is the ListOffsets timestamp for partitions known at the
// first start.
func (c *kafkaConfig) startTimestamp() int64 {
	switch c.Start {
	case "earliest":
		return kafkaEarliest
	case "latest", "":
		return kafkaLatest
	}
	return c.startTime.UnixMilli()
}

// kafkaCluster is what the consumer and producer share for one cluster.
type kafkaCluster struct {
	cfg    *kafkaConfig
	dialer *kafkaDialer
	tokens *kafkaTokenSource
	log    *slog.Logger
	limit  *kafkaLogLimiter

	mu       sync.Mutex
	password string
	brokers  map[int32]string // node id -> host:port, from the last metadata
	authMsg  string           // the last authentication error logged
	kick     chan struct{}    // closed and replaced by reload: retry at once
}

func newKafkaCluster(cfg *kafkaConfig, log *slog.Logger) (*kafkaCluster, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &kafkaCluster{cfg: cfg, log: log, limit: newKafkaLogLimiter(30 * time.Second), brokers: map[int32]string{}, kick: make(chan struct{})}
	var roots *x509.CertPool
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("--kafka-ca: %w", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--kafka-ca %s: no PEM certificates", cfg.CAFile)
		}
	}
	d := &kafkaDialer{
		clientID:    cfg.ClientName,
		dialTimeout: 10 * time.Second,
		reqTimeout:  15 * time.Second,
		maxResponse: kafkaMaxResponse,
		password:    k.currentPassword,
	}
	if cfg.Security == "ssl" || cfg.Security == "sasl_ssl" {
		d.tls = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	}
	if strings.HasPrefix(cfg.Security, "sasl_") {
		d.mechanism = cfg.Mechanism
		d.username = cfg.Username
	}
	if d.mechanism == "OAUTHBEARER" {
		ts, err := kafkaSharedTokenSource(cfg, &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			return nil, err
		}
		k.tokens = ts
		d.token = ts.token
	}
	k.dialer = d
	if err := k.reload(); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *kafkaCluster) currentPassword() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.password
}

// reload re-reads the secret files; the next connection uses them.
func (k *kafkaCluster) reload() error {
	if k.cfg.PasswordFile != "" && k.dialer.mechanism != "OAUTHBEARER" && k.dialer.mechanism != "" {
		p, err := kafkaReadSecret(k.cfg.PasswordFile)
		if err != nil {
			return fmt.Errorf("--kafka-password-file: %w", err)
		}
		k.mu.Lock()
		k.password = p
		k.mu.Unlock()
	}
	if k.tokens != nil {
		if err := k.tokens.reload(); err != nil {
			return fmt.Errorf("kafka client secret: %w", err)
		}
	}
	k.mu.Lock()
	close(k.kick)
	k.kick = make(chan struct{})
	k.mu.Unlock()
	return nil
}

// sleep waits d, or until ctx ends (false), or until a reload (new secrets
// may work: retry now).
func (k *kafkaCluster) sleep(ctx context.Context, d time.Duration) bool {
	k.mu.Lock()
	kick := k.kick
	k.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-kick:
	case <-ctx.Done():
		return false
	}
	return true
}

// dial connects to one broker, logging authentication failures once per
// change of the broker's message.
func (k *kafkaCluster) dial(ctx context.Context, addr string) (*kafkaConn, error) {
	c, err := k.dialer.dial(ctx, addr)
	var ae *kafkaAuthError
	if errors.As(err, &ae) {
		k.mu.Lock()
		changed := ae.msg != k.authMsg
		k.authMsg = ae.msg
		k.mu.Unlock()
		if changed {
			k.log.Error("kafka authentication refused; retrying slowly", "broker", addr, "mechanism", ae.mechanism, "error", kafkaTruncate(ae.msg, 300))
		}
	} else if err == nil && k.dialer.mechanism != "" {
		k.mu.Lock()
		was := k.authMsg
		k.authMsg = ""
		k.mu.Unlock()
		if was != "" {
			k.log.Info("kafka authentication accepted again", "broker", addr)
		}
	}
	return c, err
}

// kafkaTokenSources shares one token source between the consumer and the
// producer of one process when they use the same credentials, so a refresh
// costs one token request.
var (
	kafkaTokenSourcesMu sync.Mutex
	kafkaTokenSources   = map[string]*kafkaTokenSource{}
)

func kafkaSharedTokenSource(cfg *kafkaConfig, tc *tls.Config) (*kafkaTokenSource, error) {
	key := strings.Join([]string{cfg.TokenURL, cfg.ClientID, cfg.ClientSecretFile, cfg.CAFile}, "\x00")
	kafkaTokenSourcesMu.Lock()
	defer kafkaTokenSourcesMu.Unlock()
	if ts, ok := kafkaTokenSources[key]; ok {
		return ts, nil
	}
	ts, err := newKafkaTokenSource(cfg.TokenURL, cfg.ClientID, cfg.ClientSecretFile, tc)
	if err != nil {
		return nil, err
	}
	kafkaTokenSources[key] = ts
	return ts, nil
}

// brokerAddr is the address of a node id from the last metadata.
func (k *kafkaCluster) brokerAddr(id int32) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.brokers[id]
	return a, ok
}

// anyConn connects to some broker: the bootstrap list in random order, then
// the brokers known from metadata.
func (k *kafkaCluster) anyConn(ctx context.Context) (*kafkaConn, error) {
	addrs := append([]string(nil), k.cfg.Bootstrap...)
	rand.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	k.mu.Lock()
	for _, a := range k.brokers {
		addrs = append(addrs, a)
	}
	k.mu.Unlock()
	var first error
	for _, a := range addrs {
		c, err := k.dial(ctx, a)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		var ae *kafkaAuthError
		if errors.As(err, &ae) || ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, first
}

// metadata asks c for topics (nil: all) and records the brokers.
func (k *kafkaCluster) metadata(ctx context.Context, c *kafkaConn, topics []string) (*kafkaMetadataResp, error) {
	v, _ := c.version(kafkaAPIMetadata)
	resp, err := c.roundTrip(ctx, kafkaAPIMetadata, v, encodeKafkaMetadata(v, topics), 0)
	if err != nil {
		return nil, err
	}
	md, err := decodeKafkaMetadata(resp, v)
	if err != nil {
		c.close()
		return nil, fmt.Errorf("metadata from %s: %w", c.addr, err)
	}
	k.mu.Lock()
	for _, b := range md.brokers {
		k.brokers[b.id] = net.JoinHostPort(b.host, fmt.Sprint(b.port))
	}
	k.mu.Unlock()
	return md, nil
}

// kafkaBackoff is capped exponential back-off with jitter.
type kafkaBackoff struct {
	min, max, cur time.Duration
}

func (b *kafkaBackoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	} else {
		b.cur = min(b.cur*2, b.max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

func (b *kafkaBackoff) reset() { b.cur = 0 }

// kafkaLogLimiter lets one line per key through per interval and counts the
// rest, reported with the next line let through.
type kafkaLogLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
	supp  map[string]int
}

func newKafkaLogLimiter(every time.Duration) *kafkaLogLimiter {
	return &kafkaLogLimiter{every: every, last: map[string]time.Time{}, supp: map[string]int{}}
}

// allow returns whether to log now and how many were suppressed before.
func (l *kafkaLogLimiter) allow(key string) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		l.supp[key]++
		return false, 0
	}
	if len(l.last) > 1024 {
		clear(l.last)
		clear(l.supp)
	}
	l.last[key] = now
	n := l.supp[key]
	delete(l.supp, key)
	return true, n
}

// warn logs a rate-limited warning.
func (k *kafkaCluster) warn(key, msg string, args ...any) {
	ok, n := k.limit.allow(key)
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	k.log.Warn(msg, args...)
}

// kafkaGlobMatch matches name against a pattern where * is any run of
// characters, ? is one character, and everything else is literal.
func kafkaGlobMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0
	for n < len(name) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, n
			p++
		case p < len(pattern) && (pattern[p] == '?' || pattern[p] == name[n]):
			p++
			n++
		case star >= 0:
			p = star + 1
			mark++
			n = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func kafkaIsGlob(p string) bool { return strings.ContainsAny(p, "*?") }

// Temporary stand-ins for APIs being built on other branches; each is
// deleted when its branch is merged. Never part of a release.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

type eventDB struct {
	mu sync.Mutex
	m  map[string]time.Time
}

func openEventDB(dir string, expiry time.Duration, logger *slog.Logger) (*eventDB, error) {
	return &eventDB{m: map[string]time.Time{}}, nil
}
func (db *eventDB) checkAndRecord(root []byte) (bool, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if _, ok := db.m[string(root)]; ok {
		return false, nil
	}
	db.m[string(root)] = time.Now()
	return true, nil
}
func (db *eventDB) seen(root []byte) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	_, ok := db.m[string(root)]
	return ok
}
func (db *eventDB) len() int         { return len(db.m) }
func (db *eventDB) sizeBytes() int64 { return 0 }
func (db *eventDB) sync() error      { return nil }
func (db *eventDB) close() error     { return nil }

type whitelist struct{ p []netip.Prefix }

func parseWhitelist(specs []string) (*whitelist, error) {
	w := &whitelist{}
	for _, s := range specs {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		w.p = append(w.p, p)
	}
	return w, nil
}
func defaultWhitelist() *whitelist {
	w, _ := parseWhitelist([]string{"0.0.0.0/0", "::/0"})
	return w
}
func (w *whitelist) allows(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return true
	}
	ip, _ := netip.AddrFromSlice(ta.IP)
	ip = ip.Unmap()
	for _, p := range w.p {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
func (w *whitelist) String() string { return "" }

type xpathExpr struct{}

func compileXPath(expr string) (*xpathExpr, error) { return nil, errors.New("xpath not available") }
func (x *xpathExpr) matches(doc *document) bool    { return false }

type handler interface {
	name() string
	handle(ctx context.Context, ev *event) error
}
type handlerPlugin interface {
	pluginName() string
	addFlags(fs *flag.FlagSet)
	handlers(log *slog.Logger) ([]handler, error)
}

func handlerPlugins() []handlerPlugin { return nil }

const (
	defaultHandlerQueue   = 1024
	defaultHandlerWorkers = 4
)

type handlerQueue struct{}

func newHandlerQueue(hs []handler, queueLen, workers int, m *metrics, log *slog.Logger) *handlerQueue {
	return &handlerQueue{}
}
func (q *handlerQueue) submit(ev *event) bool     { return true }
func (q *handlerQueue) close(ctx context.Context) {}

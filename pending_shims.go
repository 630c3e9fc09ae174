// Temporary stand-ins for APIs being built on other branches; each is
// deleted when its branch is merged. Never part of a release.
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
)

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

// handlers.go owns what happens to a new event after it has been recorded
// and relayed (the sender's reply follows; see admission.go): the handler
// plugins (--cmd, --print-event, --save-event and any a site adds) and the
// bounded queue that runs them off the network path.
//
// Invariants: submit never blocks (an event that does not fit is dropped,
// logged and counted); a handler that fails or panics never affects another
// handler, the ack or delivery; every goroutine the queue starts has exited
// when close returns.
//
// Adding a handler: write one file handler_NAME.go with a type implementing
// handlerPlugin and register a constructor for it from init() with
// registerHandlerPlugin. Its
// flags then appear in --help and its handlers run for every new event.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Defaults of the handler queue (exported as flags by the broker).
const (
	defaultHandlerQueue   = 1024 // events waiting for a worker
	defaultHandlerWorkers = 4    // events handled at the same time
)

// A handlerPlugin is the parsed options of one kind of handler: a fresh
// value is made for every parse of the command line (so parsing holds no
// state between calls), its flags are declared on that parse's flag set,
// and once the broker starts it gives the handlers those options ask for.
type handlerPlugin interface {
	// pluginName names the plugin ("cmd", "print-event", "save-event").
	pluginName() string
	// addFlags declares the plugin's options on the broker's flag set,
	// storing what is parsed in the plugin value itself.
	addFlags(fs *flag.FlagSet)
	// handlers returns the handlers the parsed options ask for: none when
	// the plugin is not enabled, one per --cmd for the cmd plugin.
	handlers(log *slog.Logger) ([]handler, error)
}

// A handler acts on one new event. handle must return promptly once ctx is
// cancelled (the broker is stopping or the handler's time is up); ev and
// ev.raw must not be modified.
type handler interface {
	name() string
	handle(ctx context.Context, ev *event) error
}

// pluginFactories make fresh plugin values; the registry holds no option
// values, only how to make them.
var pluginFactories []func() handlerPlugin

// registerHandlerPlugin adds a plugin kind; call it from init() with a
// function that returns a new, empty plugin value. The cmd plugin always
// comes first, as Comet runs --cmd before its plugins; the others follow in
// registration order, which is the order of their file names (Go runs init
// functions file by file in name order).
func registerHandlerPlugin(newPlugin func() handlerPlugin) {
	name := newPlugin().pluginName()
	for _, f := range pluginFactories {
		if f().pluginName() == name {
			panic("duplicate handler plugin " + name)
		}
	}
	if name == "cmd" {
		pluginFactories = append([]func() handlerPlugin{newPlugin}, pluginFactories...)
		return
	}
	pluginFactories = append(pluginFactories, newPlugin)
}

// handlerPlugins returns a fresh value of every registered plugin, in
// registration order.
func handlerPlugins() []handlerPlugin {
	ps := make([]handlerPlugin, len(pluginFactories))
	for i, f := range pluginFactories {
		ps[i] = f()
	}
	return ps
}

// addHandlerFlags declares the options of a fresh set of plugins on fs and
// returns the set, which holds what fs parses.
func addHandlerFlags(fs *flag.FlagSet) []handlerPlugin {
	ps := handlerPlugins()
	for _, p := range ps {
		p.addFlags(fs)
	}
	return ps
}

// buildHandlers asks every plugin for its handlers, after the flags have
// been parsed, and returns them in plugin order.
func buildHandlers(plugins []handlerPlugin, log *slog.Logger) ([]handler, error) {
	var hs []handler
	for _, p := range plugins {
		h, err := p.handlers(log)
		if err != nil {
			return nil, fmt.Errorf("handler %s: %v", p.pluginName(), err)
		}
		hs = append(hs, h...)
	}
	return hs, nil
}

// handlerQueue runs every handler for each submitted event on a fixed pool
// of workers fed by a bounded channel.
type handlerQueue struct {
	hs  []handler
	m   *metrics
	log *slog.Logger

	mu     sync.RWMutex // guards closed and sends on ch
	closed bool
	ch     chan *event

	runCtx    context.Context // cancelled when close gives up waiting
	cancelRun context.CancelFunc
	abandon   atomic.Bool  // set when close gives up: workers drop what is left
	abandoned atomic.Int64 // events dropped at shutdown without being handled
	wg        sync.WaitGroup
}

// newHandlerQueue starts workers goroutines that run hs for each event
// submitted; at most queueLen events wait. Non-positive sizes take the
// defaults.
func newHandlerQueue(hs []handler, queueLen, workers int, m *metrics, log *slog.Logger) *handlerQueue {
	if queueLen <= 0 {
		queueLen = defaultHandlerQueue
	}
	if workers <= 0 {
		workers = defaultHandlerWorkers
	}
	if m == nil {
		m = &metrics{}
	}
	q := &handlerQueue{hs: hs, m: m, log: log, ch: make(chan *event, queueLen)}
	q.runCtx, q.cancelRun = context.WithCancel(context.Background())
	for range workers {
		q.wg.Go(q.work)
	}
	return q
}

// submit queues ev for the handlers without blocking. It returns false when
// the queue is full or closed; an overflow is logged and counted.
func (q *handlerQueue) submit(ev *event) bool {
	if len(q.hs) == 0 {
		return true
	}
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		q.log.Warn("handler queue closed, event not handled", "ivorn", ev.ivorn)
		return false
	}
	select {
	case q.ch <- ev:
		return true
	default:
		q.m.handlerOverflows.Add(1)
		q.log.Warn("handler queue full, event not handled", "ivorn", ev.ivorn, "queue", cap(q.ch))
		return false
	}
}

// close stops accepting events and lets the workers finish what is queued
// until ctx is done; then it cancels the running handlers, drops the events
// still waiting (logging how many) and waits for the workers to exit.
func (q *handlerQueue) close(ctx context.Context) {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()

	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancelRun()
		return
	case <-ctx.Done():
	}
	q.abandon.Store(true)
	q.cancelRun()
	<-done
	if n := q.abandoned.Load(); n > 0 {
		q.log.Warn("handler queue abandoned events at shutdown", "events", n)
	}
}

func (q *handlerQueue) work() {
	for ev := range q.ch {
		if q.abandon.Load() {
			q.abandoned.Add(1)
			continue
		}
		q.runAll(ev)
	}
}

// runAll starts every handler for ev at once, as Comet does, and waits for
// them all.
func (q *handlerQueue) runAll(ev *event) {
	if len(q.hs) == 1 {
		q.run(q.hs[0], ev)
		return
	}
	var wg sync.WaitGroup
	for _, h := range q.hs {
		wg.Go(func() { q.run(h, ev) })
	}
	wg.Wait()
}

// run runs one handler on one event, counting the run and any failure; a
// panic in the handler is a failure.
func (q *handlerQueue) run(h handler, ev *event) {
	name := h.name()
	q.m.handlerRuns.inc(name)
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		return h.handle(q.runCtx, ev)
	}()
	if err != nil {
		q.m.handlerFailures.inc(name)
		q.log.Warn("event handler failed", "handler", name, "ivorn", ev.ivorn, "err", err)
		return
	}
	q.log.Debug("event handler done", "handler", name, "ivorn", ev.ivorn)
}

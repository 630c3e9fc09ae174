// budget.go owns the broker's shared byte budget for messages in flight
// (--max-inflight-bytes): every frame being read, parsed or judged holds its
// share, its parse tree included, so the memory of work in progress is
// bounded in bytes whatever the number of connections.
//
// Invariants: a reader waits for room rather than allocating; a waiter whose
// request fits goes first whatever its place in line; large requests may
// fill the budget only up to a quarter short of its limit, the rest being
// for small ones (a median event's charge is well under smallCharge), so a
// small message is never kept waiting behind large ones; a request larger
// than the whole budget is admitted alone (when nothing else is held), so
// every message the size limit allows can be read; release never blocks.
package main

import (
	"context"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// defaultMaxInflightBytes is --max-inflight-bytes's default.
const defaultMaxInflightBytes = 16 << 20

// treeCostFactor estimates a parse tree's bytes per byte of message, for
// charging a message before it is parsed (xmltree.go keeps a tree within a
// small multiple of the input).
const treeCostFactor = 8

// byteBudget is a counting semaphore in bytes.
type byteBudget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	waiters map[*budgetWaiter]struct{}

	waits atomic.Int64 // acquisitions that had to wait (counted in /metrics)

	// onWait, when set, is called (outside the lock) when a request has to
	// wait: the broker logs it, rate-limited.
	onWait func(n int64)
}

type budgetWaiter struct {
	n     int64
	ready chan struct{}
}

func newByteBudget(limit int64) *byteBudget {
	return &byteBudget{limit: limit, waiters: map[*budgetWaiter]struct{}{}}
}

// smallCharge is the largest request that may use the small messages'
// reserve: the charge of a 16 KiB frame.
const smallCharge = 16 << 10 * (1 + treeCostFactor)

// fits reports whether n more bytes may be held now.
func (b *byteBudget) fits(n int64) bool {
	limit := b.limit
	if n > smallCharge {
		limit -= b.limit / 4
	}
	return b.used+n <= limit || b.used == 0
}

// acquire holds n bytes, waiting for room until ctx ends (then it returns
// ctx's error and holds nothing).
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if b.fits(n) {
		b.used += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters[w] = struct{}{}
	b.mu.Unlock()
	b.waits.Add(1)
	if b.onWait != nil {
		b.onWait(n)
	}
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: give it back.
			b.used -= n
			b.wakeLocked()
		default:
			delete(b.waiters, w)
		}
		b.mu.Unlock()
		return ctx.Err()
	}
}

// force holds n more bytes at once, over the limit if need be: for a cost
// learnt only after the work is done (a tree bigger than estimated), where
// waiting could deadlock.
func (b *byteBudget) force(n int64) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
}

// release gives back n bytes and admits every waiter that now fits.
func (b *byteBudget) release(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.wakeLocked()
	b.mu.Unlock()
}

func (b *byteBudget) wakeLocked() {
	for w := range b.waiters {
		if b.fits(w.n) {
			b.used += w.n
			delete(b.waiters, w)
			close(w.ready)
		}
	}
}

// inUse returns the bytes held now.
func (b *byteBudget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}

// frameCharge is what a message of n bytes holds of the budget while it is
// read, parsed and judged: its bytes and an estimate of its tree's.
func frameCharge(n int) int64 { return int64(n) * (1 + treeCostFactor) }

// readFrameCharged reads one frame as readFrameInto does, but first holds
// the frame's charge of budget (waiting for room until ctx ends). The
// caller releases the returned charge once the message is done with; on
// error nothing is held.
func readFrameCharged(ctx context.Context, r io.Reader, buf []byte, max int, budget *byteBudget) ([]byte, int64, error) {
	n, err := readFrameHeader(r, max)
	if err != nil {
		return nil, 0, err
	}
	charge := frameCharge(int(n))
	if err := budget.acquire(ctx, charge); err != nil {
		return nil, 0, err
	}
	raw, err := readFrameBody(r, buf, n)
	if err != nil {
		budget.release(charge)
		return nil, 0, err
	}
	return raw, charge, nil
}

// chargeTree brings a message's charge up to what its tree really costs,
// once parsed (the estimate was made before): over the limit if need be,
// since waiting now could deadlock.
func (b *broker) chargeTree(charge *int64, raw []byte, doc *document) {
	if doc == nil || charge == nil {
		return
	}
	if need := int64(len(raw) + doc.sizeBytes()); need > *charge {
		b.inflight.force(need - *charge)
		*charge = need
	}
}

// lazyDeadline is context.WithDeadline(Context, at) made only when
// something waits on it: a reader that waits for room in the budget needs
// it, most readers never do (and a timer per connection is not free). The
// owner calls stop when done, as it would call the cancel function.
type lazyDeadline struct {
	context.Context // the parent
	at              time.Time
	once            sync.Once
	ctx             context.Context
	cancel          context.CancelFunc
}

func (c *lazyDeadline) real() context.Context {
	c.once.Do(func() { c.ctx, c.cancel = context.WithDeadline(c.Context, c.at) })
	return c.ctx
}

func (c *lazyDeadline) Deadline() (time.Time, bool) { return c.real().Deadline() }
func (c *lazyDeadline) Done() <-chan struct{}       { return c.real().Done() }
func (c *lazyDeadline) Err() error                  { return c.real().Err() }

// stop releases the timer, if one was made; after it the context is its
// parent.
func (c *lazyDeadline) stop() {
	c.once.Do(func() { c.ctx = c.Context }) // none can be made after this
	if c.cancel != nil {
		c.cancel()
	}
}

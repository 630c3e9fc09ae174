// shutdown.go owns stopping the broker: one entry point (broker.shutdown),
// bounded by one deadline, the context's (run gives it shutdownTimeout, so
// SIGTERM ends the process within the two seconds of contract section 4).
//
// How each part stops, in the order the sequence takes them:
//   - systemd is told STOPPING=1 (systemd.go), so it waits for us;
//   - receivers, broadcasters and the status endpoint: their listeners close
//     and serve returns;
//   - upstreams (subscriber.go): the broker's context is already cancelled,
//     which closes each session's connection (context.AfterFunc) and ends
//     its back-off wait;
//   - subscribers (broadcaster.go): dropped at once (connection closed, the
//     writer stops on done);
//   - authors being answered (receiver.go): their connection gets a deadline
//     at the connections' share of the time left, so an ack in flight is
//     still written; at that deadline any left are closed;
//   - handlers (handlers.go): the queue closes; what is queued runs until
//     the handlers' share of the time left, then running handlers are
//     cancelled (a --cmd's process group is killed) and the rest dropped and
//     counted;
//   - the event database is synced and closed (eventdb.go).
//
// Invariant: shutdown returns only after every goroutine the broker started
// (b.wg, the handler workers, the status server's) has ended.
package main

import (
	"context"
	"fmt"
	"time"
)

// shutdownTimeout bounds the whole shutdown.
const shutdownTimeout = 1800 * time.Millisecond

// Shares of the time left: connections get what remains after the
// handlers' and the database's reserve.
const (
	shutdownReserveHandlers = 500 * time.Millisecond // handler queue and event DB
	shutdownReserveDB       = 300 * time.Millisecond // a stuck handler's grace, and the event DB
)

// shutdown stops the broker within ctx's deadline.
func (b *broker) shutdown(ctx context.Context) error {
	b.log.Info("stopping")
	sdNotify("STOPPING=1")
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = b.now().Add(shutdownTimeout)
	}
	b.closeListeners()
	if b.http != nil {
		b.http.ln.Close()
	}
	for _, bc := range b.broadcasters {
		bc.closeAll()
	}

	// Connections: let in-flight acks finish, then close what is left.
	connDeadline := deadline.Add(-shutdownReserveHandlers)
	b.connMu.Lock()
	for c := range b.conns {
		c.SetDeadline(connDeadline)
	}
	b.connMu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	t := time.NewTimer(time.Until(connDeadline) + 50*time.Millisecond)
	select {
	case <-done:
	case <-t.C:
		b.log.Warn("connections still open at shutdown; closing them")
		b.connMu.Lock()
		for c := range b.conns {
			c.Close()
		}
		b.connMu.Unlock()
		<-done
	}
	t.Stop()

	// Handlers, then the database.
	hctx, cancel := context.WithDeadline(context.Background(), deadline.Add(-shutdownReserveDB))
	b.hq.close(hctx)
	cancel()
	b.kafka.afterHandlers() // offsets passed by the handlers that just finished
	if b.http != nil {
		b.http.shutdown(ctx)
	}
	if err := b.spoolw.close(); err != nil {
		b.log.Error("closing the spool", "err", err)
	}
	if err := b.db.close(); err != nil {
		return fmt.Errorf("eventdb: %w", err)
	}
	b.log.Info("stopped")
	return nil
}

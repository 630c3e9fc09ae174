// process.go owns the broker process around the broker: logging, signals
// (SIGINT/SIGTERM stop, SIGHUP reloads), and the exit status.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// logLevel maps -v/-q counts to a level: info by default.
func logLevel(verbosity int) slog.Level {
	switch {
	case verbosity >= 1:
		return slog.LevelDebug
	case verbosity == 0:
		return slog.LevelInfo
	case verbosity == -1:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func runBrokerProcess(cfg *config, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel(cfg.verbosity)}))
	for _, p := range handlerPlugins() {
		hs, err := p.handlers(log)
		if err != nil {
			fmt.Fprintf(stderr, "comet: %s: %v\n", p.pluginName(), err)
			return exitUsage
		}
		cfg.handlers = append(cfg.handlers, hs...)
	}
	b, err := newBroker(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				b.reload()
			}
		}
	}()
	if err := b.run(ctx); err != nil {
		log.Error("stopped with an error", "err", err)
		return exitFail
	}
	return exitOK
}

// reload re-reads whitelists and keyrings; a bad file keeps the old set.
func (b *broker) reload() {
	if err := b.loadWhitelists(); err != nil {
		b.log.Error("reload failed; keeping the previous whitelists", "err", err)
	} else {
		b.log.Info("reloaded whitelists")
	}
	if len(b.cfg.keyrings) > 0 {
		kr, err := loadKeyrings(b.cfg.keyrings)
		if err != nil {
			b.log.Error("reload failed; keeping the previous keyrings", "err", err)
		} else {
			b.keyring.Store(kr)
			b.log.Info("reloaded keyrings")
		}
	}
}

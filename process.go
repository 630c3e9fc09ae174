// process.go owns the broker process around the broker: logging (and
// --logfile), --pidfile, the status server, systemd readiness and watchdog,
// signals (SIGINT/SIGTERM stop, SIGHUP reloads whitelists and keyrings and
// reopens the log file), and the exit status.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func runBrokerProcess(cfg *config, stderr io.Writer) int {
	var logOut io.Writer = stderr
	var logFile *reopenableFile
	if cfg.logfile != "" {
		f, err := openLogFile(cfg.logfile)
		if err != nil {
			fmt.Fprintf(stderr, "comet: --logfile: %v\n", err)
			return exitFail
		}
		defer f.Close()
		logFile, logOut = f, f
	}
	log := newLogger(logOut, logLevel(max(cfg.verbosity, 0), max(-cfg.verbosity, 0)))
	hs, err := buildHandlers(log)
	if err != nil {
		fmt.Fprintf(stderr, "comet: %v\n", err)
		return exitUsage
	}
	cfg.handlers = hs
	if cfg.pidfile != "" {
		remove, err := writePidfile(cfg.pidfile)
		if err != nil {
			log.Error("cannot write the pid file", "err", err)
			return exitFail
		}
		defer remove()
	}
	b, err := newBroker(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	// A handler printing to a closed pipe must not kill the broker.
	ignoreSIGPIPE()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.httpAddr != "" {
		srv, err := newStatusServer(cfg.httpAddr, b.m, b.status, log)
		if err != nil {
			log.Error("cannot start the status server", "err", err)
			b.abandon()
			return exitFail
		}
		log.Info("serving status", "addr", srv.addr())
		go srv.serve() // ends when shut down below
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			srv.shutdown(sctx)
			cancel()
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() { // ends with ctx
		for {
			select {
			case <-ctx.Done():
				sdNotify("STOPPING=1")
				return
			case <-hup:
				b.reload()
				if logFile != nil {
					if err := logFile.reopen(); err != nil {
						log.Error("cannot reopen the log file", "err", err)
					}
				}
			}
		}
	}()
	if iv := watchdogInterval(); iv > 0 {
		go runWatchdog(ctx, iv) // ends with ctx
	}
	// Ready: the event DB is open and every listener is bound.
	sdNotify("READY=1")
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

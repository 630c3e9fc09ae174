// process.go owns the broker process around the broker, in the order it
// runs: logging (logfile.go), the pid file (pidfile.go), the broker itself
// (broker.go, with the status endpoint), readiness and the watchdog
// (systemd.go), and signals: SIGINT/SIGTERM stop it through the one bounded
// shutdown (shutdown.go), SIGHUP reloads whitelists and keyrings and reopens
// the log file. It turns the outcome into the exit status.
//
// Invariant: every goroutine started here (the signal loop, the watchdog)
// has ended before runBrokerProcess returns.
package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime/debug"
	"sync"
	"syscall"
)

// defaultSoftMemoryLimit is the collector's soft limit when GOMEMLIMIT is
// not set.
const defaultSoftMemoryLimit = 18 << 20

// defaultGCPercent is the collector's GOGC when GOGC is not set and a soft
// memory limit is in force.
const defaultGCPercent = 400

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
	if os.Getenv("GOMEMLIMIT") == "" {
		// A soft limit for the collector, so that the heap of a busy
		// broker (the spool's index, queues in flight) is collected before
		// it doubles: the resident-memory budgets of contract section 6
		// hold with the defaults. GOMEMLIMIT (the shipped unit sets it)
		// overrides it.
		debug.SetMemoryLimit(defaultSoftMemoryLimit)
	}
	if os.Getenv("GOGC") == "" && debug.SetMemoryLimit(-1) < math.MaxInt64 {
		// With a soft limit in force the limit, not GOGC, bounds the
		// heap; GOGC only sets how often the collector runs below it. Go's
		// 100 collects every few hundred events (the live heap is small
		// and a median event allocates about 50 KB): 400 cuts the broker's
		// CPU per event by about 15 %. The heap then sits nearer the limit,
		// which is why the limit is 18 MiB: the peak RSS with 100
		// subscribers stays under 23 MiB (BENCHMARKS.md, issue 15).
		debug.SetGCPercent(defaultGCPercent)
	}
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
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
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
	})
	if iv := watchdogInterval(); iv > 0 {
		wg.Go(func() { runWatchdog(ctx, iv) })
	}
	// Ready: the event DB is open and every listener is bound.
	sdNotify("READY=1")
	err = b.run(ctx) // returns after the bounded shutdown
	stop()
	if err != nil {
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
	b.kafka.reload()
	b.tlswReload() // certificates, CAs and the peers file (tlswire.go)
}

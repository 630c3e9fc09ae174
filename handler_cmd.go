// handler_cmd.go is the --cmd plugin: for each new event it runs every
// --cmd PATH (no shell, no arguments, as Comet does) with the event's bytes
// on standard input and the broker's environment plus COMET_IVORN,
// COMET_ROLE, COMET_SIGNATURE and COMET_SIGNER. Its output is logged at
// debug level.
//
// Invariant: a command that exits non-zero, is killed by a signal, cannot
// be started, or outlives --cmd-timeout is a failure; on a timeout or at
// shutdown its whole process group is killed.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

func init() { registerHandlerPlugin(func() handlerPlugin { return &cmdPlugin{} }) }

// cmdWaitDelay bounds how long a finished (or killed) command's output
// pipes may stay open, held by a child it left behind.
const cmdWaitDelay = 2 * time.Second

// defaultCmdTimeout is --cmd-timeout's default (contract section 10).
const defaultCmdTimeout = 60 * time.Second

// cmdMaxLine bounds one logged line of a command's output.
const cmdMaxLine = 4096

// cmdPlugin provides one handler per --cmd.
type cmdPlugin struct {
	paths   []string
	timeout time.Duration
}

func (p *cmdPlugin) pluginName() string { return "cmd" }

func (p *cmdPlugin) addFlags(fs *flag.FlagSet) {
	fs.Func("cmd", "run executable `PATH` for each new event, the event on its standard input (repeatable; no arguments)", func(s string) error {
		if s == "" {
			return errors.New("empty path")
		}
		p.paths = append(p.paths, s)
		return nil
	})
	p.timeout = defaultCmdTimeout
	fs.DurationVar(&p.timeout, "cmd-timeout", defaultCmdTimeout, "kill a --cmd still running after this `DURATION` and count a failure (default 60s; 0: no limit)")
}

func (p *cmdPlugin) handlers(log *slog.Logger) ([]handler, error) {
	if p.timeout < 0 {
		return nil, fmt.Errorf("cmd-timeout %v: negative", p.timeout)
	}
	var hs []handler
	for _, path := range p.paths {
		hs = append(hs, &cmdHandler{path: path, timeout: p.timeout, log: log})
	}
	return hs, nil
}

// cmdHandler runs one executable per event.
type cmdHandler struct {
	path    string
	timeout time.Duration
	log     *slog.Logger
}

func (h *cmdHandler) name() string { return "cmd:" + h.path }

// Errors of the cmd handler.
var (
	errCmdTimeout  = errors.New("timed out")
	errCmdShutdown = errors.New("stopped at shutdown")
)

func (h *cmdHandler) handle(ctx context.Context, ev *event) error {
	runCtx := ctx
	if h.timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, h.timeout, errCmdTimeout)
		defer cancel()
	}
	// Built by hand rather than with exec.Command: PATH is used as given,
	// relative to the working directory, never looked up in $PATH.
	c := &exec.Cmd{Path: h.path, Args: []string{h.path}}
	c.Stdin = bytes.NewReader(ev.raw)
	sig := ev.sigVerdict
	if sig == "" {
		sig = "unchecked"
	}
	c.Env = append(os.Environ(),
		"COMET_IVORN="+ev.ivorn,
		"COMET_ROLE="+ev.role,
		"COMET_SIGNATURE="+sig,
		"COMET_SIGNER="+ev.signer,
	)
	if ev.kafkaTopic != "" {
		c.Env = append(c.Env, "COMET_KAFKA_TOPIC="+ev.kafkaTopic)
	}
	if p := tlswEventPeer(ev); p != "" {
		c.Env = append(c.Env, "COMET_PEER="+p) // the submitting TLS identity
	}
	stdout := newLineLogger(h.log, h.name(), "stdout", ev.ivorn)
	stderr := newLineLogger(h.log, h.name(), "stderr", ev.ivorn)
	c.Stdout, c.Stderr = stdout, stderr
	setProcessGroup(c)
	c.WaitDelay = cmdWaitDelay

	if err := c.Start(); err != nil {
		if errors.Is(err, fs.ErrPermission) || errors.Is(err, fs.ErrNotExist) || errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("%s is not executable: %v", h.path, err)
		}
		return fmt.Errorf("%s could not start: %v", h.path, err)
	}
	// Watch the context ourselves so the whole process group dies.
	stop := context.AfterFunc(runCtx, func() { killProcessGroup(c.Process) })
	err := c.Wait()
	killed := !stop()
	stdout.flush()
	stderr.flush()

	if killed {
		if errors.Is(context.Cause(runCtx), errCmdTimeout) {
			return fmt.Errorf("%s timed out after %v", h.path, h.timeout)
		}
		return fmt.Errorf("%s %w", h.path, errCmdShutdown)
	}
	ps := c.ProcessState
	if ps == nil {
		return fmt.Errorf("%s: %v", h.path, err)
	}
	if code := ps.ExitCode(); code > 0 {
		return fmt.Errorf("%s returned non-zero (%d)", h.path, code)
	} else if code < 0 {
		return fmt.Errorf("%s was killed (%s)", h.path, ps.String())
	}
	if err != nil && errors.Is(err, exec.ErrWaitDelay) {
		h.log.Debug("cmd left its output open after exiting", "handler", h.name(), "ivorn", ev.ivorn)
	}
	return nil
}

// lineLogger logs a command's output one line at a time at debug level,
// decoding it leniently as UTF-8. When debug is off it only discards.
type lineLogger struct {
	log                    *slog.Logger
	handler, stream, ivorn string
	on                     bool

	mu  sync.Mutex
	buf []byte
}

func newLineLogger(log *slog.Logger, handler, stream, ivorn string) *lineLogger {
	return &lineLogger{log: log, handler: handler, stream: stream, ivorn: ivorn,
		on: log.Enabled(context.Background(), slog.LevelDebug)}
}

func (l *lineLogger) Write(p []byte) (int, error) {
	if !l.on {
		return len(p), nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			if len(l.buf) >= cmdMaxLine {
				l.emit(l.buf[:cmdMaxLine])
				l.buf = append(l.buf[:0], l.buf[cmdMaxLine:]...)
				continue
			}
			return len(p), nil
		}
		l.emit(l.buf[:i])
		l.buf = append(l.buf[:0], l.buf[i+1:]...)
	}
}

// flush logs what is left after the last newline.
func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.emit(l.buf)
		l.buf = l.buf[:0]
	}
}

func (l *lineLogger) emit(line []byte) {
	s := strings.ToValidUTF8(strings.TrimSuffix(string(line), "\r"), "\uFFFD")
	l.log.Debug("cmd output", "handler", l.handler, "ivorn", l.ivorn, "stream", l.stream, "line", s)
}

// handler_print.go is the --print-event plugin: it writes each new event's
// original bytes, exactly as received, to standard output (one write per
// event, so concurrent events never interleave). Comet prints a
// re-serialisation of the parsed tree instead (comet-behaviour §7.2); we
// write the bytes themselves (contract §5, item 6).
package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"os"
	"sync"
)

func init() { registerHandlerPlugin(func() handlerPlugin { return &printPlugin{out: os.Stdout} }) }

// printPlugin provides the print-event handler.
type printPlugin struct {
	enabled bool
	out     io.Writer // where events are written; os.Stdout unless changed before handlers()
}

func (p *printPlugin) pluginName() string { return "print-event" }

func (p *printPlugin) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&p.enabled, "print-event", false, "write each new event's original bytes to standard output")
}

func (p *printPlugin) handlers(*slog.Logger) ([]handler, error) {
	if !p.enabled {
		return nil, nil
	}
	return []handler{&printHandler{out: p.out}}, nil
}

// printHandler writes events to out, one whole event per write.
type printHandler struct {
	mu  sync.Mutex
	out io.Writer
}

func (h *printHandler) name() string { return "print-event" }

func (h *printHandler) handle(_ context.Context, ev *event) error {
	b := ev.raw
	if len(b) == 0 || b[len(b)-1] != '\n' {
		b = make([]byte, len(ev.raw)+1)
		copy(b, ev.raw)
		b[len(b)-1] = '\n'
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.out.Write(b)
	return err
}

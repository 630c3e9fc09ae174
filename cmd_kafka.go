// cmd_kafka.go holds the operator commands that exercise the Kafka client
// alone: "comet kafka-tail" prints one line per consumed message
// (topic/partition@offset bytes ivorn-or-?) and "comet kafka-publish"
// produces files and exits 0 only when every one was acknowledged. They let
// an operator check credentials, and let interop/kafka test the client end
// to end with the broker's own code paths.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

func init() {
	registerCommand(&command{name: "kafka-tail", summary: "consume Kafka topics and print one line per message", run: runKafkaTail})
	registerCommand(&command{name: "kafka-publish", summary: "produce files to a Kafka topic and wait for the acks", run: runKafkaPublish})
}

// kafkaFindIvorn finds ivorn="..." in the first 4 KB of an event.
func kafkaFindIvorn(b []byte) string {
	if len(b) > 4096 {
		b = b[:4096]
	}
	for _, q := range []string{`ivorn="`, `ivorn='`} {
		i := bytes.Index(b, []byte(q))
		if i < 0 {
			continue
		}
		rest := b[i+len(q):]
		j := bytes.IndexByte(rest, q[len(q)-1])
		if j <= 0 {
			continue
		}
		return string(rest[:j])
	}
	return "?"
}

func kafkaCmdLogger(stderr io.Writer, verbose bool) *slog.Logger {
	lvl := slog.LevelWarn
	if verbose {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
}

func runKafkaTail(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kafka-tail", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg kafkaConfig
	kafkaAddFlags(fs, &cfg)
	count := fs.Int("count", 0, "exit after `N` messages (0: run until interrupted)")
	dir := fs.String("offsets-dir", "", "keep offsets in `DIR` (default: none, start from --kafka-start each time)")
	timeout := fs.Duration("timeout", 0, "exit 1 after this long without reaching --count (0: never)")
	verbose := fs.Bool("verbose", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "comet kafka-tail: unexpected arguments")
		return exitUsage
	}
	if err := cfg.resolve(); err != nil {
		fmt.Fprintln(stderr, "comet kafka-tail:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	ctx, finish := context.WithCancel(ctx)
	defer finish()
	var mu sync.Mutex
	seen := 0
	out := &bytes.Buffer{}
	sink := func(m *kafkaMessage, done func()) {
		mu.Lock()
		defer mu.Unlock()
		if *count > 0 && seen >= *count {
			return // not done: its offset is not stored
		}
		seen++
		ivorn := "?"
		if !m.tooLarge {
			ivorn = kafkaFindIvorn(m.value)
		}
		out.Reset()
		fmt.Fprintf(out, "%s/%d@%d %d %s\n", m.topic, m.partition, m.offset, len(m.value), ivorn)
		stdout.Write(out.Bytes())
		done()
		if *count > 0 && seen >= *count {
			finish()
		}
	}
	c, err := newKafkaConsumer(&cfg, *dir, sink, kafkaCmdLogger(stderr, *verbose), nil)
	if err != nil {
		fmt.Fprintln(stderr, "comet kafka-tail:", err)
		return exitFail
	}
	c.run(ctx)
	mu.Lock()
	defer mu.Unlock()
	if *count > 0 && seen < *count {
		fmt.Fprintf(stderr, "comet kafka-tail: %d of %d messages\n", seen, *count)
		return exitFail
	}
	return exitOK
}

func runKafkaPublish(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kafka-publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg kafkaConfig
	kafkaAddFlags(fs, &cfg)
	topic := fs.String("topic", "", "the `TOPIC` to produce to")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	verbose := fs.Bool("verbose", false, "log at debug level")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *topic == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "usage: comet kafka-publish [kafka options] --topic T FILE...")
		return exitUsage
	}
	cfg.PublishTopic = *topic
	cfg.Topics = nil
	if err := cfg.resolve(); err != nil {
		fmt.Fprintln(stderr, "comet kafka-publish:", err)
		return exitUsage
	}
	var values [][]byte
	total := 0
	for _, f := range fs.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(stderr, "comet kafka-publish:", err)
			return exitFail
		}
		values = append(values, b)
		total += len(b)
	}
	cfg.PublishQueue = max(cfg.PublishQueue, total+1)
	p, err := newKafkaProducer(&cfg, kafkaCmdLogger(stderr, *verbose))
	if err != nil {
		fmt.Fprintln(stderr, "comet kafka-publish:", err)
		return exitFail
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.run(ctx) }()
	for _, v := range values {
		p.publish(v, kafkaFindIvorn(v))
	}
	flushed := p.flush(ctx)
	cancel()
	wg.Wait()
	published, failed := p.counts()
	fmt.Fprintf(stdout, "published %d of %d\n", published, len(values))
	if !flushed || failed > 0 || published != uint64(len(values)) {
		return exitFail
	}
	return exitOK
}

// kafka_offsets.go owns the consumer's stored positions: per topic-partition
// the next offset whose predecessors are all done, kept in one small text file
// in the event database's directory. Invariants: the file is rewritten
// atomically (temp file, fsync, rename, directory fsync) and opened with
// O_NOFOLLOW; a corrupt file is refused with an error naming it, never
// silently reset; a position only moves past a message after its done call
// and after syncFirst (the event database's sync) succeeded.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
)

const (
	kafkaOffsetsFile   = "kafka-offsets"
	kafkaOffsetsHeader = "# comet kafka offsets v1: topic partition next-offset"
	kafkaOffsetsMax    = 4 << 20
)

type kafkaTP struct {
	topic     string
	partition int32
}

func (tp kafkaTP) String() string { return fmt.Sprintf("%s/%d", tp.topic, tp.partition) }

type kafkaOffsets struct {
	path    string // "" keeps positions in memory only
	mu      sync.Mutex
	pos     map[kafkaTP]int64
	written map[kafkaTP]int64
	writeMu sync.Mutex // one commit at a time
}

// openKafkaOffsets reads dir's offset file (absent means empty). dir "" means
// no file: positions live only in memory.
func openKafkaOffsets(dir string) (*kafkaOffsets, error) {
	o := &kafkaOffsets{pos: map[kafkaTP]int64{}, written: map[kafkaTP]int64{}}
	if dir == "" {
		return o, nil
	}
	o.path = filepath.Join(dir, kafkaOffsetsFile)
	f, err := os.OpenFile(o.path, os.O_RDONLY|oNoFollow, 0)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("kafka offsets %s: %w", o.path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("kafka offsets %s: %w", o.path, err)
	}
	if !st.Mode().IsRegular() || st.Size() > kafkaOffsetsMax {
		return nil, fmt.Errorf("kafka offsets %s: not a regular file under %d bytes", o.path, kafkaOffsetsMax)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), 4096)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			if line != kafkaOffsetsHeader {
				return nil, fmt.Errorf("kafka offsets %s: corrupt: line 1 is not the header (move the file away to start afresh)", o.path)
			}
			continue
		}
		fs := strings.Split(line, "\t")
		if len(fs) != 3 || fs[0] == "" {
			return nil, fmt.Errorf("kafka offsets %s: corrupt: line %d", o.path, n)
		}
		p, err1 := strconv.ParseInt(fs[1], 10, 32)
		off, err2 := strconv.ParseInt(fs[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 || off < 0 {
			return nil, fmt.Errorf("kafka offsets %s: corrupt: line %d", o.path, n)
		}
		tp := kafkaTP{fs[0], int32(p)}
		o.pos[tp], o.written[tp] = off, off
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kafka offsets %s: corrupt: %v", o.path, err)
	}
	if n == 0 && st.Size() > 0 {
		return nil, fmt.Errorf("kafka offsets %s: corrupt", o.path)
	}
	return o, nil
}

// get returns a stored position.
func (o *kafkaOffsets) get(tp kafkaTP) (int64, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v, ok := o.pos[tp]
	return v, ok
}

// set records a new position (the next offset whose predecessors are done).
func (o *kafkaOffsets) set(tp kafkaTP, next int64) {
	o.mu.Lock()
	o.pos[tp] = next
	o.mu.Unlock()
}

// commit calls syncFirst (when not nil) and then writes the file if any
// position changed since the last write.
func (o *kafkaOffsets) commit(syncFirst func() error) error {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	o.mu.Lock()
	snap := make(map[kafkaTP]int64, len(o.pos))
	changed := len(o.pos) != len(o.written)
	for tp, v := range o.pos {
		snap[tp] = v
		if w, ok := o.written[tp]; !ok || w != v {
			changed = true
		}
	}
	o.mu.Unlock()
	if !changed || o.path == "" {
		if o.path == "" {
			o.written = snap
		}
		return nil
	}
	if syncFirst != nil {
		if err := syncFirst(); err != nil {
			return fmt.Errorf("kafka offsets: sync before commit: %w", err)
		}
	}
	keys := make([]kafkaTP, 0, len(snap))
	for tp := range snap {
		keys = append(keys, tp)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].topic != keys[j].topic {
			return keys[i].topic < keys[j].topic
		}
		return keys[i].partition < keys[j].partition
	})
	var b bytes.Buffer
	b.WriteString(kafkaOffsetsHeader + "\n")
	for _, tp := range keys {
		fmt.Fprintf(&b, "%s\t%d\t%d\n", tp.topic, tp.partition, snap[tp])
	}
	if err := writeFileAtomic(o.path, b.Bytes()); err != nil {
		return fmt.Errorf("kafka offsets %s: %w", o.path, err)
	}
	o.written = snap
	return nil
}

// kafkaTracker follows one partition's messages handed out but not done,
// in offset order, and moves the stored position to the first not done.
type kafkaTracker struct {
	mu       sync.Mutex
	pending  []kafkaPending // in offset order
	head     int
	advanced int64 // next offset after everything handed out or skipped
	store    func(next int64)
}

type kafkaPending struct {
	offset int64
	done   bool
}

func newKafkaTracker(start int64, store func(int64)) *kafkaTracker {
	return &kafkaTracker{advanced: start, store: store}
}

// handOut registers a message about to go to the sink; the returned func is
// its done (idempotent).
func (t *kafkaTracker) handOut(offset int64) func() {
	t.mu.Lock()
	t.pending = append(t.pending, kafkaPending{offset: offset})
	idx := len(t.pending) - 1 + t.head
	if offset+1 > t.advanced {
		t.advanced = offset + 1
	}
	t.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { t.markDone(idx) }) }
}

// skipTo moves the position past offsets that need no done (control
// batches, skipped records) once everything before is done.
func (t *kafkaTracker) skipTo(next int64) {
	t.mu.Lock()
	if next > t.advanced {
		t.advanced = next
	}
	t.flushLocked()
	t.mu.Unlock()
}

// reset forgets pending messages (after an offset reset) and restarts at next.
func (t *kafkaTracker) reset(next int64) {
	t.mu.Lock()
	t.head += len(t.pending)
	t.pending = nil
	t.advanced = next
	t.store(next)
	t.mu.Unlock()
}

func (t *kafkaTracker) markDone(idx int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := idx - t.head
	if i < 0 || i >= len(t.pending) {
		return // forgotten by a reset
	}
	t.pending[i].done = true
	t.flushLocked()
}

func (t *kafkaTracker) flushLocked() {
	n := 0
	for n < len(t.pending) && t.pending[n].done {
		n++
	}
	if n > 0 {
		t.pending = t.pending[n:]
		t.head += n
		if len(t.pending) == 0 {
			t.pending = nil
		}
	}
	if len(t.pending) > 0 {
		t.store(t.pending[0].offset)
	} else {
		t.store(t.advanced)
	}
}

// outstanding is the number of messages handed out and not done.
func (t *kafkaTracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.pending)
}

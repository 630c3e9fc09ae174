// spool_cursor.go owns the two small position files that replay needs, both
// in the event database's directory:
//
//   - durable.pos: for each durable identity (peers file), what it has not
//     acknowledged since it was last connected, as a floor seq (every seq
//     below it is done: acked, nakked or not for it) and the few seqs above
//     the floor already done. On an identity's first connection its floor is
//     the spool's head, so it gets nothing old.
//   - remote-replay.pos: for each --remote upstream address, the time of the
//     last event (not iamalive) received from it, so that after a restart
//     our subscriber asks for replay-since that time minus a margin.
//
// Both are JSON, rewritten whole and atomically (temp file opened with
// O_NOFOLLOW, fsync, rename, directory fsync) at most every few seconds
// (flush, called by the broker's syncer) and at close. A file that does not
// parse or check is refused with an error naming it: positions are never
// silently reset. A symbolic link in a file's place is refused too.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"
)

// File names and limits.
const (
	cursorDurableName   = "durable.pos"
	cursorRemoteName    = "remote-replay.pos"
	cursorVersion       = 1
	cursorWriteEvery    = 5 * time.Second  // flush writes at most this often
	cursorMaxFileBytes  = 16 << 20         // larger position files are refused
	cursorMaxDone       = 10000            // done seqs kept above one identity's floor
	cursorRemoteMargin  = 10 * time.Second // replay-since is the last event minus this
	cursorMaxUpstreams  = 4096             // remembered upstream addresses
	cursorMaxIdentities = 65536            // remembered durable identities
)

// cursorFile is the write-rate and atomic-rewrite logic both files share.
type cursorFile struct {
	dir, name string
	now       func() time.Time
	lastWrite time.Time
}

func (c *cursorFile) path() string { return filepath.Join(c.dir, c.name) }

// read returns the file's bytes, or ok false when it does not exist.
func (c *cursorFile) read() (b []byte, ok bool, err error) {
	p := c.path()
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("cursor: %s: %v", p, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, false, fmt.Errorf("cursor: %s is not a regular file (a symbolic link?); refusing it", p)
	}
	f, err := os.OpenFile(p, os.O_RDONLY|oNoFollow, 0)
	if err != nil {
		return nil, false, fmt.Errorf("cursor: open %s: %v", p, err)
	}
	defer f.Close()
	b, err = io.ReadAll(io.LimitReader(f, cursorMaxFileBytes+1))
	if err != nil {
		return nil, false, fmt.Errorf("cursor: read %s: %v", p, err)
	}
	if len(b) > cursorMaxFileBytes {
		return nil, false, fmt.Errorf("cursor: %s is larger than %d bytes; refusing it", p, cursorMaxFileBytes)
	}
	return b, true, nil
}

// load reads the file into doc, a strict JSON decode, and checks its
// version (*version, a field of doc): false when there is no file. A file
// that does not decode or has another version is corrupt.
func (c *cursorFile) load(doc any, version *int) (bool, error) {
	b, ok, err := c.read()
	if err != nil || !ok {
		return false, err
	}
	if err := decodeCursorJSON(b, doc); err != nil {
		return false, c.corrupt(err)
	}
	if *version != cursorVersion {
		return false, c.corrupt(fmt.Errorf("version %d, want %d", *version, cursorVersion))
	}
	return true, nil
}

// corrupt is the error for a file that does not parse or check.
func (c *cursorFile) corrupt(why error) error {
	return fmt.Errorf("cursor: %s is corrupt (%v); move it away to start with no positions", c.path(), why)
}

// due reports whether a flush may write now.
func (c *cursorFile) due(force bool) bool {
	if force {
		return true
	}
	now := c.now()
	return now.Sub(c.lastWrite) >= cursorWriteEvery || now.Before(c.lastWrite)
}

// save writes doc as indented JSON; under mu it then marks the write done,
// or the cursor dirty again so that the next flush retries.
func (c *cursorFile) save(mu *sync.Mutex, dirty *bool, doc any) error {
	b, err := json.MarshalIndent(doc, "", " ")
	if err == nil {
		err = c.write(append(b, '\n'))
	}
	mu.Lock()
	if err != nil {
		*dirty = true
	} else {
		c.lastWrite = c.now()
	}
	mu.Unlock()
	return err
}

// write replaces the file with data atomically. Callers serialise it.
func (c *cursorFile) write(data []byte) error {
	if err := writeFileAtomic(c.path(), data); err != nil {
		return fmt.Errorf("cursor: write %s: %v", c.path(), err)
	}
	return nil
}

// decodeCursorJSON decodes one JSON value strictly: unknown fields and
// trailing data are errors.
func decodeCursorJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// cursorDurable is the positions of durable identities. Safe for
// concurrent use.
type cursorDurable struct {
	log     *slog.Logger
	flushMu sync.Mutex // serialises flushes
	mu      sync.Mutex
	file    cursorFile
	ids     map[string]*cursorDurablePos
	dirty   bool
}

// cursorDurablePos is one identity's position.
type cursorDurablePos struct {
	floor uint64
	done  map[uint64]struct{} // seqs >= floor already done
}

type cursorDurableJSON struct {
	Version    int                       `json:"version"`
	Identities []cursorDurableIdentityJS `json:"identities"`
}

type cursorDurableIdentityJS struct {
	Name  string   `json:"name"`
	Floor uint64   `json:"floor"`
	Done  []uint64 `json:"done,omitempty"`
}

// openCursorDurable reads dir/durable.pos (none is an empty set). now may
// be nil (time.Now).
func openCursorDurable(dir string, now func() time.Time, logger *slog.Logger) (*cursorDurable, error) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &cursorDurable{log: logger, file: cursorFile{dir: dir, name: cursorDurableName, now: now},
		ids: make(map[string]*cursorDurablePos)}
	var doc cursorDurableJSON
	if ok, err := c.file.load(&doc, &doc.Version); err != nil {
		return nil, err
	} else if !ok {
		return c, nil
	}
	for _, id := range doc.Identities {
		if _, dup := c.ids[id.Name]; dup || id.Name == "" || id.Floor == 0 || len(id.Done) > cursorMaxDone {
			return nil, c.file.corrupt(fmt.Errorf("bad entry for identity %q", id.Name))
		}
		p := &cursorDurablePos{floor: id.Floor, done: make(map[uint64]struct{}, len(id.Done))}
		for _, s := range id.Done {
			if s <= id.Floor {
				return nil, c.file.corrupt(fmt.Errorf("identity %q: done seq %d not above its floor %d", id.Name, s, id.Floor))
			}
			p.done[s] = struct{}{}
		}
		c.ids[id.Name] = p
	}
	return c, nil
}

// connect is called when durable identity name connects while the spool's
// head is head. It returns the seq to replay from: its floor, or head on
// its first connection (which is then remembered). A floor above head
// (seqs reused after the machine crashed) is moved down to head.
func (c *cursorDurable) connect(name string, head uint64) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.ids[name]
	if !ok {
		if len(c.ids) >= cursorMaxIdentities {
			c.log.Warn("cursor: too many durable identities remembered; this one is not", "identity", name, "limit", cursorMaxIdentities)
			return head
		}
		c.ids[name] = &cursorDurablePos{floor: head, done: make(map[uint64]struct{})}
		c.dirty = true
		return head
	}
	if p.floor > head {
		p.floor = head
		clear(p.done)
		c.dirty = true
	}
	return p.floor
}

// owed reports whether seq is still to be sent to name: at or above its
// floor and not done. The broadcaster skips replayed events it is not owed.
func (c *cursorDurable) owed(name string, seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.ids[name]
	if !ok {
		return false
	}
	if seq < p.floor {
		return false
	}
	_, done := p.done[seq]
	return !done
}

// done records that seq needs no more sending to name: it was acked or
// nakked, or the identity's filters did not match it. seq 0 (an event not
// spooled) and unknown identities are ignored.
func (c *cursorDurable) done(name string, seq uint64) {
	if seq == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.ids[name]
	if !ok || seq < p.floor {
		return
	}
	c.dirty = true
	if seq > p.floor {
		p.done[seq] = struct{}{}
		if len(p.done) > cursorMaxDone {
			// Something below has stayed unacknowledged for a long while;
			// give up on it rather than grow without bound.
			lowest := uint64(0)
			for s := range p.done {
				if lowest == 0 || s < lowest {
					lowest = s
				}
			}
			c.log.Warn("cursor: durable identity leaves events unacknowledged; giving up on them",
				"identity", name, "from_seq", p.floor, "to_seq", lowest-1)
			p.floor = lowest
		} else {
			return
		}
	}
	for {
		if _, ok := p.done[p.floor]; ok || p.floor == seq {
			delete(p.done, p.floor)
			p.floor++
			continue
		}
		break
	}
}

// floor is name's floor (0, false when unknown); for tests and /status.
func (c *cursorDurable) floor(name string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.ids[name]
	if !ok {
		return 0, false
	}
	return p.floor, true
}

// flush writes the file if something changed, at most every few seconds
// unless force. The broker calls flush(false) from its syncer and
// flush(true) at stop (close does).
func (c *cursorDurable) flush(force bool) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	if !c.dirty || !c.file.due(force) {
		c.mu.Unlock()
		return nil
	}
	doc := cursorDurableJSON{Version: cursorVersion, Identities: make([]cursorDurableIdentityJS, 0, len(c.ids))}
	for name, p := range c.ids {
		id := cursorDurableIdentityJS{Name: name, Floor: p.floor}
		for s := range p.done {
			id.Done = append(id.Done, s)
		}
		slices.Sort(id.Done)
		doc.Identities = append(doc.Identities, id)
	}
	c.dirty = false
	c.mu.Unlock()
	sort.Slice(doc.Identities, func(i, j int) bool { return doc.Identities[i].Name < doc.Identities[j].Name })
	return c.file.save(&c.mu, &c.dirty, doc)
}

// close writes what changed.
func (c *cursorDurable) close() error { return c.flush(true) }

// cursorRemote is our --remote subscriber's memory of each upstream. Safe
// for concurrent use.
type cursorRemote struct {
	flushMu sync.Mutex // serialises flushes
	mu      sync.Mutex
	file    cursorFile
	last    map[string]time.Time
	dirty   bool
}

type cursorRemoteJSON struct {
	Version   int                  `json:"version"`
	Upstreams map[string]time.Time `json:"upstreams"`
}

// openCursorRemote reads dir/remote-replay.pos (none is an empty memory).
// now may be nil (time.Now).
func openCursorRemote(dir string, now func() time.Time) (*cursorRemote, error) {
	if now == nil {
		now = time.Now
	}
	c := &cursorRemote{file: cursorFile{dir: dir, name: cursorRemoteName, now: now}, last: make(map[string]time.Time)}
	var doc cursorRemoteJSON
	if ok, err := c.file.load(&doc, &doc.Version); err != nil {
		return nil, err
	} else if !ok {
		return c, nil
	}
	if len(doc.Upstreams) > cursorMaxUpstreams {
		return nil, c.file.corrupt(fmt.Errorf("%d upstreams, more than %d", len(doc.Upstreams), cursorMaxUpstreams))
	}
	for up, t := range doc.Upstreams {
		if up == "" || t.IsZero() {
			return nil, c.file.corrupt(fmt.Errorf("bad entry for upstream %q", up))
		}
		c.last[up] = t
	}
	return c, nil
}

// lastEvent is the time of the last event received from upstream.
func (c *cursorRemote) lastEvent(upstream string) (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.last[upstream]
	return t, ok
}

// replaySince is the replay-since our subscriber asks upstream for: the
// last event's time minus cursorRemoteMargin; ok false means ask nothing.
func (c *cursorRemote) replaySince(upstream string) (time.Time, bool) {
	t, ok := c.lastEvent(upstream)
	if !ok {
		return time.Time{}, false
	}
	return t.Add(-cursorRemoteMargin), true
}

// noteEvent records that an event (not an iamalive) came from upstream at
// t. The memory only moves forward.
func (c *cursorRemote) noteEvent(upstream string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.last[upstream]; ok && !t.After(old) {
		return
	}
	if _, ok := c.last[upstream]; !ok && len(c.last) >= cursorMaxUpstreams {
		return
	}
	c.last[upstream] = t.Round(0).UTC()
	c.dirty = true
}

// flush writes the file if something changed, at most every few seconds
// unless force.
func (c *cursorRemote) flush(force bool) error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	if !c.dirty || !c.file.due(force) {
		c.mu.Unlock()
		return nil
	}
	doc := cursorRemoteJSON{Version: cursorVersion, Upstreams: make(map[string]time.Time, len(c.last))}
	for k, v := range c.last {
		doc.Upstreams[k] = v
	}
	c.dirty = false
	c.mu.Unlock()
	return c.file.save(&c.mu, &c.dirty, doc)
}

// close writes what changed.
func (c *cursorRemote) close() error { return c.flush(true) }

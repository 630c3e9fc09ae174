// spool.go owns the spool (contract section 9): the exact bytes of every
// event the broker accepted, kept for --spool-max-age and at most
// --spool-max-bytes on disk, so that a subscriber that was away can be sent
// what it missed. It stores and reads; who is sent what is the
// broadcaster's business (see notes/spool.md for the hand-off protocol).
//
// On disk it is the directory spool/ inside the event database's directory
// (the event database's lock covers it). The log is a series of segment
// files named by the sequence number of their first record,
// %020d.seg; sequence numbers start at 1 and grow by one per record (0
// means "not spooled"). A segment is an 8-byte magic, then records framed
// as in eventdb.go:
//
//	length  uint32 big-endian, bytes of payload (spoolMinPayload..spoolMaxPayload)
//	crc     uint32 big-endian, CRC-32C (Castagnoli) of length then payload
//	payload kind u8 (1: an event) | seq u64 | received Unix ns i64 |
//	        role u8 (1 observation, 2 prediction, 3 utility, 4 test) |
//	        source length u16 | source | ivorn length u16 | ivorn |
//	        the event's exact bytes (the rest)
//
// all integers big-endian. The last segment is the head, the only one
// written to. When the next record would take the head past the segment
// size (min(8 MiB, max-bytes/8)) or the head's first record is older than
// an eighth of the retention window, the head is rolled: a new head is
// created and the old one is sealed by the next sync, which fsyncs it and
// writes its index %020d.idx once (temp file, fsync, rename, directory
// fsync; format in spool_index.go). An index carries every record's seq,
// time, offset and metadata, so opening reads the indexes and scans only
// the head.
//
// Invariants:
//   - records are never rewritten; retention deletes whole sealed segments,
//     oldest first (prune);
//   - append returns only after the record went to the operating system in
//     a write call; the head takes one write call per batch of records that
//     arrived together (group commit: a caller that finds no write in
//     progress writes at once; records queued meanwhile go out together in
//     the next write, made by one of their callers, never spanning a roll),
//     and a record's metadata is published only after its write returned;
//     fsync runs off that path, in sync (the broker calls it about once a
//     second) and close;
//   - within the spool, seqs strictly increase and received times never
//     decrease (append clamps a time earlier than the last one to it), so
//     time seeks are binary searches;
//   - opening keeps the longest valid prefix of the head (a record must
//     frame, check, decode and carry the next seq) and truncates the rest;
//     a sealed segment whose index is missing or bad is scanned the same
//     way and its index rewritten;
//   - nothing older than the retention window (min(max-age, the event
//     database's expiry)) is ever returned, deleted or not yet.
//
// Hand-off from replay to live delivery, for the broadcaster (exact, no gap
// and no event twice): admission appends to the spool first and fans out
// afterwards, to the subscriber list as it is after the append, with the
// seq; a replaying connection reads a spoolReader until next reports caught
// up, then registers for live events, drains the reader again until caught
// up, takes end := position(), and from then on drops live events with
// 0 < seq < end. (notes/spool.md has the reasoning; TestSpoolHandOffNoGap
// runs it.)
//
// In memory the spool keeps every record's metadata (about 100 bytes plus
// the ivorn per event: some 1.5 MB for the default 64 MiB of median 4.3 KB
// events), a map ivorn -> seq, and the newest events' bytes up to the tail
// budget (2 MiB by default), so live delivery and recent replay never read
// the card. Readers of older events read sealed segments sequentially
// through a 64 KiB buffer.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Names and formats.
const (
	spoolDirName      = "spool"
	spoolSegMagic     = "CMTSPOL1"
	spoolSegSuffix    = ".seg"
	spoolIdxSuffix    = ".idx"
	spoolTmpSuffix    = ".tmp"
	spoolBadSuffix    = ".bad"
	spoolFrameHeader  = 8                         // length and CRC
	spoolKindEvent    = 1                         // payload kind: an event
	spoolMinPayload   = 1 + 8 + 8 + 1 + 2 + 2 + 1 // fixed fields and at least one byte of event
	spoolMaxPayload   = 64<<20 + 256<<10          // larger lengths are corruption
	spoolMaxField     = math.MaxUint16            // source and ivorn length limit
	spoolReadBuffer   = 64 << 10                  // a reader's buffer
	spoolMinMaxBytes  = 64 << 10                  // smallest --spool-max-bytes
	spoolPruneEvery   = time.Minute               // sync prunes at least this often
	spoolMinSegBytes  = 1 << 10                   // smallest segment (tests)
	spoolMaxNameDigit = 20
)

// Defaults; spoolOptions overrides them.
const (
	defaultSpoolMaxAge     = 24 * time.Hour
	defaultSpoolMaxBytes   = 64 << 20
	defaultSpoolMaxSegment = 8 << 20
	defaultSpoolTailBytes  = 512 << 10
)

var (
	// errSpoolClosed is returned by every operation after close.
	errSpoolClosed = errors.New("spool: closed")
)

// spoolOptions configures openSpool; zero fields take the defaults.
type spoolOptions struct {
	maxAge       time.Duration    // --spool-max-age; default 24h (the caller does not open a spool for 0)
	maxBytes     int64            // --spool-max-bytes; default 64 MiB
	expiry       time.Duration    // --eventdb-expiry: nothing older is kept (0: no cap)
	segmentBytes int64            // default min(8 MiB, maxBytes/8)
	tailBytes    int64            // bytes of newest events kept in memory; default 2 MiB
	now          func() time.Time // default time.Now
}

// spoolEntry is one spooled event. Its fields, raw included, are shared and
// must not be modified. In recent's answers raw is nil and size still set.
type spoolEntry struct {
	seq      uint64
	received time.Time
	role     string // the root's role: observation, prediction, utility or test
	source   string // "author ADDR", "upstream HOST:PORT" or "kafka TOPIC/PARTITION@OFFSET"
	ivorn    string
	raw      []byte // the event's exact bytes
	size     int    // len(raw)
}

// spoolMeta is what the spool remembers of every record on disk.
type spoolMeta struct {
	seq    uint64
	recv   int64 // Unix ns
	off    int64 // offset of the record's frame in its segment
	size   uint32
	role   uint8
	source string // interned
	ivorn  string
}

// spoolSegment is one segment file.
type spoolSegment struct {
	first    uint64   // from the file name
	end      uint64   // one past the last record's seq (first when empty)
	bytes    int64    // size of the .seg file: magic and whole records
	idxBytes int64    // size of the .idx file, 0 until sealed
	oldest   int64    // received of the first record (Unix ns)
	newest   int64    // received of the last record
	f        *os.File // the head open for append, or a rolled segment awaiting its seal
	sealed   bool     // fsynced with its index written
	dirty    bool     // written since the last fsync
}

func (g *spoolSegment) empty() bool { return g.end == g.first }

// spool is the store. All methods are safe for concurrent use.
type spool struct {
	dir      string
	log      *slog.Logger
	opts     spoolOptions
	segBytes int64
	window   time.Duration // retention: min(maxAge, expiry)
	rollAge  int64         // ns: roll a head whose first record is older

	// syncMu serialises the file work of sync, prune and close (sealing,
	// deleting), so a segment is never sealed and deleted at once.
	syncMu    sync.Mutex
	lastPrune time.Time // guarded by syncMu
	dirDirty  bool      // a segment was created since the last directory fsync; guarded by mu

	mu        sync.Mutex
	segs      []*spoolSegment // oldest first; the last is the head
	meta      []spoolMeta     // every record on disk, seq order
	tail      []spoolEntry    // the newest records with their bytes, consecutive seqs
	tailBytes int64
	byIvorn   map[string]uint64
	sources   map[string]string
	next      uint64 // the seq of the next record
	lastRecv  int64
	disk      int64 // bytes of all segment and index files
	torn      bool  // a failed write may have left bytes past the head's size
	closed    bool
	buf       []byte // the batch being written; only the writer uses it

	// Group commit (see append). At most one batch write is in progress,
	// outside mu (writing); callers arriving meanwhile queue in pend, in
	// arrival order, and the next writer takes a prefix of pend, gives it
	// the next seqs and writes it. Nothing rolls the head while writing.
	// Callers wait on their waiter's cond; idle (on mu) is broadcast
	// whenever a batch write ends, for prune and close.
	idle    sync.Cond
	pend    []*spoolWaiter
	batch   []*spoolWaiter // the batch being written; only the writer uses it
	free    []*spoolWaiter // finished waiters for reuse
	qRecv   int64          // newest received time queued (clamp for the next)
	writing bool
	writes  uint64 // write calls that carried records (batches)
}

// Group commit bounds.
const (
	spoolMaxBatchBytes = 512 << 10 // a batch stops before a record that takes it past this (but holds one at least)
	spoolFreeWaiters   = 64        // finished waiters kept for reuse
)

// spoolWaiter is one append queued for a batch write, and its outcome.
type spoolWaiter struct {
	cond  sync.Cond  // on mu: signalled when done, or to hand the next write over
	ev    spoolEntry // role, source, ivorn, raw of the event
	role  uint8
	rns   int64 // received, clamped
	frame int64 // bytes of its record
	seq   uint64
	done  bool // written or failed: seq and err are the outcome
	err   error
}

// openSpool opens (creating) the spool inside the event database directory
// eventDBDir. The caller holds that directory's lock (the open event DB).
func openSpool(eventDBDir string, opts spoolOptions, logger *slog.Logger) (*spool, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.maxAge == 0 {
		opts.maxAge = defaultSpoolMaxAge
	}
	if opts.maxAge < time.Second {
		return nil, fmt.Errorf("spool: --spool-max-age %v is shorter than one second", opts.maxAge)
	}
	if opts.maxBytes == 0 {
		opts.maxBytes = defaultSpoolMaxBytes
	}
	if opts.maxBytes < spoolMinMaxBytes {
		return nil, fmt.Errorf("spool: --spool-max-bytes %d is below the minimum %d (64KiB)", opts.maxBytes, spoolMinMaxBytes)
	}
	if opts.segmentBytes <= 0 {
		opts.segmentBytes = min(defaultSpoolMaxSegment, opts.maxBytes/8)
	}
	opts.segmentBytes = max(opts.segmentBytes, spoolMinSegBytes)
	if opts.tailBytes <= 0 {
		opts.tailBytes = defaultSpoolTailBytes
	}
	window := opts.maxAge
	if opts.expiry > 0 && opts.expiry < window {
		window = opts.expiry
	}
	s := &spool{
		dir:      filepath.Join(eventDBDir, spoolDirName),
		log:      logger,
		opts:     opts,
		segBytes: opts.segmentBytes,
		window:   window,
		rollAge:  int64(max(window/8, time.Second)),
		byIvorn:  make(map[string]uint64),
		sources:  make(map[string]string),
		next:     1,
	}
	s.idle.L = &s.mu
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return nil, fmt.Errorf("spool: cannot create directory %s: %v", s.dir, err)
	}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

// spoolSegName is the file name of the segment whose first seq is first.
func spoolSegName(first uint64) string { return fmt.Sprintf("%020d%s", first, spoolSegSuffix) }

func spoolIdxName(first uint64) string { return fmt.Sprintf("%020d%s", first, spoolIdxSuffix) }

func (s *spool) segPath(first uint64) string { return filepath.Join(s.dir, spoolSegName(first)) }
func (s *spool) idxPath(first uint64) string { return filepath.Join(s.dir, spoolIdxName(first)) }

// parseSpoolName returns the seq in a name like 00000000000000000001.seg.
func parseSpoolName(name, suffix string) (uint64, bool) {
	base, ok := strings.CutSuffix(name, suffix)
	if !ok || len(base) != spoolMaxNameDigit {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 64)
	return n, err == nil && n > 0
}

// load reads the directory: the sealed segments' indexes (rebuilding a bad
// one), then the head, whose torn end it cuts.
func (s *spool) load() error {
	start := time.Now()
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool: read directory %s: %v", s.dir, err)
	}
	var firsts []uint64
	idx := make(map[uint64]bool)
	for _, e := range ents {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, spoolTmpSuffix):
			// An interrupted index write; the index is rebuilt if missing.
			os.Remove(filepath.Join(s.dir, name))
		case e.Type().IsRegular():
			if n, ok := parseSpoolName(name, spoolSegSuffix); ok {
				firsts = append(firsts, n)
			} else if n, ok := parseSpoolName(name, spoolIdxSuffix); ok {
				idx[n] = true
			}
		}
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	for n := range idx {
		if _, found := sort.Find(len(firsts), func(i int) int { return cmpU64(n, firsts[i]) }); !found {
			os.Remove(s.idxPath(n)) // an index whose segment is gone
		}
	}
	for i, first := range firsts {
		if first < s.next {
			// Overlaps the records before it: not something this code
			// writes. Keep the bytes for a person, out of the way.
			p := s.segPath(first)
			s.log.Error("spool: segment overlaps the one before it; renamed out of the way", "path", p, "first", first, "expected_at_least", s.next)
			os.Rename(p, p+spoolBadSuffix)
			os.Remove(s.idxPath(first))
			continue
		}
		head := i == len(firsts)-1
		if err := s.loadSegment(first, head); err != nil {
			return err
		}
	}
	if len(s.segs) == 0 || s.segs[len(s.segs)-1].f == nil {
		if err := s.createHead(s.next); err != nil {
			return err
		}
	}
	s.disk = 0
	for _, g := range s.segs {
		s.disk += g.bytes + g.idxBytes
	}
	if now := s.opts.now().UnixNano(); s.lastRecv > now {
		s.log.Warn("spool: newest event is stamped in the future (the clock was stepped back?); new events get that time until the clock passes it",
			"newest", time.Unix(0, s.lastRecv).UTC().Format(time.RFC3339Nano))
	}
	s.log.Info("spool: opened", "dir", s.dir, "events", len(s.meta), "segments", len(s.segs),
		"bytes", s.disk, "next_seq", s.next, "took", time.Since(start).Round(time.Microsecond))
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// loadSegment adds one segment: a sealed one from its index (scanning it
// when the index is missing or bad), the head by scanning.
func (s *spool) loadSegment(first uint64, head bool) error {
	path := s.segPath(first)
	g := &spoolSegment{first: first, end: first}
	if !head {
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("spool: %v", err)
		}
		metas, ierr := readSpoolIndex(s.idxPath(first), first, fi.Size())
		if ierr == nil {
			g.bytes = fi.Size()
			g.idxBytes = spoolIndexSize(metas)
			g.sealed = true
			s.addLoaded(g, metas)
			return nil
		}
		if !errors.Is(ierr, fs.ErrNotExist) {
			s.log.Warn("spool: index unusable, rebuilding it from its segment", "path", s.idxPath(first), "err", ierr)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("spool: open %s: %v", path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("spool: stat %s: %v", path, err)
	}
	size := fi.Size()
	var metas []spoolMeta
	res, err := scanSpoolSegment(f, size, first, func(m spoolMeta, raw []byte) {
		metas = append(metas, m)
	})
	if err != nil {
		f.Close()
		return fmt.Errorf("spool: read %s: %v", path, err)
	}
	if res.good < size || res.good < int64(len(spoolSegMagic)) {
		if res.good < size {
			s.log.Warn("spool: truncating torn or corrupt end of segment", "path", path,
				"offset", res.good, "bytes", size-res.good, "reason", res.reason, "records_kept", len(metas))
		}
		if err := f.Truncate(res.good); err != nil {
			f.Close()
			return fmt.Errorf("spool: truncate %s: %v", path, err)
		}
		if res.good < int64(len(spoolSegMagic)) {
			if _, err := f.WriteAt([]byte(spoolSegMagic), 0); err != nil {
				f.Close()
				return fmt.Errorf("spool: write %s: %v", path, err)
			}
			res.good = int64(len(spoolSegMagic))
		}
		g.dirty = true
	}
	g.bytes = res.good
	if len(metas) == 0 && !head {
		// A sealed segment with nothing in it is of no use.
		f.Close()
		os.Remove(path)
		os.Remove(s.idxPath(first))
		return nil
	}
	if head {
		keep, keepBytes, err := s.readTail(f, metas)
		if err != nil {
			f.Close()
			return fmt.Errorf("spool: read %s: %v", path, err)
		}
		os.Remove(s.idxPath(first)) // rewritten when it is sealed
		f.Close()
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Errorf("spool: open %s for append: %v", path, err)
		}
		g.f = f
		s.addLoaded(g, metas)
		// The tail: the newest records of the head, with their metadata.
		base := len(s.meta) - len(keep)
		for i := range keep {
			m := &s.meta[base+i]
			keep[i] = s.entryOf(m, keep[i].raw)
		}
		s.tail = keep
		s.tailBytes = keepBytes
		return nil
	}
	// A sealed segment without a good index: write it now.
	if err := f.Sync(); err != nil {
		s.log.Warn("spool: fsync failed", "path", path, "err", err)
	}
	f.Close()
	s.addLoaded(g, metas)
	n, err := writeSpoolIndex(s.idxPath(first), s.meta[len(s.meta)-len(metas):])
	if err != nil {
		s.log.Warn("spool: cannot write index; the segment is scanned again at the next start", "path", s.idxPath(first), "err", err)
	} else {
		g.idxBytes = n
		g.sealed = true
		if err := syncDir(s.dir); err != nil {
			s.log.Warn("spool: fsync of directory failed", "dir", s.dir, "err", err)
		}
	}
	return nil
}

// readTail reads the newest records of the scanned head whose bytes fit
// the tail budget (the newest always), returning entries holding only seq
// and raw.
func (s *spool) readTail(f *os.File, metas []spoolMeta) ([]spoolEntry, int64, error) {
	k, n := len(metas), int64(0)
	for k > 0 {
		sz := int64(metas[k-1].size)
		if k < len(metas) && n+sz > s.opts.tailBytes {
			break
		}
		n += sz
		k--
	}
	if k == len(metas) {
		return nil, 0, nil
	}
	start := metas[k].off
	last := &metas[len(metas)-1]
	buf := make([]byte, last.off+spoolFrameLen(last)-start)
	if _, err := f.ReadAt(buf, start); err != nil {
		return nil, 0, err
	}
	keep := make([]spoolEntry, 0, len(metas)-k)
	for i := k; i < len(metas); i++ {
		m := &metas[i]
		_, raw, err := checkSpoolFrame(buf[m.off-start : m.off-start+spoolFrameLen(m)])
		if err != nil {
			return nil, 0, fmt.Errorf("record %d changed under the scan: %v", m.seq, err)
		}
		keep = append(keep, spoolEntry{seq: m.seq, raw: append([]byte(nil), raw...)})
	}
	return keep, n, nil
}

// addLoaded appends a loaded segment and its records' metadata.
func (s *spool) addLoaded(g *spoolSegment, metas []spoolMeta) {
	for i := range metas {
		m := &metas[i]
		if m.recv < s.lastRecv {
			m.recv = s.lastRecv
		}
		s.lastRecv = m.recv
		m.source = s.intern(m.source)
		s.meta = append(s.meta, *m)
		s.byIvorn[m.ivorn] = m.seq
	}
	if len(metas) > 0 {
		g.end = metas[len(metas)-1].seq + 1
		g.oldest = metas[0].recv
		g.newest = metas[len(metas)-1].recv
	}
	s.next = max(s.next, g.end, g.first)
	s.segs = append(s.segs, g)
}

func (s *spool) intern(src string) string {
	if v, ok := s.sources[src]; ok {
		return v
	}
	if len(s.sources) > 4096 {
		clear(s.sources) // bounded: sources are few, except kafka offsets
	}
	s.sources[src] = src
	return src
}

// createHead creates an empty head segment whose first seq is first.
// Called with mu held, or before the spool is shared.
func (s *spool) createHead(first uint64) error {
	path := s.segPath(first)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("spool: create %s: %v", path, err)
	}
	if _, err := f.Write([]byte(spoolSegMagic)); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("spool: write %s: %v", path, err)
	}
	g := &spoolSegment{first: first, end: first, bytes: int64(len(spoolSegMagic)), f: f, dirty: true}
	s.segs = append(s.segs, g)
	s.disk += g.bytes
	s.dirDirty = true
	return nil
}

// spoolScan is what scanSpoolSegment found.
type spoolScan struct {
	good    int64  // offset just past the last good record (0 for a bad magic)
	records int    // good records
	reason  string // why the scan stopped before the end, if it did
}

// scanSpoolSegment reads a segment of size bytes whose first seq is first,
// calling fn with each good record (raw is valid only during the call). It
// stops at the first record that does not frame, check, decode or carry the
// next seq. It fails only on a read error.
func scanSpoolSegment(r io.Reader, size int64, first uint64, fn func(m spoolMeta, raw []byte)) (spoolScan, error) {
	var res spoolScan
	br := bufio.NewReaderSize(r, spoolReadBuffer)
	head := make([]byte, len(spoolSegMagic))
	n, err := io.ReadFull(br, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return res, err
	}
	if string(head[:n]) != spoolSegMagic {
		if size > 0 {
			res.reason = "not a spool segment (bad magic)"
		}
		return res, nil
	}
	off := int64(len(spoolSegMagic))
	res.good = off
	want := first
	var buf []byte
	for off < size {
		var hdr [spoolFrameHeader]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				res.reason = "torn record header"
				return res, nil
			}
			return res, err
		}
		plen := int64(binary.BigEndian.Uint32(hdr[0:4]))
		if plen < spoolMinPayload || plen > spoolMaxPayload {
			res.reason = "bad record length"
			return res, nil
		}
		if off+spoolFrameHeader+plen > size {
			res.reason = "torn record"
			return res, nil
		}
		if int64(cap(buf)) < plen {
			buf = make([]byte, plen)
		}
		p := buf[:plen]
		if _, err := io.ReadFull(br, p); err != nil {
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				res.reason = "torn record"
				return res, nil
			}
			return res, err
		}
		if spoolCRC(hdr[0:4], p) != binary.BigEndian.Uint32(hdr[4:8]) {
			res.reason = "bad CRC"
			return res, nil
		}
		m, raw, err := decodeSpoolPayload(p)
		if err != nil {
			res.reason = err.Error()
			return res, nil
		}
		if m.seq != want {
			res.reason = fmt.Sprintf("record has seq %d, expected %d", m.seq, want)
			return res, nil
		}
		m.off = off
		fn(m, raw)
		want++
		off += spoolFrameHeader + plen
		res.good = off
		res.records++
	}
	return res, nil
}

func spoolCRC(length, payload []byte) uint32 {
	return crc32.Update(crc32.Update(0, castagnoli, length), castagnoli, payload)
}

// Role codes on disk.
var spoolRoles = [...]string{1: "observation", 2: "prediction", 3: "utility", 4: "test"}

func spoolRoleCode(role string) (uint8, bool) {
	for i, r := range spoolRoles {
		if i > 0 && r == role {
			return uint8(i), true
		}
	}
	return 0, false
}

// encodeSpoolRecord appends the framed record to b.
func encodeSpoolRecord(b []byte, seq uint64, recv int64, role uint8, source, ivorn string, raw []byte) []byte {
	plen := spoolMinPayload - 1 + len(source) + len(ivorn) + len(raw)
	start := len(b)
	b = binary.BigEndian.AppendUint32(b, uint32(plen))
	b = append(b, 0, 0, 0, 0)
	b = append(b, spoolKindEvent)
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, uint64(recv))
	b = append(b, role)
	b = binary.BigEndian.AppendUint16(b, uint16(len(source)))
	b = append(b, source...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ivorn)))
	b = append(b, ivorn...)
	b = append(b, raw...)
	rec := b[start:]
	binary.BigEndian.PutUint32(rec[4:8], spoolCRC(rec[0:4], rec[spoolFrameHeader:]))
	return b
}

// decodeSpoolPayload parses a checked payload; raw aliases p.
func decodeSpoolPayload(p []byte) (spoolMeta, []byte, error) {
	var m spoolMeta
	if len(p) < spoolMinPayload {
		return m, nil, errors.New("short payload")
	}
	if p[0] != spoolKindEvent {
		return m, nil, fmt.Errorf("unknown record kind %d", p[0])
	}
	m.seq = binary.BigEndian.Uint64(p[1:9])
	m.recv = int64(binary.BigEndian.Uint64(p[9:17]))
	m.role = p[17]
	if m.role == 0 || int(m.role) >= len(spoolRoles) {
		return m, nil, fmt.Errorf("unknown role code %d", m.role)
	}
	rest := p[18:]
	sl := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < sl+2 {
		return m, nil, errors.New("source runs past the record")
	}
	m.source = string(rest[:sl])
	rest = rest[sl:]
	il := int(binary.BigEndian.Uint16(rest))
	rest = rest[2:]
	if len(rest) < il+1 {
		return m, nil, errors.New("ivorn runs past the record")
	}
	m.ivorn = string(rest[:il])
	raw := rest[il:]
	m.size = uint32(len(raw))
	return m, raw, nil
}

// entryOf builds the entry for m with the given bytes.
func (s *spool) entryOf(m *spoolMeta, raw []byte) spoolEntry {
	return spoolEntry{
		seq:      m.seq,
		received: time.Unix(0, m.recv),
		role:     spoolRoles[m.role],
		source:   m.source,
		ivorn:    m.ivorn,
		raw:      raw,
		size:     int(m.size),
	}
}

// append spools one event and returns its seq. ev.seq is ignored; a zero
// ev.received means now. It returns once the record is with the operating
// system (no fsync), in the write call of its batch: the records of
// concurrent appends go out together, one write call per batch, in seq
// order (writeBatchLocked). A lone append writes its record at once. After
// a failed write the head is cut back to its last whole record, so a full
// disk leaves no torn record.
func (s *spool) append(ev spoolEntry) (uint64, error) {
	role, ok := spoolRoleCode(ev.role)
	switch {
	case !ok:
		return 0, fmt.Errorf("spool: append: unknown role %q", ev.role)
	case len(ev.raw) == 0:
		return 0, errors.New("spool: append: empty event")
	case len(ev.source) > spoolMaxField:
		return 0, fmt.Errorf("spool: append: source is %d bytes, more than %d", len(ev.source), spoolMaxField)
	case len(ev.ivorn) > spoolMaxField:
		return 0, fmt.Errorf("spool: append: ivorn is %d bytes, more than %d", len(ev.ivorn), spoolMaxField)
	case spoolMinPayload-1+len(ev.source)+len(ev.ivorn)+len(ev.raw) > spoolMaxPayload:
		return 0, fmt.Errorf("spool: append: event of %d bytes is larger than the spool takes", len(ev.raw))
	}
	recv := ev.received
	if recv.IsZero() {
		recv = s.opts.now()
	}
	rns := spoolUnixNano(recv)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errSpoolClosed
	}
	rns = max(rns, s.lastRecv, s.qRecv)
	s.qRecv = rns
	w := s.waiterLocked()
	w.ev = spoolEntry{role: ev.role, source: ev.source, ivorn: ev.ivorn, raw: ev.raw}
	w.role = role
	w.rns = rns
	w.frame = int64(spoolFrameHeader + spoolMinPayload - 1 + len(ev.source) + len(ev.ivorn) + len(ev.raw))
	s.pend = append(s.pend, w)
	for !w.done {
		if s.writing {
			w.cond.Wait()
			continue
		}
		// No write in progress: w is queued, and this caller writes the
		// batch at the front of the queue (which may stop before w at a
		// roll; then it loops and writes the next).
		s.writeBatchLocked()
	}
	seq, err := w.seq, w.err
	s.releaseWaiterLocked(w)
	return seq, err
}

// writeBatchLocked takes a batch from the front of pend (at least one
// record; it stops before a record that needs the head rolled, rolling
// first when that record is the first), gives it the next seqs, writes it
// with one write call with mu released, then publishes its records'
// metadata (or the error, to each of its callers). After a failed write
// the head is cut back to its last whole record, now or before the next
// write, so a full disk leaves no torn record; the failed batch's seqs are
// given to the next records, so seqs have no gaps.
func (s *spool) writeBatchLocked() {
	g := s.segs[len(s.segs)-1]
	if s.torn {
		if err := os.Truncate(s.segPath(g.first), g.bytes); err != nil {
			s.failLocked(len(s.pend), fmt.Errorf("spool: append to %s: repair after failed write: %v", s.segPath(g.first), err))
			return
		}
		s.torn = false
	}
	n := 0
	bytes, empty, oldest := g.bytes, g.empty(), g.oldest
	for i, w := range s.pend {
		if !empty && (bytes+w.frame > s.segBytes || w.rns-oldest >= s.rollAge) {
			if i > 0 {
				break // the rest goes after the roll, in the next batch
			}
			if err := s.rollLocked(); err != nil {
				s.failLocked(len(s.pend), err)
				return
			}
			g = s.segs[len(s.segs)-1]
			bytes, empty = g.bytes, true
		}
		if i > 0 && bytes-g.bytes+w.frame > spoolMaxBatchBytes {
			break
		}
		if empty {
			oldest, empty = w.rns, false
		}
		bytes += w.frame
		n = i + 1
	}
	s.batch = append(s.batch[:0], s.pend[:n]...)
	batch := s.batch
	s.dequeueLocked(n)
	for i, w := range batch {
		w.seq = s.next + uint64(i)
	}
	path, f := s.segPath(g.first), g.f
	s.writing = true
	s.mu.Unlock()
	// Only the writer touches buf and the batch's waiters until done is set.
	s.buf = s.buf[:0]
	for _, w := range batch {
		s.buf = encodeSpoolRecord(s.buf, w.seq, w.rns, w.role, w.ev.source, w.ev.ivorn, w.ev.raw)
	}
	wn, err := f.Write(s.buf)
	if cap(s.buf) > 1<<20 {
		s.buf = nil // do not hold on to a large batch's buffer
	}
	s.mu.Lock()
	s.writing = false
	s.writes++
	defer func() {
		clear(s.batch)
		s.handOverLocked()
	}()
	if err != nil {
		if wn > 0 {
			s.torn = os.Truncate(path, g.bytes) != nil
		}
		err = fmt.Errorf("spool: append to %s: %v", path, err)
		for _, w := range batch {
			w.seq, w.err, w.done = 0, err, true
			w.cond.Signal()
		}
		return
	}
	for _, w := range batch {
		m := spoolMeta{
			seq: w.seq, recv: w.rns, off: g.bytes, size: uint32(len(w.ev.raw)), role: w.role,
			source: s.intern(w.ev.source), ivorn: w.ev.ivorn,
		}
		s.meta = append(s.meta, m)
		s.byIvorn[m.ivorn] = m.seq
		if g.empty() {
			g.oldest = w.rns
		}
		g.newest = w.rns
		g.end = m.seq + 1
		g.bytes += w.frame
		g.dirty = true
		s.disk += w.frame
		s.next = m.seq + 1
		s.lastRecv = w.rns
		s.pushTail(s.entryOf(&m, w.ev.raw))
		w.done = true
		w.cond.Signal()
	}
}

// handOverLocked, after a batch write, wakes prune or close waiting for
// it and the first queued caller, to write the next batch.
func (s *spool) handOverLocked() {
	s.idle.Broadcast()
	if len(s.pend) > 0 && !s.writing {
		s.pend[0].cond.Signal()
	}
}

// failLocked fails the first n queued appends with err.
func (s *spool) failLocked(n int, err error) {
	for _, w := range s.pend[:n] {
		w.seq, w.err, w.done = 0, err, true
		w.cond.Signal()
	}
	s.dequeueLocked(n)
	s.handOverLocked()
}

// dequeueLocked removes the first n queued appends, keeping the queue's
// array for reuse.
func (s *spool) dequeueLocked(n int) {
	k := copy(s.pend, s.pend[n:])
	clear(s.pend[k:])
	s.pend = s.pend[:k]
}

// waiterLocked returns an empty waiter, reusing a finished one.
func (s *spool) waiterLocked() *spoolWaiter {
	if w := popSpare(&s.free); w != nil {
		return w
	}
	w := &spoolWaiter{}
	w.cond.L = &s.mu
	return w
}

// releaseWaiterLocked keeps a waiter whose caller has its outcome.
func (s *spool) releaseWaiterLocked(w *spoolWaiter) {
	w.ev, w.err, w.done, w.seq = spoolEntry{}, nil, false, 0 // drop the event's bytes
	if len(s.free) < spoolFreeWaiters {
		s.free = append(s.free, w)
	}
}

// pushTail adds the newest entry to the in-memory tail, dropping the oldest
// beyond the budget (the newest is always kept). Called with mu held.
func (s *spool) pushTail(e spoolEntry) {
	if n := len(s.tail); n > 0 && s.tail[n-1].seq+1 != e.seq {
		s.dropTail(n) // not consecutive (cannot happen; keep the invariant anyway)
	}
	s.tail = append(s.tail, e)
	s.tailBytes += int64(len(e.raw))
	for len(s.tail) > 1 && s.tailBytes > s.opts.tailBytes {
		s.dropTail(1)
	}
}

// dropTail drops the n oldest tail entries. Called with mu held.
func (s *spool) dropTail(n int) {
	for i := 0; i < n; i++ {
		s.tailBytes -= int64(len(s.tail[i].raw))
		s.tail[i] = spoolEntry{}
	}
	s.tail = s.tail[n:]
}

// rollLocked starts a new head; the old one is sealed by the next sync.
func (s *spool) rollLocked() error {
	return s.createHead(s.next)
}

// head is the seq the next appended event will get: every event with a
// smaller seq is in the spool (unless pruned), none with this or a larger.
func (s *spool) head() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// spoolUnixNano is t.UnixNano, clamped for times it cannot represent
// (before 1678 or after 2262).
func spoolUnixNano(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// horizonLocked is the oldest received time (Unix ns) still served.
func (s *spool) horizonLocked() int64 {
	return s.opts.now().Add(-s.window).UnixNano()
}

// since returns the seq of the first spooled event received at or after t
// (inclusive), or head() when there is none. A t before the retention window
// counts as its start.
func (s *spool) since(t time.Time) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	tn := max(spoolUnixNano(t), s.horizonLocked())
	i := sort.Search(len(s.meta), func(i int) bool { return s.meta[i].recv >= tn })
	if i == len(s.meta) {
		return s.next
	}
	return s.meta[i].seq
}

// metaIndexLocked is the index in meta of the first record with seq >= seq.
func (s *spool) metaIndexLocked(seq uint64) int {
	return sort.Search(len(s.meta), func(i int) bool { return s.meta[i].seq >= seq })
}

// segmentOfLocked is the segment holding seq (which is on disk).
func (s *spool) segmentOfLocked(seq uint64) *spoolSegment {
	i := sort.Search(len(s.segs), func(i int) bool { return s.segs[i].first > seq })
	if i == 0 {
		return nil
	}
	return s.segs[i-1]
}

// get returns the newest spooled event with this ivorn, with its bytes.
func (s *spool) get(ivorn string) (spoolEntry, bool) {
	s.mu.Lock()
	seq, ok := s.byIvorn[ivorn]
	if !ok || s.closed {
		s.mu.Unlock()
		return spoolEntry{}, false
	}
	i := s.metaIndexLocked(seq)
	if i == len(s.meta) || s.meta[i].seq != seq || s.meta[i].recv < s.horizonLocked() {
		s.mu.Unlock()
		return spoolEntry{}, false
	}
	if len(s.tail) > 0 && seq >= s.tail[0].seq {
		e := s.tail[seq-s.tail[0].seq]
		s.mu.Unlock()
		return e, true
	}
	m := s.meta[i]
	g := s.segmentOfLocked(seq)
	s.mu.Unlock()
	if g == nil {
		return spoolEntry{}, false
	}
	path := s.segPath(g.first)
	f, err := os.Open(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) { // pruned meanwhile
			s.log.Error("spool: cannot read event", "path", path, "err", err)
		}
		return spoolEntry{}, false
	}
	defer f.Close()
	b := make([]byte, spoolFrameHeader+spoolMinPayload-1+len(m.source)+len(m.ivorn)+int(m.size))
	if _, err := f.ReadAt(b, m.off); err != nil {
		s.log.Error("spool: cannot read event", "path", path, "offset", m.off, "err", err)
		return spoolEntry{}, false
	}
	m2, raw, err := checkSpoolFrame(b)
	if err != nil || m2.seq != seq {
		s.log.Error("spool: damaged record in segment", "path", path, "offset", m.off, "seq", seq, "err", err)
		return spoolEntry{}, false
	}
	return s.entryOf(&m, raw), true
}

// checkSpoolFrame checks and decodes one whole frame.
func checkSpoolFrame(b []byte) (spoolMeta, []byte, error) {
	if len(b) < spoolFrameHeader {
		return spoolMeta{}, nil, errors.New("short frame")
	}
	if int(binary.BigEndian.Uint32(b[0:4])) != len(b)-spoolFrameHeader {
		return spoolMeta{}, nil, errors.New("bad record length")
	}
	if spoolCRC(b[0:4], b[spoolFrameHeader:]) != binary.BigEndian.Uint32(b[4:8]) {
		return spoolMeta{}, nil, errors.New("bad CRC")
	}
	return decodeSpoolPayload(b[spoolFrameHeader:])
}

// recent returns the metadata (raw nil) of the newest spooled events
// received at or after since (zero: any), newest first, at most limit.
func (s *spool) recent(limit int, since time.Time) []spoolEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	lo := s.horizonLocked()
	if !since.IsZero() {
		lo = max(lo, spoolUnixNano(since))
	}
	var out []spoolEntry
	for i := len(s.meta) - 1; i >= 0 && len(out) < limit; i-- {
		m := &s.meta[i]
		if m.recv < lo {
			break
		}
		out = append(out, s.entryOf(m, nil))
	}
	return out
}

// spoolStats is what /status shows of the spool.
type spoolStats struct {
	events   int
	bytes    int64 // on disk, segments and indexes
	segments int
	oldest   time.Time // zero when empty
	head     uint64
}

func (s *spool) stats() spoolStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := spoolStats{events: len(s.meta), bytes: s.disk, segments: len(s.segs), head: s.next}
	if len(s.meta) > 0 {
		st.oldest = time.Unix(0, s.meta[0].recv)
	}
	return st
}

// sync fsyncs what was appended, seals rolled segments (fsync, index,
// directory fsync) and prunes after a seal or every minute. The broker
// calls it about once a second, with the event database's sync.
func (s *spool) sync() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return errSpoolClosed
	}
	sealed, err := s.syncHeld()
	now := s.opts.now()
	if sealed || now.Sub(s.lastPrune) >= spoolPruneEvery || now.Before(s.lastPrune) {
		if _, perr := s.pruneHeld(now); perr != nil {
			err = errors.Join(err, perr)
		}
	}
	return err
}

// syncHeld is sync's file work, with syncMu held.
func (s *spool) syncHeld() (sealedAny bool, err error) {
	s.mu.Lock()
	type job struct {
		g     *spoolSegment
		f     *os.File
		metas []spoolMeta
	}
	var jobs []job
	var head *spoolSegment
	var headF *os.File
	for i, g := range s.segs {
		if i == len(s.segs)-1 {
			if g.dirty {
				head, headF = g, g.f
				g.dirty = false
			}
			break
		}
		if !g.sealed && g.f != nil {
			lo, hi := s.metaIndexLocked(g.first), s.metaIndexLocked(g.end)
			jobs = append(jobs, job{g, g.f, append([]spoolMeta(nil), s.meta[lo:hi]...)})
		}
	}
	dirDirty := s.dirDirty
	s.dirDirty = false
	s.mu.Unlock()

	for _, j := range jobs {
		path := s.segPath(j.g.first)
		if serr := j.f.Sync(); serr != nil {
			err = errors.Join(err, fmt.Errorf("spool: fsync %s: %v", path, serr))
			continue
		}
		n, ierr := writeSpoolIndex(s.idxPath(j.g.first), j.metas)
		if ierr != nil {
			err = errors.Join(err, fmt.Errorf("spool: seal %s: %v", path, ierr))
			continue
		}
		s.mu.Lock()
		j.g.sealed = true
		j.g.idxBytes = n
		j.g.f = nil
		s.disk += n
		s.mu.Unlock()
		j.f.Close()
		sealedAny = true
		dirDirty = true
	}
	if head != nil {
		if serr := headF.Sync(); serr != nil {
			s.mu.Lock()
			head.dirty = true
			s.mu.Unlock()
			err = errors.Join(err, fmt.Errorf("spool: fsync %s: %v", s.segPath(head.first), serr))
		}
	}
	if dirDirty {
		if derr := syncDir(s.dir); derr != nil {
			s.mu.Lock()
			s.dirDirty = true
			s.mu.Unlock()
			err = errors.Join(err, fmt.Errorf("spool: fsync directory %s: %v", s.dir, derr))
		}
	}
	return sealedAny, err
}

// prune deletes whole sealed segments: those whose newest record is older
// than the retention window, then the oldest while the files take more
// than max-bytes. A head whose newest record is older than the window is
// rolled and sealed first, so an idle spool empties too. It returns the
// number of events removed.
func (s *spool) prune(now time.Time) (int, error) {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	return s.pruneHeld(now)
}

func (s *spool) pruneHeld(now time.Time) (int, error) {
	s.lastPrune = now
	cutoff := now.Add(-s.window).UnixNano()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return 0, errSpoolClosed
	}
	for h := s.segs[len(s.segs)-1]; !h.empty() && h.newest < cutoff; h = s.segs[len(s.segs)-1] {
		if s.writing {
			// Never roll while a batch is being written to the head.
			s.idle.Wait()
			if s.closed {
				s.mu.Unlock()
				return 0, errSpoolClosed
			}
			continue
		}
		if err := s.rollLocked(); err != nil {
			s.mu.Unlock()
			return 0, err
		}
		s.mu.Unlock()
		if _, err := s.syncHeld(); err != nil {
			return 0, err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return 0, errSpoolClosed
		}
		break // roll once
	}
	var gone []*spoolSegment
	for len(s.segs) > 1 {
		g := s.segs[0]
		if !g.sealed || (g.newest >= cutoff && s.disk <= s.opts.maxBytes) {
			break
		}
		gone = append(gone, g)
		s.segs[0] = nil
		s.segs = s.segs[1:]
		s.disk -= g.bytes + g.idxBytes
	}
	removed := 0
	if len(gone) > 0 {
		keepFrom := s.segs[0].first
		n := s.metaIndexLocked(keepFrom)
		for i := 0; i < n; i++ {
			m := &s.meta[i]
			if s.byIvorn[m.ivorn] == m.seq {
				delete(s.byIvorn, m.ivorn)
			}
		}
		removed = n
		clear(s.meta[:n])
		s.meta = s.meta[n:]
		if len(s.meta) == 0 {
			s.meta = nil
		}
		k := 0
		for k < len(s.tail) && s.tail[k].seq < keepFrom {
			k++
		}
		s.dropTail(k)
	}
	s.mu.Unlock()
	var err error
	for _, g := range gone {
		for _, p := range []string{s.segPath(g.first), s.idxPath(g.first)} {
			if rerr := os.Remove(p); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				err = errors.Join(err, fmt.Errorf("spool: prune: %v", rerr))
			}
		}
	}
	if len(gone) > 0 {
		if derr := syncDir(s.dir); derr != nil {
			err = errors.Join(err, fmt.Errorf("spool: fsync directory %s: %v", s.dir, derr))
		}
		s.log.Info("spool: pruned old segments", "segments", len(gone), "events", removed,
			"remaining_events", s.stats().events, "bytes", s.stats().bytes)
	}
	return removed, err
}

// close syncs, seals what was rolled and closes the files. Readers get
// errSpoolClosed afterwards. Calling it again does nothing.
func (s *spool) close() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	// Appends already queued were promised a write: let them go out.
	for s.writing || len(s.pend) > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
	_, err := s.syncHeld()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cerr := s.closeFiles(); err == nil {
		err = cerr
	}
	return err
}

// closeFiles closes every open segment file. Called with mu held, or before
// the spool is shared.
func (s *spool) closeFiles() error {
	var err error
	for _, g := range s.segs {
		if g.f != nil {
			if cerr := g.f.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("spool: close %s: %v", g.f.Name(), cerr)
			}
			g.f = nil
		}
	}
	return err
}

// spoolReader reads the spool in seq order from a starting seq: sealed and
// older head records from disk through a bounded buffer, then the in-memory
// tail. One reader belongs to one goroutine.
type spoolReader struct {
	s      *spool
	pos    uint64 // the seq wanted next
	f      *os.File
	br     *bufio.Reader
	fFirst uint64 // first seq of the open segment
	fOff   int64  // offset the buffered reader is at
	buf    []byte
}

// reader returns a reader whose first event is the first spooled at or
// after seq from (from 0 or one before the oldest: the oldest).
func (s *spool) reader(from uint64) *spoolReader {
	return &spoolReader{s: s, pos: from}
}

// position is the seq the reader wants next. After next reports caught up
// it is the head seen then: every event before it was returned or skipped.
func (r *spoolReader) position() uint64 { return r.pos }

// close releases the reader's file.
func (r *spoolReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
	r.br = nil
}

// next returns the next event (ok true), or ok false when the reader has
// caught up with the head: position() is then head() as it was at that
// moment, and a later next returns events appended since. Events pruned
// or older than the retention window are skipped; so is a record damaged on
// disk (logged). err is errSpoolClosed after close, or a read error.
func (r *spoolReader) next() (spoolEntry, bool, error) {
	s := r.s
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			r.close()
			return spoolEntry{}, false, errSpoolClosed
		}
		if r.pos >= s.next {
			r.pos = s.next
			s.mu.Unlock()
			return spoolEntry{}, false, nil
		}
		horizon := s.horizonLocked()
		if len(s.tail) > 0 && r.pos >= s.tail[0].seq {
			e := s.tail[r.pos-s.tail[0].seq]
			s.mu.Unlock()
			r.close()
			r.pos = e.seq + 1
			if e.received.UnixNano() < horizon {
				continue
			}
			return e, true, nil
		}
		i := s.metaIndexLocked(r.pos)
		if i == len(s.meta) {
			// Nothing on disk at or after pos below the tail: jump to it.
			if len(s.tail) > 0 {
				r.pos = s.tail[0].seq
			} else {
				r.pos = s.next
			}
			s.mu.Unlock()
			continue
		}
		if s.meta[i].recv < horizon {
			j := sort.Search(len(s.meta), func(j int) bool { return s.meta[j].recv >= horizon })
			if j == len(s.meta) {
				r.pos = s.next
			} else {
				r.pos = s.meta[j].seq
			}
			s.mu.Unlock()
			continue
		}
		m := s.meta[i]
		g := s.segmentOfLocked(m.seq)
		s.mu.Unlock()
		r.pos = m.seq
		if g == nil {
			r.pos++
			continue
		}
		e, err := r.readAt(g.first, &m)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // pruned meanwhile: the next round skips it
			}
			var de spoolDamageError
			if errors.As(err, &de) {
				s.log.Error("spool: skipping damaged record", "path", s.segPath(g.first), "seq", m.seq, "offset", m.off, "err", err)
				r.close()
				r.pos = m.seq + 1
				continue
			}
			r.close()
			return spoolEntry{}, false, err
		}
		r.pos = m.seq + 1
		return e, true, nil
	}
}

// spoolDamageError is a record on disk that does not check.
type spoolDamageError struct{ msg string }

func (e spoolDamageError) Error() string { return e.msg }

// readAt reads the record m from the segment starting at first, reusing the
// open file when it is already positioned there.
func (r *spoolReader) readAt(first uint64, m *spoolMeta) (spoolEntry, error) {
	if r.f == nil || r.fFirst != first || r.fOff != m.off {
		r.close()
		f, err := os.Open(r.s.segPath(first))
		if err != nil {
			return spoolEntry{}, err
		}
		if _, err := f.Seek(m.off, io.SeekStart); err != nil {
			f.Close()
			return spoolEntry{}, err
		}
		r.f, r.fFirst, r.fOff = f, first, m.off
		r.br = bufio.NewReaderSize(f, spoolReadBuffer)
	}
	n := spoolFrameHeader + spoolMinPayload - 1 + len(m.source) + len(m.ivorn) + int(m.size)
	b := make([]byte, n) // owned by the returned entry
	if _, err := io.ReadFull(r.br, b); err != nil {
		r.close()
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return spoolEntry{}, spoolDamageError{"segment ends inside the record"}
		}
		return spoolEntry{}, err
	}
	r.fOff += int64(n)
	got, raw, err := checkSpoolFrame(b)
	if err == nil && got.seq != m.seq {
		err = fmt.Errorf("record has seq %d, expected %d", got.seq, m.seq)
	}
	if err != nil {
		return spoolEntry{}, spoolDamageError{err.Error()}
	}
	return r.s.entryOf(m, raw), nil
}

// eventdb.go owns the de-duplication store that keeps a VTP network loop-free:
// one store per process, shared by the receiver and the subscriber. An event's
// identity is the exact bytes of its root element (VTP 2.0 section 8); the
// store remembers the first 16 bytes of their SHA-256 and the time it first
// saw them, for --eventdb-expiry (30 days by default).
//
// On disk it is an append-only log, comet-events.log, in the --eventdb
// directory: an 8-byte magic, then records framed as
//
//	length  uint32 big-endian, bytes of payload (1..maxEventRecordPayload)
//	crc     uint32 big-endian, CRC-32C (Castagnoli) of length then payload
//	payload kind byte, then kind-specific bytes; kind 1 ("seen") is
//	        a 16-byte key and the insertion time as int64 big-endian Unix seconds
//
// Invariants a reader must not break:
//   - records are never rewritten in place; compaction is the only writer that
//     replaces the file (temp file, fsync, rename, directory fsync);
//   - checkAndRecord reports "new" only after the record went to the operating
//     system in a write call, so a killed process forgets nothing it acked;
//     the log takes one write call per batch of records that arrived together
//     (group commit: a caller that finds no write in progress writes its
//     record at once; one that finds a write in progress queues its record,
//     and the records queued meanwhile go out in the next write, made by one
//     of their callers), and a record reaches the OS before its call returns;
//     fsync runs off that path, in a background syncer (about once a second, or
//     sooner after syncEvery records), and on close;
//   - replay keeps the longest valid prefix of the log and truncates the rest.
//
// In memory the keys live in an open-addressing table of 20-byte slots (key and
// uint32 seconds), filled to between 53% and 80%, so at most about 38 bytes per
// remembered event.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// File names inside the --eventdb directory.
const (
	eventDBLogName  = "comet-events.log"
	eventDBTmpName  = "comet-events.log.tmp"
	eventDBLockName = "comet-events.lock"
)

// Log format and table sizes.
const (
	eventDBMagic          = "CMTEVDB1"
	eventRecordHeaderLen  = 8          // length and CRC
	eventRecordSeen       = 1          // payload kind: an event was seen
	eventSeenPayloadLen   = 1 + 16 + 8 // kind, key, Unix seconds
	eventSeenRecordLen    = eventRecordHeaderLen + eventSeenPayloadLen
	maxEventRecordPayload = 4096      // larger lengths are corruption
	eventDBReadBuffer     = 256 << 10 // replay read buffer
	eventDBMaxPresize     = 1 << 20   // cap on the table pre-sized from the log size
	eventDBMinTableSlots  = 1024      // smallest table
	eventDBMaxLoadNum     = 4         // grow when n > cap * num / den,
	eventDBMaxLoadDen     = 5         // that is when over 80% full
)

// Defaults; eventDBOptions overrides them in tests.
const (
	defaultEventDBExpiry          = 30 * 24 * time.Hour
	defaultEventDBPruneInterval   = 6 * time.Hour
	defaultEventDBSyncInterval    = time.Second
	defaultEventDBSyncEvery       = 1000
	defaultEventDBCompactMinBytes = 1 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// errEventDBClosed is returned by every operation after close.
	errEventDBClosed = errors.New("eventdb: closed")
	// errDirLocked is returned by the platform lock when another process holds it.
	errDirLocked = errors.New("lock held by another process")
)

// eventKey is an event's identity: the first 16 bytes of the SHA-256 of the
// exact bytes of its root element. 128 bits keep the chance of any collision
// among a billion remembered events below 1e-20, and SHA-256 (not SHA-1, which
// Comet used) means nobody can craft two events with one key to get a real
// event dropped as a duplicate.
type eventKey [16]byte

func eventKeyOf(root []byte) eventKey {
	sum := sha256.Sum256(root)
	var k eventKey
	copy(k[:], sum[:16])
	return k
}

// eventDBOptions holds what tests change; zero fields take the defaults.
type eventDBOptions struct {
	now             func() time.Time
	pruneInterval   time.Duration
	syncInterval    time.Duration
	syncEvery       int
	compactMinBytes int64
}

// eventDB is the shared de-duplication store. All methods are safe for
// concurrent use.
type eventDB struct {
	dir, path string
	expiry    time.Duration
	expirySec int64
	log       *slog.Logger
	opts      eventDBOptions

	// syncMu serialises fsync with compaction's swap of the log file, so a
	// sync never runs on a file that compaction has closed.
	syncMu sync.Mutex

	mu         sync.Mutex
	tab        keyTable
	f          *os.File // the log, opened for append; nil after a failed reopen
	size       int64    // bytes of whole records in the log, magic included
	records    int      // records in the log, live or dead
	unsynced   int      // records written since the last fsync
	torn       bool     // a failed write may have left bytes past size
	closed     bool
	compacting bool
	buf        [eventSeenRecordLen]byte

	// Group commit (see appendLocked). At most one batch write is in
	// progress, outside mu (writing); records arriving meanwhile are queued
	// in pend, written by the next writer. Callers wait on their batch's
	// cond; idle (on mu) is broadcast whenever a batch write ends, for
	// compaction and close.
	idle     sync.Cond
	pend     *eventDBBatch   // the batch being filled; never nil
	inflight *eventDBBatch   // the batch being written, or nil
	spare    []*eventDBBatch // finished batches for reuse
	writing  bool            // a batch write is in progress outside mu
	holding  bool            // compaction is swapping the file: start no write
	writes   int             // write calls that carried records (batches)
	written  int64           // records those calls wrote

	lock      *os.File
	kick      chan struct{}
	stop      chan struct{}
	wg        sync.WaitGroup
	syncFails bool // the last background sync failed (only syncLoop touches it)
}

// openEventDB opens (creating if needed) the event database in dir, replays
// its log and starts the background syncer and pruner. expiry is how long an
// event is remembered (at least one second).
func openEventDB(dir string, expiry time.Duration, logger *slog.Logger) (*eventDB, error) {
	return openEventDBWith(dir, expiry, logger, eventDBOptions{})
}

func openEventDBWith(dir string, expiry time.Duration, logger *slog.Logger, opts eventDBOptions) (*eventDB, error) {
	if expiry < time.Second {
		return nil, fmt.Errorf("eventdb: expiry %v is shorter than one second", expiry)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.pruneInterval <= 0 {
		// A quarter of the expiry, so a short expiry reaches a steady
		// state, but never more often than every second nor less than
		// every six hours.
		opts.pruneInterval = min(defaultEventDBPruneInterval, max(expiry/4, time.Second))
	}
	if opts.syncInterval <= 0 {
		opts.syncInterval = defaultEventDBSyncInterval
	}
	if opts.syncEvery <= 0 {
		opts.syncEvery = defaultEventDBSyncEvery
	}
	if opts.compactMinBytes <= 0 {
		opts.compactMinBytes = defaultEventDBCompactMinBytes
	}
	if err := prepareEventDBDir(dir); err != nil {
		return nil, err
	}
	lock, err := lockEventDBDir(dir)
	if err != nil {
		return nil, err
	}
	db := &eventDB{
		dir:       dir,
		path:      filepath.Join(dir, eventDBLogName),
		expiry:    expiry,
		expirySec: int64(expiry / time.Second),
		log:       logger,
		opts:      opts,
		lock:      lock,
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
	}
	db.tab.seed = rand.Uint64()
	db.idle.L = &db.mu
	db.pend = db.newBatchLocked()
	if err := db.load(); err != nil {
		unlockEventDBDir(lock)
		return nil, err
	}
	if db.shouldCompactLocked() {
		if err := db.compact(); err != nil {
			db.log.Warn("eventdb: compaction failed", "path", db.path, "err", err)
		}
	}
	db.wg.Add(2)
	go db.syncLoop()
	go db.pruneLoop()
	return db, nil
}

// defaultEventDBDir is the --eventdb default (contract section 2):
// systemd's $STATE_DIRECTORY (the first, when it lists several), else
// $XDG_STATE_HOME/comet (an absolute $XDG_STATE_HOME only, as the XDG spec
// says), else ~/.local/state/comet when the home directory exists, else the
// private per-user directory eventDBPrivateTempDir. It never returns a shared
// directory such as /tmp itself, and it creates nothing: prepareEventDBDir
// does that, with the checks the private directory needs.
func defaultEventDBDir() string {
	if sd := os.Getenv("STATE_DIRECTORY"); sd != "" {
		first, _, _ := strings.Cut(sd, ":")
		if first != "" {
			return first
		}
	}
	if x := os.Getenv("XDG_STATE_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "comet")
	}
	if home, err := os.UserHomeDir(); err == nil && filepath.IsAbs(home) {
		if fi, err := os.Stat(home); err == nil && fi.IsDir() {
			return filepath.Join(home, ".local", "state", "comet")
		}
	}
	return eventDBPrivateTempDir()
}

// eventDBPrivateTempDir is the last-resort default: comet-UID in the OS
// temporary directory. Anyone may create names there, so prepareEventDBDir
// creates it with mode 0700 and refuses it unless it is a real directory
// (not a symbolic link) owned by this user and closed to everyone else.
func eventDBPrivateTempDir() string {
	name := "comet"
	if uid := os.Geteuid(); uid >= 0 {
		name += "-" + strconv.Itoa(uid)
	}
	return filepath.Join(os.TempDir(), name)
}

// prepareEventDBDir creates dir if missing and checks that it is a directory
// this process can list and write, that it is not world-writable (a shared
// directory such as /tmp, where anyone may plant files under the names the
// event database uses) and, for the private temporary default, that it is
// this user's and nobody else's.
func prepareEventDBDir(dir string) error {
	if dir == "" {
		return errors.New("eventdb: no directory given")
	}
	private := filepath.Clean(dir) == eventDBPrivateTempDir()
	stat := os.Stat
	if private {
		stat = os.Lstat // a planted symbolic link must not redirect us
	}
	fi, err := stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if private {
			// Mkdir, not MkdirAll: the temporary directory exists, and a
			// name created meanwhile by someone else must fail here and be
			// checked below rather than be adopted.
			err = os.Mkdir(dir, 0o700)
			if err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("eventdb: cannot create directory %s: %v", dir, err)
			}
		} else if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("eventdb: cannot create directory %s: %v", dir, err)
		}
		if fi, err = stat(dir); err != nil {
			return fmt.Errorf("eventdb: directory %s is not usable: %v", dir, err)
		}
	case err != nil:
		return fmt.Errorf("eventdb: directory %s is not usable: %v", dir, err)
	}
	switch {
	case private && fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("eventdb: %s is a symbolic link, not the private directory it should be: remove it, or give --eventdb another directory", dir)
	case !fi.IsDir():
		return fmt.Errorf("eventdb: %s exists and is not a directory", dir)
	}
	if err := checkEventDBDirMode(dir, fi, private); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err == nil {
		_, err = d.Readdirnames(1)
		d.Close()
		if err == io.EOF {
			err = nil
		}
	}
	if err != nil {
		return fmt.Errorf("eventdb: directory %s is not usable (need read, write and search permission): %v", dir, err)
	}
	return nil
}

// checkEventDBDirMode refuses a world-writable directory and, when private,
// one that is not this user's or that others may enter. Where the platform
// has no Unix permission bits (Windows) it checks nothing.
func checkEventDBDirMode(dir string, fi fs.FileInfo, private bool) error {
	if !eventDBUnixModes {
		return nil
	}
	perm := fi.Mode().Perm()
	if perm&0o002 != 0 {
		shared := "world-writable"
		if fi.Mode()&fs.ModeSticky != 0 {
			shared = "a shared, world-writable directory"
		}
		return fmt.Errorf("eventdb: %s is %s, where anyone could plant files under the event database's names; "+
			"give --eventdb a private subdirectory instead, such as %s", dir, shared, filepath.Join(dir, "comet-"+strconv.Itoa(os.Geteuid())))
	}
	if !private {
		return nil
	}
	if uid, ok := eventDBFileOwner(fi); ok && uid != os.Geteuid() {
		return fmt.Errorf("eventdb: %s belongs to another user (uid %d), not to this one (uid %d): remove it, or give --eventdb a directory of your own",
			dir, uid, os.Geteuid())
	}
	if perm&0o077 != 0 {
		return fmt.Errorf("eventdb: %s has mode %#o but must be private (0700): run chmod 700 %s, or give --eventdb another directory", dir, perm, dir)
	}
	return nil
}

// eventDBFileError says that a name the event database uses holds something
// other than a regular file: a symbolic link, a FIFO, a directory...
type eventDBFileError struct{ path, what string }

func (e *eventDBFileError) Error() string {
	return "eventdb: " + e.path + " is " + e.what + ", not a regular file; refusing to use it (move it away, or give --eventdb another directory)"
}

// describeFileMode names a file type for eventDBFileError.
func describeFileMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// openEventDBFile opens one of the event database's files. It never follows
// a symbolic link (O_NOFOLLOW where the platform has it, an Lstat check
// elsewhere), never blocks on a FIFO (O_NONBLOCK) and returns an
// *eventDBFileError for anything but a regular file.
func openEventDBFile(path string, flag int, perm fs.FileMode) (*os.File, error) {
	if fi, err := os.Lstat(path); err == nil && !fi.Mode().IsRegular() {
		return nil, &eventDBFileError{path, describeFileMode(fi.Mode())}
	}
	f, err := os.OpenFile(path, flag|eventDBOpenFlags, perm)
	if err != nil {
		// Swapped in since the Lstat: say what it is, not just ELOOP.
		if fi, lerr := os.Lstat(path); lerr == nil && !fi.Mode().IsRegular() {
			return nil, &eventDBFileError{path, describeFileMode(fi.Mode())}
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &eventDBFileError{path, describeFileMode(fi.Mode())}
	}
	return f, nil
}

// lockEventDBDir takes the directory's lock file, so that two brokers never
// share one event database. A lock file of another user's means another
// user's broker uses (or used) this directory, and the error says so rather
// than reporting a bare permission failure.
func lockEventDBDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, eventDBLockName)
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() {
		if uid, ok := eventDBFileOwner(fi); ok && uid != os.Geteuid() {
			return nil, errLockOtherUser(dir, path, uid)
		}
	}
	f, err := lockFile(path)
	if errors.Is(err, errDirLocked) {
		holder := ""
		if b, rerr := os.ReadFile(path); rerr == nil {
			if pid := strings.TrimSpace(string(b)); pid != "" && len(pid) <= 20 {
				holder = " (pid " + pid + ")"
			}
		}
		return nil, fmt.Errorf("eventdb: directory %s is in use by another comet%s: it holds the lock %s", dir, holder, path)
	}
	var fe *eventDBFileError
	if errors.As(err, &fe) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("eventdb: directory %s is not usable (need read, write and search permission): %v", dir, err)
	}
	// The pid is only a hint for the error above; failing to write it is harmless.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// errLockOtherUser is the error for a lock file owned by another user.
func errLockOtherUser(dir, path string, uid int) error {
	return fmt.Errorf("eventdb: the lock %s belongs to another user (uid %d, not %d): another user's comet may use the directory %s; "+
		"give --eventdb a directory of your own", path, uid, os.Geteuid(), dir)
}

// load replays the log into the table, truncates what follows its last good
// record and opens it for append.
func (db *eventDB) load() error {
	now := unixSeconds(db.opts.now())
	var res eventLogScan
	var expired int
	f, err := openEventDBFile(db.path, os.O_RDWR, 0)
	var fe *eventDBFileError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		db.tab.init(0)
	case errors.As(err, &fe):
		return err
	case err != nil:
		return fmt.Errorf("eventdb: open %s: %v", db.path, err)
	default:
		var size int64
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		db.tab.init(min(int(size/eventSeenRecordLen), eventDBMaxPresize))
		res, err = scanEventLog(f, size, func(p []byte) {
			if len(p) != eventSeenPayloadLen || p[0] != eventRecordSeen {
				return // a kind this version does not know: kept, counted dead
			}
			var k eventKey
			copy(k[:], p[1:17])
			t := clampSeconds(int64(binary.BigEndian.Uint64(p[17:25])))
			if t > now {
				t = now // stamped in the future (the clock was stepped back): count from now
			}
			if db.isExpired(t, now) {
				expired++
				return
			}
			i, found := db.tab.find(&k)
			if found {
				if t > db.tab.slots[i].t {
					db.tab.slots[i].t = t
				}
				return
			}
			db.tab.insertAt(i, k, t)
		})
		if err != nil {
			f.Close()
			return fmt.Errorf("eventdb: replay %s: %v", db.path, err)
		}
		if res.foreign {
			f.Close()
			return fmt.Errorf("eventdb: %s is not a comet event log (it does not begin with %q); "+
				"refusing to overwrite it: move it away, or give --eventdb another directory", db.path, eventDBMagic)
		}
		if res.corrupt > 0 {
			db.log.Error("eventdb: skipped corrupt records in the middle of the log",
				"path", db.path, "records", res.corrupt)
		}
		if res.good < size {
			db.log.Warn("eventdb: truncating torn or corrupt end of log",
				"path", db.path, "offset", res.good, "bytes", size-res.good, "reason", res.reason)
			if err := f.Truncate(res.good); err != nil {
				f.Close()
				return fmt.Errorf("eventdb: truncate %s: %v", db.path, err)
			}
		}
		f.Close()
	}
	db.tab.shrinkIfSparse() // the log may have been mostly expired or junk
	db.size = res.good
	db.records = res.records + res.corrupt
	// A compaction that crashed leaves its temporary file; it is never read.
	// (Remove takes away a symbolic link itself, never its target.)
	if err := os.Remove(filepath.Join(db.dir, eventDBTmpName)); err == nil {
		db.log.Info("eventdb: removed leftover temporary file of an interrupted compaction", "dir", db.dir)
	}
	if err := db.openAppend(); err != nil {
		return err
	}
	db.log.Info("eventdb: opened", "path", db.path, "events", db.tab.n,
		"expired", expired, "bytes", db.size)
	return nil
}

// openAppend opens the log for appending, writing the magic into an empty one.
// Called with mu held, or before the db is shared.
func (db *eventDB) openAppend() error {
	f, err := openEventDBFile(db.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	var fe *eventDBFileError
	if errors.As(err, &fe) {
		return err
	}
	if err != nil {
		return fmt.Errorf("eventdb: open %s for append: %v", db.path, err)
	}
	if db.size == 0 {
		if _, err := f.Write([]byte(eventDBMagic)); err != nil {
			f.Truncate(0)
			f.Close()
			return fmt.Errorf("eventdb: write %s: %v", db.path, err)
		}
		db.size = int64(len(eventDBMagic))
	}
	db.f = f
	return nil
}

// eventLogScan is what scanEventLog found.
type eventLogScan struct {
	good    int64  // offset just past the last good record: keep [0, good)
	records int    // good records, whatever their kind
	corrupt int    // corrupt records skipped between good ones
	reason  string // why the scan stopped before the end, if it did
	foreign bool   // the input is not empty and does not begin as a log does
}

// scanEventLog reads a log of size bytes, calling fn with each good record's
// payload (valid only during the call). A bad magic stops it at offset 0
// (foreign when it is not a prefix of the magic, a torn header when it is). A
// record with a bad length or CRC stops it, unless its length is plausible and
// a good record follows, in which case it is skipped and counted as corrupt.
// It fails only on a read error.
func scanEventLog(r io.Reader, size int64, fn func(payload []byte)) (eventLogScan, error) {
	var res eventLogScan
	br := bufio.NewReaderSize(r, eventDBReadBuffer)
	head, err := br.Peek(len(eventDBMagic))
	if err != nil && err != io.EOF {
		return res, err
	}
	if string(head) != eventDBMagic {
		if len(head) < len(eventDBMagic) && eventDBMagic[:len(head)] == string(head) {
			res.reason = "torn header"
		} else {
			res.reason = "not an event log (bad magic)"
			res.foreign = true
		}
		if size == 0 {
			res.reason = ""
		}
		return res, nil
	}
	br.Discard(len(eventDBMagic))
	off := int64(len(eventDBMagic))
	res.good = off
	for {
		n, ok, err := peekRecord(br, 0)
		if err != nil {
			return res, err
		}
		if n == 0 && ok {
			return res, nil // clean end
		}
		if !ok {
			// Skip a damaged record only when its length is sane and a good
			// record follows it; otherwise this is the torn end.
			if n > 0 {
				if m, ok2, err := peekRecord(br, n); err != nil {
					return res, err
				} else if ok2 && m > 0 {
					br.Discard(n)
					off += int64(n)
					res.corrupt++
					continue
				}
			}
			res.reason = "torn or corrupt record"
			return res, nil
		}
		rec, _ := br.Peek(n)
		fn(rec[eventRecordHeaderLen:])
		br.Discard(n)
		off += int64(n)
		res.records++
		res.good = off
	}
}

// peekRecord looks at the record starting skip bytes ahead without consuming
// it. It returns the record's whole length and whether it is good. At a clean
// end of input it returns (0, true); for a record whose length field is out of
// range or runs past the end of input, (0, false); for one with a bad CRC,
// (length, false).
func peekRecord(br *bufio.Reader, skip int) (int, bool, error) {
	b, err := br.Peek(skip + eventRecordHeaderLen)
	if err != nil && err != io.EOF {
		return 0, false, err
	}
	if len(b) == skip {
		return 0, true, nil
	}
	if len(b) < skip+eventRecordHeaderLen {
		return 0, false, nil
	}
	plen := binary.BigEndian.Uint32(b[skip:])
	if plen == 0 || plen > maxEventRecordPayload {
		return 0, false, nil
	}
	n := eventRecordHeaderLen + int(plen)
	b, err = br.Peek(skip + n)
	if err != nil && err != io.EOF {
		return 0, false, err
	}
	if len(b) < skip+n {
		return 0, false, nil
	}
	rec := b[skip:]
	crc := crc32.Update(crc32.Update(0, castagnoli, rec[0:4]), castagnoli, rec[eventRecordHeaderLen:])
	if crc != binary.BigEndian.Uint32(rec[4:8]) {
		return n, false, nil
	}
	return n, true, nil
}

// encodeSeenRecord frames a "seen" record into b.
func encodeSeenRecord(b *[eventSeenRecordLen]byte, k *eventKey, t uint32) {
	binary.BigEndian.PutUint32(b[0:4], eventSeenPayloadLen)
	b[8] = eventRecordSeen
	copy(b[9:25], k[:])
	binary.BigEndian.PutUint64(b[25:33], uint64(t))
	crc := crc32.Update(crc32.Update(0, castagnoli, b[0:4]), castagnoli, b[8:])
	binary.BigEndian.PutUint32(b[4:8], crc)
}

// unixSeconds is t as the table's uint32 seconds (good until 2106).
func unixSeconds(t time.Time) uint32 { return clampSeconds(t.Unix()) }

func clampSeconds(s int64) uint32 {
	if s < 1 {
		return 1 // 0 marks an empty slot
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// isExpired reports whether an entry stored at t is forgotten at now; like
// Comet, an entry expires when the whole seconds since it was stored reach
// the expiry.
func (db *eventDB) isExpired(t, now uint32) bool {
	return int64(now)-int64(t) >= db.expirySec
}

// checkAndRecordKey decides whether the event with key k (eventKeyOf of
// its root element's bytes) is new, and if so remembers it. Of any number
// of concurrent calls with the same key exactly one reports new. A non-nil
// error means the record could not be written to the log: isNew is still
// right and the event is remembered in memory, but it will be forgotten at
// the next start.
func (db *eventDB) checkAndRecordKey(k eventKey) (bool, error) {
	now := unixSeconds(db.opts.now())
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return false, errEventDBClosed
	}
	i, found := db.tab.find(&k)
	if found {
		if !db.isExpired(db.tab.slots[i].t, now) {
			return false, nil
		}
		db.tab.slots[i].t = now // expired but not yet pruned: new again
	} else {
		db.tab.insertAt(i, k, now)
	}
	return true, db.appendLocked(&k, now)
}

// Group commit bounds.
const (
	eventDBBatchSpares = 4 // finished batches kept for reuse
)

// eventDBBatch is records queued to go out in one write call, and that
// write's outcome for their callers.
type eventDBBatch struct {
	cond sync.Cond // on mu: broadcast when done; signalled to hand the next write to a waiter
	buf  []byte    // the records, framed
	n    int       // records in buf
	refs int       // callers that have not yet taken the outcome
	done bool      // written (or failed): err is the outcome
	err  error
}

// appendLocked queues one record in the pending batch and returns once a
// write call carrying it has returned, with that write's outcome. With no
// write in progress the caller writes the batch itself at once; otherwise
// it waits, and when that write ends one waiter of the next batch is woken
// to write it. A writer writes one batch and hands over, so nobody waits
// for more than the write in progress and the one carrying its record,
// and only the callers of a written batch are woken (and one next
// writer). mu is released while waiting and writing.
func (db *eventDB) appendLocked(k *eventKey, t uint32) error {
	encodeSeenRecord(&db.buf, k, t)
	b := db.pend
	b.buf = append(b.buf, db.buf[:]...)
	b.n++
	b.refs++
	for !b.done {
		if db.writing || db.holding {
			b.cond.Wait()
			continue
		}
		// No write in progress, so b (not done) is the pending batch.
		db.writeBatchLocked()
	}
	err := b.err
	if b.refs--; b.refs == 0 {
		db.recycleLocked(b)
	}
	return err
}

// writeBatchLocked writes the pending batch with one write call, mu
// released during the call, and publishes the outcome to its waiters.
func (db *eventDB) writeBatchLocked() {
	b := db.pend
	db.pend = db.newBatchLocked()
	db.writing, db.inflight = true, b
	b.err = db.writeLocked(b)
	b.done = true
	db.writing, db.inflight = false, nil
	b.cond.Broadcast()
	db.idle.Broadcast()
	db.handOverLocked()
}

// handOverLocked wakes one caller of the pending batch to write it, when
// there is one and writes may start.
func (db *eventDB) handOverLocked() {
	if db.pend.n > 0 && !db.writing && !db.holding {
		db.pend.cond.Signal()
	}
}

// writeLocked writes b's records with a single write call. After a failed
// write it cuts the file back to its last whole record, now or before the
// next write, so that a full disk leaves no torn record in the middle: the
// whole batch fails, and size counts only whole records written.
func (db *eventDB) writeLocked(b *eventDBBatch) error {
	if db.f == nil {
		if err := db.openAppend(); err != nil {
			return err
		}
	}
	if db.torn {
		if err := db.f.Truncate(db.size); err != nil {
			return fmt.Errorf("eventdb: append to %s: repair after failed write: %v", db.path, err)
		}
		db.torn = false
	}
	// Compaction, the only other writer of f and size, waits while
	// writing is set.
	f, size := db.f, db.size
	db.mu.Unlock()
	n, err := f.Write(b.buf)
	db.mu.Lock()
	db.writes++
	if err != nil {
		if n > 0 {
			db.torn = f.Truncate(size) != nil
		}
		return fmt.Errorf("eventdb: append to %s: %v", db.path, err)
	}
	db.size += int64(n)
	db.written += int64(b.n)
	db.records += b.n
	db.unsynced += b.n
	if db.unsynced >= db.opts.syncEvery {
		select {
		case db.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// newBatchLocked returns an empty batch, reusing a finished one.
func (db *eventDB) newBatchLocked() *eventDBBatch {
	if b := popSpare(&db.spare); b != nil {
		return b
	}
	b := &eventDBBatch{}
	b.cond.L = &db.mu
	return b
}

// popSpare takes the last entry of a free list (the event DB's batches, the
// spool's waiters), nil when it is empty.
func popSpare[T any](list *[]*T) *T {
	n := len(*list)
	if n == 0 {
		return nil
	}
	x := (*list)[n-1]
	(*list)[n-1] = nil
	*list = (*list)[:n-1]
	return x
}

// recycleLocked keeps a batch whose every caller has its outcome.
func (db *eventDB) recycleLocked(b *eventDBBatch) {
	if len(db.spare) >= eventDBBatchSpares {
		return
	}
	b.buf, b.n, b.done, b.err = b.buf[:0], 0, false, nil
	db.spare = append(db.spare, b)
}

// writeCounts returns the records written to the log since open and the
// write calls that carried them.
func (db *eventDB) writeCounts() (records, writes int64) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.written, int64(db.writes)
}

// seenKey reports whether the event with key k is remembered, without
// recording it.
func (db *eventDB) seenKey(k eventKey) bool {
	now := unixSeconds(db.opts.now())
	db.mu.Lock()
	defer db.mu.Unlock()
	i, found := db.tab.find(&k)
	return found && !db.isExpired(db.tab.slots[i].t, now)
}

// len is the number of events remembered. Expired events count until the
// next prune removes them (at most pruneInterval later).
func (db *eventDB) len() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.tab.n
}

// sizeBytes is the size of the log file.
func (db *eventDB) sizeBytes() int64 {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.size
}

// sync flushes every record written so far to stable storage.
func (db *eventDB) sync() error {
	db.syncMu.Lock()
	defer db.syncMu.Unlock()
	return db.syncHeld()
}

// syncHeld is sync with syncMu held.
func (db *eventDB) syncHeld() error {
	db.mu.Lock()
	f, pending := db.f, db.unsynced
	db.unsynced = 0
	db.mu.Unlock()
	if f == nil || pending == 0 {
		return nil
	}
	if err := f.Sync(); err != nil {
		db.mu.Lock()
		db.unsynced += pending
		db.mu.Unlock()
		return fmt.Errorf("eventdb: fsync %s: %v", db.path, err)
	}
	return nil
}

// prune forgets every event older than the expiry and compacts the log when
// most of it is dead. It runs at open (during replay) and every pruneInterval.
func (db *eventDB) prune() (expired int, err error) {
	now := unixSeconds(db.opts.now())
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return 0, errEventDBClosed
	}
	expired = db.tab.deleteIf(func(t uint32) bool { return db.isExpired(t, now) })
	db.tab.shrinkIfSparse()
	compact := db.shouldCompactLocked()
	n := db.tab.n
	db.mu.Unlock()
	if expired > 0 {
		db.log.Info("eventdb: expired events forgotten", "expired", expired, "remaining", n)
	}
	if compact {
		err = db.compact()
	}
	return expired, err
}

// shouldCompactLocked reports whether over half of a log above the minimum
// size is dead (expired, superseded or corrupt records).
func (db *eventDB) shouldCompactLocked() bool {
	dead := db.records - db.tab.n
	return db.size >= db.opts.compactMinBytes && dead > 0 && 2*dead > db.records
}

// compact rewrites the log with only the remembered events. The bulk of the
// work runs without the lock; records appended meanwhile are copied over at
// the end, under the lock, just before the atomic rename.
func (db *eventDB) compact() error {
	db.mu.Lock()
	if db.compacting || db.closed {
		db.mu.Unlock()
		return nil
	}
	db.compacting = true
	now := unixSeconds(db.opts.now())
	// A key whose record is queued or being written is in the table but
	// not below markSize: its record lands in the tail copied below or in
	// the new file, so it is left out here (else it would be there twice).
	var queued map[eventKey]bool
	for _, b := range []*eventDBBatch{db.inflight, db.pend} {
		if b == nil {
			continue
		}
		for off := 0; off+eventSeenRecordLen <= len(b.buf); off += eventSeenRecordLen {
			if queued == nil {
				queued = make(map[eventKey]bool)
			}
			queued[eventKey(b.buf[off+9:off+25])] = true
		}
	}
	live := make([]keySlot, 0, db.tab.n)
	for _, s := range db.tab.slots {
		if s.t != 0 && !db.isExpired(s.t, now) && !queued[s.key] {
			live = append(live, s)
		}
	}
	markSize, markRecords := db.size, db.records
	db.mu.Unlock()
	defer func() {
		db.mu.Lock()
		db.compacting = false
		db.mu.Unlock()
	}()

	start := time.Now()
	tmp := filepath.Join(db.dir, eventDBTmpName)
	// A new file, never an existing one: whatever holds the name (a
	// symbolic link planted there, a leftover) is removed first, and
	// O_EXCL refuses anything that reappears.
	os.Remove(tmp)
	tf, err := openEventDBFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("eventdb: compact: %v", err)
	}
	fail := func(err error) error {
		tf.Close()
		os.Remove(tmp)
		return fmt.Errorf("eventdb: compact %s: %v", db.path, err)
	}
	w := bufio.NewWriterSize(tf, 64<<10)
	w.WriteString(eventDBMagic)
	var rec [eventSeenRecordLen]byte
	for i := range live {
		encodeSeenRecord(&rec, &live[i].key, live[i].t)
		w.Write(rec[:])
	}
	if err := w.Flush(); err != nil {
		return fail(err)
	}
	if err := tf.Sync(); err != nil {
		return fail(err)
	}
	liveCount := len(live)
	newSize := int64(len(eventDBMagic)) + int64(liveCount)*eventSeenRecordLen
	live = nil

	db.syncMu.Lock()
	defer db.syncMu.Unlock()
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		tf.Close()
		os.Remove(tmp)
		return nil
	}
	// Let the batch write in progress (on the old file) end and start no
	// other until the new file is in place; batches queued meanwhile go to
	// the new file.
	db.holding = true
	defer func() {
		db.holding = false
		db.handOverLocked()
	}()
	for db.writing {
		db.idle.Wait()
	}
	// Copy what was appended since the snapshot.
	if tail := db.size - markSize; tail > 0 {
		src, err := openEventDBFile(db.path, os.O_RDONLY, 0)
		if err != nil {
			return fail(err)
		}
		_, err = io.Copy(tf, io.NewSectionReader(src, markSize, tail))
		src.Close()
		if err != nil {
			return fail(err)
		}
		newSize += tail
		if err := tf.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := tf.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("eventdb: compact %s: %v", db.path, err)
	}
	// Close before renaming: Windows cannot rename over an open file.
	if db.f != nil {
		db.f.Close()
		db.f = nil
	}
	oldSize := db.size
	if err := os.Rename(tmp, db.path); err != nil {
		os.Remove(tmp)
		rerr := db.openAppend()
		return errors.Join(fmt.Errorf("eventdb: compact %s: %v", db.path, err), rerr)
	}
	if err := syncDir(db.dir); err != nil {
		db.log.Warn("eventdb: fsync of directory after compaction failed", "dir", db.dir, "err", err)
	}
	db.size = newSize
	db.records = liveCount + db.records - markRecords
	db.unsynced = 0
	db.torn = false
	db.log.Info("eventdb: compacted log", "path", db.path, "from_bytes", oldSize,
		"to_bytes", newSize, "events", db.tab.n, "took", time.Since(start).Round(time.Millisecond))
	return db.openAppend()
}

// syncLoop fsyncs the log about once a second, or sooner when syncEvery
// records are waiting, until close.
func (db *eventDB) syncLoop() {
	defer db.wg.Done()
	t := time.NewTicker(db.opts.syncInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
		case <-db.kick:
		}
		err := db.sync()
		switch {
		case err != nil && !db.syncFails:
			db.log.Error("eventdb: background fsync failed", "err", err)
		case err == nil && db.syncFails:
			db.log.Info("eventdb: background fsync works again", "path", db.path)
		}
		db.syncFails = err != nil
	}
}

// pruneLoop prunes every pruneInterval until close.
func (db *eventDB) pruneLoop() {
	defer db.wg.Done()
	t := time.NewTicker(db.opts.pruneInterval)
	defer t.Stop()
	for {
		select {
		case <-db.stop:
			return
		case <-t.C:
			if _, err := db.prune(); err != nil && !errors.Is(err, errEventDBClosed) {
				db.log.Error("eventdb: prune failed", "err", err)
			}
		}
	}
}

// close stops the background goroutines, syncs and closes the log and
// releases the directory lock. Calling it again does nothing.
func (db *eventDB) close() error {
	db.mu.Lock()
	if db.closed {
		db.mu.Unlock()
		return nil
	}
	db.closed = true
	// Records already queued were promised a write: let them go out.
	for db.writing || db.pend.n > 0 {
		db.idle.Wait()
	}
	db.mu.Unlock()
	close(db.stop)
	db.wg.Wait()

	db.syncMu.Lock()
	defer db.syncMu.Unlock()
	err := db.syncHeld()
	db.mu.Lock()
	if db.f != nil {
		if cerr := db.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("eventdb: close %s: %v", db.path, cerr)
		}
		db.f = nil
	}
	db.mu.Unlock()
	if uerr := unlockEventDBDir(db.lock); uerr != nil && err == nil {
		err = uerr
	}
	return err
}

// unlockEventDBDir releases the lock taken by lockEventDBDir.
func unlockEventDBDir(f *os.File) error {
	if err := unlockFile(f); err != nil {
		return fmt.Errorf("eventdb: release lock %s: %v", f.Name(), err)
	}
	return nil
}

// keySlot is one table slot: 20 bytes. t == 0 marks an empty slot.
type keySlot struct {
	key eventKey
	t   uint32
}

// keyTable is an open-addressing hash table with linear probing and
// backward-shift deletion (no tombstones). Its size need not be a power of
// two: a slot index is the high word of hash times size. It grows by half
// when more than 4/5 full, so it is between 53% and 80% full once past its
// minimum size.
type keyTable struct {
	slots []keySlot
	n     int
	seed  uint64 // per process, so nobody can aim keys at one cluster
}

// init empties the table, sized for about hint entries.
func (kt *keyTable) init(hint int) {
	c := hint*3/2 + 1
	if c < eventDBMinTableSlots {
		c = eventDBMinTableSlots
	}
	kt.slots = make([]keySlot, c)
	kt.n = 0
}

func (kt *keyTable) home(k *eventKey) int {
	x := (binary.LittleEndian.Uint64(k[:8]) ^ kt.seed) * 0x9e3779b97f4a7c15
	hi, _ := bits.Mul64(x, uint64(len(kt.slots)))
	return int(hi)
}

// find returns the slot holding k, or the empty slot where k would go.
func (kt *keyTable) find(k *eventKey) (int, bool) {
	c := len(kt.slots)
	i := kt.home(k)
	for {
		s := &kt.slots[i]
		if s.t == 0 {
			return i, false
		}
		if s.key == *k {
			return i, true
		}
		if i++; i == c {
			i = 0
		}
	}
}

// insertAt fills the empty slot i found by find, growing the table if needed.
func (kt *keyTable) insertAt(i int, k eventKey, t uint32) {
	kt.slots[i] = keySlot{key: k, t: t}
	kt.n++
	if kt.n*eventDBMaxLoadDen > len(kt.slots)*eventDBMaxLoadNum {
		kt.resize(len(kt.slots) + len(kt.slots)/2)
	}
}

func (kt *keyTable) resize(c int) {
	old := kt.slots
	kt.slots = make([]keySlot, c)
	for _, s := range old {
		if s.t != 0 {
			i, _ := kt.find(&s.key)
			kt.slots[i] = s
		}
	}
}

// shrinkIfSparse halves a table that is less than a fifth full.
func (kt *keyTable) shrinkIfSparse() {
	c := len(kt.slots)
	if c > eventDBMinTableSlots && kt.n*5 < c {
		kt.resize(max(eventDBMinTableSlots, kt.n*3/2+1))
	}
}

// deleteIf removes every entry whose time matches and returns how many. It
// deletes in place: after a backward shift, slot i holds an entry not yet
// examined (or an already kept one), so i is examined again.
func (kt *keyTable) deleteIf(drop func(t uint32) bool) int {
	removed := 0
	for i := 0; i < len(kt.slots); {
		if t := kt.slots[i].t; t != 0 && drop(t) {
			kt.deleteAt(i)
			removed++
			continue
		}
		i++
	}
	return removed
}

// deleteAt empties slot i and shifts later members of its cluster back so
// that every entry stays reachable from its home slot.
func (kt *keyTable) deleteAt(i int) {
	c := len(kt.slots)
	j := i
	for {
		if j++; j == c {
			j = 0
		}
		if kt.slots[j].t == 0 {
			break
		}
		h := kt.home(&kt.slots[j].key)
		// The entry at j may fill the hole at i unless its home lies in the
		// cyclic range (i, j].
		if i <= j {
			if i < h && h <= j {
				continue
			}
		} else if i < h || h <= j {
			continue
		}
		kt.slots[i] = kt.slots[j]
		i = j
	}
	kt.slots[i] = keySlot{}
	kt.n--
}

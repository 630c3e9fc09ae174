// handler_save.go is the --save-event plugin: it writes each new event's
// original bytes to a file in --save-event-directory named from its ivorn
// as Comet names it (comet-behaviour §7.3).
//
// Invariants: a file appears complete or not at all (the bytes go to a
// temporary file in the same directory, which is then hard-linked, or
// renamed, to its final name); an existing file is never overwritten: a
// different event with the same name goes to name_, name__, ...; an event
// whose identical bytes are already saved under one of those names is not
// written again; no name is longer than saveNameMax bytes (a longer one is
// cut and ends in a hash of the whole, see saveCandidateName).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

func init() { registerHandlerPlugin(func() handlerPlugin { return &savePlugin{} }) }

// maxSaveCandidates bounds the name, name_, name__ ... search.
const maxSaveCandidates = 1000

// Name length limits: NAME_MAX, the longest file name most file systems
// (ext4, XFS, btrfs, APFS; NTFS counts 255 UTF-16 units) accept, and the
// hash that ends a name cut to fit: "_" and 16 hex digits (64 bits) of the
// SHA-256 of the whole name.
const (
	saveNameMax    = 255
	saveHashDigits = 16
)

// savePlugin provides the save-event handler.
type savePlugin struct {
	enabled bool
	dir     string
}

func (p *savePlugin) pluginName() string { return "save-event" }

func (p *savePlugin) addFlags(fs *flag.FlagSet) {
	fs.BoolVar(&p.enabled, "save-event", false, "write each new event to a file named from its IVOID")
	fs.StringVar(&p.dir, "save-event-directory", "", "`DIR` for --save-event (default: the current directory at start-up; created if missing)")
}

func (p *savePlugin) handlers(log *slog.Logger) ([]handler, error) {
	if !p.enabled {
		return nil, nil
	}
	dir := p.dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("save-event-directory: %v", err)
		}
		dir = wd
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("save-event-directory %s: %v", dir, err)
	}
	return []handler{&saveHandler{dir: abs, log: log}}, nil
}

// saveFileName derives a file name from an ivorn as Comet does: drop one
// leading '.', turn every '/' and '\' into '_', then delete every character
// not in [0-9A-Za-z_.].
func saveFileName(ivorn string) string {
	s := strings.TrimPrefix(ivorn, ".")
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '/' || c == '\\':
			b.WriteByte('_')
		case c >= '0' && c <= '9', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c == '_', c == '.':
			b.WriteByte(c)
		}
	}
	return b.String()
}

// saveCandidateName is the file name of the i-th candidate for base: base
// followed by i underscores, as Comet names it, when that fits in
// saveNameMax bytes; otherwise its first bytes, cut at a UTF-8 boundary,
// then "_" and a hash of the whole candidate, so that names that differ
// only past the cut stay distinct. The result uses only the characters of
// Comet's rule ([0-9A-Za-z_.]) when base does.
func saveCandidateName(base string, i int) string {
	full := base + strings.Repeat("_", i)
	if len(full) <= saveNameMax {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	keep := saveNameMax - 1 - saveHashDigits
	for keep > 0 && !utf8.RuneStart(full[keep]) {
		keep--
	}
	return full[:keep] + "_" + hex.EncodeToString(sum[:saveHashDigits/2])
}

// Errors of the save handler.
var (
	errSaveName = errors.New("ivorn gives no usable file name")
	errSaveFull = errors.New("too many files with this name")
)

// saveHandler writes events into dir.
type saveHandler struct {
	dir string
	log *slog.Logger
}

func (h *saveHandler) name() string { return "save-event" }

func (h *saveHandler) handle(_ context.Context, ev *event) error {
	base := saveFileName(ev.ivorn)
	if base == "" || base == "." || base == ".." {
		return fmt.Errorf("save %q: %w", ev.ivorn, errSaveName)
	}
	path, written, err := saveBytes(h.dir, base, ev.raw)
	if err != nil {
		return fmt.Errorf("save %s: %v", base, err)
	}
	if written {
		h.log.Debug("event saved", "ivorn", ev.ivorn, "file", path)
	} else {
		h.log.Debug("event already saved", "ivorn", ev.ivorn, "file", path)
	}
	return nil
}

// saveBytes stores raw in dir under base, base_, base__, ... (the first name
// that is free or already holds exactly raw). It returns the path and
// whether it wrote a new file.
func saveBytes(dir, base string, raw []byte) (string, bool, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", false, err
	}
	tmp, err := os.CreateTemp(dir, ".comet-save-*")
	if err != nil {
		return "", false, err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a link, or if anything fails
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return "", false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", false, err
	}
	if err := tmp.Close(); err != nil {
		return "", false, err
	}
	if err := os.Chmod(tmpName, 0o644); err != nil {
		return "", false, err
	}
	for i := range maxSaveCandidates {
		path := filepath.Join(dir, saveCandidateName(base, i))
		placed, err := placeFile(tmpName, path)
		if err != nil {
			return "", false, err
		}
		if placed {
			return path, true, nil
		}
		same, err := sameContent(path, raw)
		if err != nil {
			return "", false, err
		}
		if same {
			return path, false, nil
		}
	}
	return "", false, errSaveFull
}

// linkFile makes a hard link (a variable so tests can take links away).
var linkFile = os.Link

// placeFile gives the complete file tmp the name path unless path exists,
// without ever replacing an existing file. It reports whether it did.
func placeFile(tmp, path string) (bool, error) {
	err := linkFile(tmp, path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	// No hard links here (some file systems): reserve the name, then
	// rename the complete file over the empty reservation.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	f.Close()
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(path)
		return false, err
	}
	return true, nil
}

// sameContent reports whether the file at path holds exactly raw.
func sameContent(path string, raw []byte) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() || fi.Size() != int64(len(raw)) {
		return false, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	return bytes.Equal(b, raw), nil
}

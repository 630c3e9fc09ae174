// atomicfile.go owns replacing a small state file atomically (the Kafka
// offsets, the spool's position files): a new temporary file beside it,
// written and fsynced, renamed over the old one, then the directory fsynced,
// so a crash leaves either the old file or the new one, never a mix.
//
// Invariant: the temporary file is created exclusively and without
// following links, so a link planted under its name is never followed.
package main

import (
	"os"
	"path/filepath"
)

// writeFileAtomic replaces path with data (mode 0600).
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|oNoFollow, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

//go:build !windows

package main

import "os"

// syncDir fsyncs a directory, making a rename in it durable. (Windows has
// no directory fsync; see eventdb_lock_windows.go.)
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// makePrivateDir makes dir, mode 0700, for the request bodies a dry run
// writes: masked, but still customers' names, addresses and card tails.
// A directory that already exists is taken only if it is ours and 0700,
// since files written into one others can read, or that another user
// controls (and can fill with symlinks), would leak them.
func makePrivateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		return os.Chmod(dir, 0o700) // the umask may only have removed bits, but be exact
	}
	if !errors.Is(err, fs.ErrExist) {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s exists and is not a directory (a symlink is not followed): give a new path", dir)
	}
	if uid, ok := ownerOf(st); ok && uid != os.Geteuid() {
		return fmt.Errorf("%s exists and belongs to uid %d, not to this user: give a new path (etl creates it with mode 0700)", dir, uid)
	}
	if perm := st.Mode().Perm(); perm != 0o700 || st.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky) != 0 {
		return fmt.Errorf("%s exists with mode %04o, not 0700: give a new path (etl creates it with mode 0700) or chmod 700 it", dir, st.Mode().Perm())
	}
	return nil
}

//go:build unix

package runlock

import (
	"errors"
	"syscall"
)

// processAlive reports whether pid names a process on this host. Only a
// definite "no such process" counts as dead: a process of another user
// (EPERM) is alive.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

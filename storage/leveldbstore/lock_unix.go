//go:build unix

package leveldbstore

import (
	"errors"
	"syscall"
)

// isLockHeld reports whether err is goleveldb failing to flock a LOCK file
// that another open file holds (flock with LOCK_NB fails with EWOULDBLOCK).
func isLockHeld(err error) bool {
	return errors.Is(err, syscall.EWOULDBLOCK) || errors.Is(err, syscall.EAGAIN)
}

//go:build windows

package leveldbstore

import (
	"errors"
	"syscall"
)

// isLockHeld reports whether err is goleveldb failing to open its LOCK file
// exclusively because another handle has it open (ERROR_SHARING_VIOLATION,
// 32, or ERROR_LOCK_VIOLATION, 33).
func isLockHeld(err error) bool {
	return errors.Is(err, syscall.Errno(32)) || errors.Is(err, syscall.Errno(33))
}

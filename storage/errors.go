package storage

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrUnknownBackend: Registry.Open was given a name no backend is
	// registered under. The error lists the known names.
	ErrUnknownBackend = errors.New("storage: unknown backend")
	// ErrUnknownOption: Registry.CheckOptions was given an option
	// (--storage:<key>) that the selected backend does not declare. The
	// error names the key, a close known one if any, and the known keys.
	ErrUnknownOption = errors.New("storage: unknown option")
	// ErrDuplicateBackend: Registry.Register was given a name or alias that
	// is already taken.
	ErrDuplicateBackend = errors.New("storage: duplicate backend")
	// ErrLocked: the data directory is already open, in this process or in
	// another one. Two nodes must never share one directory. Backends return
	// it wrapped in a *LockedError.
	ErrLocked = errors.New("storage: data directory is in use by another process")
	// ErrWrite: a backend tried to change stable storage and could not (a
	// journal write or fsync failed, the disk is full or gone). The change
	// may or may not have reached the disk, and the backend refuses every
	// later write, each failing with an error matching ErrWrite, until it is
	// closed and opened again: after a failed fsync the kernel may have
	// dropped the dirty pages, so a retry that "succeeds" proves nothing,
	// and appending after a torn journal record can lose later writes at
	// recovery. The node branches on it to fail-stop (stop taking commands
	// and close) instead of acknowledging writes it cannot keep.
	//
	// Errors that mean nothing was attempted do not match it: a done
	// context, skyring.ErrClosed, an invalid argument.
	ErrWrite = errors.New("storage: write failed")
	// ErrConflict: a conditional write (Versioned.PutIf, Versioned.DeleteIf)
	// found the record changed since the version it expected: another
	// writer got there first. Nothing was written. The caller reads the
	// record again (Versioned.GetVersion) and decides anew.
	ErrConflict = errors.New("storage: conflict")
)

// LockedError reports that a backend could not take the lock on its data
// directory because another store holds it. It matches ErrLocked and the
// underlying cause with errors.Is.
type LockedError struct {
	Path string // the data directory
	Err  error  // the cause (e.g. EWOULDBLOCK from flock); may be nil
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("storage: data directory %s is in use by another process", e.Path)
}

// Unwrap returns ErrLocked and the cause.
func (e *LockedError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrLocked}
	}
	return []error{ErrLocked, e.Err}
}

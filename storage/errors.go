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
	// ErrDuplicateBackend: Registry.Register was given a name or alias that
	// is already taken.
	ErrDuplicateBackend = errors.New("storage: duplicate backend")
	// ErrLocked: the data directory is already open, in this process or in
	// another one. Two nodes must never share one directory. Backends return
	// it wrapped in a *LockedError.
	ErrLocked = errors.New("storage: data directory is in use by another process")
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

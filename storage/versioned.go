package storage

import (
	"context"

	"github.com/skyring/skyring"
)

// Versioned is implemented by stores that several nodes share (jsstore):
// conditional writes, so that of two nodes that both believe they own a
// timer, only one claims it (writes its record) and fires it.
//
// A version is opaque to callers except that 0 means "no record": as an
// expected version it says "expect that none is stored" (never stored, or
// deleted). Versions of one record change with every write to it.
type Versioned interface {
	// GetVersion returns the stored timer and its version, or an error
	// matching skyring.ErrTimerNotFound (version 0) or skyring.ErrCorrupt,
	// like Store.Get. With ErrCorrupt the version is that of the record
	// that does not decode (0 if it was moved aside), so that a caller may
	// replace or delete it conditionally.
	GetVersion(ctx context.Context, id string) (*skyring.Timer, uint64, error)
	// PutIf stores t only if the version of the record under t.ID is still
	// expect (0: only if none is stored), and returns the new version. A
	// changed record gives an error matching ErrConflict, and nothing was
	// written. Other errors are as for Store.Put.
	PutIf(ctx context.Context, t *skyring.Timer, expect uint64) (uint64, error)
	// DeleteIf removes id only if its version is still expect; a changed
	// record gives an error matching ErrConflict, and nothing was written.
	// Other errors are as for Store.Delete.
	DeleteIf(ctx context.Context, id string, expect uint64) error
}

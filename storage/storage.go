// Package storage defines where a Skyring node keeps the timers it owns: the
// Store interface, the registry of named backends, and the options every
// backend is opened with. Implementations live in subpackages: leveldbstore
// (goleveldb files, the durable default) and memstore (in memory, for tests
// and throw-away nodes). storagetest holds the conformance suite every
// backend, built in or custom, must pass.
//
// The node is the only caller. A Store does not arm, fire or relay timers; it
// only keeps them so that a restart or a crash loses none.
//
// This package's Go API is for embedders who write a custom backend; the
// rest of the node's internals are not.
package storage

import (
	"context"
	"log/slog"

	"github.com/skyring/skyring"
)

// Store keeps timers by id. It must be safe for concurrent use.
//
// Durability: when Put or Delete returns nil, the change is on stable
// storage (fsynced), unless the store was opened with Options.NoSync, which
// trades that guarantee for speed. Implementations are expected to merge
// concurrent writers into group commits so that durability costs latency but
// not throughput.
//
// Write failures: an error from Put, Delete or SetMeta that matches ErrWrite
// means the backend tried to write and failed. The change may or may not be
// on disk, and the store refuses every later write (fail-stop) until it is
// reopened; reads go on answering from what was acknowledged. Any other
// error means nothing was written.
//
// Corrupt records: a backend that can hold a record it cannot decode (a
// bit flip, a bug in an older version) must not let it stop recovery. Iterate
// moves such a record aside (kept, not deleted, where Iterate no longer sees
// it), logs it to Options.Logger, reports it to Options.OnCorrupt and goes
// on. Get of that id returns an error matching skyring.ErrCorrupt, not
// skyring.ErrTimerNotFound, as long as no new timer is stored under it: the
// store cannot tell whether that timer was still pending.
type Store interface {
	// Put stores the timers, replacing any with the same id, atomically.
	Put(ctx context.Context, timers ...*skyring.Timer) error
	// Delete removes the timers with these ids, atomically; a missing id is
	// not an error. Records moved aside as corrupt are kept.
	Delete(ctx context.Context, ids ...string) error
	// Get returns the stored timer, or an error matching
	// skyring.ErrTimerNotFound (nothing stored under id) or
	// skyring.ErrCorrupt (a record is stored under id, or was moved aside,
	// but cannot be decoded).
	Get(ctx context.Context, id string) (*skyring.Timer, error)
	// Iterate calls fn once for each stored timer, in no set order, and stops
	// at the first error fn returns (returning it). fn must not call the
	// store. Records that cannot be decoded are skipped and moved aside (see
	// above); only a failure to move one (matching ErrWrite) stops the scan.
	Iterate(ctx context.Context, fn func(*skyring.Timer) error) error
	// List calls fn for each stored timer whose id sorts after after (every
	// timer when after is ""), in ascending byte order of id, and stops at
	// the first error fn returns (returning it). It pages through a store
	// for the listing APIs and the sweep of finished timers: a caller that
	// stops early resumes with the last id it saw. It reads what was stored
	// when it began or later; fn must not call the store. A record that
	// cannot be decoded is skipped (Iterate is what moves such records
	// aside).
	List(ctx context.Context, after string, fn func(*skyring.Timer) error) error
	// Meta and SetMeta keep small node-level values (e.g. the node's stable
	// identity) in the same place as its timers. Meta returns nil, nil for a
	// key never set.
	Meta(ctx context.Context, key string) ([]byte, error)
	SetMeta(ctx context.Context, key string, value []byte) error
	// Close releases the store. It is idempotent.
	Close() error
}

// Options are what a backend is opened with.
type Options struct {
	// Path is the backend's location (a directory for leveldbstore).
	Path string
	// NoSync turns off the fsync before a write returns: faster, but a power
	// loss may take writes that were acknowledged. Off by default.
	NoSync bool
	// Extra holds the --storage:<name>=<value> options that are not Path or
	// NoSync, for custom backends; repeatable options keep every value.
	Extra map[string][]string

	// Logger receives what the backend has to report: a record moved aside
	// as corrupt, a database rebuilt at open. Nil means slog.Default(). The
	// node sets it; it is not a flag.
	Logger *slog.Logger
	// OnCorrupt, if set, is called once for each record Iterate moves aside
	// because it cannot be decoded, after the move is durable, with the
	// timer id and the decoding error (matching skyring.ErrCorrupt). It lets
	// the node count lost timers (a metric, an event) beyond the log line.
	// It runs on Iterate's goroutine, while Iterate holds the store, so it
	// must be quick and must not call the store. The node sets it; it is
	// not a flag.
	OnCorrupt func(id string, err error)
}

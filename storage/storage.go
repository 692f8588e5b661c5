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

	"github.com/skyring/skyring"
)

// Store keeps timers by id. It must be safe for concurrent use.
//
// Durability: when Put or Delete returns nil, the change is on stable
// storage (fsynced), unless the store was opened with Options.NoSync, which
// trades that guarantee for speed. Implementations are expected to merge
// concurrent writers into group commits so that durability costs latency but
// not throughput.
type Store interface {
	// Put stores the timers, replacing any with the same id, atomically.
	Put(ctx context.Context, timers ...*skyring.Timer) error
	// Delete removes the timers with these ids, atomically; a missing id is
	// not an error.
	Delete(ctx context.Context, ids ...string) error
	// Get returns the stored timer, or an error matching
	// skyring.ErrTimerNotFound.
	Get(ctx context.Context, id string) (*skyring.Timer, error)
	// Iterate calls fn once for each stored timer, in no set order, and stops
	// at the first error fn returns (returning it). fn must not call the
	// store.
	Iterate(ctx context.Context, fn func(*skyring.Timer) error) error
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
}

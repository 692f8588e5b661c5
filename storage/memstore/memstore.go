// Package memstore is an in-memory storage.Store: a map behind a RWMutex.
// Nothing survives the process, so it suits tests and throw-away nodes
// (--storage:backend=memory); a node that must not lose timers uses
// leveldbstore.
//
// The store keeps its own copies: changing a Timer after Put, or one that
// Get or Iterate returned, never changes what is stored.
//
// It keeps decoded timers, not encodings, and writes nothing to a disk, so
// the two faults the storage.Store contract plans for cannot happen here:
// it never holds a record it cannot decode (Iterate has nothing to move
// aside, storage.Options.OnCorrupt is never called) and no write fails with
// storage.ErrWrite. To test how code copes with those, wrap it in
// storagetest.Flaky.
//
// Like the storage package, its Go API is internal to the node and may
// change.
package memstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// Store is an in-memory storage.Store. Create it with New.
type Store struct {
	mu     sync.RWMutex
	timers map[string]*skyring.Timer // private copies, never mutated once stored
	meta   map[string][]byte
	closed bool
}

var _ storage.Store = (*Store)(nil)

// New returns an empty store.
func New() *Store {
	return &Store{
		timers: make(map[string]*skyring.Timer),
		meta:   make(map[string][]byte),
	}
}

// OpenStore is New as a storage.Opener, for the "memory" backend; it ignores
// opts.
func OpenStore(storage.Options) (storage.Store, error) { return New(), nil }

// clone copies t deeply enough that no memory is shared with it: strings are
// immutable, Data is not.
func clone(t *skyring.Timer) *skyring.Timer {
	c := *t
	if t.Data != nil {
		c.Data = bytes.Clone(t.Data)
	}
	return &c
}

func errClosed(op string) error { return fmt.Errorf("memstore: %s: %w", op, skyring.ErrClosed) }

// Put stores copies of the timers, replacing any with the same id,
// atomically.
func (s *Store) Put(ctx context.Context, timers ...*skyring.Timer) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: put: %w", err)
	}
	copies := make([]*skyring.Timer, len(timers))
	for i, t := range timers {
		if t == nil {
			return errors.New("memstore: put: nil timer")
		}
		copies[i] = clone(t)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("put")
	}
	for _, t := range copies {
		s.timers[t.ID] = t
	}
	return nil
}

// Delete removes the timers with these ids, atomically; a missing id is not
// an error.
func (s *Store) Delete(ctx context.Context, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("delete")
	}
	for _, id := range ids {
		delete(s.timers, id)
	}
	return nil
}

// Get returns a copy of the stored timer, or an error matching
// skyring.ErrTimerNotFound.
func (s *Store) Get(ctx context.Context, id string) (*skyring.Timer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: get: %w", err)
	}
	s.mu.RLock()
	t, ok := s.timers[id]
	closed := s.closed
	s.mu.RUnlock()
	switch {
	case closed:
		return nil, errClosed("get")
	case !ok:
		return nil, fmt.Errorf("memstore: get %q: %w", id, skyring.ErrTimerNotFound)
	}
	return clone(t), nil
}

// Iterate calls fn with a copy of each timer stored when Iterate began, in
// no set order. It stops at the first error fn returns, or when ctx is done,
// and returns that error. The snapshot costs one pointer per timer; the
// copies are made one at a time, as fn is called.
func (s *Store) Iterate(ctx context.Context, fn func(*skyring.Timer) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: iterate: %w", err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed("iterate")
	}
	snap := make([]*skyring.Timer, 0, len(s.timers))
	for _, t := range s.timers {
		snap = append(snap, t)
	}
	s.mu.RUnlock()

	for i, t := range snap {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("memstore: iterate: %w", err)
			}
		}
		snap[i] = nil // let the GC take timers deleted meanwhile
		if err := fn(clone(t)); err != nil {
			return err
		}
	}
	return nil
}

// List calls fn with a copy of each timer stored when List began whose id
// sorts after after, in ascending id order. It stops at the first error fn
// returns, or when ctx is done, and returns that error. Each call sorts the
// ids it lists: fine for tests and throw-away nodes, not for a million
// timers listed page by page.
func (s *Store) List(ctx context.Context, after string, fn func(*skyring.Timer) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: list: %w", err)
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed("list")
	}
	snap := make([]*skyring.Timer, 0, len(s.timers))
	for id, t := range s.timers {
		if id > after {
			snap = append(snap, t)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(snap, func(a, b *skyring.Timer) int { return strings.Compare(a.ID, b.ID) })
	for i, t := range snap {
		if i%1024 == 1023 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("memstore: list: %w", err)
			}
		}
		snap[i] = nil
		if err := fn(clone(t)); err != nil {
			return err
		}
	}
	return nil
}

// Meta returns a copy of the value stored under key, or nil, nil if the key
// was never set. A key set to an empty value returns an empty, non-nil
// slice.
func (s *Store) Meta(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memstore: meta: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed("meta")
	}
	v, ok := s.meta[key]
	if !ok {
		return nil, nil
	}
	return append([]byte{}, v...), nil
}

// SetMeta stores a copy of value under key.
func (s *Store) SetMeta(ctx context.Context, key string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: set meta: %w", err)
	}
	v := append([]byte{}, value...)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("set meta")
	}
	s.meta[key] = v
	return nil
}

// Len returns the number of stored timers (0 once closed).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.timers)
}

// Close drops the stored data; later calls return an error matching
// skyring.ErrClosed. It is idempotent and always returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.timers, s.meta = nil, nil
	return nil
}

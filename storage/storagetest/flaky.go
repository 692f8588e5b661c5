package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// ErrInjected is what a FlakyStore's calls fail with when no error was
// given: reads fail with ErrInjected itself, writes with an error matching
// both ErrInjected and storage.ErrWrite, as a real disk failure would.
var ErrInjected = errors.New("storagetest: injected storage failure")

// errInjectedWrite is the default write failure.
var errInjectedWrite = fmt.Errorf("%w: %w", storage.ErrWrite, ErrInjected)

// FlakyStore wraps a real Store and makes it fail or slow down on demand,
// the way asynq's testbroker wraps a real broker: the code under test (the
// node) runs against a working store and the test breaks it at the moment
// it chooses, to prove for example that a write the store refused is never
// acknowledged. It is safe for concurrent use; a change (FailWrites,
// Recover, ...) applies to calls that start after it.
//
// While writes fail, Put, Delete and SetMeta return the injected error
// without writing anything. While reads fail, Get, Iterate, List and Meta return
// it without reading. Close always passes through. The wrapper does not
// latch: after Recover, writes reach the store again, which models a
// transient fault; to model a backend that fails stop (storage.ErrWrite),
// do not call Recover.
type FlakyStore struct {
	storage.Store

	mu       sync.Mutex
	writeErr error
	readErr  error
	slow     time.Duration
	failed   int
}

var _ storage.Store = (*FlakyStore)(nil)

// Flaky wraps s. It starts healthy.
func Flaky(s storage.Store) *FlakyStore { return &FlakyStore{Store: s} }

// FailWrites makes every following Put, Delete and SetMeta return err, as
// is, until Recover. With a nil err they return an error matching
// ErrInjected and storage.ErrWrite.
func (f *FlakyStore) FailWrites(err error) {
	if err == nil {
		err = errInjectedWrite
	}
	f.mu.Lock()
	f.writeErr = err
	f.mu.Unlock()
}

// Fail is FailWrites: the short name for the common case.
func (f *FlakyStore) Fail(err error) { f.FailWrites(err) }

// FailReads makes every following Get, Iterate, List and Meta return err (nil:
// ErrInjected) until Recover.
func (f *FlakyStore) FailReads(err error) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	f.readErr = err
	f.mu.Unlock()
}

// SlowWrites makes every following Put, Delete and SetMeta wait d before it
// goes on (to fail or to write), like a disk that takes d to fsync; 0 turns
// it off. A wait ends early, with nothing written, if the call's ctx is
// done, as a backend that checks ctx before writing would.
func (f *FlakyStore) SlowWrites(d time.Duration) {
	f.mu.Lock()
	f.slow = max(d, 0)
	f.mu.Unlock()
}

// Recover makes the store healthy again: calls reach the wrapped store, at
// full speed.
func (f *FlakyStore) Recover() {
	f.mu.Lock()
	f.writeErr, f.readErr, f.slow = nil, nil, 0
	f.mu.Unlock()
}

// Failed returns how many calls, reads and writes, failed with an injected
// error so far.
func (f *FlakyStore) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// write returns the injected write error, after the injected delay.
func (f *FlakyStore) write(ctx context.Context, op string) error {
	f.mu.Lock()
	slow := f.slow
	f.mu.Unlock()
	if slow > 0 {
		t := time.NewTimer(slow)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("storagetest: %s: %w", op, ctx.Err())
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeErr != nil {
		f.failed++
	}
	return f.writeErr
}

// read returns the injected read error.
func (f *FlakyStore) read() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		f.failed++
	}
	return f.readErr
}

// Put fails with the injected error, or passes through.
func (f *FlakyStore) Put(ctx context.Context, timers ...*skyring.Timer) error {
	if err := f.write(ctx, "put"); err != nil {
		return err
	}
	return f.Store.Put(ctx, timers...)
}

// Delete fails with the injected error, or passes through.
func (f *FlakyStore) Delete(ctx context.Context, ids ...string) error {
	if err := f.write(ctx, "delete"); err != nil {
		return err
	}
	return f.Store.Delete(ctx, ids...)
}

// SetMeta fails with the injected error, or passes through.
func (f *FlakyStore) SetMeta(ctx context.Context, key string, value []byte) error {
	if err := f.write(ctx, "set meta"); err != nil {
		return err
	}
	return f.Store.SetMeta(ctx, key, value)
}

// Get fails with the injected error, or passes through.
func (f *FlakyStore) Get(ctx context.Context, id string) (*skyring.Timer, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.Get(ctx, id)
}

// Iterate fails with the injected error before calling fn, or passes
// through.
func (f *FlakyStore) Iterate(ctx context.Context, fn func(*skyring.Timer) error) error {
	if err := f.read(); err != nil {
		return err
	}
	return f.Store.Iterate(ctx, fn)
}

// List fails with the injected error before calling fn, or passes through.
func (f *FlakyStore) List(ctx context.Context, after string, fn func(*skyring.Timer) error) error {
	if err := f.read(); err != nil {
		return err
	}
	return f.Store.List(ctx, after, fn)
}

// Meta fails with the injected error, or passes through.
func (f *FlakyStore) Meta(ctx context.Context, key string) ([]byte, error) {
	if err := f.read(); err != nil {
		return nil, err
	}
	return f.Store.Meta(ctx, key)
}

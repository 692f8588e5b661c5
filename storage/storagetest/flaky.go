package storagetest

import (
	"context"
	"errors"
	"sync"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// ErrInjected is what a FlakyStore's writes fail with after Fail(nil).
var ErrInjected = errors.New("storagetest: injected storage failure")

// FlakyStore wraps a real Store and makes its writes fail on demand, to
// prove that code above the store (the node) never acknowledges a write the
// store refused. While failing, Put, Delete and SetMeta return the injected
// error without writing anything; reads and Close pass through.
type FlakyStore struct {
	storage.Store

	mu     sync.Mutex
	err    error
	failed int
}

var _ storage.Store = (*FlakyStore)(nil)

// Flaky wraps s. It starts healthy.
func Flaky(s storage.Store) *FlakyStore { return &FlakyStore{Store: s} }

// Fail makes every following write return err (ErrInjected if err is nil)
// until Recover.
func (f *FlakyStore) Fail(err error) {
	if err == nil {
		err = ErrInjected
	}
	f.mu.Lock()
	f.err = err
	f.mu.Unlock()
}

// Recover makes writes reach the wrapped store again.
func (f *FlakyStore) Recover() {
	f.mu.Lock()
	f.err = nil
	f.mu.Unlock()
}

// Failed returns how many writes were refused so far.
func (f *FlakyStore) Failed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

func (f *FlakyStore) injected() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		f.failed++
	}
	return f.err
}

// Put fails with the injected error, or passes through.
func (f *FlakyStore) Put(ctx context.Context, timers ...*skyring.Timer) error {
	if err := f.injected(); err != nil {
		return err
	}
	return f.Store.Put(ctx, timers...)
}

// Delete fails with the injected error, or passes through.
func (f *FlakyStore) Delete(ctx context.Context, ids ...string) error {
	if err := f.injected(); err != nil {
		return err
	}
	return f.Store.Delete(ctx, ids...)
}

// SetMeta fails with the injected error, or passes through.
func (f *FlakyStore) SetMeta(ctx context.Context, key string, value []byte) error {
	if err := f.injected(); err != nil {
		return err
	}
	return f.Store.SetMeta(ctx, key, value)
}

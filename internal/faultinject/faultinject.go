// Package faultinject holds the small fault injectors behind the hidden
// `skyring run --debug:*` flags, which the fault-scenario tests
// (cmd/skyring/e2e_faults_*_test.go) use to give one real node a slow disk.
// They are production code only so that the real binary can carry them;
// nothing turns them on unless such a flag is given, and no one should in
// production.
//
// Test-only fault injection for unit tests lives in storage/storagetest
// (FlakyStore); this package is what a binary may import.
package faultinject

import (
	"context"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// SlowWrites wraps s so that every Put, Delete and SetMeta waits d before it
// reaches s, like a disk that takes d to fsync; reads are not slowed, nor
// are a Put or Delete of nothing (no disk write to wait for). A wait
// ends early, with nothing written and the context's error returned, if the
// call's ctx is done first (a backend that checks its context before
// writing). A d of zero or less returns s itself.
func SlowWrites(s storage.Store, d time.Duration) storage.Store {
	if d <= 0 {
		return s
	}
	return &slowStore{Store: s, d: d}
}

type slowStore struct {
	storage.Store
	d time.Duration
}

func (s *slowStore) wait(ctx context.Context) error {
	t := time.NewTimer(s.d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowStore) Put(ctx context.Context, timers ...*skyring.Timer) error {
	if len(timers) == 0 {
		return s.Store.Put(ctx)
	}
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Store.Put(ctx, timers...)
}

func (s *slowStore) Delete(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return s.Store.Delete(ctx)
	}
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Store.Delete(ctx, ids...)
}

func (s *slowStore) SetMeta(ctx context.Context, key string, value []byte) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	return s.Store.SetMeta(ctx, key, value)
}

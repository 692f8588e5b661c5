package storagetest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// The default write failure is a disk failure: the node must be able to
// tell it from other errors and fail stop.
func TestFlakyDefaultWriteFailure(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := storagetest.Flaky(memstore.New())
	t.Cleanup(func() { _ = f.Close() })
	f.FailWrites(nil)
	err := f.Put(ctx, storagetest.Timer("a", 1))
	require.ErrorIs(t, err, storage.ErrWrite)
	require.ErrorIs(t, err, storagetest.ErrInjected)

	f.FailReads(nil)
	_, err = f.Get(ctx, "a")
	require.ErrorIs(t, err, storagetest.ErrInjected)
	require.NotErrorIs(t, err, storage.ErrWrite, "a read failure is not a write failure")
}

func TestFlakyReads(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := storagetest.Flaky(memstore.New())
	t.Cleanup(func() { _ = f.Close() })
	require.NoError(t, f.Put(ctx, storagetest.Timer("a", 1)))
	require.NoError(t, f.SetMeta(ctx, "k", []byte("v")))

	boom := errors.New("unreadable sector")
	f.FailReads(boom)
	_, err := f.Get(ctx, "a")
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, f.Iterate(ctx, func(*skyring.Timer) error {
		return errors.New("fn must not be called")
	}), boom)
	_, err = f.Meta(ctx, "k")
	require.ErrorIs(t, err, boom)
	require.Equal(t, 3, f.Failed())

	// Writes are not affected.
	require.NoError(t, f.Put(ctx, storagetest.Timer("b", 1)))

	f.Recover()
	got, err := f.Get(ctx, "b")
	require.NoError(t, err)
	require.Equal(t, "b", got.ID)
	v, err := f.Meta(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, []byte("v"), v)
}

// The wrapper works on the durable store too: nothing refused reaches the
// files.
func TestFlakyLevelDB(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	f := storagetest.Flaky(s)
	require.NoError(t, f.Put(ctx, storagetest.Timer("kept", 1)))
	f.FailWrites(nil)
	require.ErrorIs(t, f.Put(ctx, storagetest.Timer("refused", 1)), storage.ErrWrite)
	require.ErrorIs(t, f.Delete(ctx, "kept"), storage.ErrWrite)
	require.NoError(t, f.Close())

	s, err = leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	_, err = s.Get(ctx, "kept")
	require.NoError(t, err)
	_, err = s.Get(ctx, "refused")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)
}

func TestFlakySlowWrites(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		f := storagetest.Flaky(memstore.New())
		defer f.Close()
		f.SlowWrites(time.Second)

		start := time.Now()
		require.NoError(t, f.Put(ctx, storagetest.Timer("a", 1)))
		require.Equal(t, time.Second, time.Since(start))

		// Reads are not slowed.
		start = time.Now()
		_, err := f.Get(ctx, "a")
		require.NoError(t, err)
		require.Zero(t, time.Since(start))

		// A slow failing disk: the wait, then the failure.
		f.FailWrites(nil)
		start = time.Now()
		require.ErrorIs(t, f.Delete(ctx, "a"), storage.ErrWrite)
		require.Equal(t, time.Second, time.Since(start))

		// A done ctx ends the wait, and nothing is written.
		f.Recover()
		f.SlowWrites(time.Minute)
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start = time.Now()
		require.ErrorIs(t, f.Put(cctx, storagetest.Timer("b", 1)), context.DeadlineExceeded)
		require.Equal(t, 100*time.Millisecond, time.Since(start))
		_, err = f.Get(ctx, "b")
		require.ErrorIs(t, err, skyring.ErrTimerNotFound)

		f.Recover()
		start = time.Now()
		require.NoError(t, f.Put(ctx, storagetest.Timer("b", 1)))
		require.Zero(t, time.Since(start))
	})
}

// Faults switched on and off while calls run: every call either passes
// through or fails with the injected error (run with -race).
func TestFlakyConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := storagetest.Flaky(memstore.New())
	t.Cleanup(func() { _ = f.Close() })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%d", w, i%10)
				if err := f.Put(ctx, storagetest.Timer(id, i)); err != nil && !errors.Is(err, storagetest.ErrInjected) {
					errs <- err
					return
				}
				if _, err := f.Get(ctx, id); err != nil &&
					!errors.Is(err, storagetest.ErrInjected) && !errors.Is(err, skyring.ErrTimerNotFound) {
					errs <- err
					return
				}
			}
		})
	}
	for range 200 {
		f.FailWrites(nil)
		f.FailReads(nil)
		f.SlowWrites(time.Microsecond)
		f.Recover()
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.NoError(t, f.Put(ctx, storagetest.Timer("after", 1)))
}

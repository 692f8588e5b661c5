package faultinject_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/internal/faultinject"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
)

func TestSlowWrites(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := faultinject.SlowWrites(memstore.New(), 11*time.Second)
		defer s.Close()

		for _, w := range []struct {
			name  string
			write func(context.Context) error
		}{
			{"Put", func(ctx context.Context) error { return s.Put(ctx, storagetest.Timer("a", 1)) }},
			{"SetMeta", func(ctx context.Context) error { return s.SetMeta(ctx, "k", []byte("v")) }},
			{"Delete", func(ctx context.Context) error { return s.Delete(ctx, "a") }},
		} {
			start := time.Now()
			require.NoError(t, w.write(ctx), w.name)
			require.Equal(t, 11*time.Second, time.Since(start), "%s waits the delay", w.name)
		}
		v, err := s.Meta(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, []byte("v"), v, "the write went through")

		// Reads are not slowed.
		require.NoError(t, s.Put(ctx, storagetest.Timer("b", 2)))
		start := time.Now()
		_, err = s.Get(ctx, "b")
		require.NoError(t, err)
		require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error { return nil }))
		require.Zero(t, time.Since(start))

		// Nor are writes of nothing.
		require.NoError(t, s.Put(ctx))
		require.NoError(t, s.Delete(ctx))
		require.Zero(t, time.Since(start))

		// A done context ends the wait with nothing written.
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		start = time.Now()
		require.ErrorIs(t, s.Put(cctx, storagetest.Timer("c", 3)), context.DeadlineExceeded)
		require.Equal(t, time.Second, time.Since(start))
		_, err = s.Get(ctx, "c")
		require.ErrorIs(t, err, skyring.ErrTimerNotFound)
	})
}

func TestSlowWritesOff(t *testing.T) {
	t.Parallel()
	base := memstore.New()
	defer base.Close()
	require.Same(t, base, faultinject.SlowWrites(base, 0), "no delay: the store itself")
	require.Same(t, base, faultinject.SlowWrites(base, -time.Second))
}

// The wrapper is still a conforming store.
func TestSlowWritesConformance(t *testing.T) {
	t.Parallel()
	storagetest.Exercise(t, func(t *testing.T) storage.Store {
		s := faultinject.SlowWrites(memstore.New(), time.Microsecond)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

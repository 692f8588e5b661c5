package memstore_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
)

var _ storage.Store = (*memstore.Store)(nil)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	t.Parallel()
	storagetest.Exercise(t, func(*testing.T) storage.Store { return memstore.New() })
}

func TestOpen(t *testing.T) {
	t.Parallel()
	s, err := memstore.OpenStore(storage.Options{Path: "ignored"})
	require.NoError(t, err)
	require.NoError(t, s.Put(context.Background(), storagetest.Timer("a", 1)))
	require.Equal(t, 1, s.(*memstore.Store).Len())
	require.NoError(t, s.Close())
	require.Equal(t, 0, s.(*memstore.Store).Len())
}

// Iterate works on a snapshot: writes made by another goroutine while it
// runs neither block nor show up.
func TestIterateSnapshot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := memstore.New()
	t.Cleanup(func() { _ = s.Close() })
	require.NoError(t, s.Put(ctx, storagetest.Timers("a", 100)...))
	n := 0
	require.NoError(t, s.Iterate(ctx, func(*skyring.Timer) error {
		n++
		if n == 1 {
			done := make(chan error)
			go func() { done <- s.Put(ctx, storagetest.Timer("late", 1)) }()
			return <-done
		}
		return nil
	}))
	require.Equal(t, 100, n)
	require.Equal(t, 101, s.Len())
}

// BenchmarkPut stores single timers, cycling through 100,000 prebuilt ones
// (so after the first lap each Put replaces), serially and from about 64
// goroutines.
//
//	go test -run '^$' -bench Put ./storage/memstore/
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	ts := storagetest.Timers("bench", 100_000)
	b.Run("serial", func(b *testing.B) {
		s := memstore.New()
		b.Cleanup(func() { _ = s.Close() })
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if err := s.Put(ctx, ts[i%len(ts)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		s := memstore.New()
		b.Cleanup(func() { _ = s.Close() })
		b.ReportAllocs()
		b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
		var seq atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := int(seq.Add(1))
				if err := s.Put(ctx, ts[i%len(ts)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

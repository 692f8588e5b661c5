package leveldbstore_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// BenchmarkPutParallel measures single-timer Puts from about 64 concurrent
// writers (the HTTP edge under load), with and without fsync. With sync on,
// goleveldb's write merge turns concurrent Puts into group commits; writes/s
// is the figure to watch.
//
//	go test -run '^$' -bench PutParallel -benchtime 5s ./storage/leveldbstore/
func BenchmarkPutParallel(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		name := "sync"
		if noSync {
			name = "nosync"
		}
		b.Run(name, func(b *testing.B) {
			s, err := leveldbstore.Open(storage.Options{Path: b.TempDir(), NoSync: noSync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			const writers = 64
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			var seq atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(seq.Add(1))
					if err := s.Put(ctx, storagetest.Timer(fmt.Sprintf("timer-%d", i), i)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
		})
	}
}

// BenchmarkPutSerial is one writer, fsync on: the latency of one durable
// write, with nothing to merge with.
func BenchmarkPutSerial(b *testing.B) {
	s, err := leveldbstore.Open(storage.Options{Path: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if err := s.Put(ctx, storagetest.Timer(fmt.Sprintf("timer-%d", i), i)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIterate measures a full scan, what a node does at start to
// re-arm its timers. The database is filled once per size (NoSync, batches
// of 1,000), closed and reopened so the scan reads tables, not the
// memtable. -short skips the million.
//
//	go test -run '^$' -bench Iterate -benchtime 3x ./storage/leveldbstore/
func BenchmarkIterate(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("timers=%d", n), func(b *testing.B) {
			if n > 100_000 && testing.Short() {
				b.Skip("-short")
			}
			dir := b.TempDir()
			fill(b, dir, n)
			s, err := leveldbstore.Open(storage.Options{Path: dir})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				got := 0
				if err := s.Iterate(ctx, func(*skyring.Timer) error { got++; return nil }); err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("iterated %d timers, want %d", got, n)
				}
			}
			b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "timers/s")
		})
	}
}

func fill(b *testing.B, dir string, n int) {
	b.Helper()
	s, err := leveldbstore.Open(storage.Options{Path: dir, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const batch = 1000
	ts := make([]*skyring.Timer, 0, batch)
	for i := range n {
		tm := storagetest.Timer(skyring.NewID(), i)
		ts = append(ts, tm)
		if len(ts) == batch || i == n-1 {
			if err := s.Put(ctx, ts...); err != nil {
				b.Fatal(err)
			}
			ts = ts[:0]
		}
	}
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
}

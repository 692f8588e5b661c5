package jsstore_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/jsstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// benchStore opens a store on a fresh JetStream server (or three-server
// cluster for R3), over TCP as a node on another host would be.
func benchStore(b *testing.B, kind string) *jsstore.Store {
	b.Helper()
	var nc *nats.Conn
	replicas := 1
	switch kind {
	case "r1":
		nc = connect(b, runJetStreamOpts(b, false).ClientURL())
	case "r1-syncalways":
		nc = connect(b, runJetStreamOpts(b, true).ClientURL())
	case "r3":
		var urls []string
		for _, s := range runJetStreamCluster(b, 3) {
			urls = append(urls, s.ClientURL())
		}
		nc = connect(b, strings.Join(urls, ","))
		replicas = 3
	default:
		b.Fatalf("unknown kind %q", kind)
	}
	return newStore(b, nc, jsstore.Options{Replicas: replicas})
}

var benchKinds = []string{"r1", "r1-syncalways", "r3"}

// BenchmarkPutParallel measures single-timer Puts from about 64 concurrent
// writers (the HTTP edge under load), each waiting for its PubAck, the
// writes pipelined on one connection. Compare with leveldbstore's
// BenchmarkPutParallel; writes/s is the figure to watch.
//
//	go test -run '^$' -bench PutParallel -benchtime 5s ./storage/jsstore/
func BenchmarkPutParallel(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			s := benchStore(b, kind)
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

// BenchmarkPutSerial is one writer: the latency of one acknowledged write.
func BenchmarkPutSerial(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			s := benchStore(b, kind)
			ctx := context.Background()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if err := s.Put(ctx, storagetest.Timer(fmt.Sprintf("timer-%d", i), i)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPutBatch is one writer putting 100 timers at once, one atomic
// batch each; timers/s is the figure.
func BenchmarkPutBatch(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			s := benchStore(b, kind)
			ctx := context.Background()
			const size = 100
			b.ReportAllocs()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if err := s.Put(ctx, storagetest.Timers(fmt.Sprintf("b%d", i), size)...); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*size)/time.Since(start).Seconds(), "timers/s")
		})
	}
}

// BenchmarkIteratePartition loads one partition of a store of 100,000
// timers (about 100 timers), and BenchmarkIterate the whole store: what a
// new owner and a restarted node read.
func BenchmarkIterate(b *testing.B) {
	s := benchStore(b, "r1")
	ctx := context.Background()
	const n = 100_000
	ts := storagetest.Timers("it", n)
	for i := 0; i < n; i += 1000 {
		if err := s.Put(ctx, ts[i:i+1000]...); err != nil {
			b.Fatal(err)
		}
	}
	count := func(tm *skyring.Timer) error { return nil }
	b.Run("all", func(b *testing.B) {
		start := time.Now()
		for b.Loop() {
			if err := s.Iterate(ctx, count); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "timers/s")
	})
	b.Run("partition", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if err := s.IteratePartition(ctx, i%jsstore.Partitions, count); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkClaim measures what a node does before it fires a timer in a
// shared stream: GetVersion, then PutIf at that version (the claim), from
// about 64 concurrent claimers, each on its own timer of a pool stored
// beforehand. claims/s is the figure; conflicts/op counts claims that
// lost (none expected: no two claimers share a timer at once).
//
//	go test -run '^$' -bench Claim -benchtime 5s ./storage/jsstore/
func BenchmarkClaim(b *testing.B) {
	for _, kind := range benchKinds {
		b.Run(kind, func(b *testing.B) {
			s := benchStore(b, kind)
			ctx := context.Background()
			const pool = 10_000
			ts := storagetest.Timers("claim", pool)
			for i := 0; i < pool; i += 1000 {
				if err := s.Put(ctx, ts[i:i+1000]...); err != nil {
					b.Fatal(err)
				}
			}
			const writers = 64
			b.SetParallelism(max(1, writers/runtime.GOMAXPROCS(0)))
			var seq, conflicts atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(seq.Add(1))
					id := fmt.Sprintf("claim-%d", i%pool)
					_, v, err := s.GetVersion(ctx, id)
					if err != nil {
						b.Error(err)
						return
					}
					_, err = s.PutIf(ctx, storagetest.Timer(id, i), v)
					switch {
					case errors.Is(err, storage.ErrConflict):
						conflicts.Add(1)
					case err != nil:
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "claims/s")
			b.ReportMetric(float64(conflicts.Load())/float64(b.N), "conflicts/op")
		})
	}
}

package wheel_test

// Benchmarks of the wheel side by side with the runtime's timers
// (time.AfterFunc), the alternative of one runtime timer per Skyring timer.
//
//	go test -run='^$' -bench=. -benchtime=1x ./wheel/     # smoke
//	go test -run='^$' -bench=. ./wheel/                    # figures

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyring/skyring/wheel"
)

const (
	million = 1_000_000
	fanOut  = 100_000
	chunk   = 1 << 16 // timers added per round before they are cleaned up off the clock
)

// offsets returns n pseudo-random delays between 1 s and 1 h, the shape of
// real timeouts.
func offsets(n int) []time.Duration {
	rng := rand.New(rand.NewPCG(3, 4))
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Second + time.Duration(rng.Int64N(int64(time.Hour)))
	}
	return out
}

func noop() {}

// BenchmarkInsert measures Add against time.AfterFunc, on an empty scheduler
// and with a million timers already pending.
func BenchmarkInsert(b *testing.B) {
	offs := offsets(chunk)
	for _, pending := range []int{0, million} {
		b.Run(fmt.Sprintf("wheel/pending=%d", pending), func(b *testing.B) {
			start := time.Now().UnixNano()
			w := wheel.New[int](start, time.Millisecond)
			for i, d := range offsets(pending) {
				w.Add(start+int64(d), i)
			}
			handles := make([]*wheel.Entry[int], 0, chunk)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				handles = append(handles, w.Add(start+int64(offs[i%chunk]), i))
				if len(handles) == chunk {
					b.StopTimer()
					for _, e := range handles {
						w.Remove(e)
					}
					handles = handles[:0]
					b.StartTimer()
				}
			}
		})
		b.Run(fmt.Sprintf("AfterFunc/pending=%d", pending), func(b *testing.B) {
			var background []*time.Timer
			for _, d := range offsets(pending) {
				background = append(background, time.AfterFunc(d, noop))
			}
			handles := make([]*time.Timer, 0, chunk)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				handles = append(handles, time.AfterFunc(offs[i%chunk], noop))
				if len(handles) == chunk {
					b.StopTimer()
					for _, t := range handles {
						t.Stop()
					}
					handles = handles[:0]
					b.StartTimer()
				}
			}
			b.StopTimer()
			for _, t := range slices.Concat(handles, background) {
				t.Stop()
			}
		})
	}
}

// BenchmarkCancel measures Remove against (*time.Timer).Stop, with a million
// other timers pending.
func BenchmarkCancel(b *testing.B) {
	offs := offsets(chunk)
	b.Run("wheel", func(b *testing.B) {
		start := time.Now().UnixNano()
		w := wheel.New[int](start, time.Millisecond)
		for i, d := range offsets(million) {
			w.Add(start+int64(d), i)
		}
		handles := make([]*wheel.Entry[int], chunk)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if i%chunk == 0 {
				b.StopTimer()
				for k := range handles {
					handles[k] = w.Add(start+int64(offs[k]), k)
				}
				b.StartTimer()
			}
			w.Remove(handles[i%chunk])
		}
	})
	b.Run("AfterFunc", func(b *testing.B) {
		var background []*time.Timer
		for _, d := range offsets(million) {
			background = append(background, time.AfterFunc(d, noop))
		}
		handles := make([]*time.Timer, chunk)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if i%chunk == 0 {
				b.StopTimer()
				for k := range handles {
					handles[k] = time.AfterFunc(offs[k], noop)
				}
				b.StartTimer()
			}
			handles[i%chunk].Stop()
		}
		b.StopTimer()
		for _, t := range slices.Concat(handles, background) {
			t.Stop()
		}
	})
}

// heapAfterGC returns the live heap size after a full collection.
func heapAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemoryPerTimer reports the heap held per pending timer ("B/timer")
// with a million pending. The wheel holds a value (an int, or a string as the
// node uses) per timer; AfterFunc either shares one func among all timers (its
// floor) or captures the value in a closure, as a caller would.
func BenchmarkMemoryPerTimer(b *testing.B) {
	offs := offsets(million)
	ids := make([]string, million)
	for i := range ids {
		ids[i] = fmt.Sprintf("%036d", i) // the size of a UUID; allocated outside the measurement
	}
	b.Run("wheel/int", func(b *testing.B) {
		b.ReportAllocs()
		var per float64
		for range b.N {
			start := time.Now().UnixNano()
			before := heapAfterGC()
			w := wheel.New[int](start, time.Millisecond)
			for i, d := range offs {
				w.Add(start+int64(d), i)
			}
			per = float64(heapAfterGC()-before) / million
			runtime.KeepAlive(w)
		}
		b.ReportMetric(per, "B/timer")
	})
	b.Run("wheel/string", func(b *testing.B) {
		b.ReportAllocs()
		var per float64
		for range b.N {
			start := time.Now().UnixNano()
			before := heapAfterGC()
			w := wheel.New[string](start, time.Millisecond)
			for i, d := range offs {
				w.Add(start+int64(d), ids[i])
			}
			per = float64(heapAfterGC()-before) / million
			runtime.KeepAlive(w)
		}
		b.ReportMetric(per, "B/timer")
	})
	afterFunc := func(b *testing.B, mk func(i int, d time.Duration) *time.Timer) {
		b.ReportAllocs()
		var per float64
		timers := make([]*time.Timer, million) // to stop them afterwards; not counted
		for range b.N {
			before := heapAfterGC() - 8*million // the slots of timers hold no pointer yet
			for i, d := range offs {
				timers[i] = mk(i, d)
			}
			per = float64(heapAfterGC()-before)/million - 8 // minus the slot holding each
			for _, t := range timers {
				t.Stop()
			}
			clear(timers)
		}
		b.ReportMetric(per, "B/timer")
	}
	b.Run("AfterFunc/shared-func", func(b *testing.B) {
		afterFunc(b, func(_ int, d time.Duration) *time.Timer { return time.AfterFunc(d, noop) })
	})
	b.Run("AfterFunc/closure-string", func(b *testing.B) {
		var sink atomic.Pointer[string]
		afterFunc(b, func(i int, d time.Duration) *time.Timer {
			id := ids[i]
			return time.AfterFunc(d, func() { sink.Store(&id) })
		})
	})
}

// BenchmarkFanOut hands out 100,000 timers due at the same instant. ns/op is
// the time from that instant until the last one has been handed out.
func BenchmarkFanOut(b *testing.B) {
	b.Run("wheel/Advance", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			b.StopTimer()
			w := wheel.New[int](0, time.Millisecond)
			due := int64(5*time.Second) + 123
			for i := range fanOut {
				w.Add(due, i)
			}
			count := 0
			b.StartTimer()
			w.Advance(due, func(int) { count++ })
			b.StopTimer()
			if count != fanOut {
				b.Fatalf("handed out %d, want %d", count, fanOut)
			}
		}
	})
	b.Run("wheel/Driver", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			b.StopTimer()
			clock := wheel.NewFakeClock(time.Unix(0, 0))
			var count int
			done := make(chan struct{})
			d, err := wheel.NewDriver(wheel.DriverOptions[int]{
				Clock: clock,
				Fire: func(batch []int) {
					count += len(batch)
					if count == fanOut {
						close(done)
					}
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			due := int64(5*time.Second) + 123
			for i := range fanOut {
				d.Add(due, i)
			}
			clock.BlockUntil(1)
			b.StartTimer()
			clock.Set(time.Unix(0, due))
			<-done
			b.StopTimer()
			if err := d.Close(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AfterFunc", func(b *testing.B) {
		b.ReportAllocs()
		var total time.Duration
		for range b.N {
			b.StopTimer()
			var (
				wg    sync.WaitGroup
				count atomic.Int64
				last  atomic.Int64
			)
			wg.Add(fanOut)
			f := func() {
				if count.Add(1) == fanOut {
					last.Store(time.Now().UnixNano())
				}
				wg.Done()
			}
			// All due at one instant, far enough ahead to create them first.
			at := time.Now().Add(300 * time.Millisecond)
			for range fanOut {
				time.AfterFunc(time.Until(at), f)
			}
			if time.Now().After(at) {
				b.Fatal("creating the timers took longer than the head start")
			}
			b.StartTimer() // lets the framework size b.N; ns/op is replaced below
			wg.Wait()
			total += time.Duration(last.Load() - at.UnixNano())
		}
		b.ReportMetric(float64(total.Nanoseconds())/float64(b.N), "ns/op")
	})
}

// BenchmarkLateness runs on the real clock with 2,000 timers per second
// spread evenly over 2 s, and reports how late they were handed out (p50,
// p99, max, in µs), for the driver and for time.AfterFunc on the same
// machine. Nothing may ever be early: it fails if so.
func BenchmarkLateness(b *testing.B) {
	const (
		rate  = 2000
		total = 2 * rate
	)
	report := func(b *testing.B, lateness []time.Duration) {
		slices.Sort(lateness)
		q := func(p float64) float64 {
			return float64(lateness[int(p*float64(len(lateness)-1))]) / float64(time.Microsecond)
		}
		b.ReportMetric(q(0.5), "p50-µs")
		b.ReportMetric(q(0.99), "p99-µs")
		b.ReportMetric(q(1), "max-µs")
	}
	dues := func() []int64 {
		start := time.Now().Add(50 * time.Millisecond).UnixNano()
		out := make([]int64, total)
		for i := range out {
			out[i] = start + int64(i)*int64(time.Second)/rate
		}
		return out
	}
	b.Run("wheel-driver", func(b *testing.B) {
		var lateness []time.Duration
		for range b.N {
			lateness = lateness[:0]
			var mu sync.Mutex
			done := make(chan struct{})
			d, err := wheel.NewDriver(wheel.DriverOptions[int64]{
				Fire: func(batch []int64) {
					now := time.Now().UnixNano()
					mu.Lock()
					defer mu.Unlock()
					for _, due := range batch {
						if now < due {
							b.Errorf("handed out %v early", time.Duration(due-now))
						}
						lateness = append(lateness, time.Duration(now-due))
					}
					if len(lateness) == total {
						close(done)
					}
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Start(b.Context()); err != nil {
				b.Fatal(err)
			}
			for _, due := range dues() {
				d.Add(due, due)
			}
			<-done
			if err := d.Close(); err != nil {
				b.Fatal(err)
			}
		}
		report(b, lateness)
	})
	b.Run("AfterFunc", func(b *testing.B) {
		var lateness []time.Duration
		for range b.N {
			lateness = lateness[:0]
			var mu sync.Mutex
			var wg sync.WaitGroup
			wg.Add(total)
			for _, due := range dues() {
				time.AfterFunc(time.Until(time.Unix(0, due)), func() {
					now := time.Now().UnixNano()
					mu.Lock()
					lateness = append(lateness, time.Duration(now-due))
					mu.Unlock()
					wg.Done()
				})
			}
			wg.Wait()
		}
		report(b, lateness)
	})
}

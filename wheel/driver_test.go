package wheel_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/wheel"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// waitTimeout bounds every wait of these tests; they never sleep.
const waitTimeout = 10 * time.Second

type driverBundle struct {
	clock   *wheel.FakeClock
	driver  *wheel.Driver[string]
	batches chan []string // every Fire call's batch, copied
}

func setupDriver(t *testing.T, opts wheel.DriverOptions[string]) *driverBundle {
	t.Helper()
	b := &driverBundle{clock: wheel.NewFakeClock(t0), batches: make(chan []string, 1024)}
	if opts.Clock == nil {
		opts.Clock = b.clock
	}
	if opts.Fire == nil {
		opts.Fire = func(batch []string) { b.batches <- slices.Clone(batch) }
	}
	d, err := wheel.NewDriver(opts)
	require.NoError(t, err)
	b.driver = d
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	return b
}

func (b *driverBundle) start(t *testing.T) {
	t.Helper()
	require.NoError(t, b.driver.Start(t.Context()))
}

// at returns the Unix nanoseconds of t0 plus d.
func at(d time.Duration) int64 { return t0.Add(d).UnixNano() }

func (b *driverBundle) nextBatch(t *testing.T) []string {
	t.Helper()
	select {
	case batch := <-b.batches:
		return batch
	case <-time.After(waitTimeout):
		t.Fatal("no batch fired")
		return nil
	}
}

// sleepsUntil waits until the driver sleeps on a timer due at or before d
// after t0.
func (b *driverBundle) sleepsUntil(t *testing.T, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	require.NoError(t, b.clock.BlockUntilDeadline(ctx, t0.Add(d)), "driver does not sleep until %v", d)
}

func TestDriverFiresWhenClockReachesDue(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.start(t)

	b.driver.Add(at(1500*time.Microsecond), "a")
	b.driver.Add(at(time.Millisecond), "b")
	// The driver sleeps until the exact due time of b, not a tick boundary.
	b.sleepsUntil(t, time.Millisecond)
	require.Equal(t, []time.Time{t0.Add(time.Millisecond)}, b.clock.Deadlines())

	b.clock.Advance(time.Millisecond)
	require.Equal(t, []string{"b"}, b.nextBatch(t), "a is not due yet")
	// a (same tick, later) is still pending and the driver sleeps until its
	// exact due time.
	b.sleepsUntil(t, 1500*time.Microsecond)
	require.Equal(t, []time.Time{t0.Add(1500 * time.Microsecond)}, b.clock.Deadlines())
	require.Equal(t, 1, b.driver.Len())

	b.clock.Advance(500*time.Microsecond - 1)
	b.clock.Advance(1)
	require.Equal(t, []string{"a"}, b.nextBatch(t))
	require.Zero(t, b.driver.Len())
}

func TestDriverEarlierAddWakesSleepingDriver(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.start(t)

	b.driver.Add(at(10*time.Second), "late")
	b.sleepsUntil(t, 10*time.Second)

	b.driver.Add(at(time.Second), "early")
	// The driver re-armed its timer for the earlier due time...
	b.sleepsUntil(t, time.Second)
	// ...so moving the clock to it (and not to the later one) fires it.
	b.clock.Advance(time.Second)
	require.Equal(t, []string{"early"}, b.nextBatch(t))

	b.clock.Advance(9 * time.Second)
	require.Equal(t, []string{"late"}, b.nextBatch(t))
}

func TestDriverPastDueAndAddedBeforeStart(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.driver.Add(at(-time.Hour), "past")
	b.driver.Add(at(time.Minute), "future")
	require.Equal(t, 2, b.driver.Len())
	b.start(t)

	require.Equal(t, []string{"past"}, b.nextBatch(t))
	b.sleepsUntil(t, time.Minute)
	b.clock.Set(t0.Add(time.Hour))
	require.Equal(t, []string{"future"}, b.nextBatch(t))
}

func TestDriverFarFuture(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.start(t)
	due := time.Duration(1<<31-1) * time.Millisecond
	b.driver.Add(at(due), "far")
	b.driver.Add(at(365*24*time.Hour), "year")

	// Jump close to the due time: the driver cascades and sleeps again,
	// without handing it out early.
	b.clock.Advance(due - time.Nanosecond)
	b.sleepsUntil(t, due)
	require.Equal(t, 2, b.driver.Len())

	b.clock.Advance(time.Nanosecond)
	require.Equal(t, []string{"far"}, b.nextBatch(t))
	b.clock.Set(t0.Add(365 * 24 * time.Hour))
	require.Equal(t, []string{"year"}, b.nextBatch(t))
}

func TestDriverRemove(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.start(t)
	gone := b.driver.Add(at(time.Second), "gone")
	b.driver.Add(at(2*time.Second), "kept")
	require.True(t, b.driver.Remove(gone))
	require.False(t, b.driver.Remove(gone))

	b.clock.Advance(2 * time.Second)
	require.Equal(t, []string{"kept"}, b.nextBatch(t))
	require.Zero(t, b.driver.Len())
}

func TestDriverBatchesManyAtOnce(t *testing.T) {
	t.Parallel()
	const n = 100_000
	var (
		mu    sync.Mutex
		sizes []int
		seen  = make([]bool, n)
		done  = make(chan struct{})
		total int
	)
	clock := wheel.NewFakeClock(t0)
	d, err := wheel.NewDriver(wheel.DriverOptions[int]{
		Clock:    clock,
		MaxBatch: 1000,
		Fire: func(batch []int) {
			mu.Lock()
			defer mu.Unlock()
			sizes = append(sizes, len(batch))
			for _, v := range batch {
				if seen[v] {
					t.Errorf("value %d fired twice", v)
				}
				seen[v] = true
			}
			total += len(batch)
			if total == n {
				close(done)
			}
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	require.NoError(t, d.Start(t.Context()))

	due := at(5 * time.Second)
	for i := range n {
		d.Add(due, i)
	}
	clock.Advance(5 * time.Second)
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatal("not everything fired")
	}
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, sizes, n/1000)
	for _, s := range sizes {
		require.Equal(t, 1000, s)
	}
	require.Zero(t, d.Len())
}

func TestDriverFireMayCallAddAndRemove(t *testing.T) {
	t.Parallel()
	var b *driverBundle
	var victim *wheel.Entry[string]
	fired := make(chan string, 16)
	b = setupDriver(t, wheel.DriverOptions[string]{
		MaxBatch: 1,
		Fire: func(batch []string) {
			for _, v := range batch {
				fired <- v
				switch v {
				case "first":
					// Re-arm (like an interval) and cancel a pending one.
					b.driver.Add(at(2*time.Second), "rearmed")
					b.driver.Remove(victim)
				}
			}
		},
	})
	b.driver.Add(at(time.Second), "first")
	victim = b.driver.Add(at(2*time.Second), "victim")
	b.start(t)

	b.clock.Advance(time.Second)
	require.Equal(t, "first", <-fired)
	b.sleepsUntil(t, 2*time.Second)
	b.clock.Advance(time.Second)
	require.Equal(t, "rearmed", <-fired)
	require.Zero(t, b.driver.Len())
	require.Empty(t, fired)
}

func TestDriverRemoveWhileFireBlocks(t *testing.T) {
	t.Parallel()
	entered := make(chan string, 2)
	release := make(chan struct{})
	b := setupDriver(t, wheel.DriverOptions[string]{
		MaxBatch: 1,
		Fire: func(batch []string) {
			entered <- batch[0]
			<-release
		},
	})
	ea := b.driver.Add(at(time.Second), "a")
	eb := b.driver.Add(at(time.Second), "b")
	b.start(t)
	b.clock.Advance(time.Second)

	// Fire blocks on the first value (back-pressure); the other one is still
	// pending and can be cancelled.
	first := <-entered
	other := map[string]*wheel.Entry[string]{"a": eb, "b": ea}[first]
	require.True(t, b.driver.Remove(other))
	require.Zero(t, b.driver.Len())
	close(release)
	// Close waits for the blocked Fire to return; nothing else was fired.
	require.NoError(t, b.driver.Close())
	require.Empty(t, entered)
}

func TestDriverCloseStopsAndDrain(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.start(t)
	b.driver.Add(at(time.Second), "a")
	b.driver.Add(at(time.Hour), "b")
	b.sleepsUntil(t, time.Second)

	require.NoError(t, b.driver.Close())
	require.NoError(t, b.driver.Close(), "Close is idempotent")
	require.Zero(t, b.clock.Waiters(), "the stopped driver left a timer behind")

	// Nothing fires after Close, and the entries stay pending.
	b.clock.Advance(2 * time.Hour)
	b.driver.Add(at(-time.Hour), "added-after-close")
	require.Equal(t, 3, b.driver.Len())
	require.Empty(t, b.batches)

	got := b.driver.Drain()
	require.ElementsMatch(t, []string{"a", "b", "added-after-close"}, got)
	require.Zero(t, b.driver.Len())
	require.Empty(t, b.driver.Drain())

	require.ErrorIs(t, b.driver.Start(t.Context()), wheel.ErrClosed)
}

func TestDriverDrainOrder(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.driver.Add(at(time.Hour), "hour")
	b.driver.Add(at(time.Millisecond), "ms")
	b.driver.Add(at(time.Second), "second")
	b.driver.Add(at(365*24*time.Hour), "year")
	require.NoError(t, b.driver.Close())
	require.Equal(t, []string{"ms", "second", "hour", "year"}, b.driver.Drain())
}

func TestDriverLifecycle(t *testing.T) {
	t.Parallel()

	t.Run("close without start", func(t *testing.T) {
		t.Parallel()
		b := setupDriver(t, wheel.DriverOptions[string]{})
		require.NoError(t, b.driver.Close())
		require.NoError(t, b.driver.Close())
		require.ErrorIs(t, b.driver.Start(t.Context()), wheel.ErrClosed)
	})

	t.Run("start twice", func(t *testing.T) {
		t.Parallel()
		b := setupDriver(t, wheel.DriverOptions[string]{})
		b.start(t)
		require.ErrorIs(t, b.driver.Start(t.Context()), wheel.ErrAlreadyStarted)
	})

	t.Run("context cancel stops the goroutine", func(t *testing.T) {
		t.Parallel()
		b := setupDriver(t, wheel.DriverOptions[string]{})
		ctx, cancel := context.WithCancel(t.Context())
		require.NoError(t, b.driver.Start(ctx))
		b.driver.Add(at(time.Second), "a")
		b.sleepsUntil(t, time.Second)
		cancel()
		require.NoError(t, b.driver.Close()) // returns once the goroutine is gone
		b.clock.Advance(time.Second)
		require.Empty(t, b.batches)
		require.Equal(t, 1, b.driver.Len())
	})

	t.Run("concurrent Close calls all wait", func(t *testing.T) {
		t.Parallel()
		b := setupDriver(t, wheel.DriverOptions[string]{})
		b.start(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { errs[i] = b.driver.Close() })
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
	})
}

func TestNewDriverValidates(t *testing.T) {
	t.Parallel()
	fire := func([]int) {}
	tests := []struct {
		name string
		opts wheel.DriverOptions[int]
	}{
		{"no Fire", wheel.DriverOptions[int]{}},
		{"negative Tick", wheel.DriverOptions[int]{Fire: fire, Tick: -1}},
		{"negative MaxBatch", wheel.DriverOptions[int]{Fire: fire, MaxBatch: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d, err := wheel.NewDriver(tt.opts)
			require.ErrorIs(t, err, wheel.ErrInvalidOptions)
			require.Nil(t, d)
		})
	}

	opts := wheel.DriverOptions[int]{Fire: fire}.WithDefaults()
	require.Equal(t, wheel.DefaultTick, opts.Tick)
	require.Equal(t, wheel.DefaultMaxBatch, opts.MaxBatch)
	require.NotNil(t, opts.Clock)
}

func TestDriverConcurrentAddRemove(t *testing.T) {
	t.Parallel()
	var (
		mu    sync.Mutex
		fired = map[int]int{}
	)
	clock := wheel.NewFakeClock(t0)
	d, err := wheel.NewDriver(wheel.DriverOptions[int]{
		Clock:    clock,
		MaxBatch: 7,
		Fire: func(batch []int) {
			mu.Lock()
			defer mu.Unlock()
			for _, v := range batch {
				fired[v]++
			}
		},
	})
	require.NoError(t, err)
	require.NoError(t, d.Start(t.Context()))

	const workers, per = 4, 500
	var wg sync.WaitGroup
	removed := make([][]int, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				v := w*per + i
				e := d.Add(at(time.Duration(i%50)*time.Millisecond), v)
				if i%3 == 0 && d.Remove(e) {
					removed[w] = append(removed[w], v)
				}
			}
		})
	}
	// Time moves while the workers add.
	for range 60 {
		clock.Advance(time.Millisecond)
	}
	wg.Wait()
	clock.Advance(time.Second)
	wantFired := workers*per - len(slices.Concat(removed...))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(fired) == wantFired
	}, waitTimeout, time.Millisecond)
	require.NoError(t, d.Close())
	require.Zero(t, d.Len())
	for _, vs := range removed {
		for _, v := range vs {
			require.Zero(t, fired[v], "removed value %d fired", v)
		}
	}
	for v, n := range fired {
		require.Equal(t, 1, n, "value %d fired %d times", v, n)
	}
}

// TestDriverSystemClock runs the driver on real time: what is added fires
// eventually, and never before its due time by the system clock.
func TestDriverSystemClock(t *testing.T) {
	t.Parallel()
	type firing struct {
		v   int64
		now int64
	}
	fired := make(chan firing, 16)
	d, err := wheel.NewDriver(wheel.DriverOptions[int64]{
		Fire: func(batch []int64) {
			now := time.Now().UnixNano()
			for _, v := range batch {
				fired <- firing{v, now}
			}
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, d.Close()) })
	require.NoError(t, d.Start(t.Context()))

	now := time.Now().UnixNano()
	dues := []int64{now + int64(3*time.Millisecond), now - 1, now + int64(1500*time.Microsecond)}
	for _, due := range dues {
		d.Add(due, due)
	}
	deadline := time.After(waitTimeout)
	for range dues {
		select {
		case f := <-fired:
			require.GreaterOrEqual(t, f.now, f.v, "fired before its due time")
		case <-deadline:
			t.Fatal("timers did not fire on the system clock")
		}
	}
	require.Zero(t, d.Len())
}

// A clock that steps back (12:00 → 13:00 → 12:00) never makes the driver
// hand out early: a timer added after the step back, and one added just
// before it, wait until the clock reads their due times.
func TestDriverClockStepsBack(t *testing.T) {
	t.Parallel()
	b := setupDriver(t, wheel.DriverOptions[string]{})
	b.start(t)

	b.driver.Add(at(2*time.Hour), "far")
	b.sleepsUntil(t, 2*time.Hour)
	b.clock.Set(t0.Add(time.Hour)) // step forward: nothing is due
	b.sleepsUntil(t, 2*time.Hour)
	b.driver.Add(at(time.Hour+10*time.Minute), "before-step")
	b.sleepsUntil(t, time.Hour+10*time.Minute)

	b.clock.Set(t0) // step back
	b.driver.Add(at(30*time.Minute), "after-step")
	// The driver sleeps until the after-step timer's due time by the clock,
	// 30 minutes ahead: nothing is handed out meanwhile.
	b.sleepsUntil(t, 30*time.Minute)
	require.Empty(t, b.batches)

	b.clock.Set(t0.Add(30 * time.Minute))
	require.Equal(t, []string{"after-step"}, b.nextBatch(t))
	b.sleepsUntil(t, time.Hour+10*time.Minute)
	require.Empty(t, b.batches)
	b.clock.Set(t0.Add(time.Hour + 10*time.Minute))
	require.Equal(t, []string{"before-step"}, b.nextBatch(t))
	b.clock.Set(t0.Add(2 * time.Hour))
	require.Equal(t, []string{"far"}, b.nextBatch(t))
	require.Zero(t, b.driver.Len())
}

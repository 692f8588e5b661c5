package wheel

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Clock is the time source of a [Driver]: [SystemClock] in production,
// [FakeClock] in tests.
type Clock interface {
	// Now returns the current time. The driver hands out a value only once
	// Now().UnixNano() is at or after its due time.
	Now() time.Time
	// NewTimer returns a timer that sends on its channel once d has passed.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer of a [Clock], with the semantics of [time.Timer]
// since Go 1.23: after Stop or Reset returns, no stale value is received
// from C.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// SystemClock returns the real clock: [time.Now] and [time.NewTimer].
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return &systemTimer{t: time.NewTimer(d)} }

type systemTimer struct{ t *time.Timer }

func (t *systemTimer) C() <-chan time.Time        { return t.t.C }
func (t *systemTimer) Stop() bool                 { return t.t.Stop() }
func (t *systemTimer) Reset(d time.Duration) bool { return t.t.Reset(d) }

// FakeClock is a [Clock] that only moves when told to, for deterministic
// tests of the driver and of its callers. Its timers fire from [FakeClock.Advance]
// and [FakeClock.Set], in deadline order, on the calling goroutine (the send
// never blocks: each timer channel has a buffer of one, as time.Timer's).
// It is safe for concurrent use.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer  // waiting timers
	changed chan struct{} // closed and replaced whenever timers changes
}

// NewFakeClock returns a fake clock that reads start until moved.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

// Now returns the fake clock's current time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// NewTimer returns a timer that fires once the clock has been moved by d or
// more; at once if d <= 0.
func (c *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: c, c: make(chan time.Time, 1)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.armLocked(t, d)
	return t
}

// Advance moves the clock forward by d and fires every timer whose deadline
// has been reached.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(c.now.Add(d))
}

// Set moves the clock to t (also backwards) and fires every timer whose
// deadline is at or before t.
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.setLocked(t)
}

// Waiters returns the number of timers waiting to fire.
func (c *FakeClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// Deadlines returns the deadlines of the waiting timers, earliest first.
func (c *FakeClock) Deadlines() []time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]time.Time, len(c.timers))
	for i, t := range c.timers {
		out[i] = t.deadline
	}
	slices.SortFunc(out, time.Time.Compare)
	return out
}

// BlockUntil blocks until at least n timers are waiting to fire, so that a
// test can move the clock knowing that the code under test sleeps on it.
func (c *FakeClock) BlockUntil(n int) {
	_ = c.BlockUntilContext(context.Background(), n)
}

// BlockUntilContext is [FakeClock.BlockUntil] with a way out: it returns the
// context's error if ctx ends first.
func (c *FakeClock) BlockUntilContext(ctx context.Context, n int) error {
	return c.waitFor(ctx, func() bool { return len(c.timers) >= n })
}

// BlockUntilDeadline blocks until a timer is waiting with its deadline at or
// before t, or ctx ends: a test can then tell that the code under test sleeps
// until t (or earlier) and not later.
func (c *FakeClock) BlockUntilDeadline(ctx context.Context, t time.Time) error {
	return c.waitFor(ctx, func() bool {
		for _, tm := range c.timers {
			if !tm.deadline.After(t) {
				return true
			}
		}
		return false
	})
}

func (c *FakeClock) waitFor(ctx context.Context, cond func() bool) error {
	for {
		c.mu.Lock()
		ok, changed := cond(), c.changed
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *FakeClock) setLocked(now time.Time) {
	c.now = now
	due := make([]*fakeTimer, 0, len(c.timers))
	for _, t := range c.timers {
		if !t.deadline.After(now) {
			due = append(due, t)
		}
	}
	if len(due) == 0 {
		return
	}
	slices.SortStableFunc(due, func(a, b *fakeTimer) int { return a.deadline.Compare(b.deadline) })
	for _, t := range due {
		c.removeLocked(t)
		t.send(now)
	}
	c.notifyLocked()
}

func (c *FakeClock) armLocked(t *fakeTimer, d time.Duration) {
	t.deadline = c.now.Add(d)
	if d <= 0 {
		t.send(c.now)
		return
	}
	t.waiting = true
	c.timers = append(c.timers, t)
	c.notifyLocked()
}

// removeLocked takes t off the waiting list and reports whether it was on it.
func (c *FakeClock) removeLocked(t *fakeTimer) bool {
	if !t.waiting {
		return false
	}
	t.waiting = false
	if i := slices.Index(c.timers, t); i >= 0 {
		c.timers = slices.Delete(c.timers, i, i+1)
	}
	c.notifyLocked()
	return true
}

func (c *FakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

type fakeTimer struct {
	clock    *FakeClock
	c        chan time.Time
	deadline time.Time
	waiting  bool // guarded by clock.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

// Stop prevents the timer from firing and drops a value not yet received.
func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.drain()
	return t.clock.removeLocked(t)
}

// Reset re-arms the timer to fire d after the clock's current time.
func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	t.drain()
	was := t.clock.removeLocked(t)
	t.clock.armLocked(t, d)
	return was
}

func (t *fakeTimer) send(now time.Time) {
	t.drain()
	t.c <- now
}

func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}

// OffsetClock returns a clock that reads base's time shifted by d (which may
// be negative): Now is base.Now().Add(d), and timers wait as base's do, for
// a duration. It models a node whose clock is set wrong, for fault tests
// (the hidden `skyring run --debug:clock-offset` flag); a zero d returns
// base itself.
func OffsetClock(base Clock, d time.Duration) Clock {
	if d == 0 {
		return base
	}
	return offsetClock{base: base, d: d}
}

type offsetClock struct {
	base Clock
	d    time.Duration
}

func (c offsetClock) Now() time.Time { return c.base.Now().Add(c.d) }

func (c offsetClock) NewTimer(d time.Duration) Timer { return c.base.NewTimer(d) }

package wheel

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// DefaultMaxBatch is the default [DriverOptions.MaxBatch].
const DefaultMaxBatch = 1024

var (
	// ErrClosed is returned by [Driver.Start] after [Driver.Close], and is the
	// cause of the driver's context once Close has stopped it.
	ErrClosed = errors.New("wheel: driver closed")
	// ErrAlreadyStarted is returned by a second [Driver.Start].
	ErrAlreadyStarted = errors.New("wheel: driver already started")
	// ErrInvalidOptions is wrapped by the errors of [NewDriver].
	ErrInvalidOptions = errors.New("wheel: invalid driver options")
)

// DriverOptions configure a [Driver].
type DriverOptions[T any] struct {
	// Clock is the time source. Default: SystemClock().
	Clock Clock
	// Tick is the width of the wheel's finest buckets. Default: DefaultTick
	// (1 ms). Due times stay exact to the nanosecond whatever the tick.
	Tick time.Duration
	// MaxBatch is the most values handed to one Fire call. Default:
	// DefaultMaxBatch (1024).
	MaxBatch int
	// Fire receives the expired values, in batches of at most MaxBatch. It is
	// required. It is called from the driver's goroutine, one call at a time,
	// without the driver's lock held: it may call Add and Remove on the
	// driver. The slice is reused once Fire returns, so Fire must copy what it
	// keeps. Fire may block to apply back-pressure: the driver fires nothing
	// else meanwhile, and Close waits for it.
	Fire func(batch []T)
}

// WithDefaults returns a copy of the options with the defaults filled in.
func (o DriverOptions[T]) WithDefaults() DriverOptions[T] {
	if o.Clock == nil {
		o.Clock = SystemClock()
	}
	o.Tick = cmp.Or(o.Tick, DefaultTick)
	o.MaxBatch = cmp.Or(o.MaxBatch, DefaultMaxBatch)
	return o
}

func (o DriverOptions[T]) validate() error {
	switch {
	case o.Fire == nil:
		return fmt.Errorf("%w: Fire is required", ErrInvalidOptions)
	case o.Tick < 0:
		return fmt.Errorf("%w: Tick %v is negative", ErrInvalidOptions, o.Tick)
	case o.MaxBatch < 0:
		return fmt.Errorf("%w: MaxBatch %d is negative", ErrInvalidOptions, o.MaxBatch)
	}
	return nil
}

// Driver runs a [Wheel] on a [Clock] in a goroutine of its own and hands the
// expired values to [DriverOptions.Fire]. It is safe for concurrent use.
//
// The goroutine sleeps until the wheel's next due time, or until an Add with
// an earlier due time wakes it; with nothing pending it sleeps until an Add.
// A value is handed out only once Clock.Now() has reached its due time.
//
// Lock order: Driver.mu is a leaf; it is never held while Fire runs, so Fire
// may take locks that are also held around calls to Add and Remove.
type Driver[T any] struct {
	clock    Clock
	fire     func([]T)
	maxBatch int

	mu sync.Mutex
	w  *Wheel[T]
	// sleepUntil is the time the goroutine sleeps until: an Add due earlier
	// wakes it. MinInt64 while it is awake (it looks at the wheel again
	// before sleeping), MaxInt64 while nothing is pending.
	sleepUntil int64
	wake       chan struct{} // buffer of one: a pending wake-up is never lost

	life    sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelCauseFunc
	done    chan struct{} // closed when the goroutine has returned
}

// NewDriver returns a driver, not yet started, with an empty wheel whose
// time starts at the clock's current time.
func NewDriver[T any](opts DriverOptions[T]) (*Driver[T], error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	opts = opts.WithDefaults()
	return &Driver[T]{
		clock:      opts.Clock,
		fire:       opts.Fire,
		maxBatch:   opts.MaxBatch,
		w:          New[T](opts.Clock.Now().UnixNano(), opts.Tick),
		sleepUntil: math.MaxInt64,
		wake:       make(chan struct{}, 1),
	}, nil
}

// Start starts the driver's goroutine and returns once it runs. Entries added
// before Start, and those already due, are handed out from then on. The
// goroutine stops when ctx ends or on Close.
func (d *Driver[T]) Start(ctx context.Context) error {
	d.life.Lock()
	defer d.life.Unlock()
	switch {
	case d.closed:
		return ErrClosed
	case d.started:
		return ErrAlreadyStarted
	}
	d.started = true
	ctx, d.cancel = context.WithCancelCause(ctx)
	d.done = make(chan struct{})
	running := make(chan struct{})
	go d.run(ctx, running)
	<-running
	return nil
}

// Close stops the driver and returns once its goroutine has exited, after a
// Fire call under way has returned. Pending entries stay in the wheel (Len)
// and are not handed out; Drain takes them. Close is idempotent and may be
// called without Start.
func (d *Driver[T]) Close() error {
	d.life.Lock()
	d.closed = true
	cancel, done := d.cancel, d.done
	d.life.Unlock()
	if cancel != nil {
		cancel(ErrClosed)
		<-done
	}
	return nil
}

// Add files v under due (Unix nanoseconds) and returns its handle for
// Remove. A due time not after the clock's current time is handed out at
// once. If due is earlier than what the goroutine sleeps for, it wakes it.
// After Close, Add still files the value, for Drain.
func (d *Driver[T]) Add(due int64, v T) *Entry[T] {
	d.mu.Lock()
	e := d.w.Add(due, v)
	wake := due < d.sleepUntil
	if wake {
		d.sleepUntil = due
	}
	d.mu.Unlock()
	if wake {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	return e
}

// Remove cancels a pending entry so that it is never handed to Fire. It
// returns false if the entry was already handed out (or is in a batch being
// handed out) or removed.
func (d *Driver[T]) Remove(e *Entry[T]) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w.Remove(e)
}

// Len returns the number of pending entries, not counting those already
// taken for a Fire call.
func (d *Driver[T]) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.w.Len()
}

// Drain removes every pending entry and returns their values, roughly in due
// order. It is meant for after Close, to hand the pending values to someone
// else; called on a running driver it cancels everything pending.
func (d *Driver[T]) Drain() []T {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]T, 0, d.w.Len())
	d.w.drain(func(v T) { out = append(out, v) })
	return out
}

func (d *Driver[T]) run(ctx context.Context, running chan<- struct{}) {
	defer close(d.done)
	close(running)

	var timer Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	batch := make([]T, 0, d.maxBatch)
	for ctx.Err() == nil {
		d.mu.Lock()
		now := d.clock.Now().UnixNano()
		// The clock stepped back: what the wheel took as due may not be
		// due by the clock any more. Never hand out early.
		d.w.Rewind(now)
		d.w.collect(now)
		batch = d.w.popExpired(batch[:0], d.maxBatch)
		if len(batch) > 0 {
			d.sleepUntil = math.MinInt64
			d.mu.Unlock()
			d.fire(batch)
			clear(batch) // drop the references before the next round
			continue
		}
		next, ok := d.w.Next()
		if !ok {
			next = math.MaxInt64
		}
		d.sleepUntil = next
		d.mu.Unlock()

		var timerC <-chan time.Time
		if ok {
			delay := sub(next, d.clock.Now().UnixNano())
			if delay <= 0 {
				continue
			}
			if timer == nil {
				timer = d.clock.NewTimer(delay)
			} else {
				timer.Reset(delay)
			}
			timerC = timer.C()
		} else if timer != nil {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-timerC:
		}
	}
}

// sub returns a-b as a Duration, saturating instead of overflowing.
func sub(a, b int64) time.Duration {
	r := a - b
	switch {
	case b < 0 && r < a: // overflowed upwards
		return math.MaxInt64
	case b > 0 && r > a: // overflowed downwards
		return math.MinInt64
	}
	return time.Duration(r)
}

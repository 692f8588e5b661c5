package transportstest

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
)

// Recorder is a transport for node tests: it records a copy of every timer
// it executes (at the start of Execute, so a blocked delivery is visible),
// then returns the error set with SetError, or what the function set with
// SetFunc returns. It implements transports.Shutdowner and counts the calls.
// It is safe for concurrent use.
type Recorder struct {
	name string

	mu          sync.Mutex
	timers      []skyring.Timer
	err         error
	fn          func(ctx context.Context, t *skyring.Timer) error
	shutdowns   int
	shutdownErr error
	changed     chan struct{} // closed and replaced on every Execute
}

var (
	_ transports.Transport  = (*Recorder)(nil)
	_ transports.Shutdowner = (*Recorder)(nil)
)

// NewRecorder returns a Recorder named name ("recorder" if empty) that
// succeeds.
func NewRecorder(name string) *Recorder {
	if name == "" {
		name = "recorder"
	}
	return &Recorder{name: name}
}

// Name returns the name given to NewRecorder.
func (r *Recorder) Name() string { return r.name }

// Execute records t and returns the configured outcome.
func (r *Recorder) Execute(ctx context.Context, t *skyring.Timer) error {
	c := *t
	c.Data = bytes.Clone(t.Data)
	r.mu.Lock()
	r.timers = append(r.timers, c)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	fn, err := r.fn, r.err
	r.mu.Unlock()
	if fn != nil {
		return fn(ctx, t)
	}
	return err
}

// SetError makes later executions return err (nil: succeed).
func (r *Recorder) SetError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// SetFunc makes later executions return fn(ctx, t), after recording t; it
// takes precedence over SetError. nil removes it.
func (r *Recorder) SetFunc(fn func(ctx context.Context, t *skyring.Timer) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn = fn
}

// Block returns a function for SetFunc that blocks each execution until
// release is closed (then succeeds) or its ctx is done (then returns the
// ctx's error).
func Block(release <-chan struct{}) func(ctx context.Context, t *skyring.Timer) error {
	return func(ctx context.Context, _ *skyring.Timer) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// Timers returns copies of the timers executed so far, in order.
func (r *Recorder) Timers() []skyring.Timer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.timers)
}

// IDs returns the ids of the timers executed so far, in order.
func (r *Recorder) IDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, len(r.timers))
	for i, t := range r.timers {
		ids[i] = t.ID
	}
	return ids
}

// Count returns how many executions started.
func (r *Recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.timers)
}

// Changed returns a channel that is closed at the next execution. Use it in
// a select with other events; Wait is simpler for the common case.
func (r *Recorder) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.changed == nil {
		r.changed = make(chan struct{})
	}
	return r.changed
}

// WaitN waits until at least n executions started, or ctx is done, and
// returns the timers executed so far.
func (r *Recorder) WaitN(ctx context.Context, n int) ([]skyring.Timer, error) {
	for {
		ch := r.Changed()
		if ts := r.Timers(); len(ts) >= n {
			return ts, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return r.Timers(), context.Cause(ctx)
		}
	}
}

// Wait waits until at least n executions started and returns the timers
// executed so far; it fails t after WaitTimeout.
func (r *Recorder) Wait(t testing.TB, n int) []skyring.Timer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), WaitTimeout)
	defer cancel()
	ts, err := r.WaitN(ctx, n)
	if err != nil {
		t.Fatalf("transportstest: recorder %q: %d executions after %s, want %d", r.name, len(ts), WaitTimeout, n)
	}
	return ts
}

// Shutdown counts the call and returns the error set with SetShutdownError.
func (r *Recorder) Shutdown(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shutdowns++
	return r.shutdownErr
}

// SetShutdownError makes Shutdown return err.
func (r *Recorder) SetShutdownError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.shutdownErr = err
}

// Shutdowns returns how many times Shutdown was called.
func (r *Recorder) Shutdowns() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shutdowns
}

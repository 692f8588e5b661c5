package transports

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/skyring/skyring"
)

// ErrDuplicateTransport is returned when a second transport (or factory) is
// registered under a name that is already taken.
var ErrDuplicateTransport = errors.New("transports: duplicate transport name")

// ErrPanic is matched by the error Registry.Execute returns when the
// transport's Execute panicked (a *PanicError).
var ErrPanic = errors.New("transports: transport panicked")

// Registry holds the transports a node has enabled, by name.
//
// It is safe for concurrent use. Lookup is on the delivery hot path and
// takes no lock: the name→transport map is copy-on-write behind an atomic
// pointer, and Register (rare, usually at start-up) builds a new one.
type Registry struct {
	mu    sync.Mutex // serialises writers (Register, Shutdown)
	snap  atomic.Pointer[snapshot]
	state shutdownState
}

// snapshot is an immutable view of the registry.
type snapshot struct {
	byName map[string]Transport
	names  []string // sorted
}

type shutdownState struct {
	started bool
	done    chan struct{} // closed when the first Shutdown has finished
	err     error         // its result, valid once done is closed
}

// NewRegistry returns a registry holding ts. A nil transport, an empty name
// or a duplicate name is an error.
func NewRegistry(ts ...Transport) (*Registry, error) {
	r := &Registry{}
	r.snap.Store(&snapshot{byName: map[string]Transport{}})
	for _, t := range ts {
		if err := r.Register(t); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *Registry) load() *snapshot {
	if s := r.snap.Load(); s != nil {
		return s
	}
	return &snapshot{} // zero Registry: empty
}

// Register adds t under t.Name(). A name already taken is an error wrapping
// ErrDuplicateTransport; registering after Shutdown is an error wrapping
// skyring.ErrClosed.
func (r *Registry) Register(t Transport) error {
	if t == nil {
		return errors.New("transports: register: nil transport")
	}
	name := t.Name()
	if name == "" {
		return fmt.Errorf("transports: register %T: empty transport name", t)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state.started {
		return fmt.Errorf("transports: register %q: %w", name, skyring.ErrClosed)
	}
	old := r.load()
	if _, ok := old.byName[name]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateTransport, name)
	}
	byName := make(map[string]Transport, len(old.byName)+1)
	maps.Copy(byName, old.byName)
	byName[name] = t
	r.snap.Store(&snapshot{byName: byName, names: slices.Sorted(maps.Keys(byName))})
	return nil
}

// Lookup returns the transport registered under name. An unknown name is
// the error skyring.UnknownTransportError builds (a *skyring.ValidationError
// wrapping skyring.ErrUnknownTransport, HTTP 400), listing the known names.
func (r *Registry) Lookup(name string) (Transport, error) {
	s := r.load()
	if t, ok := s.byName[name]; ok {
		return t, nil
	}
	return nil, skyring.UnknownTransportError(name, s.names)
}

// Check is what a node asks before it accepts a create or update: that
// cb.Transport is registered (as Lookup) and, if that transport implements
// Validator, that it accepts cb. Every error is a *skyring.ValidationError
// (HTTP 400, its Reason in x-skyring-reason): Lookup's for an unknown name;
// the transport's own, with Field "callback.method" or "callback.uri", when
// Validate returns one; any other error from Validate wrapped in one with
// Field "callback". A transport that does not implement Validator accepts
// every callback.
func (r *Registry) Check(cb skyring.Callback) error {
	t, err := r.Lookup(cb.Transport)
	if err != nil {
		return err
	}
	v, ok := t.(Validator)
	if !ok {
		return nil
	}
	err = v.Validate(cb)
	if err == nil {
		return nil
	}
	var ve *skyring.ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	return &skyring.ValidationError{
		Field:  "callback",
		Reason: fmt.Sprintf("Invalid callback for transport %q: %v", cb.Transport, err),
		Err:    err,
	}
}

// Has reports whether a transport is registered under name. It does not
// allocate, so validators can call it per request.
func (r *Registry) Has(name string) bool {
	_, ok := r.load().byName[name]
	return ok
}

// Names returns the registered names, sorted. The slice is the caller's.
func (r *Registry) Names() []string {
	return slices.Clone(r.load().names)
}

// Shutdown calls Shutdown on every registered transport that implements
// Shutdowner, concurrently, and waits for them until ctx is done. It returns
// their errors joined (errors.Join), plus ctx's error if some had not
// returned in time; those keep running in the background, as a
// Shutdowner that ignores its ctx cannot be stopped.
//
// Each Shutdowner is called at most once over the registry's life: a second
// Shutdown waits for the first (bounded by its own ctx) and returns the same
// result. After Shutdown, Register fails; Lookup keeps working.
func (r *Registry) Shutdown(ctx context.Context) error {
	r.mu.Lock()
	if r.state.started {
		done := r.state.done
		r.mu.Unlock()
		select {
		case <-done:
			return r.state.err
		case <-ctx.Done():
			return fmt.Errorf("transports: shutdown: %w", context.Cause(ctx))
		}
	}
	r.state.started = true
	r.state.done = make(chan struct{})
	s := r.load()
	r.mu.Unlock()

	// Each Shutdowner runs in its own goroutine and reports on a buffered
	// channel, so none blocks once Shutdown has stopped listening. Errors
	// are joined in name order so the message is deterministic.
	type result struct {
		i   int
		err error
	}
	results := make(chan result, len(s.names))
	pending := 0
	for i, name := range s.names {
		sd, ok := s.byName[name].(Shutdowner)
		if !ok {
			continue
		}
		pending++
		go func() { results <- result{i, sd.Shutdown(ctx)} }()
	}
	errs := make([]error, len(s.names)+1) // the last slot: ctx expired
	record := func(res result) {
		pending--
		if res.err != nil {
			errs[res.i] = fmt.Errorf("transports: shutting down %q: %w", s.names[res.i], res.err)
		}
	}
wait:
	for pending > 0 {
		select {
		case res := <-results:
			record(res)
		case <-ctx.Done():
			for pending > 0 { // take what already arrived, then give up
				select {
				case res := <-results:
					record(res)
				default:
					errs[len(s.names)] = fmt.Errorf("transports: shutdown: %d transport(s) still shutting down: %w",
						pending, context.Cause(ctx))
					break wait
				}
			}
		}
	}
	err := errors.Join(errs...)
	r.state.err = err
	close(r.state.done)
	return err
}

// Execute delivers t through the transport registered under
// t.Callback.Transport: Lookup, then the transport's Execute, with one
// difference that is the reason to call it: a panic in Execute does not
// crash the process. It is recovered and returned as a *PanicError
// (matching ErrPanic), so that one bad transport, often a custom one,
// costs a failed delivery attempt and not the node with every timer it
// holds. An unknown name is Lookup's error.
//
// Only a panic on the calling goroutine can be recovered; a transport that
// panics on a goroutine of its own still crashes the process.
func (r *Registry) Execute(ctx context.Context, t *skyring.Timer) error {
	tr, err := r.Lookup(t.Callback.Transport)
	if err != nil {
		return err
	}
	return execute(ctx, tr, t)
}

// execute calls tr.Execute and turns a panic into a *PanicError.
func execute(ctx context.Context, tr Transport, t *skyring.Timer) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Transport: t.Callback.Transport, Value: v, Stack: panicStack()}
		}
	}()
	return tr.Execute(ctx, t)
}

// PanicError reports a panic that Registry.Execute recovered from a
// transport. It matches ErrPanic, and also the panic value when that is an
// error (a runtime.Error for a nil dereference, say). Its message is one
// line, fit for a fail event; Stack is for the log.
type PanicError struct {
	Transport string // the transport's name
	Value     any    // what Execute panicked with
	Stack     string // up to panicFrames frames, innermost first, from where it panicked
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("transports: transport %q panicked: %v", e.Transport, e.Value)
}

// Is reports whether target is ErrPanic.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Unwrap returns the panic value if it is an error, else nil.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// panicFrames bounds PanicError.Stack: enough to find the faulty line
// without a whole goroutine dump in every log line.
const panicFrames = 16

// panicStack formats the stack of the panicking goroutine as seen from a
// deferred function: it drops the frames of the runtime's panic machinery
// and of this package's recovery, and stops at execute, below which is only
// the node's delivery worker.
func panicStack() string {
	var pcs [panicFrames + 8]uintptr
	n := runtime.Callers(3, pcs[:]) // skip Callers, panicStack, the deferred func
	frames := runtime.CallersFrames(pcs[:n])
	var b strings.Builder
	kept := 0
	for kept < panicFrames {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "/transports.execute") {
			break
		}
		if kept == 0 && strings.HasPrefix(f.Function, "runtime.") {
			if !more {
				break
			}
			continue // gopanic, panicmem, sigpanic, ...
		}
		fmt.Fprintf(&b, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
		kept++
		if !more {
			break
		}
	}
	return b.String()
}

// Key is the destination of cb for per-destination limits: the transport's
// name, then its Keyer's key if it implements Keyer and returns one. An
// unknown transport's key is its name.
func (r *Registry) Key(cb skyring.Callback) string {
	t, ok := r.load().byName[cb.Transport]
	if !ok {
		return cb.Transport
	}
	if k, ok := t.(Keyer); ok {
		if key := k.Key(cb); key != "" {
			return cb.Transport + " " + key
		}
	}
	return cb.Transport
}

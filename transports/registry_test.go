package transports_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/transportstest"
)

func TestRegistryRegisterLookup(t *testing.T) {
	t.Parallel()
	a, b := transportstest.NewRecorder("b-first"), transportstest.NewRecorder("a-second")
	r, err := transports.NewRegistry(a, b)
	require.NoError(t, err)
	require.Equal(t, []string{"a-second", "b-first"}, r.Names())

	got, err := r.Lookup("b-first")
	require.NoError(t, err)
	require.Same(t, a, got)
	require.True(t, r.Has("a-second"))
	require.False(t, r.Has("nope"))

	c := transportstest.NewRecorder("c")
	require.NoError(t, r.Register(c))
	require.Equal(t, []string{"a-second", "b-first", "c"}, r.Names())

	// Names returns the caller's own slice.
	names := r.Names()
	names[0] = "mutated"
	require.Equal(t, []string{"a-second", "b-first", "c"}, r.Names())
}

func TestRegistryUnknown(t *testing.T) {
	t.Parallel()
	r, err := transports.NewRegistry(transportstest.NewRecorder("http"), transportstest.NewRecorder("nats"))
	require.NoError(t, err)
	_, err = r.Lookup("smtp")
	require.ErrorIs(t, err, skyring.ErrUnknownTransport)
	require.ErrorIs(t, err, skyring.ErrInvalid)
	var ve *skyring.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "callback.transport", ve.Field)
	require.Equal(t, `Unknown transport "smtp"; known: http, nats`, ve.Reason)
	status, _ := skyring.Status(err)
	require.Equal(t, 400, status)
}

func TestRegistryDuplicate(t *testing.T) {
	t.Parallel()
	_, err := transports.NewRegistry(transportstest.NewRecorder("x"), transportstest.NewRecorder("x"))
	require.ErrorIs(t, err, transports.ErrDuplicateTransport)
	require.ErrorContains(t, err, `"x"`)

	r, err := transports.NewRegistry(transportstest.NewRecorder("x"))
	require.NoError(t, err)
	err = r.Register(transportstest.NewRecorder("x"))
	require.ErrorIs(t, err, transports.ErrDuplicateTransport)
	require.Equal(t, []string{"x"}, r.Names())
}

func TestRegistryRejectsNilAndEmptyName(t *testing.T) {
	t.Parallel()
	r, err := transports.NewRegistry()
	require.NoError(t, err)
	require.Error(t, r.Register(nil))
	require.Error(t, r.Register(namedOnly("")))
	require.Empty(t, r.Names())
}

func TestRegistryZeroValue(t *testing.T) {
	t.Parallel()
	var r transports.Registry
	require.Empty(t, r.Names())
	_, err := r.Lookup("http")
	require.ErrorIs(t, err, skyring.ErrUnknownTransport)
	require.NoError(t, r.Register(transportstest.NewRecorder("http")))
	_, err = r.Lookup("http")
	require.NoError(t, err)
	require.NoError(t, r.Shutdown(context.Background()))
}

// TestRegistryConcurrent registers while many goroutines look up; run with
// -race it proves lookups need no lock.
func TestRegistryConcurrent(t *testing.T) {
	t.Parallel()
	r, err := transports.NewRegistry(transportstest.NewRecorder("base"))
	require.NoError(t, err)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lookups atomic.Int64
	var started sync.WaitGroup
	started.Add(4)
	for range 4 {
		wg.Go(func() {
			first := true
			for {
				if !first {
					select {
					case <-stop:
						return
					default:
					}
				}
				tr, err := r.Lookup("base")
				if err != nil || tr.Name() != "base" {
					t.Errorf("lookup base: %v", err)
					if first {
						started.Done()
					}
					return
				}
				_ = r.Names()
				lookups.Add(1)
				if first {
					first = false
					started.Done()
				}
			}
		})
	}
	started.Wait() // every reader runs before and during the registrations
	for i := range 100 {
		name := fmt.Sprintf("t%03d", i)
		require.NoError(t, r.Register(transportstest.NewRecorder(name)))
		require.True(t, r.Has(name), "visible as soon as Register returns")
	}
	close(stop)
	wg.Wait()
	require.Len(t, r.Names(), 101)
	require.Positive(t, lookups.Load())
}

func TestRegistryShutdown(t *testing.T) {
	t.Parallel()
	a, b := transportstest.NewRecorder("a"), transportstest.NewRecorder("b")
	b.SetShutdownError(errors.New("b broke"))
	r, err := transports.NewRegistry(a, b, namedOnly("plain"))
	require.NoError(t, err)

	err = r.Shutdown(context.Background())
	require.ErrorContains(t, err, "b broke")
	require.ErrorContains(t, err, `"b"`)
	require.Equal(t, 1, a.Shutdowns())
	require.Equal(t, 1, b.Shutdowns())

	// Once only: a second Shutdown returns the same result without calling again.
	err2 := r.Shutdown(context.Background())
	require.Equal(t, err.Error(), err2.Error())
	require.Equal(t, 1, a.Shutdowns())
	require.Equal(t, 1, b.Shutdowns())

	// Register is refused afterwards; Lookup still works.
	require.ErrorIs(t, r.Register(transportstest.NewRecorder("late")), skyring.ErrClosed)
	_, err = r.Lookup("a")
	require.NoError(t, err)
}

// TestRegistryShutdownConcurrentAndBounded: Shutdowners run concurrently (two
// that each wait for the other both finish), and one that ignores its ctx does
// not hold Shutdown past the ctx deadline.
func TestRegistryShutdownConcurrentAndBounded(t *testing.T) {
	t.Parallel()
	// The two peers wait for each other however long the machine takes to
	// call the second (up to a minute), not just within Shutdown's
	// deadline, and report whether they met.
	var arrived sync.WaitGroup
	arrived.Add(2)
	met := make(chan error, 2)
	rendezvous := func(context.Context) error {
		arrived.Done()
		done := make(chan struct{})
		go func() { arrived.Wait(); close(done) }()
		var err error
		select {
		case <-done:
		case <-time.After(time.Minute):
			err = errors.New("peers not called concurrently")
		}
		met <- err
		return err
	}
	release := make(chan struct{})
	stuckReturned := make(chan struct{})
	stuck := func(context.Context) error {
		defer close(stuckReturned)
		<-release // ignores ctx
		return nil
	}
	r, err := transports.NewRegistry(
		shutdowner{"p1", rendezvous}, shutdowner{"p2", rendezvous}, shutdowner{"stuck", stuck})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = r.Shutdown(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotContains(t, err.Error(), "peers not called concurrently")
	for range 2 {
		require.NoError(t, <-met)
	}

	close(release)
	<-stuckReturned // leave no goroutine behind for goleak
}

func TestRegistrySecondShutdownBoundedByItsCtx(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	entered := make(chan struct{})
	r, err := transports.NewRegistry(shutdowner{"slow", func(context.Context) error {
		close(entered)
		<-release
		return nil
	}})
	require.NoError(t, err)
	first := make(chan error, 1)
	go func() { first <- r.Shutdown(context.Background()) }()
	<-entered

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, r.Shutdown(ctx), context.Canceled)

	close(release)
	require.NoError(t, <-first)
	require.NoError(t, r.Shutdown(context.Background()))
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	require.NoError(t, transports.Permanent(nil))
	base := errors.New("bad method")
	err := transports.Permanent(fmt.Errorf("wrapped: %w", base))
	require.ErrorIs(t, err, transports.ErrPermanent)
	require.ErrorIs(t, err, base)
	require.Equal(t, "wrapped: bad method", err.Error())
	require.NotErrorIs(t, base, transports.ErrPermanent)
}

// namedOnly is a transport without Shutdown.
type namedOnly string

func (n namedOnly) Name() string                                  { return string(n) }
func (n namedOnly) Execute(context.Context, *skyring.Timer) error { return nil }

type shutdowner struct {
	name string
	fn   func(context.Context) error
}

func (s shutdowner) Name() string                                  { return s.name }
func (s shutdowner) Execute(context.Context, *skyring.Timer) error { return nil }
func (s shutdowner) Shutdown(ctx context.Context) error            { return s.fn(ctx) }

// TestRegistryKeyWithoutKeyer: a transport without Keyer is one
// destination, its name.
func TestRegistryKeyWithoutKeyer(t *testing.T) {
	t.Parallel()
	r, err := transports.NewRegistry(namedOnly("plain"))
	require.NoError(t, err)
	require.Equal(t, "plain", r.Key(skyring.Callback{Transport: "plain", URI: "http://a/"}))
}

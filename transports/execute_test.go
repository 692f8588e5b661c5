package transports_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/transportstest"
)

// panicky panics in Execute with whatever value it holds.
type panicky struct {
	name  string
	value func() any
}

func (p panicky) Name() string { return p.name }

func (p panicky) Execute(context.Context, *skyring.Timer) error { return explode(p.value()) }

// explode is a named frame for the stack to show.
func explode(v any) error { panic(v) }

func timerFor(transport string) *skyring.Timer {
	return transportstest.NewTimer("t1", skyring.Callback{Transport: transport, Method: "post", URI: "x"}, "")
}

func TestExecutePassesThrough(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := transportstest.NewRecorder("rec")
	r, err := transports.NewRegistry(rec)
	require.NoError(t, err)

	require.NoError(t, r.Execute(ctx, timerFor("rec")))
	require.Equal(t, []string{"t1"}, rec.IDs())

	boom := transports.Permanent(errors.New("bad uri"))
	rec.SetError(boom)
	err = r.Execute(ctx, timerFor("rec"))
	require.ErrorIs(t, err, boom)
	require.ErrorIs(t, err, transports.ErrPermanent)
	require.NotErrorIs(t, err, transports.ErrPanic)

	err = r.Execute(ctx, timerFor("smtp"))
	require.ErrorIs(t, err, skyring.ErrUnknownTransport)
}

// A panicking transport is a failed attempt, not a dead process.
func TestExecuteRecoversPanic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sentinel := errors.New("custom transport bug")
	cases := []struct {
		name  string
		value func() any
		check func(t *testing.T, pe *transports.PanicError, err error)
	}{
		{"string", func() any { return "kaboom" }, func(t *testing.T, pe *transports.PanicError, err error) {
			require.Equal(t, "kaboom", pe.Value)
			require.EqualError(t, err, `transports: transport "string" panicked: kaboom`)
			require.NoError(t, errors.Unwrap(err))
		}},
		{"error", func() any { return fmt.Errorf("wrapped: %w", sentinel) }, func(t *testing.T, _ *transports.PanicError, err error) {
			require.ErrorIs(t, err, sentinel, "an error value stays reachable")
		}},
		{"nil-deref", func() any { var p *skyring.Timer; return p.ID }, func(t *testing.T, _ *transports.PanicError, err error) {
			var re runtime.Error
			require.ErrorAs(t, err, &re)
		}},
		{"nil", func() any { return nil }, func(t *testing.T, _ *transports.PanicError, err error) {
			var pn *runtime.PanicNilError
			require.ErrorAs(t, err, &pn)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := transports.NewRegistry(panicky{tc.name, tc.value})
			require.NoError(t, err)
			err = r.Execute(ctx, timerFor(tc.name))
			require.ErrorIs(t, err, transports.ErrPanic)
			require.NotErrorIs(t, err, transports.ErrPermanent, "a panic may be a transient bug: retry rules apply")
			var pe *transports.PanicError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, tc.name, pe.Transport)
			require.NotContains(t, err.Error(), "\n", "the message is one line, for a fail event")
			tc.check(t, pe, err)

			// The stack starts where the transport panicked, not in the
			// runtime, and stops before the caller.
			first, _, _ := strings.Cut(pe.Stack, "\n")
			if tc.name == "nil-deref" {
				require.Contains(t, first, "TestExecuteRecoversPanic")
			} else {
				require.True(t, strings.HasSuffix(first, "transports_test.explode"), pe.Stack)
			}
			require.Contains(t, pe.Stack, "panicky.Execute")
			require.Contains(t, pe.Stack, "execute_test.go:")
			require.NotContains(t, pe.Stack, "Registry.Execute")
			require.NotContains(t, pe.Stack, "runtime.gopanic")
			require.LessOrEqual(t, strings.Count(pe.Stack, "\n"), 2*16)

			// The registry goes on working.
			require.ErrorIs(t, r.Execute(ctx, timerFor(tc.name)), transports.ErrPanic)
		})
	}
}

// Deep recursion: the stack is cut, not dumped whole.
func TestExecutePanicStackBounded(t *testing.T) {
	t.Parallel()
	var deep func(n int) any
	deep = func(n int) any {
		if n == 0 {
			panic("deep")
		}
		return deep(n - 1)
	}
	r, err := transports.NewRegistry(panicky{"deep", func() any { return deep(100) }})
	require.NoError(t, err)
	var pe *transports.PanicError
	require.ErrorAs(t, r.Execute(context.Background(), timerFor("deep")), &pe)
	require.Equal(t, 16, strings.Count(pe.Stack, "\n\t"), pe.Stack)
}

func TestExecutePanicsConcurrently(t *testing.T) {
	t.Parallel()
	rec := transportstest.NewRecorder("ok")
	r, err := transports.NewRegistry(rec, panicky{"bad", func() any { return "x" }})
	require.NoError(t, err)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range cap(errs) {
		wg.Go(func() {
			name := "ok"
			if i%2 == 0 {
				name = "bad"
			}
			err := r.Execute(context.Background(), timerFor(name))
			if (name == "bad") != errors.Is(err, transports.ErrPanic) {
				errs <- fmt.Errorf("%s: %v", name, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Equal(t, 32, rec.Count())
}

// A transport that panics costs one failed delivery; the caller logs the
// stack and goes on.
func ExampleRegistry_Execute() {
	r, _ := transports.NewRegistry(panicky{"buggy", func() any { return "index out of range" }})
	t := &skyring.Timer{ID: "t1", Callback: skyring.Callback{Transport: "buggy", Method: "post", URI: "x"}}

	err := r.Execute(context.Background(), t)
	var pe *transports.PanicError
	if errors.As(err, &pe) {
		fmt.Println(errors.Is(err, transports.ErrPanic), pe.Transport, pe.Value)
		// log.Error("delivery panicked", "err", err, "stack", pe.Stack)
	}
	// Output: true buggy index out of range
}

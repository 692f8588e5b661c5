package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/transports"
)

var testBreaker = breakerSettings{failures: 3, open: time.Hour, probes: 1}

// TestLimiterParksFIFO: at most limit slots per destination; the ids
// beyond are parked, handed the slot of an ending attempt in order, and
// the slot is freed only when nothing is parked. Another destination is
// not affected.
func TestLimiterParksFIFO(t *testing.T) {
	t.Parallel()
	l := newLimiter(2, testBreaker)
	require.True(t, l.acquire("x", "a"))
	require.True(t, l.acquire("x", "b"))
	for _, id := range []string{"c", "d", "e"} {
		require.False(t, l.acquire("x", id), "%s parked", id)
	}
	require.True(t, l.acquire("y", "other"), "another destination has its own slots")
	require.Equal(t, 3, l.nparked())
	for _, want := range []string{"c", "d", "e"} {
		next, ok := l.release("x")
		require.True(t, ok)
		require.Equal(t, want, next, "FIFO")
	}
	require.Zero(t, l.nparked())
	_, ok := l.release("x")
	require.False(t, ok, "nothing parked: the slot is freed")
	require.True(t, l.acquire("x", "f"), "a freed slot is taken at once")
	require.False(t, l.acquire("x", "g"), "still at the limit")
	next, ok := l.release("x")
	require.True(t, ok)
	require.Equal(t, "g", next)
	for _, k := range []string{"x", "x", "y"} {
		_, ok = l.release(k)
		require.False(t, ok)
	}
	l.mu.Lock()
	require.Empty(t, l.dests, "idle destinations are forgotten")
	l.mu.Unlock()
	_, ok = l.release("never")
	require.False(t, ok, "releasing an unknown destination does not block")
}

// TestLimiterDrain: shutdown takes every parked id out, once.
func TestLimiterDrain(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, testBreaker)
	require.True(t, l.acquire("x", "a"))
	require.False(t, l.acquire("x", "b"))
	require.False(t, l.acquire("x", "c"))
	require.True(t, l.acquire("y", "d"))
	require.False(t, l.acquire("y", "e"))
	require.ElementsMatch(t, []string{"b", "c", "e"}, l.drain())
	require.Empty(t, l.drain())
	_, ok := l.release("x")
	require.False(t, ok, "drained ids are not handed a slot")
}

// TestLimiterLongQueue: many parked ids come out in order, those parked
// later after them, with the queue compacted on the way.
func TestLimiterLongQueue(t *testing.T) {
	t.Parallel()
	l := newLimiter(1, testBreaker)
	require.True(t, l.acquire("x", "first"))
	const n = 5000
	var want []string
	park := func(prefix string, k int) {
		for i := range k {
			id := fmt.Sprintf("%s-%d", prefix, i)
			want = append(want, id)
			require.False(t, l.acquire("x", id))
		}
	}
	park("early", n)
	var got []string
	for range n / 2 {
		next, ok := l.release("x")
		require.True(t, ok)
		got = append(got, next)
	}
	park("late", n)
	for {
		next, ok := l.release("x")
		if !ok {
			break
		}
		got = append(got, next)
	}
	require.Equal(t, want, got)
}

// TestBreakerOpens: consecutive failures of a destination open its
// breaker; permanent failures (the receiver answered) and node-side
// conditions do not count; another destination is unaffected.
func TestBreakerOpens(t *testing.T) {
	t.Parallel()
	l := newLimiter(4, testBreaker)
	fail := errors.New("503")
	attempt := func(key string, err error) {
		t.Helper()
		done, ok := l.allow(key)
		require.True(t, ok, "%s allowed", key)
		done(err)
	}
	attempt("x", fail)
	attempt("x", fail)
	attempt("x", transports.Permanent(errors.New("404"))) // a success for the breaker
	attempt("x", fail)
	attempt("x", transports.ErrNotReady) // excluded
	attempt("x", fail)
	attempt("y", fail)
	attempt("x", fail) // third in a row
	_, ok := l.allow("x")
	require.False(t, ok, "open after 3 consecutive failures")
	attempt("y", nil)
}

// TestBreakerHalfOpen: after its open period the breaker lets a probe
// through; a success closes it, a failure opens it again.
func TestBreakerHalfOpen(t *testing.T) {
	t.Parallel()
	l := newLimiter(4, breakerSettings{failures: 1, open: time.Millisecond, probes: 1})
	done, ok := l.allow("x")
	require.True(t, ok)
	done(errors.New("timeout"))
	probe := func() func(error) {
		var d func(error)
		require.Eventually(t, func() bool { d, ok = l.allow("x"); return ok }, 10*time.Second, time.Millisecond, "half-open")
		return d
	}
	d := probe()
	_, ok = l.allow("x")
	require.False(t, ok, "one probe at a time")
	d(errors.New("still down"))
	d = probe()
	d(nil)
	for range 10 {
		d, ok = l.allow("x")
		require.True(t, ok, "closed after a successful probe")
		d(nil)
	}
}

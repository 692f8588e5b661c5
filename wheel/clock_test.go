package wheel_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/wheel"
)

func received(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeClock(t *testing.T) {
	t.Parallel()
	c := wheel.NewFakeClock(t0)
	require.Equal(t, t0, c.Now())

	a := c.NewTimer(time.Second)
	b := c.NewTimer(2 * time.Second)
	require.Equal(t, 2, c.Waiters())
	require.Equal(t, []time.Time{t0.Add(time.Second), t0.Add(2 * time.Second)}, c.Deadlines())

	c.Advance(time.Second - 1)
	_, ok := received(a.C())
	require.False(t, ok, "fired early")

	c.Advance(1)
	v, ok := received(a.C())
	require.True(t, ok)
	require.Equal(t, t0.Add(time.Second), v)
	require.Equal(t, 1, c.Waiters())

	// Stop reports whether it stopped a waiting timer.
	require.True(t, b.Stop())
	require.False(t, b.Stop())
	c.Advance(time.Hour)
	_, ok = received(b.C())
	require.False(t, ok, "a stopped timer fired")

	// Reset re-arms from the current time and drops an unreceived value.
	require.False(t, a.Reset(time.Minute), "a fired timer is not waiting")
	c.Advance(time.Minute) // fires a; the value stays unreceived
	require.False(t, a.Reset(time.Minute))
	_, ok = received(a.C())
	require.False(t, ok, "stale value after Reset")
	require.True(t, a.Reset(time.Minute), "a re-armed timer is waiting")
	require.Equal(t, []time.Time{c.Now().Add(time.Minute)}, c.Deadlines())
	require.True(t, a.Stop())

	// Set moves to any time; d <= 0 fires at once.
	c.Set(t0)
	require.Equal(t, t0, c.Now())
	z := c.NewTimer(0)
	_, ok = received(z.C())
	require.True(t, ok)
}

func TestFakeClockBlockUntil(t *testing.T) {
	t.Parallel()
	c := wheel.NewFakeClock(t0)
	armed := make(chan wheel.Timer)
	go func() { armed <- c.NewTimer(time.Second) }()
	c.BlockUntil(1)
	tm := <-armed

	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	require.NoError(t, c.BlockUntilDeadline(ctx, t0.Add(time.Second)))
	require.NoError(t, c.BlockUntilContext(ctx, 1))

	short, cancelShort := context.WithCancel(t.Context())
	cancelShort()
	require.ErrorIs(t, c.BlockUntilContext(short, 2), context.Canceled)
	require.ErrorIs(t, c.BlockUntilDeadline(short, t0), context.Canceled)
	require.True(t, tm.Stop())
}

func TestSystemClock(t *testing.T) {
	t.Parallel()
	c := wheel.SystemClock()
	before := time.Now()
	require.False(t, c.Now().Before(before))
	tm := c.NewTimer(time.Hour)
	require.True(t, tm.Stop())
	require.False(t, tm.Reset(time.Millisecond))
	select {
	case <-tm.C():
	case <-time.After(waitTimeout):
		t.Fatal("system timer did not fire")
	}
}

func TestOffsetClock(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		offset time.Duration
	}{
		{"zero", 0},
		{"ahead", 30 * time.Second},
		{"behind", -30 * time.Second},
		{"a nanosecond behind", -1},
		{"a day ahead", 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			base := wheel.NewFakeClock(t0)
			c := wheel.OffsetClock(base, tc.offset)
			require.Equal(t, t0.Add(tc.offset), c.Now(), "Now reads the base time plus the offset")
			base.Advance(time.Minute)
			require.Equal(t, t0.Add(time.Minute+tc.offset), c.Now(), "the offset clock moves with its base")

			// Timers wait a duration of the base clock: the offset does
			// not make them fire sooner or later.
			tm := c.NewTimer(time.Second)
			base.Advance(time.Second - 1)
			_, ok := received(tm.C())
			require.False(t, ok, "fired early")
			base.Advance(1)
			_, ok = received(tm.C())
			require.True(t, ok, "fired on time")
			require.False(t, tm.Reset(time.Second), "a fired timer is not waiting")
			require.True(t, tm.Stop())
		})
	}
}

func TestOffsetClockSystem(t *testing.T) {
	t.Parallel()
	const offset = -90 * time.Second
	c := wheel.OffsetClock(wheel.SystemClock(), offset)
	before := time.Now()
	got := c.Now()
	after := time.Now()
	require.False(t, got.Before(before.Add(offset)), "%v is before %v", got, before.Add(offset))
	require.False(t, got.After(after.Add(offset)), "%v is after %v", got, after.Add(offset))
	// Wall clock, as the node stamps timers with it.
	require.InDelta(t, before.Add(offset).UnixMilli(), got.UnixMilli(), float64(after.Sub(before).Milliseconds()+1))
}

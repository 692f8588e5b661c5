package node

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
)

// TestRetryWait checks the backoff formula: after the n-th failed attempt,
// uniform in [min, min(max, min·2^(n-1))]; a Retry-After clamped to
// [min, max].
func TestRetryWait(t *testing.T) {
	t.Parallel()
	p := retryPolicy{attempts: 20, min: time.Second, max: 10 * time.Second}
	err := errors.New("503")
	for n := 1; n <= 12; n++ {
		limit := min(p.max, p.min<<(n-1))
		lo, hi := limit, time.Duration(0)
		for range 500 {
			w := p.wait(n, err)
			require.GreaterOrEqual(t, w, p.min, "n=%d", n)
			require.LessOrEqual(t, w, limit, "n=%d", n)
			lo, hi = min(lo, w), max(hi, w)
		}
		if n > 1 {
			require.Greater(t, hi-lo, (limit-p.min)/2, "n=%d: jitter spreads over the range", n)
		}
	}
	require.Equal(t, time.Second, p.wait(1, err), "the first retry waits min")
	huge := retryPolicy{attempts: 100, min: time.Millisecond, max: time.Duration(skyring.MaxBackoffLimit) * time.Millisecond}
	require.LessOrEqual(t, huge.wait(100, err), huge.max, "no overflow at many attempts")

	for ra, want := range map[time.Duration]time.Duration{
		0: time.Second, 3 * time.Second: 3 * time.Second, time.Hour: 10 * time.Second,
	} {
		require.Equal(t, want, p.wait(1, transports.WithRetryAfter(err, ra)), "Retry-After %v", ra)
	}
}

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	d := &delivery{attempts: 5, minBackoff: time.Second, maxBackoff: time.Hour}
	pol := func(r skyring.Retry) retryPolicy {
		return d.policy(&skyring.Timer{Callback: skyring.Callback{Retry: r}})
	}
	require.Equal(t, retryPolicy{5, time.Second, time.Hour}, pol(skyring.Retry{}))
	require.Equal(t, retryPolicy{2, 200 * time.Millisecond, time.Minute}, pol(skyring.Retry{Attempts: 2, MinBackoff: 200, MaxBackoff: 60000}))
	require.Equal(t, retryPolicy{5, 500 * time.Millisecond, 500 * time.Millisecond}, pol(skyring.Retry{MaxBackoff: 500}), "a max below the node's min lowers the min")
	require.Equal(t, retryPolicy{5, 2 * time.Hour, 2 * time.Hour}, pol(skyring.Retry{MinBackoff: 7200000}), "a min above the node's max raises the max")
}

func TestNodeSide(t *testing.T) {
	t.Parallel()
	require.True(t, nodeSide(errNoBus))
	require.True(t, nodeSide(skyring.ErrClosed))
	require.False(t, nodeSide(errors.New("connection refused")))
	require.False(t, nodeSide(transports.Permanent(errors.New("bad"))))
}

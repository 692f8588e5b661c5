package node

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/transports"
)

// Retries. A failed delivery attempt is retried while the timer has
// attempts left, unless the failure is final (transports.ErrPermanent). The
// retry is no sleeping goroutine: the remover stores the timer with its
// attempt count and next attempt time (Timer.Attempts, Timer.Next), then
// arms it in the wheel at that time, so a retry survives a restart and
// travels with a hand-off, and is never tried before its next attempt time.
//
// The wait after the n-th failed attempt (n = 1, 2, ...) is exponential
// with full jitter above a floor:
//
//	cap(n) = min(max, min·2^(n-1))
//	wait   = uniform in [min, cap(n)]
//
// so the first retry waits exactly min, the second between min and 2·min,
// and so on up to max. A failure carrying a Retry-After
// (transports.RetryAfter) waits that long instead, clamped to [min, max].

// retryPolicy is a timer's effective retry policy: its callback.retry, the
// node's defaults for what that leaves out.
type retryPolicy struct {
	attempts int
	min, max time.Duration
}

// policy returns t's effective retry policy. When only one bound is the
// timer's own and it contradicts the node's other bound, the timer's wins:
// a max below the node's min lowers the min, a min above the node's max
// raises the max.
func (d *delivery) policy(t *skyring.Timer) retryPolicy {
	r := t.Callback.Retry
	p := retryPolicy{
		attempts: cmp.Or(r.Attempts, d.attempts),
		min:      cmp.Or(time.Duration(r.MinBackoff)*time.Millisecond, d.minBackoff),
		max:      cmp.Or(time.Duration(r.MaxBackoff)*time.Millisecond, d.maxBackoff),
	}
	if p.max < p.min {
		if r.MaxBackoff != 0 {
			p.min = p.max
		} else {
			p.max = p.min
		}
	}
	return p
}

// wait is how long to wait after the n-th failed attempt (n ≥ 1) failed
// with err.
func (p retryPolicy) wait(n int, err error) time.Duration {
	if ra, ok := transports.RetryAfter(err); ok {
		return min(max(ra, p.min), p.max)
	}
	limit := p.min
	for i := 1; i < n && limit < p.max; i++ {
		limit *= 2
	}
	limit = min(limit, p.max)
	if limit <= p.min {
		return p.min
	}
	return p.min + rand.N(limit-p.min+1)
}

// nodeSide reports whether a failed delivery was the node's own condition
// (a transport not ready, the node closing): it costs no attempt.
func nodeSide(err error) bool {
	return errors.Is(err, transports.ErrNotReady) || errors.Is(err, skyring.ErrClosed)
}

// outcome is what a delivery leaves to the remover: t as it must be
// stored (delivered, failed, or pending with its next attempt), ev its
// event (none for an attempt the node did not make), token the attempt's
// (index.beginAttempt).
type outcome struct {
	ev      bus.TimerEvent
	t       *skyring.Timer
	token   uint64
	due     int64  // when the attempt was due (unix ns), for the lateness metric
	version uint64 // shared store: the record's version after the attempt's claim
}

// failed turns a failed attempt of t into its outcome: a retry, or the
// final failure (a dead letter). ev is the outcome event as far as it is
// known.
func (d *delivery) failed(t *skyring.Timer, err error, ev bus.TimerEvent) outcome {
	now := d.clock.Now()
	p := d.policy(t)
	if nodeSide(err) {
		// Not an attempt: try again after the shortest wait, same count.
		d.log.Info("delivery not attempted; trying again", "timer_id", t.ID, "err", err)
		t.Next = now.Add(p.min).UnixNano()
		return outcome{t: t}
	}
	t.Attempts++
	t.LastError, t.LastStatus = err.Error(), 0
	if code, ok := transports.Status(err); ok {
		t.LastStatus = code
	}
	ev.Attempt, ev.Error = t.Attempts, err.Error()
	if t.Attempts >= p.attempts || errors.Is(err, transports.ErrPermanent) {
		t.State, t.Finished, t.Next = skyring.StateFailed, now.UnixNano(), 0
		ev.Type, ev.Message = bus.EventFail, fmt.Sprintf("delivery failed after %d attempt(s)", t.Attempts)
		d.log.Warn("delivery failed", "timer_id", t.ID, "transport", t.Callback.Transport, "attempts", t.Attempts, "err", err)
		return outcome{ev: ev, t: t}
	}
	t.Next = now.Add(p.wait(t.Attempts, err)).UnixNano()
	ev.Type, ev.Next = bus.EventRetry, ms(t.Next)
	ev.Message = fmt.Sprintf("attempt %d of %d failed; retrying", t.Attempts, p.attempts)
	d.log.Info("delivery attempt failed; retrying", "timer_id", t.ID, "attempt", t.Attempts, "next", time.Unix(0, t.Next), "err", err)
	return outcome{ev: ev, t: t}
}

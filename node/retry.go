package node

import (
	"cmp"
	"context"
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

// outcome is what a delivery leaves to the remover: remove the timer and
// publish ev, or, when retry is set, store retry (its next attempt) and
// arm it, then publish ev (if it has a type).
type outcome struct {
	ev    bus.TimerEvent
	retry *skyring.Timer
}

// failed turns a failed attempt of t into its outcome: a retry, or the
// final fail event. ev is the outcome event as far as it is known.
func (d *delivery) failed(t *skyring.Timer, err error, ev bus.TimerEvent) outcome {
	now := d.clock.Now()
	p := d.policy(t)
	if nodeSide(err) {
		// Not an attempt: try again after the shortest wait, same count.
		d.log.Info("delivery not attempted; trying again", "timer_id", t.ID, "err", err)
		t.Next = now.Add(p.min).UnixNano()
		return outcome{retry: t}
	}
	t.Attempts++
	ev.Attempt, ev.Error = t.Attempts, err.Error()
	if t.Attempts >= p.attempts || errors.Is(err, transports.ErrPermanent) {
		ev.Type, ev.Message = bus.EventFail, fmt.Sprintf("delivery failed after %d attempt(s)", t.Attempts)
		d.log.Warn("delivery failed", "timer_id", t.ID, "transport", t.Callback.Transport, "attempts", t.Attempts, "err", err)
		return outcome{ev: ev}
	}
	t.Next = now.Add(p.wait(t.Attempts, err)).UnixNano()
	ev.Type, ev.Next = bus.EventRetry, ms(t.Next)
	ev.Message = fmt.Sprintf("attempt %d of %d failed; retrying", t.Attempts, p.attempts)
	d.log.Info("delivery attempt failed; retrying", "timer_id", t.ID, "attempt", t.Attempts, "next", time.Unix(0, t.Next), "err", err)
	return outcome{ev: ev, retry: t}
}

// storeRetries writes the next attempt of each retry outcome of batch and
// arms it. An id created again since its delivery began belongs to the new
// generation, whose record stays: that retry is dropped, and its event
// says the timer failed. The others are busy while their record is written
// and are armed at their next attempt time once it is; if the write fails
// they stay stored as they were and fire again at restart.
func (d *delivery) storeRetries(batch []outcome) {
	ids := make([]string, 0, len(batch))
	for _, o := range batch {
		if o.retry != nil {
			ids = append(ids, o.retry.ID)
		}
	}
	if len(ids) == 0 {
		return
	}
	own := d.index.markBusy(ids) // in the order of ids, duplicates dropped
	timers := make([]*skyring.Timer, 0, len(own))
	evs := make([]bus.TimerEvent, 0, len(ids))
	for _, o := range batch {
		switch {
		case o.retry == nil:
		case len(timers) < len(own) && own[len(timers)] == o.retry.ID:
			timers = append(timers, o.retry)
			evs = append(evs, o.ev)
		case o.ev.Type == bus.EventRetry:
			o.ev.Type, o.ev.Next, o.ev.Message = bus.EventFail, 0, "replaced by a new timer of the same id; not retried"
			evs = append(evs, o.ev)
		}
	}
	if len(timers) == 0 {
		// Nothing to write.
	} else if err := d.store.Put(context.Background(), timers...); err != nil {
		d.index.releaseBusy(own...)
		d.log.Error("storing the next attempt of timers failed; they fire again after a restart", "count", len(own), "err", err)
		d.fault("store retry", err)
		return
	}
	for _, t := range timers {
		d.index.rearmBusy(t.ID, t.Next)
	}
	for _, ev := range evs {
		if ev.Type != "" {
			d.events.PublishTimerEvent(ev)
		}
	}
}

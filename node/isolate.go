package node

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/skyring/skyring/transports"
)

// Isolation per destination. A destination is what transports.Registry.Key
// names: for http a callback URL's host and port, for a transport without
// transports.Keyer the transport itself. Two rules keep one dead, failing
// or hanging destination from taking the delivery workers from the others:
//
//   - At most limit attempts to one destination are in flight
//     (Options.DeliveryPerDestination, default max(4, workers/8)). A worker
//     that reads a fired timer whose destination is at its limit does not
//     wait: it parks the timer's id in that destination's FIFO (ids only;
//     the id stays busy in the index, its record in storage) and takes the
//     next id. When an attempt to that destination ends, the worker that
//     ran it takes the destination's next parked id (the slot passes to
//     it) and delivers it, reading its record again, so "never early" and
//     the generation rules hold as for any fired timer. A parked id is
//     therefore never without an attempt in flight before it, and never
//     left busy: at shutdown, parked ids are released (they stay stored
//     and fire at restart).
//   - A circuit breaker per destination (sony/gobreaker/v2): it opens
//     after breakerFailures consecutive failed attempts (5xx, network
//     errors, timeouts, panics; not a permanent 4xx, which is the receiver
//     answering, nor a node-side condition), stays open for breakerOpen,
//     then lets breakerProbes attempts through half-open: a success closes
//     it, a failure opens it again. While it is open, a due timer of that
//     destination is not attempted: it is armed again in the wheel after
//     breakerRetry (plus up to half of it of jitter), costing no attempt,
//     like transports.ErrNotReady. No goroutine sleeps on it.

// Defaults of the breaker (Options.DeliveryBreaker*).
const (
	DefaultBreakerFailures = 20              // consecutive failed attempts that open a destination's breaker
	DefaultBreakerOpen     = 5 * time.Second // how long it stays open before probes
	DefaultBreakerProbes   = 3               // attempts let through half-open
	DefaultBreakerRetry    = time.Second     // a timer met an open breaker: armed again after this (+ up to half of it)
)

// DefaultDeliveryPerDestination is Options.DeliveryPerDestination's
// default for a number of workers: an eighth of them, at least 4 (and at
// most all of them).
func DefaultDeliveryPerDestination(workers int) int {
	return min(max(4, workers/8), max(workers, 1))
}

// breakerSettings configure the breakers of a limiter.
type breakerSettings struct {
	failures int           // consecutive failures that open it
	open     time.Duration // open period
	probes   int           // attempts half-open
}

// dest is one destination's state.
type dest struct {
	inflight int      // attempts holding a slot
	parked   []string // FIFO of ids waiting for a slot
	head     int      // parked[head:] are waiting
	breaker  *gobreaker.TwoStepCircuitBreaker[struct{}]
}

// limiter bounds the attempts in flight per destination, parks the ids
// beyond, and holds the destinations' breakers.
type limiter struct {
	limit int
	bs    breakerSettings

	mu    sync.Mutex
	dests map[string]*dest
}

func newLimiter(limit int, bs breakerSettings) *limiter {
	return &limiter{limit: max(limit, 1), bs: bs, dests: make(map[string]*dest)}
}

func (l *limiter) get(key string) *dest {
	d := l.dests[key]
	if d == nil {
		bs := l.bs
		d = &dest{breaker: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:        key,
			MaxRequests: uint32(max(bs.probes, 1)),
			Timeout:     bs.open,
			ReadyToTrip: func(c gobreaker.Counts) bool {
				return c.ConsecutiveFailures >= uint32(max(bs.failures, 1))
			},
			IsSuccessful: destinationOK,
			IsExcluded:   nodeSide,
		})}
		l.dests[key] = d
	}
	return d
}

// destinationOK reports whether an attempt's error says the destination
// is healthy: none, or a permanent failure (the receiver answered).
func destinationOK(err error) bool {
	return err == nil || errors.Is(err, transports.ErrPermanent)
}

// acquire takes a slot of key for id, or parks id and reports false.
func (l *limiter) acquire(key, id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.get(key)
	if d.inflight < l.limit {
		d.inflight++
		return true
	}
	d.parked = append(d.parked, id)
	return false
}

// release ends an attempt holding a slot of key. If an id is parked
// behind it, the slot passes to that id, which release returns (ok);
// otherwise the slot is freed.
func (l *limiter) release(key string) (next string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.dests[key]
	if d == nil {
		return "", false // not acquired: a bug, but never block
	}
	if d.head < len(d.parked) {
		next = d.parked[d.head]
		d.parked[d.head] = ""
		d.head++
		if d.head == len(d.parked) {
			d.parked, d.head = d.parked[:0], 0
		} else if d.head > 1024 && d.head*2 > len(d.parked) {
			d.parked = append(d.parked[:0:0], d.parked[d.head:]...)
			d.head = 0
		}
		return next, true
	}
	d.inflight--
	l.forget(key, d)
	return "", false
}

// forget drops an idle destination whose breaker has nothing to remember.
// Called with mu held.
func (l *limiter) forget(key string, d *dest) {
	if d.inflight == 0 && d.head == len(d.parked) && d.breaker.State() == gobreaker.StateClosed &&
		d.breaker.Counts().ConsecutiveFailures == 0 {
		delete(l.dests, key)
	}
}

// allow asks key's breaker whether an attempt may go; done reports its
// error. Not allowed (open, or half-open with its probes out): false.
func (l *limiter) allow(key string) (done func(error), ok bool) {
	l.mu.Lock()
	d := l.get(key)
	l.mu.Unlock()
	done, err := d.breaker.Allow()
	if err != nil {
		return nil, false
	}
	return done, true
}

// drain takes every parked id out (shutdown) and returns them.
func (l *limiter) drain() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ids []string
	for _, d := range l.dests {
		ids = append(ids, d.parked[d.head:]...)
		d.parked, d.head = nil, 0
	}
	return ids
}

// nparked is how many ids are parked (tests).
func (l *limiter) nparked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, d := range l.dests {
		n += len(d.parked) - d.head
	}
	return n
}

package node

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/wheel"
)

// Queue sizes of delivery.
const (
	deliverQueueSize = 4096 // fired timers waiting for a worker
	removeQueueSize  = 8192 // delivered timers waiting for their removal
	maxRemoveBatch   = 4096 // most timers removed in one storage write
)

// eventPublisher is the part of the bus delivery needs.
type eventPublisher interface {
	PublishTimerEvent(bus.TimerEvent)
}

// delivery runs the callbacks of the timers the wheel hands out: a pool of
// workers, then a remover that deletes delivered timers from storage in
// batches and only then publishes their outcome events.
type delivery struct {
	node       string
	log        *slog.Logger
	clock      wheel.Clock
	store      storage.Store
	transports *transports.Registry
	events     eventPublisher
	timeout    time.Duration
	attempts   int                              // default retry policy (Options.DeliveryAttempts, ...)
	minBackoff time.Duration                    //
	maxBackoff time.Duration                    //
	retention  time.Duration                    // Options.TimerRetention: < 0 keeps no fate of delivered timers
	index      *index                           // set by Node.build once the index exists
	fault      func(op string, err error) error // a storage write failed (Node.storageFault)
	fence      func(*skyring.Timer) uint64      // the fencing token of an attempt (Node.fence)
	dests      *limiter                         // per-destination slots, parked ids, breakers (isolate.go)
	openRetry  time.Duration                    // a timer met an open breaker: armed again after this
	metrics    *metrics                         // nil: not instrumented
	// claims, in shared-store mode, claims every attempt in the store
	// before its callback runs (claim.go); nil otherwise.
	claims      storage.Versioned
	unconfirmed sync.Map // id -> claimMark: claims whose write was not confirmed (claim.go)

	queue   chan string
	workers sync.WaitGroup
	// abandon is cancelled when stop gives up waiting for the deliveries
	// under way: their callbacks are cancelled and they stay stored.
	abandon     context.Context
	abandonStop context.CancelFunc
	closing     <-chan struct{} // the node is closing: enqueue stops blocking

	removals chan outcome // write the fate or the next attempt, then publish
	remover  sync.WaitGroup
}

func newDelivery(n *Node) *delivery {
	d := &delivery{
		node:       n.id,
		log:        n.log,
		clock:      n.clock,
		store:      n.store,
		transports: n.transports,
		events:     n.bus,
		timeout:    n.opts.DeliveryTimeout,
		attempts:   n.opts.DeliveryAttempts,
		minBackoff: n.opts.DeliveryMinBackoff,
		maxBackoff: n.opts.DeliveryMaxBackoff,
		retention:  n.opts.TimerRetention,
		fault:      n.storageFault,
		fence:      n.fence,
		queue:      make(chan string, deliverQueueSize),
		removals:   make(chan outcome, removeQueueSize),
		openRetry:  n.opts.DeliveryBreakerRetry,
		metrics:    n.metrics,
		dests: newLimiter(n.opts.DeliveryPerDestination, breakerSettings{
			failures: n.opts.DeliveryBreakerFailures,
			open:     n.opts.DeliveryBreakerOpen,
			probes:   n.opts.DeliveryBreakerProbes,
		}),
	}
	d.abandon, d.abandonStop = context.WithCancel(context.Background())
	return d
}

// start runs workers delivery workers and the remover; enqueue stops
// blocking once closing is done.
func (d *delivery) start(closing <-chan struct{}, workers int) {
	d.closing = closing
	d.remover.Add(1)
	go d.removeLoop()
	for range workers {
		d.workers.Add(1)
		go d.work()
	}
}

// stop lets the queued and running deliveries finish, bounded by ctx; past
// it, they are abandoned (cancelled, kept in storage: they fire again at
// restart). Then the remover writes what is left and exits. The wheel must
// be stopped first: nothing may be enqueued any more.
func (d *delivery) stop(ctx context.Context) {
	close(d.queue)
	done := make(chan struct{})
	go func() { d.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		d.log.Warn("shutdown timeout: abandoning deliveries under way; they stay stored and fire on restart")
		d.abandonStop()
		<-done
	}
	d.abandonStop()
	// Every parked id had an attempt in flight before it, whose worker
	// took it over; should one be left, it stays stored.
	d.index.releaseBusy(d.dests.drain()...)
	close(d.removals)
	d.remover.Wait()
}

// enqueue queues fired timers for the workers. It blocks while the queue is
// full, which slows the wheel, not the clock: a timer is never handed out
// early, only later under overload. Once the node is closing it drops the
// rest: they stay in storage and fire on restart.
func (d *delivery) enqueue(ids []string) {
	for _, id := range ids {
		select {
		case d.queue <- id:
		case <-d.closing:
			d.index.releaseBusy(ids...) // not delivered: stays stored
			return
		}
	}
}

func (d *delivery) work() {
	defer d.workers.Done()
	for id := range d.queue {
		d.run(id)
	}
}

// run delivers id, then, while the attempts it made hand their slot on
// (limiter.release), the ids parked behind them.
func (d *delivery) run(id string) {
	slot := ""
	for {
		if d.abandon.Err() != nil {
			d.index.releaseBusy(id) // abandoned at shutdown; it stays stored
		} else {
			slot = d.deliver(id, slot)
		}
		if slot == "" {
			return
		}
		next, ok := d.dests.release(slot)
		if !ok {
			return
		}
		id = next
	}
}

// deliver runs one fired timer's callback and queues its outcome for the
// remover: its fate (delivered, failed) or its next attempt (retry.go). If
// the node gives up on it at shutdown, it stays stored and fires again on
// restart: a delivery may repeat after a crash, it is never lost.
//
// slot is the destination whose slot the caller holds for id (passed on
// from an attempt that ended), or "". deliver returns the destination
// whose slot it holds when it returns, for the caller to release, or ""
// (none, or id was parked).
func (d *delivery) deliver(id, slot string) string {
	var version uint64
	var t *skyring.Timer
	var err error
	if d.claims != nil {
		t, version, err = d.claims.GetVersion(context.Background(), id)
	} else {
		t, err = d.store.Get(context.Background(), id)
	}
	if d.claims != nil && errors.Is(err, skyring.ErrTimerNotFound) {
		d.index.releaseBusy(id) // gone: finished and removed by another node
		return slot
	}
	if err != nil {
		if d.claims != nil {
			// The shared store is unavailable for now: try again soon.
			d.index.rearmBusy(id, d.clock.Now().Add(claimRetry).UnixNano())
			d.log.Warn("reading a fired timer failed; trying again", "timer_id", id, "err", err, "in", claimRetry)
			return slot
		}
		// Not delivered and not removed: a storage that cannot be read now
		// may be readable at restart.
		d.index.releaseBusy(id)
		d.log.Error("reading a fired timer failed; it stays stored", "timer_id", id, "err", err)
		return slot
	}
	if t.State != skyring.StatePending {
		// Finished since it was armed here: by another node that owned it
		// for a moment (shared store), or the arm was stale. Nothing to do.
		if t.State == skyring.StateFailed {
			d.index.addFailed(id)
		} else {
			d.index.releaseBusy(id)
		}
		return slot
	}
	executed := d.clock.Now().UnixNano()
	due := t.FireAt()
	claimed := d.claims != nil && d.ownClaim(t)
	if claimed {
		due = t.Due // the lease is this node's own: the attempt goes on
		if t.Attempts > 0 {
			due = executed // (a retry: its time is not kept under the lease)
		}
	}
	if at := due; executed < at {
		// Never early: the clock stepped back after the wheel handed the
		// timer out. Arm it again: it fires when the clock reads its due
		// (or next attempt) time.
		d.index.rearmBusy(id, at)
		if d.claims != nil && t.Next == at {
			// Claimed by a node that holds it until at (claim.go), or a
			// retry written by another node: not this node's clock.
			return slot
		}
		d.log.Warn("clock behind a fired timer's due time: re-armed", "timer_id", t.ID, "due", time.Unix(0, at), "now", time.Unix(0, executed))
		return slot
	}
	if slot == "" {
		// A busy id's record does not change, so neither does its key: a
		// slot passed on is always the one of id's destination.
		slot = d.transports.Key(t.Callback)
		if !d.dests.acquire(slot, id) {
			return "" // parked, still busy: an attempt ending takes it
		}
	}
	done, ok := d.dests.allow(slot)
	if !ok {
		// The destination's breaker is open: not attempted, no attempt
		// counted; armed again shortly, the record unchanged.
		wait := d.openRetry + rand.N(d.openRetry/2+1)
		d.index.rearmBusy(id, d.clock.Now().Add(wait).UnixNano())
		d.log.Debug("destination's breaker open: delivery put off", "timer_id", t.ID, "destination", slot, "wait", wait)
		return slot
	}
	if d.claims != nil && !claimed {
		v, ok := d.claim(t, version)
		if !ok {
			done(skyring.ErrClosed) // not attempted: not held against the destination
			return slot
		}
		version = v
	}
	// The record is read: a create of the same id may go ahead now, as a
	// new generation; this attempt carries its own copy, and its outcome
	// is written only if no such create came (endAttempt).
	token := d.index.beginAttempt(id)
	t.Fence = d.fence(t)
	d.metrics.attemptStarted(t.Callback.Transport, due, executed)
	d.events.PublishTimerEvent(bus.TimerEvent{
		Type: bus.EventExecute, Timer: t.ID, Node: d.node, Attempt: t.Attempt(), Fence: t.Fence,
		Created: ms(t.Created), Due: ms(t.Due), Executed: ms(executed), Payload: t.Data,
	})
	ctx, cancel := context.WithTimeout(d.abandon, d.timeout)
	err = d.transports.Execute(ctx, t) // a panicking transport is a failed attempt
	cancel()
	if err != nil && d.abandon.Err() != nil {
		// Abandoned at shutdown: it stays stored as it was.
		done(skyring.ErrClosed) // node-side: not held against the destination
		if d.index.endAttempt(id, token) {
			d.index.releaseBusy(id)
		}
		return slot
	}
	done(err)
	if pe := (*transports.PanicError)(nil); errors.As(err, &pe) {
		d.log.Error("transport panicked; counted as a failed attempt", "timer_id", t.ID, "transport", pe.Transport, "panic", pe.Value, "stack", pe.Stack)
	}
	ev := bus.TimerEvent{Timer: t.ID, Node: d.node, Created: ms(t.Created), Due: ms(t.Due), Executed: ms(executed)}
	var o outcome
	if err != nil {
		o = d.failed(t, err, ev)
	} else {
		t.Attempts++
		t.State, t.Finished, t.Next = skyring.StateDelivered, d.clock.Now().UnixNano(), 0
		ev.Type, ev.Message, ev.Attempt = bus.EventSuccess, "delivered", t.Attempts
		o = outcome{ev: ev, t: t}
	}
	o.token, o.due, o.version = token, due, version
	// The outcome event goes out once the outcome is on disk, so a
	// consumer that has seen success or fail knows that no crash can
	// deliver the timer again.
	d.removals <- o
	return slot
}

// removeLoop writes the outcomes of deliveries in batches: the fate of
// those delivered or finally failed (or their removal, when the node keeps
// no fate), the next attempt of those to retry; then it publishes their
// events. While one batch is written (and fsynced), the next one gathers,
// so deliveries never wait on the disk and a burst of deliveries costs a
// few writes, not one each. It exits when removals is closed and drained.
func (d *delivery) removeLoop() {
	defer d.remover.Done()
	batch := make([]outcome, 0, maxRemoveBatch)
	for o := range d.removals {
		batch = gather(d.removals, append(batch[:0], o), maxRemoveBatch)
		d.write(batch)
	}
}

// write stores the outcomes of batch, then publishes their events. An
// outcome whose id was created again since its attempt began belongs to an
// outdated generation: nothing is written for it, the new generation's
// record stays, and a retry it asked for is dropped (its event says so).
// The others are busy while they are written; if the write fails they stay
// stored as they were, fire again at restart, and the node stops.
func (d *delivery) write(batch []outcome) {
	puts := make([]*skyring.Timer, 0, len(batch))
	var dels []string
	evs := make([]bus.TimerEvent, 0, len(batch))
	cur := batch[:0:0]
	for _, o := range batch {
		if !d.index.endAttempt(o.t.ID, o.token) {
			d.metrics.attemptEnded(o.t.Callback.Transport, deliverySuperseded, o.due, d.clock.Now().UnixNano())
			if o.ev.Type == bus.EventRetry || (o.ev.Type == "" && o.t.State == skyring.StatePending) {
				o.ev.Type, o.ev.Next, o.ev.Message = bus.EventFail, 0, "replaced by a new timer of the same id; not retried"
			}
			if o.ev.Type != "" {
				evs = append(evs, o.ev)
			}
			continue
		}
		cur = append(cur, o)
		if o.t.State == skyring.StateDelivered && d.retention < 0 {
			dels = append(dels, o.t.ID)
		} else {
			puts = append(puts, o.t)
		}
	}
	if d.claims != nil {
		cur = d.writeClaimed(cur)
	} else {
		if err := d.store.Put(context.Background(), puts...); err != nil {
			d.writeFailed(cur, "store delivery outcomes", err)
			return
		}
		if err := d.store.Delete(context.Background(), dels...); err != nil {
			d.writeFailed(cur, "remove delivered", err)
			return
		}
	}
	now := d.clock.Now().UnixNano()
	for _, o := range cur {
		switch o.t.State {
		case skyring.StatePending:
			d.index.rearmBusy(o.t.ID, o.t.Next)
			d.metrics.attemptEnded(o.t.Callback.Transport, deliveryRetry, o.due, now)
		case skyring.StateFailed:
			d.index.addFailed(o.t.ID)
			d.metrics.attemptEnded(o.t.Callback.Transport, deliveryFailed, o.due, now)
		default:
			d.index.releaseBusy(o.t.ID)
			d.metrics.attemptEnded(o.t.Callback.Transport, deliverySuccess, o.due, now)
		}
		if o.ev.Type != "" {
			evs = append(evs, o.ev)
		}
	}
	for _, ev := range evs {
		d.events.PublishTimerEvent(ev)
	}
}

// writeFailed handles a failed write of outcomes: nothing about them may
// be published, they fire again after a restart, and the node fails stop.
func (d *delivery) writeFailed(cur []outcome, op string, err error) {
	for _, o := range cur {
		d.index.releaseBusy(o.t.ID)
	}
	d.log.Error("writing delivery outcomes failed; those timers fire again after a restart", "count", len(cur), "err", err)
	d.fault(op, err)
}

// gather appends to batch what c holds right now, up to max items, without
// waiting.
func gather[T any](c <-chan T, batch []T, max int) []T {
	for len(batch) < max {
		select {
		case v, ok := <-c:
			if !ok {
				return batch
			}
			batch = append(batch, v)
		default:
			return batch
		}
	}
	return batch
}

package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

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
	index      *index                           // set by Node.build once the index exists
	fault      func(op string, err error) error // a storage write failed (Node.storageFault)

	queue   chan string
	workers sync.WaitGroup
	// abandon is cancelled when stop gives up waiting for the deliveries
	// under way: their callbacks are cancelled and they stay stored.
	abandon     context.Context
	abandonStop context.CancelFunc
	closing     <-chan struct{} // the node is closing: enqueue stops blocking

	removals chan outcome // remove from storage or store the retry, then publish
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
		fault:      n.storageFault,
		queue:      make(chan string, deliverQueueSize),
		removals:   make(chan outcome, removeQueueSize),
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
		if d.abandon.Err() != nil {
			d.index.releaseBusy(id)
			continue // abandoned at shutdown; it stays stored
		}
		d.deliver(id)
	}
}

// deliver runs one fired timer's callback and queues its outcome: its
// removal, or its next attempt (retry.go). If the node gives up on it at
// shutdown, it stays stored and fires again on restart: a delivery may
// repeat after a crash, it is never lost.
func (d *delivery) deliver(id string) {
	t, err := d.store.Get(context.Background(), id)
	if err != nil {
		// Not delivered and not removed: a storage that cannot be read now
		// may be readable at restart.
		d.index.releaseBusy(id)
		d.log.Error("reading a fired timer failed; it stays stored", "timer_id", id, "err", err)
		return
	}
	executed := d.clock.Now().UnixNano()
	if at := t.FireAt(); executed < at {
		// Never early: the clock stepped back after the wheel handed the
		// timer out. Arm it again: it fires when the clock reads its due
		// (or next attempt) time.
		d.index.rearmBusy(id, at)
		d.log.Warn("clock behind a fired timer's due time: re-armed", "timer_id", t.ID, "due", time.Unix(0, at), "now", time.Unix(0, executed))
		return
	}
	// The record is read: a create of the same id may go ahead now; this
	// delivery carries its own copy.
	d.index.releaseBusy(id)
	d.events.PublishTimerEvent(bus.TimerEvent{
		Type: bus.EventExecute, Timer: t.ID, Node: d.node, Attempt: t.Attempt(),
		Created: ms(t.Created), Due: ms(t.Due), Executed: ms(executed), Payload: t.Data,
	})
	ctx, cancel := context.WithTimeout(d.abandon, d.timeout)
	err = d.transports.Execute(ctx, t) // a panicking transport is a failed attempt
	cancel()
	if err != nil && d.abandon.Err() != nil {
		return // abandoned at shutdown; it stays stored
	}
	if pe := (*transports.PanicError)(nil); errors.As(err, &pe) {
		d.log.Error("transport panicked; counted as a failed attempt", "timer_id", t.ID, "transport", pe.Transport, "panic", pe.Value, "stack", pe.Stack)
	}
	ev := bus.TimerEvent{Timer: t.ID, Node: d.node, Created: ms(t.Created), Due: ms(t.Due), Executed: ms(executed)}
	o := outcome{ev: ev}
	if err != nil {
		o = d.failed(t, err, ev)
	} else {
		o.ev.Type, o.ev.Message, o.ev.Attempt = bus.EventSuccess, "delivered", t.Attempt()
	}
	// The outcome event goes out once the timer is removed from storage (or
	// its next attempt stored), so a consumer that has seen success or fail
	// knows that no crash can deliver the timer again.
	d.removals <- o
}

// removeLoop writes the outcomes of deliveries in batches: it removes
// delivered (and finally failed) timers from storage and stores the next
// attempt of those to retry, then publishes their events. While one batch
// is written (and fsynced), the next one gathers, so deliveries never wait
// on the disk and a burst of deliveries costs a few writes, not one each.
// It exits when removals is closed and drained.
func (d *delivery) removeLoop() {
	defer d.remover.Done()
	batch := make([]outcome, 0, maxRemoveBatch)
	evs := make([]bus.TimerEvent, 0, maxRemoveBatch)
	ids := make([]string, 0, maxRemoveBatch)
	for o := range d.removals {
		batch = gather(d.removals, append(batch[:0], o), maxRemoveBatch)
		evs, ids = evs[:0], ids[:0]
		for i := range batch {
			if batch[i].retry == nil {
				evs = append(evs, batch[i].ev)
				ids = append(ids, batch[i].ev.Timer)
			}
		}
		d.remove(ids, evs)
		d.storeRetries(batch)
	}
}

// remove deletes the timers of ids from storage, then publishes evs.
func (d *delivery) remove(ids []string, evs []bus.TimerEvent) {
	if len(ids) == 0 {
		return
	}
	// An id created again since its delivery began belongs to the new
	// generation, whose record stays; the others are busy while their
	// removal is written.
	ids = d.index.markBusy(ids)
	err := d.store.Delete(context.Background(), ids...)
	d.index.releaseBusy(ids...)
	if err != nil {
		// Not removed: they stay stored and fire again at restart, so
		// no outcome event may say otherwise.
		d.log.Error("removing delivered timers failed; they fire again after a restart", "count", len(ids), "err", err)
		d.fault("remove delivered", err)
		return
	}
	for _, ev := range evs {
		d.events.PublishTimerEvent(ev)
	}
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

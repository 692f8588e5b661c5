package node

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
)

// fire is the wheel's hand-out: it takes the expired timers out of the index
// (from now on PUT and DELETE answer 404) and queues them for delivery. It
// blocks while the queue is full, which slows the wheel, not the clock: a
// timer is never handed out early, only later under overload.
func (n *Node) fire(batch []string) {
	n.mu.Lock()
	for _, id := range batch {
		delete(n.timers, id)
	}
	n.mu.Unlock()
	for _, id := range batch {
		select {
		case n.deliverQ <- id:
		case <-n.ctx.Done():
			// Closing: the timer stays in storage and fires on restart.
		}
	}
}

func (n *Node) deliverLoop() {
	defer n.workers.Done()
	for id := range n.deliverQ {
		if n.deliverCtx.Err() != nil {
			continue // abandoned at shutdown; it stays stored
		}
		n.deliver(id)
	}
}

// deliver runs one fired timer's callback and then removes it from storage.
// If the node gives up on it at shutdown, it stays stored and fires again on
// restart: a delivery may repeat after a crash, it is never lost.
func (n *Node) deliver(id string) {
	t, err := n.store.Get(context.Background(), id)
	if err != nil {
		// Not delivered and not removed: a storage that cannot be read now
		// may be readable at restart.
		n.log.Error("reading a fired timer failed; it stays stored", "timer_id", id, "err", err)
		return
	}
	executed := n.clock.Now().UnixNano()
	n.bus.PublishTimerEvent(bus.TimerEvent{
		Type: "execute", Timer: t.ID, Node: n.id,
		Created: ms(t.Created), Due: ms(t.Due), Executed: ms(executed), Payload: t.Data,
	})
	tr, err := n.transports.Lookup(t.Callback.Transport)
	if err == nil {
		ctx, cancel := context.WithTimeout(n.deliverCtx, n.opts.DeliveryTimeout)
		err = tr.Execute(ctx, t)
		cancel()
		if err != nil && n.deliverCtx.Err() != nil {
			return // abandoned at shutdown; it stays stored
		}
	}
	ev := bus.TimerEvent{Timer: t.ID, Node: n.id, Created: ms(t.Created), Due: ms(t.Due), Executed: ms(executed)}
	if err != nil {
		ev.Type, ev.Error, ev.Message = "fail", err.Error(), "delivery failed"
		n.log.Debug("delivery failed", "timer_id", t.ID, "err", err)
	} else {
		ev.Type, ev.Message = "success", "delivered"
	}
	// The outcome event goes out once the timer is removed from storage, so
	// a consumer that has seen success or fail knows that no crash can
	// deliver the timer again.
	n.deleteQ <- ev
}

// deleteLoop removes delivered timers from storage in batches, then
// publishes their success or fail events: while one batch is written (and
// fsynced), the next one gathers, so deliveries never wait on the disk and a
// burst of deliveries costs a few writes, not one each. It exits when
// deleteQ is closed and drained.
func (n *Node) deleteLoop() {
	defer n.deleter.Done()
	const maxBatch = 4096
	evs := make([]bus.TimerEvent, 0, maxBatch)
	ids := make([]string, 0, maxBatch)
	for ev := range n.deleteQ {
		evs = append(evs[:0], ev)
	gather:
		for len(evs) < maxBatch {
			select {
			case ev, ok := <-n.deleteQ:
				if !ok {
					break gather
				}
				evs = append(evs, ev)
			default:
				break gather
			}
		}
		ids = ids[:0]
		for i := range evs {
			ids = append(ids, evs[i].Timer)
		}
		if err := n.store.Delete(context.Background(), ids...); err != nil && !errors.Is(err, skyring.ErrClosed) {
			n.log.Error("removing delivered timers failed; they may fire again after a restart", "count", len(ids), "err", err)
		}
		for _, ev := range evs {
			n.bus.PublishTimerEvent(ev)
		}
	}
}

// recover loads every stored timer into the index and the wheel; those
// already due fire as soon as the wheel starts.
func (n *Node) recover(ctx context.Context) (int, error) {
	start := time.Now()
	count := 0
	err := n.store.Iterate(ctx, func(t *skyring.Timer) error {
		id := strings.Clone(t.ID)
		n.timers[id] = n.driver.Add(t.Due, id)
		count++
		return nil
	})
	if err != nil {
		return count, err
	}
	if count > 0 {
		n.log.Info("recovered timers", "count", count, "took", time.Since(start).Round(time.Millisecond))
	}
	return count, nil
}

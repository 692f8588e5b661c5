package node

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/storage"
)

const (
	// rebalanceSettle lets a burst of membership changes settle before
	// timers move.
	rebalanceSettle = 200 * time.Millisecond
	// handoffBatch is how many timers one hand-off command carries (the bus
	// splits a command that would exceed the NATS max payload).
	handoffBatch = 1000
	// handoffTimeout bounds one hand-off command.
	handoffTimeout = 10 * time.Second
)

// rebalancer moves the timers this node holds but does not own to their
// owners: after every change of the ring (a member joined, restarted, left
// or was dropped), after a create it had to keep for an unreachable owner,
// and when the node leaves. It also takes the timers other nodes hand to it.
type rebalancer struct {
	self   string
	log    *slog.Logger
	index  *index
	store  storage.Store
	bus    *bus.Bus
	owner  func(id string) string
	events interface {
		eventPublisher
		nodeEventPublisher
	}

	fault func(op string, err error) error // a storage write failed (Node.storageFault)

	trigger chan struct{}
	loop    sync.WaitGroup
}

func newRebalancer(n *Node) *rebalancer {
	return &rebalancer{
		self:    n.id,
		log:     n.log,
		index:   n.index,
		store:   n.store,
		bus:     n.bus,
		events:  n.bus,
		fault:   n.storageFault,
		trigger: make(chan struct{}, 1),
	}
}

// request asks for a rebalance soon; it never blocks, and requests made
// while one is pending make one.
func (r *rebalancer) request() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// start runs the rebalance loop until ctx ends; stop waits for it.
func (r *rebalancer) start(ctx context.Context, owner func(string) string) {
	r.owner = owner
	r.loop.Add(1)
	go r.run(ctx)
}

func (r *rebalancer) stop() { r.loop.Wait() }

func (r *rebalancer) run(ctx context.Context) {
	defer r.loop.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.trigger:
		}
		settle := time.NewTimer(rebalanceSettle)
		select {
		case <-ctx.Done():
			settle.Stop()
			return
		case <-settle.C:
		}
		if moved := r.handOff(ctx); moved > 0 {
			r.events.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeRebalance, Node: r.self, Count: moved})
		}
	}
}

// handOff moves every timer this node holds but no longer owns to its
// owner, dead letters included, in batches, and returns how many moved. Each timer is taken out of
// the wheel just before its batch travels (so it is never armed on two
// nodes) and deleted here only once the owner has stored it; a batch the
// owner does not take is armed here again and waits for the next rebalance.
func (r *rebalancer) handOff(ctx context.Context) int {
	// Find the timers to move without holding the index lock: the owner
	// lookup (a hash per timer) is the slow part, and creates and fires go
	// on meanwhile.
	byOwner := map[string][]string{}
	for _, ids := range [][]string{r.index.armedIDs(), r.index.failedAll()} {
		for _, id := range ids {
			if owner := r.owner(id); owner != r.self {
				byOwner[owner] = append(byOwner[owner], id)
			}
		}
	}
	moved := 0
	for owner, ids := range byOwner {
		for len(ids) > 0 {
			k := min(len(ids), handoffBatch)
			moved += r.sendBatch(ctx, owner, ids[:k])
			ids = ids[k:]
		}
	}
	if moved > 0 {
		r.log.Info("handed off timers", "count", moved)
	}
	return moved
}

// sendBatch claims ids, sends those still armed to owner, and returns how
// many the owner took.
func (r *rebalancer) sendBatch(ctx context.Context, owner string, ids []string) int {
	ctx = context.WithoutCancel(ctx)
	batch := r.index.claimSome(ids)
	timers := make([]*skyring.Timer, 0, len(batch))
	kept := batch[:0]
	for _, c := range batch {
		t, err := r.store.Get(ctx, c.id)
		if err != nil {
			r.log.Error("reading a timer to hand off failed; keeping it", "timer_id", c.id, "err", err)
			r.index.unclaim(c)
			continue
		}
		timers = append(timers, t)
		kept = append(kept, c)
	}
	batch = kept
	if len(batch) == 0 {
		return 0
	}
	rctx, cancel := context.WithTimeout(ctx, handoffTimeout)
	rep, err := r.bus.Relay(rctx, owner, bus.Command{Op: bus.OpHandoff, Timers: timers, From: r.self})
	cancel()
	if err == nil {
		err = rep.Err()
	}
	if err != nil {
		r.log.Warn("hand-off failed; keeping the timers", "to", owner, "count", len(batch), "err", err)
		for _, c := range batch {
			r.index.unclaim(c)
		}
		return 0
	}
	sent := make([]string, len(batch))
	for i, c := range batch {
		sent[i] = c.id
	}
	if err := r.store.Delete(ctx, sent...); err != nil {
		r.log.Error("deleting handed-off timers failed; they may fire twice after a restart", "count", len(sent), "err", err)
		r.fault("remove handed-off", err)
	}
	r.index.release(sent...)
	for _, c := range batch {
		r.events.PublishTimerEvent(bus.TimerEvent{Type: bus.EventEvict, Timer: c.id, Node: r.self, To: owner, Due: ms(c.due)})
	}
	return len(batch)
}

// take stores and arms timers handed over by another node (dead letters
// are kept as such). A timer whose id this node already holds keeps the
// copy it has.
func (r *rebalancer) take(ctx context.Context, from string, timers []*skyring.Timer) error {
	fresh := r.index.reserveNew(timers)
	if err := r.store.Put(context.WithoutCancel(ctx), fresh...); err != nil {
		ids := make([]string, len(fresh))
		for i, t := range fresh {
			ids[i] = t.ID
		}
		r.index.release(ids...)
		return r.fault("take hand-off", err)
	}
	for _, t := range fresh {
		switch t.State {
		case skyring.StatePending:
			r.index.arm(t.ID, t.FireAt()) // a timer between attempts: its next attempt
		case skyring.StateFailed:
			r.index.release(t.ID)
			r.index.addFailed(t.ID)
		default:
			r.index.release(t.ID) // a finished timer: kept for its fate
		}
	}
	r.log.Debug("took hand-off", "from", from, "count", len(fresh))
	return nil
}

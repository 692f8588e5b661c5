package node

import (
	"bytes"
	"context"
	"errors"
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
	// reconcileEvery is how often the rebalancer looks at what it keeps
	// but does not own (kept for an unreachable owner, refused, or in a
	// hand-off whose answer never came); fullEvery how often it checks
	// every timer it holds, on top of every ring change.
	reconcileEvery = 500 * time.Millisecond
	fullEvery      = time.Minute
	// handoffBatch is how many timers are claimed at once for one owner;
	// they travel in pieces that each fit a NATS message (bus.HandoffPieces).
	handoffBatch = 1000
	// Backoff of an owner whose hand-off failed: the next try waits this
	// long, doubling up to the max. With reconcileEvery it bounds how
	// long a timer kept for a reachable owner stays on the wrong node.
	backoffMin = 250 * time.Millisecond
	backoffMax = 10 * time.Second
)

// rebalancer moves the timers (pending ones and dead letters) this node
// holds but does not own to their owners, and takes those other nodes
// hand to it.
//
// When: at once (after rebalanceSettle) on every ring change, a member that
// restarted included; every reconcileEvery for the timers it knows it
// keeps for someone else (a pass over none costs nothing); every fullEvery
// for everything it holds.
//
// How a hand-off goes: the timers are claimed (out of the wheel, marked
// moving, so that commands on them wait instead of answering 404), read,
// and sent in pieces that each fit one message. The owner stores them
// idempotently and acknowledges, by id, exactly what it holds afterwards
// (take); this node deletes exactly those. What the owner refused (the
// answer says so, or no node listens) is armed here again and retried
// after a backoff of that owner. What got no answer in time may be stored
// there or not: it stays claimed and unarmed here (limbo) and is sent
// again on the next pass; the owner's idempotence makes that safe, so a
// timed-out hand-off never delivers twice. On shutdown, what is still here
// at the deadline stays on disk and fires after a restart.
type rebalancer struct {
	self   string
	log    *slog.Logger
	index  *index
	store  storage.Store
	bus    *bus.Bus
	owner  func(id string) string
	ring   func() uint64 // the checksum of the ring owner answers by
	events interface {
		eventPublisher
		nodeEventPublisher
	}
	fault   func(op string, err error) error // a storage write failed (Node.storageFault)
	timeout time.Duration                    // Options.HandoffTimeout: one hand-off message
	metrics *metrics                         // nil: not instrumented
	// parts, in shared-store mode, loads the partitions this node gains
	// (partitions.go); nil otherwise. In that mode a hand-off moves no
	// data: the owner reads the timers from the store they share, and the
	// sender deletes nothing.
	parts *partitions

	trigger chan struct{}
	loop    sync.WaitGroup

	mu      sync.Mutex
	kept    map[string]struct{} // ids held but (possibly) not owned: retried every reconcileEvery
	limbo   map[string]claimed  // claimed ids whose hand-off got no answer
	backoff map[string]ownerBackoff
}

type ownerBackoff struct {
	wait  time.Duration
	until time.Time
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
		timeout: n.opts.HandoffTimeout,
		metrics: n.metrics,
		trigger: make(chan struct{}, 1),
		kept:    map[string]struct{}{},
		limbo:   map[string]claimed{},
		backoff: map[string]ownerBackoff{},
	}
}

// request asks for a full rebalance soon (the ring changed); it never
// blocks, and requests made while one is pending make one.
func (r *rebalancer) request() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// keep records that this node holds id for another owner (it was
// unreachable): the next reconcile pass, within reconcileEvery, moves it.
func (r *rebalancer) keep(id string) {
	r.mu.Lock()
	r.kept[id] = struct{}{}
	r.mu.Unlock()
}

// start runs the rebalance loop until ctx ends; stop waits for it.
func (r *rebalancer) start(ctx context.Context, owner func(string) string, ring func() uint64) {
	r.owner, r.ring = owner, ring
	r.loop.Add(1)
	go r.run(ctx)
}

func (r *rebalancer) stop() { r.loop.Wait() }

func (r *rebalancer) run(ctx context.Context) {
	defer r.loop.Done()
	tick := time.NewTicker(reconcileEvery)
	defer tick.Stop()
	lastFull := time.Now()
	for {
		full := false
		select {
		case <-ctx.Done():
			return
		case <-r.trigger:
			if !sleepCtx(ctx, rebalanceSettle) {
				return
			}
			full = true
			r.mu.Lock()
			clear(r.backoff) // the ring changed: every owner gets a fresh chance
			r.mu.Unlock()
		case <-tick.C:
			full = time.Since(lastFull) >= fullEvery
		}
		if full {
			lastFull = time.Now()
		}
		if moved, _ := r.pass(ctx, full); moved > 0 {
			r.events.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeRebalance, Node: r.self, Count: moved})
		}
	}
}

// sleepCtx sleeps d unless ctx ends first (then false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// handOff moves every timer this node holds but does not own; it returns
// how many moved and how many it still holds for another owner.
func (r *rebalancer) handOff(ctx context.Context) (moved, left int) { return r.pass(ctx, true) }

// pass moves the timers this node holds but does not own: all of them
// (full), or those it knows it keeps for someone else and those in limbo.
// It stops early when ctx ends. It returns how many moved and how many it
// still holds for another owner.
func (r *rebalancer) pass(ctx context.Context, full bool) (moved, left int) {
	if r.parts != nil {
		r.syncPartitions(ctx)
	}
	byOwner := map[string][]string{}
	var limbo []claimed
	r.mu.Lock()
	kept := make([]string, 0, len(r.kept))
	for id := range r.kept {
		kept = append(kept, id)
	}
	clear(r.kept)
	for id, c := range r.limbo {
		limbo = append(limbo, c)
		delete(r.limbo, id)
	}
	r.mu.Unlock()
	lists := [][]string{kept}
	if full {
		lists = append(lists, r.index.armedIDs(), r.index.failedAll())
	}
	// The owner lookup (a hash per timer) runs without the index lock:
	// creates and fires go on meanwhile.
	for _, ids := range lists {
		for _, id := range ids {
			if owner := r.owner(id); owner != r.self {
				byOwner[owner] = append(byOwner[owner], id)
			}
		}
	}
	limboBy := map[string][]claimed{}
	for _, c := range limbo {
		if owner := r.owner(c.id); owner == r.self {
			// The ring changed under the hand-off: this node owns it now.
			// (If the other node stored it anyway, both deliver; the
			// other's copy carries the higher fence.)
			r.index.unclaim(c)
		} else {
			limboBy[owner] = append(limboBy[owner], c)
		}
	}
	for owner := range limboBy {
		if _, ok := byOwner[owner]; !ok {
			byOwner[owner] = nil
		}
	}
	for owner, ids := range byOwner {
		if ctx.Err() != nil || !r.ready(owner) {
			r.keepAll(ids)
			r.toLimbo(limboBy[owner])
			left += len(ids) + len(limboBy[owner])
			continue
		}
		m, l := r.sendTo(ctx, owner, ids, limboBy[owner])
		moved, left = moved+m, left+l
	}
	if moved > 0 {
		r.log.Info("handed off timers", "count", moved, "left", left)
	}
	return moved, left
}

// ready reports whether owner is out of its backoff.
func (r *rebalancer) ready(owner string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Now().After(r.backoff[owner].until)
}

// failedOwner backs owner off; succeededOwner forgets its backoff.
func (r *rebalancer) failedOwner(owner string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.backoff[owner]
	b.wait = min(max(2*b.wait, backoffMin), backoffMax)
	b.until = time.Now().Add(b.wait)
	r.backoff[owner] = b
}

func (r *rebalancer) succeededOwner(owner string) {
	r.mu.Lock()
	delete(r.backoff, owner)
	r.mu.Unlock()
}

func (r *rebalancer) keepAll(ids []string) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	for _, id := range ids {
		r.kept[id] = struct{}{}
	}
	r.mu.Unlock()
}

func (r *rebalancer) toLimbo(cs []claimed) {
	if len(cs) == 0 {
		return
	}
	r.mu.Lock()
	for _, c := range cs {
		r.limbo[c.id] = c
	}
	r.mu.Unlock()
}

// sendTo hands ids (to be claimed) and limbo (claimed already) to owner,
// in batches, and returns how many the owner took and how many are still
// here.
func (r *rebalancer) sendTo(ctx context.Context, owner string, ids []string, limbo []claimed) (moved, left int) {
	for len(ids) > 0 || len(limbo) > 0 {
		if ctx.Err() != nil {
			r.keepAll(ids)
			r.toLimbo(limbo)
			return moved, left + len(ids) + len(limbo)
		}
		k := min(len(ids), handoffBatch)
		resend := len(limbo) > 0
		batch := append(r.index.claimSome(ids[:k]), limbo...)
		ids, limbo = ids[k:], nil
		m, l, ok := r.sendBatch(ctx, owner, batch, resend)
		moved, left = moved+m, left+l
		if !ok {
			r.failedOwner(owner)
			r.keepAll(ids)
			return moved, left + len(ids)
		}
	}
	r.succeededOwner(owner)
	return moved, left
}

// sendBatch sends the claimed timers of batch to owner, in pieces that
// each fit one message, and settles each: what the owner acknowledged is
// deleted here, what it refused is armed again, what got no answer stays
// in limbo. It returns how many moved, how many are left here, and false
// once a piece failed (the rest of the batch is then not sent).
func (r *rebalancer) sendBatch(ctx context.Context, owner string, batch []claimed, resend bool) (moved, left int, ok bool) {
	ctx = context.WithoutCancel(ctx) // a piece under way is answered, even at the deadline
	timers := make([]*skyring.Timer, 0, len(batch))
	byID := make(map[string]claimed, len(batch))
	for _, c := range batch {
		t, err := r.store.Get(ctx, c.id)
		if err != nil {
			r.log.Error("reading a timer to hand off failed; keeping it", "timer_id", c.id, "err", err)
			r.index.unclaim(c)
			left++
			continue
		}
		timers = append(timers, t)
		byID[c.id] = c
	}
	pieces := r.bus.HandoffPieces(timers)
	for i, piece := range pieces {
		rep, err := r.relayPiece(ctx, owner, piece, resend)
		// Refused for sure: no node listens, or the owner answered an
		// error (it stored nothing). Any other error got no answer: the
		// owner may have stored the piece.
		refused := errors.Is(err, bus.ErrNodeUnreachable)
		if err == nil {
			err = rep.Err()
			refused = true
		}
		switch {
		case err == nil:
			m := r.settleAcked(owner, piece, rep.Acked, byID)
			moved, left = moved+m, left+len(piece)-m
		case errors.Is(err, bus.ErrTooLarge):
			// One timer too large for any message: it stays here, and
			// the others go on.
			r.log.Error("a timer is too large to hand off over NATS; keeping it", "timer_id", piece[0].ID, "to", owner, "err", err)
			for _, t := range piece {
				r.index.unclaim(byID[t.ID])
			}
			left += len(piece)
		default:
			rest := piece
			for _, p := range pieces[i+1:] {
				rest = append(rest, p...)
			}
			r.unsettled(owner, rest, byID, err, refused)
			return moved, left + len(rest), false
		}
	}
	return moved, left, true
}

// relayPiece sends one piece. A refusal because the two views of the ring
// differ (a member joined or left a moment ago and the membership messages
// are still going round) is tried again a few times in quick succession
// before it counts as a failure of the owner.
func (r *rebalancer) relayPiece(ctx context.Context, owner string, piece []*skyring.Timer, resend bool) (bus.Reply, error) {
	wait := 20 * time.Millisecond
	for try := 0; ; try++ {
		rctx, cancel := context.WithTimeout(ctx, r.timeout)
		start := time.Now()
		rep, err := r.bus.Relay(rctx, owner, bus.Command{Op: bus.OpHandoff, Timers: piece, From: r.self, Ring: r.ring(), Resend: resend})
		cancel()
		r.metrics.handedOff(time.Since(start), len(rep.Acked))
		if err != nil || !errors.Is(rep.Err(), skyring.ErrStaleRing) || try == 4 {
			return rep, err
		}
		time.Sleep(wait) // 20, 40, 80, 160 ms: membership messages go round in milliseconds
		wait *= 2
	}
}

// settleAcked deletes here the timers of piece that owner acknowledged.
// The others had a command or hand-off of their id under way there, which
// may end with the owner holding them: they stay claimed and unarmed here
// (limbo) and are sent again on the next pass. It returns how many were
// acknowledged.
func (r *rebalancer) settleAcked(owner string, piece []*skyring.Timer, acked []string, byID map[string]claimed) int {
	ok := make(map[string]bool, len(acked))
	for _, id := range acked {
		ok[id] = true
	}
	sent := make([]string, 0, len(acked))
	var later []claimed
	for _, t := range piece {
		if ok[t.ID] {
			sent = append(sent, t.ID)
			continue
		}
		later = append(later, byID[t.ID])
	}
	r.toLimbo(later)
	if len(sent) == 0 {
		return 0
	}
	if r.parts != nil {
		// Shared store: the owner holds the same record; nothing to delete.
	} else if err := r.store.Delete(context.Background(), sent...); err != nil {
		r.log.Error("deleting handed-off timers failed; they may fire twice after a restart", "count", len(sent), "err", err)
		r.fault("remove handed-off", err)
	}
	r.index.releaseMoved(sent...)
	for _, id := range sent {
		r.events.PublishTimerEvent(bus.TimerEvent{Type: bus.EventEvict, Timer: id, Node: r.self, To: owner, Due: ms(byID[id].due)})
	}
	return len(sent)
}

// unsettled handles a piece (and what followed it) that owner did not
// acknowledge: refused for sure (no node listens, or it answered an
// error) means armed here again; no answer in time means maybe stored
// there, so it stays claimed and unarmed here until the next pass sends it
// again.
func (r *rebalancer) unsettled(owner string, timers []*skyring.Timer, byID map[string]claimed, err error, refused bool) {
	if refused {
		r.log.Warn("hand-off refused; keeping the timers for a later try", "to", owner, "count", len(timers), "err", err)
		ids := make([]string, len(timers))
		for i, t := range timers {
			ids[i] = t.ID
			r.index.unclaim(byID[t.ID])
		}
		r.keepAll(ids)
		return
	}
	r.log.Warn("hand-off got no answer; the timers wait, unarmed, to be sent again", "to", owner, "count", len(timers), "err", err)
	cs := make([]claimed, len(timers))
	for i, t := range timers {
		cs[i] = byID[t.ID]
	}
	r.toLimbo(cs)
}

// take stores the timers another node hands to this one and returns the
// ids it acknowledges: those it stored, those it already had (same
// generation: a hand-off sent again is a no-op), and those that lost to
// the timer of the same id it holds (the rule of newer). Ids with a command
// or hand-off under way here are not acknowledged: the sender keeps them
// and tries again.
func (r *rebalancer) take(ctx context.Context, from string, timers []*skyring.Timer, resend bool) ([]string, error) {
	ctx = context.WithoutCancel(ctx)
	if r.parts != nil {
		return r.takeShared(timers), nil
	}
	results := r.index.offer(timers)
	acked := make([]string, 0, len(timers))
	var fresh []*skyring.Timer
	for i, t := range timers {
		switch results[i] {
		case takeFresh:
			// Not held here, but, when sent before without an answer,
			// maybe stored here then and finished since: a generation
			// this node already delivered or cancelled is not stored
			// again. (A first hand-off cannot have been here before: a
			// timer leaves a node only once acknowledged, and its record
			// goes with it.)
			if !resend {
				t.Moves++
				fresh = append(fresh, t)
				continue
			}
			if mine, err := r.store.Get(ctx, t.ID); err == nil && mine.Created == t.Created {
				r.index.releaseMoved(t.ID)
				acked = append(acked, t.ID)
				continue
			}
			t.Moves++
			fresh = append(fresh, t)
		case takeKnown:
			if r.takeKnown(ctx, from, t) {
				acked = append(acked, t.ID)
			}
		}
	}
	if len(fresh) == 0 {
		// Nothing new to write.
	} else if err := r.store.Put(ctx, fresh...); err != nil {
		for _, t := range fresh {
			r.index.releaseMoved(t.ID)
		}
		return nil, r.fault("take hand-off", err)
	}
	for _, t := range fresh {
		r.index.place(t)
		acked = append(acked, t.ID)
	}
	r.metrics.tookHandoff(len(fresh))
	r.log.Debug("took hand-off", "from", from, "stored", len(fresh), "acked", len(acked), "offered", len(timers))
	return acked, nil
}

// takeShared is take in shared-store mode: the timers are stored already
// (the sender read them from the store this node shares). Those this node
// does not hold are armed (or filed as dead letters) as they were read;
// those it holds are acknowledged as they are (the store is the one copy:
// a fired timer's record is read again when it fires). Ids with a command
// or hand-off under way here are not acknowledged.
func (r *rebalancer) takeShared(timers []*skyring.Timer) []string {
	results := r.index.offer(timers)
	acked := make([]string, 0, len(timers))
	fresh := 0
	for i, t := range timers {
		switch results[i] {
		case takeFresh:
			r.index.place(t)
			fresh++
			acked = append(acked, t.ID)
		case takeKnown:
			acked = append(acked, t.ID)
		}
	}
	r.metrics.tookHandoff(fresh)
	return acked
}

// takeKnown settles a handed-off timer whose id this node holds: the same
// generation is acknowledged as it is; of two generations the newer wins
// (newer), and the loser is reported with its data (a conflict event),
// never dropped in silence. It reports whether the timer is acknowledged.
func (r *rebalancer) takeKnown(ctx context.Context, from string, t *skyring.Timer) bool {
	mine, err := r.store.Get(ctx, t.ID)
	if err != nil {
		return false
	}
	if mine.Created == t.Created {
		return true // the same generation: stored already
	}
	if !newer(t, mine) {
		r.conflict(t, mine, from)
		return true
	}
	if !r.index.claimForReplace(t.ID) {
		return false // under way here (fired, a command): not now
	}
	t.Moves = max(t.Moves, mine.Moves) + 1
	if err := r.store.Put(ctx, t); err != nil {
		r.index.place(mine)
		r.fault("take hand-off", err)
		return false
	}
	r.index.place(t)
	r.conflict(mine, t, r.self)
	return true
}

// newer reports whether a is a later write than b of the same id: the one
// accepted later (Created), then, for a tie, the larger encoding, so that
// every node decides the same.
func newer(a, b *skyring.Timer) bool {
	if a.Created != b.Created {
		return a.Created > b.Created
	}
	ea, _ := a.MarshalBinary()
	eb, _ := b.MarshalBinary()
	return bytes.Compare(ea, eb) > 0
}

// conflict reports loser, a timer of the same id as winner that the rule
// of newer dropped, held until then by node heldBy.
func (r *rebalancer) conflict(loser, winner *skyring.Timer, heldBy string) {
	r.log.Warn("two timers under one id: the later write wins", "timer_id", loser.ID,
		"lost_created", time.Unix(0, loser.Created), "won_created", time.Unix(0, winner.Created), "lost_held_by", heldBy)
	r.events.PublishTimerEvent(bus.TimerEvent{
		Type: bus.EventConflict, Timer: loser.ID, Node: r.self, From: heldBy,
		Created: ms(loser.Created), Due: ms(loser.Due), Payload: loser.Data,
		Message: "dropped: a later write of the same id won",
	})
}

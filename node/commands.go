package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/storage"
)

// Create stores and arms a new timer, on this node or, if another ring
// member owns t.ID, on that member. It returns once the timer is stored.
// Errors: skyring.ErrTimerExists, a *skyring.ValidationError (unknown
// transport, or a callback its transport rejects), skyring.ErrNoOwner,
// skyring.ErrTooManyTimers (the owner holds Options.MaxPending timers),
// skyring.ErrClosed, or a storage failure.
func (n *Node) Create(ctx context.Context, t *skyring.Timer) error {
	if err := n.gate.enter(); err != nil {
		return err
	}
	defer n.gate.exit()
	if owner := n.members.owner(t.ID); owner != n.id {
		// Refuse an unknown transport or bad callback here rather than after a hop
		// (createLocal checks it for commands that stay).
		if err := n.transports.Check(t.Callback); err != nil {
			return err
		}
		rep, err := n.sendRelay(ctx, owner, bus.Command{Op: bus.OpCreate, Timer: t, From: n.id})
		if err == nil {
			err = rep.Err()
			if !errors.Is(err, skyring.ErrClosed) {
				return err
			}
		}
		if !errors.Is(err, bus.ErrNodeUnreachable) && !errors.Is(err, skyring.ErrClosed) {
			n.log.Warn("relay failed", "op", "create", "timer_id", t.ID, "owner", owner, "err", err)
			return relayError(err)
		}
		// The owner surely did not take it: keep it here; the next
		// rebalance moves it to whoever owns it then.
		n.log.Debug("owner unreachable, keeping timer", "timer_id", t.ID, "owner", owner)
		n.rebalance.keep(t.ID)
	}
	return n.createLocal(ctx, t)
}

func (n *Node) createLocal(ctx context.Context, t *skyring.Timer) error {
	if err := n.transports.Check(t.Callback); err != nil {
		return err
	}
	// The cap is checked before the reservation, so concurrent creates may
	// pass it by a few; hand-offs (place) do not count against it.
	if max := n.opts.MaxPending; max > 0 && n.index.len() >= max {
		return skyring.TooManyTimersError(max)
	}
	if err := n.index.reserve(ctx, t.ID); err != nil {
		if !errors.Is(err, skyring.ErrTimerExists) || !n.sharedMode() {
			return err
		}
		took, err := n.phantom(ctx, t.ID)
		if err != nil {
			return err
		}
		if !took {
			return skyring.ErrTimerExists
		}
		// A create whose write was not confirmed and did not land: this
		// one takes its place.
	}
	n.startCount(t) // a timeout counts from now, by this node's clock
	if err := n.store.Put(context.WithoutCancel(ctx), t); err != nil {
		if n.sharedMode() && errors.Is(err, storage.ErrWrite) {
			// It may have landed: armed all the same. When it fires, its
			// record is read: not there, nothing happens; a retry of the
			// create meanwhile finds out (phantom).
			n.index.arm(t.ID, t.Due)
		} else {
			n.index.release(t.ID)
		}
		return fmt.Errorf("node: storing timer %s: %w", t.ID, n.storageFault("create", err))
	}
	n.index.arm(t.ID, t.Due)
	n.bus.PublishTimerEvent(bus.TimerEvent{
		Type: bus.EventCreate, Timer: t.ID, Node: n.id,
		Created: ms(t.Created), Due: ms(t.Due), Payload: t.Data,
	})
	return nil
}

// phantom reports, in shared-store mode, whether the armed timer id is one
// whose create was not confirmed and did not land: nothing is stored under
// it. It takes such an id out of the wheel, reserved for the caller. When
// the store cannot say (it is unavailable), it fails with the storage
// fault: a 409 there would tell the client that a create stored what may
// never have landed.
func (n *Node) phantom(ctx context.Context, id string) (bool, error) {
	_, err := n.store.Get(ctx, id)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, skyring.ErrTimerNotFound):
		return false, fmt.Errorf("node: reading timer %s to see whether its create landed: %w", id, sharedFault("create", err))
	}
	_, err = n.index.claim(id)
	return err == nil, nil
}

// Update replaces a pending timer's body; its timeout counts again from
// t.Created. Errors: skyring.ErrTimerNotFound, as Create otherwise.
func (n *Node) Update(ctx context.Context, t *skyring.Timer) error {
	if err := n.gate.enter(); err != nil {
		return err
	}
	defer n.gate.exit()
	if err := n.transports.Check(t.Callback); err != nil {
		return err
	}
	return n.routed(ctx, t.ID, bus.Command{Op: bus.OpUpdate, Timer: t, From: n.id}, nil,
		func() error { return n.updateLocal(ctx, t) })
}

func (n *Node) updateLocal(ctx context.Context, t *skyring.Timer) error {
	if err := n.transports.Check(t.Callback); err != nil {
		return err
	}
	old, err := n.index.claim(t.ID)
	if err != nil {
		return err
	}
	n.startCount(t) // a timeout counts from now, by this node's clock
	if err := n.store.Put(context.WithoutCancel(ctx), t); err != nil {
		due := old.Due() // keep the old one
		if n.sharedMode() && errors.Is(err, storage.ErrWrite) {
			due = min(due, t.Due) // or the new one, if it landed: the fire reads which
		}
		n.index.arm(t.ID, due)
		return fmt.Errorf("node: storing timer %s: %w", t.ID, n.storageFault("update", err))
	}
	n.index.arm(t.ID, t.Due)
	n.bus.PublishTimerEvent(bus.TimerEvent{
		Type: bus.EventReplace, Timer: t.ID, Node: n.id,
		Created: ms(t.Created), Due: ms(t.Due), Payload: t.Data,
	})
	return nil
}

// Cancel removes a pending timer; its callback will not run. Errors:
// skyring.ErrTimerNotFound (unknown, fired or cancelled).
func (n *Node) Cancel(ctx context.Context, id string) error {
	if err := n.gate.enter(); err != nil {
		return err
	}
	defer n.gate.exit()
	return n.routed(ctx, id, bus.Command{Op: bus.OpCancel, ID: id, From: n.id}, nil,
		func() error { return n.cancelLocal(ctx, id) })
}

// cancelLocal cancels a pending timer (kept as cancelled for the
// retention period, when the node keeps fates) or drops a dead letter.
func (n *Node) cancelLocal(ctx context.Context, id string) error {
	if n.index.claimFailed(id) {
		return n.dropFailed(ctx, id)
	}
	old, err := n.index.claim(id)
	if err != nil {
		return err
	}
	ctx = context.WithoutCancel(ctx)
	if n.opts.TimerRetention < 0 {
		err = n.store.Delete(ctx, id)
	} else {
		var t *skyring.Timer
		if t, err = n.store.Get(ctx, id); err == nil {
			t.State, t.Finished, t.Next = skyring.StateCancelled, n.clock.Now().UnixNano(), 0
			err = n.store.Put(ctx, t)
		}
	}
	if err != nil {
		n.index.arm(id, old.Due())
		return fmt.Errorf("node: cancelling timer %s: %w", id, n.storageFault("cancel", err))
	}
	n.index.release(id)
	n.bus.PublishTimerEvent(bus.TimerEvent{Type: bus.EventCancel, Timer: id, Node: n.id})
	return nil
}

// dropFailed removes the dead letter id, claimed by the caller.
func (n *Node) dropFailed(ctx context.Context, id string) error {
	if err := n.store.Delete(context.WithoutCancel(ctx), id); err != nil {
		n.index.addFailed(id) // still stored: still a dead letter
		n.index.release(id)
		return fmt.Errorf("node: dropping failed timer %s: %w", id, n.storageFault("drop failed", err))
	}
	n.index.release(id)
	n.bus.PublishTimerEvent(bus.TimerEvent{Type: bus.EventCancel, Timer: id, Node: n.id, Message: "failed timer dropped"})
	return nil
}

// Get returns a timer: pending or retrying, failed (until retried or
// dropped), delivered or cancelled (for the retention period). Errors:
// skyring.ErrTimerNotFound.
func (n *Node) Get(ctx context.Context, id string) (skyring.Info, error) {
	if err := n.gate.enter(); err != nil {
		return skyring.Info{}, err
	}
	defer n.gate.exit()
	var info skyring.Info
	err := n.routed(ctx, id, bus.Command{Op: bus.OpGet, ID: id, From: n.id}, &info, func() error {
		var err error
		info, err = n.getLocal(id)
		return err
	})
	return info, err
}

func (n *Node) getLocal(id string) (skyring.Info, error) {
	t, err := n.store.Get(context.Background(), id)
	if err != nil {
		return skyring.Info{}, err
	}
	if n.expired(t) {
		return skyring.Info{}, skyring.ErrTimerNotFound
	}
	return t.Info(n.id), nil
}

// relay sends cmd to owner and turns its reply back into an error.
func (n *Node) relay(ctx context.Context, owner string, cmd bus.Command, info *skyring.Info) error {
	rep, err := n.sendRelay(ctx, owner, cmd)
	if err != nil {
		n.log.Warn("relay failed", "op", cmd.Op, "owner", owner, "err", err)
		return relayError(err)
	}
	if err := rep.Err(); err != nil {
		return err
	}
	if info != nil && rep.Info != nil {
		*info = *rep.Info
	}
	return nil
}

// relayError is what a client hears when a relay failed: 504 when the owner
// may have carried the command out (it timed out), 503 when it surely did
// not.
func relayError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return skyring.ErrOwnerTimeout
	}
	return skyring.ErrNoOwner
}

func ms(ns int64) int64 { return ns / 1e6 }

// Routing of the commands on one timer (update, cancel, get, retry).
const (
	// settleWait bounds how long a command waits for a hand-off of its
	// timer under way here (then 504: retry).
	settleWait = 5 * time.Second
	// missWindow: for this long after a ring change, a command that finds
	// nothing on the owner asks the other members, which may still hold
	// the timer (its hand-off has not come yet).
	missWindow = 30 * time.Second
)

// routed runs a command on the node that has its timer: here when this
// node holds it (after any hand-off of it under way here settled), else
// on its owner. Within missWindow of a ring change, a timer the owner does
// not have yet is looked for on the other members, so that a timer on its
// way answers as what it is, not 404.
func (n *Node) routed(ctx context.Context, id string, cmd bus.Command, info *skyring.Info, local func() error) error {
	for range 3 {
		// A read needs no waiting: the copy here is stored until the
		// owner acknowledged it.
		if cmd.Op != bus.OpGet {
			sctx, cancel := context.WithTimeout(ctx, settleWait)
			err := n.index.settle(sctx, id)
			cancel()
			if err != nil {
				return err
			}
		}
		owner := n.members.owner(id)
		if owner != n.id && !n.index.holds(id) {
			return n.relay(ctx, owner, cmd, info)
		}
		err := local()
		if errors.Is(err, errMoving) {
			continue
		}
		if !errors.Is(err, skyring.ErrTimerNotFound) || owner != n.id || !n.members.changedWithin(missWindow) {
			return err
		}
		if ferr, found := n.findElsewhere(ctx, cmd, info); found {
			return ferr
		}
		if !n.index.armed(id) && !n.index.isMoving(id) {
			return err // not here (fired, or never), not elsewhere
		}
		// It arrived here meanwhile: again.
	}
	return skyring.ErrOwnerTimeout
}

// findElsewhere sends cmd to every other member; a member that does not
// hold the timer answers 404. It returns the first other answer.
func (n *Node) findElsewhere(ctx context.Context, cmd bus.Command, info *skyring.Info) (error, bool) {
	type answer struct {
		rep bus.Reply
		err error
	}
	var others []string
	for _, m := range n.members.view.Members() {
		if m.ID != n.id {
			others = append(others, m.ID)
		}
	}
	if len(others) == 0 {
		return nil, false
	}
	cmd.Probe = true // the others look at their own copy only
	answers := make(chan answer, len(others))
	for _, m := range others {
		go func() {
			rep, err := n.sendRelay(ctx, m, cmd)
			answers <- answer{rep, err}
		}()
	}
	for range others {
		a := <-answers
		if a.err != nil {
			continue
		}
		if err := a.rep.Err(); errors.Is(err, skyring.ErrTimerNotFound) {
			continue
		} else if err != nil {
			return err, true
		}
		if info != nil && a.rep.Info != nil {
			*info = *a.rep.Info
		}
		return nil, true
	}
	return nil, false
}

package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
)

// Claims (shared-store mode). Two nodes may both believe for a moment that
// they own a partition (their views of the ring converge within a heartbeat
// or two), and both hold its timers. Before a callback runs, the node
// claims the attempt: it writes the timer's record back with its owner
// changes (Moves) raised by one, on the condition that the record is still
// the version it read when the timer fired. Of two claims of one version
// exactly one wins; the loser reads the record again, finds the winner's
// lease and arms the timer for its end. The
// outcome of the attempt is written on the condition of the claim's version
// the same way, so that a node that lost the timer meanwhile (it was taken
// over) never overwrites what the new owner wrote.
//
// A claim is also a lease: it sets the record's next attempt (Next) to the
// end of the delivery timeout plus claimLease. A node that fires the timer
// meanwhile (it loaded the partition, or held it too) reads a timer due
// later and arms it for then; by then the claimant has written the outcome
// (delivered: nothing to do; a retry: its time), or it died, and the
// attempt is claimed again, with a higher fence. The claim raises the
// delivery's fence (Node.fence): a later attempt, by this node or another,
// always carries a higher one.

// claimLease is how much longer than the delivery timeout a claim holds
// the timer for the claiming node: its outcome is written within it.
const claimLease = 10 * time.Second

// claimRetry is how long a timer waits before it is tried again when the
// shared store could not be read or its claim not confirmed.
const claimRetry = time.Second

// claim claims the attempt of t, read at version: it reports the record's
// new version, or false when the attempt must not run (another node won,
// or the store did not confirm the claim: then the timer is armed again
// shortly and read afresh).
func (d *delivery) claim(t *skyring.Timer, version uint64) (uint64, bool) {
	t.Moves++
	// The lease: until it ends, a node that reads the record finds the
	// timer due later and arms it for then, when the outcome written
	// meanwhile tells it that there is nothing left to do.
	t.Next = d.clock.Now().Add(d.timeout + claimLease).UnixNano()
	v, err := d.claims.PutIf(context.Background(), t, version)
	switch {
	case err == nil:
		return v, true
	case errors.Is(err, storage.ErrConflict):
		// Another node claimed or changed it since it was read: fire it
		// again at once, which reads it afresh and finds its lease (armed
		// for its end), its outcome (nothing to do) or a new generation.
		d.index.rearmBusy(t.ID, d.clock.Now().UnixNano())
		d.log.Debug("attempt claimed or changed elsewhere; read again", "timer_id", t.ID)
	default:
		// The claim may have landed: remember it, so that the next read,
		// finding this very claim, goes on with it rather than waiting
		// for its own lease (ownClaim).
		d.unconfirmed.Store(t.ID, claimMark{moves: t.Moves, next: t.Next})
		d.index.rearmBusy(t.ID, d.clock.Now().Add(claimRetry).UnixNano())
		d.log.Warn("claiming a fired timer failed; trying again", "timer_id", t.ID, "err", err, "in", claimRetry)
	}
	return 0, false
}

// claimMark is what a claim whose write was not confirmed wrote: the owner
// changes and the lease end.
type claimMark struct {
	moves uint32
	next  int64
}

// ownClaim reports whether t, just read, is this node's own claim whose
// write was not confirmed (it landed after all): the attempt goes on under
// it. It forgets the claim either way.
func (d *delivery) ownClaim(t *skyring.Timer) bool {
	v, ok := d.unconfirmed.LoadAndDelete(t.ID)
	if !ok {
		return false
	}
	m := v.(claimMark)
	return t.State == skyring.StatePending && t.Moves == m.moves && t.Next == m.next
}

// claimWriteWorkers bounds the conditional outcome writes in flight at once
// (each is pipelined by the store).
const claimWriteWorkers = 64

// writeClaimed writes the outcomes of cur (shared-store mode), each on the
// condition of its claim's version, and returns those written. An outcome
// whose record changed since the claim (taken over by another node, or a
// new generation created there) is not written: the timer fires again at
// once and its record is read afresh. One the store did not confirm is
// armed again shortly: when it fires, its record says whether the write
// landed (finished: nothing to do) or not (delivered again: at least once,
// across a store fault).
func (d *delivery) writeClaimed(cur []outcome) []outcome {
	errs := make([]error, len(cur))
	var wg sync.WaitGroup
	sem := make(chan struct{}, claimWriteWorkers)
	for i, o := range cur {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if o.t.State == skyring.StateDelivered && d.retention < 0 {
				errs[i] = d.claims.DeleteIf(context.Background(), o.t.ID, o.version)
			} else {
				_, errs[i] = d.claims.PutIf(context.Background(), o.t, o.version)
			}
		})
	}
	wg.Wait()
	written := cur[:0:0]
	for i, o := range cur {
		switch err := errs[i]; {
		case err == nil:
			written = append(written, o)
		case errors.Is(err, storage.ErrConflict):
			// Taken over (the lease ran out) or created again meanwhile:
			// read it again at once (finished there: nothing to do; a new
			// generation: armed for its time).
			d.index.rearmBusy(o.t.ID, d.clock.Now().UnixNano())
			d.log.Warn("a delivery outcome was not written: the timer changed meanwhile (taken over, or created again); reading it again", "timer_id", o.t.ID)
		default:
			d.index.rearmBusy(o.t.ID, d.clock.Now().Add(claimRetry).UnixNano())
			d.log.Warn("writing a delivery outcome failed; the timer is read again shortly", "timer_id", o.t.ID, "err", err)
		}
	}
	return written
}

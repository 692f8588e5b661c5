package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
)

// Bulk cancel: DELETE /timer?filters and <prefix>.timer.cancel_many. The
// node that takes the request asks every ring member, itself included, to
// cancel its own matching timers, a batch at a time (a member examines at
// most listScanMax records and cancels at most cancelBatch timers per
// round, so that each round answers well within a relay's timeout), and
// adds up their counts.

// cancelBatch bounds the timers one member cancels in one round.
const cancelBatch = 256

// CancelMatching cancels every pending or retrying timer of the whole
// cluster that f matches and drops every failed one (a dead letter), each
// as Cancel would, with its cancel event, and returns how many. Delivered
// and cancelled timers are left alone. A member that does not answer does
// not stop the others: the error then matches skyring.ErrNoOwner and says
// how many were cancelled on the members that answered
// (skyring.PartialCancelError). f is not checked here: callers parse it
// with skyring.ParseCancelFilter.
func (n *Node) CancelMatching(ctx context.Context, f skyring.Filter) (int, error) {
	if err := n.gate.enter(); err != nil {
		return 0, err
	}
	defer n.gate.exit()
	members := n.members.view.Members()
	counts := make([]int, len(members))
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() { counts[i], errs[i] = n.cancelOn(ctx, m.ID, f) })
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	var failed []string
	for i, err := range errs {
		if err == nil {
			continue
		}
		if errors.Is(err, skyring.ErrInvalid) {
			return total, err
		}
		n.log.Warn("bulk cancel: a member did not answer", "member", members[i].ID, "cancelled", total, "err", err)
		failed = append(failed, members[i].ID)
	}
	if len(failed) > 0 {
		return total, fmt.Errorf("node: bulk cancel: %w", skyring.PartialCancelError(total, failed))
	}
	return total, nil
}

// cancelOn runs the rounds of a bulk cancel on one member and counts the
// timers it cancelled, also when it fails part way.
func (n *Node) cancelOn(ctx context.Context, member string, f skyring.Filter) (int, error) {
	total, after := 0, ""
	for {
		var (
			ids     []string
			scanned string
			more    bool
			err     error
		)
		if member == n.id {
			ids, scanned, more, err = n.cancelLocalMatching(ctx, after, f, cancelBatch)
		} else {
			cmd := bus.Command{Op: bus.OpCancelMany, ID: after, Limit: cancelBatch, From: n.id}
			cmd.SetFilter(f)
			var rep bus.Reply
			rep, err = n.bus.Relay(ctx, member, cmd)
			if err == nil {
				err = rep.Err()
			}
			ids, scanned, more = rep.Acked, rep.Cursor, rep.More
		}
		total += len(ids)
		if err != nil {
			return total, fmt.Errorf("node: bulk cancel on %s: %w", member, err)
		}
		if !more || scanned == "" {
			return total, nil
		}
		after = scanned
	}
}

// cancelLocalMatching is one round of a bulk cancel on this node: it
// cancels up to limit of its pending, retrying or failed timers after
// after that f matches, examining at most listScanMax records. It returns
// the ids it cancelled, the last id it examined and whether more follow.
func (n *Node) cancelLocalMatching(ctx context.Context, after string, f skyring.Filter, limit int) (cancelled []string, scanned string, more bool, err error) {
	var ids []string
	scanned, more, err = n.scanMatching(ctx, after, f, listScanMax, func(t *skyring.Timer) error {
		if t.State != skyring.StatePending && t.State != skyring.StateFailed {
			return nil
		}
		ids = append(ids, t.ID)
		if len(ids) >= limit {
			return errListFull
		}
		return nil
	})
	if err != nil {
		return nil, scanned, false, err
	}
	for _, id := range ids {
		err := n.cancelLocal(ctx, id)
		if errors.Is(err, errMoving) {
			// On its way to another owner: cancel it where it lands.
			err = n.routed(ctx, id, bus.Command{Op: bus.OpCancel, ID: id, From: n.id}, nil,
				func() error { return n.cancelLocal(ctx, id) })
		}
		switch {
		case err == nil:
			cancelled = append(cancelled, id)
		case errors.Is(err, skyring.ErrTimerNotFound):
			// Fired, or cancelled by someone else, meanwhile.
		default:
			return cancelled, scanned, false, fmt.Errorf("node: cancelling timer %s: %w", id, err)
		}
	}
	return cancelled, scanned, more, nil
}

// cancelManyReply answers a round of a bulk cancel relayed by another
// node.
func (n *Node) cancelManyReply(ctx context.Context, cmd bus.Command) bus.Reply {
	f := cmd.Filter()
	if f.State != "" && !slices.Contains(skyring.CancelStates(), f.State) {
		return bus.ReplyFromError(&skyring.ValidationError{Field: "state", Reason: "a bulk cancel takes state pending, retrying or failed"})
	}
	limit := cmd.Limit
	if limit < 1 || limit > skyring.MaxListLimit {
		limit = cancelBatch
	}
	ids, scanned, more, err := n.cancelLocalMatching(ctx, cmd.ID, f, limit)
	rep := bus.ReplyFromError(err)
	if err == nil {
		rep.Status = http.StatusOK
	}
	rep.Acked, rep.Cursor, rep.More = ids, scanned, more
	return rep
}

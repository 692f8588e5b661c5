package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
)

// A timer's fate. Once delivered, finally failed or cancelled, a timer is
// not removed but stored again with its State (delivery.write,
// cancelLocal): GET and lists answer for it. A failed timer (a dead
// letter) stays until it is retried (Retry) or dropped (Cancel); the index
// keeps its id. A delivered or cancelled one stays for the retention
// period (Options.TimerRetention) and is then removed by the sweeper.

// listScanMax bounds the records one node reads for one list request
// with a state filter (other than failed, which the index answers): a
// page may then hold fewer timers than asked for, and the listing goes on
// from where the scan stopped.
const listScanMax = 20_000

// expired reports whether t is a delivered or cancelled timer past its
// retention period: it is gone, whether or not the sweeper removed it yet.
func (n *Node) expired(t *skyring.Timer) bool {
	if t.State != skyring.StateDelivered && t.State != skyring.StateCancelled {
		return false
	}
	return n.opts.TimerRetention < 0 || t.Finished+int64(n.opts.TimerRetention) <= n.clock.Now().UnixNano()
}

// Retry arms a failed timer again, now, with a fresh attempt budget.
// Errors: skyring.ErrTimerNotFound, skyring.ErrNotFailed (the timer is
// pending, retrying, delivered or cancelled), as Cancel otherwise.
func (n *Node) Retry(ctx context.Context, id string) error {
	if err := n.gate.enter(); err != nil {
		return err
	}
	defer n.gate.exit()
	return n.routed(ctx, id, bus.Command{Op: bus.OpRetry, ID: id, From: n.id}, nil,
		func() error { return n.retryLocal(ctx, id) })
}

func (n *Node) retryLocal(ctx context.Context, id string) error {
	if n.index.isMoving(id) {
		return errMoving
	}
	if !n.index.claimFailed(id) {
		t, err := n.store.Get(ctx, id)
		if err != nil || n.expired(t) {
			return skyring.ErrTimerNotFound
		}
		return skyring.ErrNotFailed
	}
	ctx = context.WithoutCancel(ctx)
	t, err := n.store.Get(ctx, id)
	if err == nil {
		now := n.clock.Now().UnixNano()
		// A fresh budget, armed now; the last error stays for whoever
		// looks, until an attempt replaces it.
		t.State, t.Attempts, t.Finished = skyring.StatePending, 0, 0
		t.Next = max(now, t.Due)
		err = n.store.Put(ctx, t)
	}
	if err != nil {
		n.index.addFailed(id)
		n.index.release(id)
		return fmt.Errorf("node: retrying timer %s: %w", id, n.storageFault("retry", err))
	}
	// The event first: once armed, the timer may fire (and its outcome be
	// published) at once.
	n.bus.PublishTimerEvent(bus.TimerEvent{
		Type: bus.EventRetry, Timer: id, Node: n.id, Next: ms(t.Next),
		Created: ms(t.Created), Due: ms(t.Due), Message: "failed timer retried on request",
	})
	n.index.arm(id, t.Next)
	return nil
}

// List returns one page of the timers of the whole cluster, in id order:
// it asks every ring member for its page after q.After and merges them.
// A member that does not answer fails the list (skyring.ErrNoOwner): a
// page must not silently miss timers.
func (n *Node) List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	if err := n.gate.enter(); err != nil {
		return skyring.ListPage{}, err
	}
	defer n.gate.exit()
	if q.Limit < 1 || q.Limit > skyring.MaxListLimit {
		q.Limit = skyring.DefaultListLimit
	}
	members := n.members.view.Members()
	parts := make([]listPart, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Go(func() {
			if m.ID == n.id {
				parts[i] = n.listLocal(ctx, q)
				return
			}
			cmd := bus.Command{Op: bus.OpList, ID: q.After, Limit: q.Limit, From: n.id}
			cmd.SetFilter(q.Filter())
			rep, err := n.bus.Relay(ctx, m.ID, cmd)
			if err == nil {
				err = rep.Err()
			}
			parts[i] = listPart{node: m.ID, timers: rep.Timers, scanned: rep.Cursor, more: rep.More, err: err}
		})
	}
	wg.Wait()
	for _, p := range parts {
		if p.err != nil {
			n.log.Warn("listing timers: a member did not answer", "member", p.node, "err", p.err)
			if errors.Is(p.err, skyring.ErrInvalid) {
				return skyring.ListPage{}, p.err
			}
			return skyring.ListPage{}, fmt.Errorf("node: listing timers on %s: %w", p.node, skyring.ErrNoOwner)
		}
	}
	return mergeList(parts, q.Limit), nil
}

// listPart is one member's answer to a list.
type listPart struct {
	node    string
	timers  []*skyring.Timer // in id order
	scanned string           // the last id it examined
	more    bool             // it has more after scanned
	err     error
}

// mergeList merges the members' pages into the cluster's. Every timer up
// to the smallest id a member with more stopped at is known; the page is
// the first limit of those, and the next page starts after its last
// timer, or after that id when fewer were found.
func mergeList(parts []listPart, limit int) skyring.ListPage {
	bound, bounded := "", false // the smallest id a member with more stopped at
	var all []skyring.Info
	for _, p := range parts {
		if p.more && (!bounded || p.scanned < bound) {
			bound, bounded = p.scanned, true
		}
	}
	for _, p := range parts {
		for _, t := range p.timers {
			if !bounded || t.ID <= bound {
				all = append(all, t.Info(p.node))
			}
		}
	}
	slices.SortFunc(all, func(a, b skyring.Info) int { return strings.Compare(a.ID, b.ID) })
	page := skyring.ListPage{Timers: all}
	switch {
	case len(all) > limit:
		page.Timers = all[:limit]
		page.Cursor = skyring.EncodeCursor(all[limit-1].ID)
	case len(all) == limit && len(all) > 0:
		page.Cursor = skyring.EncodeCursor(all[limit-1].ID) // the next page may be empty
	case bounded:
		page.Cursor = skyring.EncodeCursor(bound)
	}
	if page.Timers == nil {
		page.Timers = []skyring.Info{}
	}
	return page
}

// errListFull stops a store listing once a page is full; errListDone
// once no later id can match.
var (
	errListFull = errors.New("node: list page full")
	errListDone = errors.New("node: list done")
)

// scanMatching calls fn for each timer stored after after that f matches
// and that has not expired, in id order, until fn returns errListFull or
// scanMax records were read (then more is true); scanned is the last id
// read. With a prefix it starts at the first id that may carry it and
// stops after the last.
func (n *Node) scanMatching(ctx context.Context, after string, f skyring.Filter, scanMax int, fn func(*skyring.Timer) error) (scanned string, more bool, err error) {
	start := after
	if f.Prefix != "" && start < f.Prefix {
		start = justBefore(f.Prefix)
	}
	count := 0
	err = n.store.List(ctx, start, func(t *skyring.Timer) error {
		if f.Prefix != "" && !strings.HasPrefix(t.ID, f.Prefix) && t.ID > f.Prefix {
			return errListDone
		}
		count++
		scanned = t.ID
		if !n.expired(t) && f.Match(t) && n.answersFor(t.ID) {
			if err := fn(t); err != nil {
				return err
			}
		}
		if count >= scanMax {
			return errListFull
		}
		return nil
	})
	switch {
	case errors.Is(err, errListFull):
		return scanned, true, nil
	case errors.Is(err, errListDone):
		return scanned, false, nil
	case err != nil:
		return scanned, false, fmt.Errorf("node: listing stored timers: %w", err)
	}
	return scanned, false, nil
}

// answersFor reports whether this node answers for id in a listing or a
// bulk cancel: every id it stores, or, with a shared store that every node
// reads whole, the ids it owns (every id has one owner in a settled ring).
func (n *Node) answersFor(id string) bool {
	return !n.sharedMode() || n.members.owner(id) == n.id
}

// justBefore returns a string that sorts before p and after every valid
// id that sorts before p, so that a listing after it starts at p: ids are
// UTF-8, which never holds the byte 0xff. It returns "" when p has no
// such string (it ends in a NUL byte).
func justBefore(p string) string {
	last := p[len(p)-1]
	if last == 0 {
		return ""
	}
	return p[:len(p)-1] + string([]byte{last - 1, 0xff})
}

// listLocal lists this node's timers after q.After: up to q.Limit of those
// in q.State. Dead letters come from the index; the other states from a
// storage scan bounded by listScanMax.
func (n *Node) listLocal(ctx context.Context, q skyring.ListQuery) listPart {
	part := listPart{node: n.id}
	if q.State == skyring.StateNameFailed {
		f := q.Filter()
		ids, more := n.index.failedIDs(q.After, q.Limit)
		for _, id := range ids {
			t, err := n.store.Get(ctx, id)
			if err != nil || !f.Match(t) {
				continue // retried or dropped meanwhile, or filtered out
			}
			part.timers = append(part.timers, t)
		}
		if more && len(ids) > 0 {
			part.scanned, part.more = ids[len(ids)-1], true
		}
		return part
	}
	f := q.Filter()
	var err error
	part.scanned, part.more, err = n.scanMatching(ctx, q.After, f, listScanMax, func(t *skyring.Timer) error {
		part.timers = append(part.timers, t)
		if len(part.timers) >= q.Limit {
			return errListFull
		}
		return nil
	})
	if err != nil {
		part.err = err
	}
	return part
}

// listReply answers a list relayed by another node.
func (n *Node) listReply(ctx context.Context, cmd bus.Command) bus.Reply {
	if cmd.State != "" && !skyring.ValidStateName(cmd.State) {
		return bus.ReplyFromError(&skyring.ValidationError{Field: "state", Reason: "unknown state " + cmd.State})
	}
	limit := cmd.Limit
	if limit < 1 || limit > skyring.MaxListLimit {
		limit = skyring.DefaultListLimit
	}
	f := cmd.Filter()
	p := n.listLocal(ctx, skyring.ListQuery{State: f.State, DueAfter: f.DueAfter, DueBefore: f.DueBefore,
		Prefix: f.Prefix, Host: f.Host, After: cmd.ID, Limit: limit})
	if p.err != nil {
		return bus.ReplyFromError(p.err)
	}
	return bus.Reply{Status: http.StatusOK, Timers: p.timers, Cursor: p.scanned, More: p.more}
}

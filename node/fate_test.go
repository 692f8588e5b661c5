package node_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/transports"
)

// listAll pages through n's list of timers in state (all when "") with
// pages of limit, and returns the ids in the order listed.
func listAll(t *testing.T, n *node.Node, state string, limit int) []string {
	t.Helper()
	var ids []string
	q := skyring.ListQuery{State: state, Limit: limit}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "the listing does not end")
		page, err := n.List(context.Background(), q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Timers), limit)
		for _, i := range page.Timers {
			if state != "" {
				require.Equal(t, state, i.State, i.ID)
			}
			ids = append(ids, i.ID)
		}
		if page.Cursor == "" {
			return ids
		}
		q.After, err = skyring.DecodeCursor(page.Cursor)
		require.NoError(t, err)
	}
}

// A timer that fails for good is a dead letter: GET shows it failed with
// its attempts and last error, the failed list has it, a retry delivers it
// once the receiver is fixed (with a fresh budget), and a cancel drops
// another one. A create of a dead letter's id replaces it.
func TestFateDeadLetterRetryAndDrop(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	var broken atomic.Bool
	broken.Store(true)
	b.rec.SetFunc(func(context.Context, *skyring.Timer) error {
		if broken.Load() {
			return transports.Permanent(errors.New("status 400 Bad Request"))
		}
		return nil
	})
	w := watchTimerEvents(t, b.node.NATSURL())
	for _, id := range []string{"dl-1", "dl-2", "dl-3"} {
		require.NoError(t, b.node.Create(ctx, b.timer(t, id, time.Second, id)))
	}
	b.advanceTo(t, t0.Add(time.Second))
	for range 3 {
		require.Equal(t, bus.EventFail, w.next(t).Type)
	}
	info, err := b.node.Get(ctx, "dl-1")
	require.NoError(t, err)
	require.Equal(t, "failed", info.State)
	require.Equal(t, 1, info.Attempts)
	require.Contains(t, info.LastError, "400")
	require.Equal(t, t0.Add(time.Second).UnixMilli(), info.FinishedAt)
	require.Zero(t, info.DeliveredAt)
	require.Zero(t, b.node.Len(), "dead letters are not pending")
	require.Equal(t, []string{"dl-1", "dl-2", "dl-3"}, listAll(t, b.node, "failed", 2))
	require.Empty(t, listAll(t, b.node, "pending", 10))

	// Retry once the receiver is fixed: delivered, attempt 1 of a fresh budget.
	require.ErrorIs(t, b.node.Retry(ctx, "nobody"), skyring.ErrTimerNotFound)
	broken.Store(false)
	require.NoError(t, b.node.Retry(ctx, "dl-1"))
	require.Equal(t, bus.EventRetry, w.next(t).Type, "the retry on request")
	b.settle(t)
	ev := w.next(t)
	require.Equal(t, bus.EventSuccess, ev.Type)
	require.Equal(t, 1, ev.Attempt, "a fresh attempt budget")
	info, err = b.node.Get(ctx, "dl-1")
	require.NoError(t, err)
	require.Equal(t, "delivered", info.State)
	require.ErrorIs(t, b.node.Retry(ctx, "dl-1"), skyring.ErrNotFailed)
	require.Equal(t, 4, b.rec.Count())

	// Drop one; replace the other with a new create.
	require.NoError(t, b.node.Cancel(ctx, "dl-2"))
	_, err = b.node.Get(ctx, "dl-2")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound, "a dropped dead letter is gone")
	require.ErrorIs(t, b.node.Cancel(ctx, "dl-2"), skyring.ErrTimerNotFound)
	require.NoError(t, b.node.Create(ctx, b.timer(t, "dl-3", time.Hour, "new")))
	info, err = b.node.Get(ctx, "dl-3")
	require.NoError(t, err)
	require.Equal(t, "pending", info.State)
	require.ErrorIs(t, b.node.Retry(ctx, "dl-3"), skyring.ErrNotFailed)
	require.Empty(t, listAll(t, b.node, "failed", 10))
	require.Equal(t, []string{"dl-1", "dl-3"}, listAll(t, b.node, "", 1))
}

// Delivered and cancelled timers answer for the retention period, then
// are gone: GET says 404 at once, and the sweeper removes the records.
func TestFateRetentionAndSweep(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(o *node.Options) error {
		o.TimerRetention, o.SweepInterval = time.Hour, 10*time.Millisecond
		return nil
	})
	ctx := context.Background()
	require.NoError(t, b.node.Create(ctx, b.timer(t, "done", time.Second, "")))
	require.NoError(t, b.node.Create(ctx, b.timer(t, "cxl", time.Hour, "")))
	require.NoError(t, b.node.Create(ctx, b.timer(t, "later", 3*time.Hour, "")))
	require.NoError(t, b.node.Cancel(ctx, "cxl"))
	b.advanceTo(t, t0.Add(time.Second))
	b.rec.Wait(t, 1)
	require.Eventually(t, func() bool {
		info, err := b.node.Get(ctx, "done")
		return err == nil && info.State == "delivered"
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, []string{"cxl"}, listAll(t, b.node, "cancelled", 10))
	require.Equal(t, []string{"cxl", "done", "later"}, listAll(t, b.node, "", 10))

	// Past the retention: gone for GET and lists, then from storage.
	b.advanceTo(t, t0.Add(time.Second+time.Hour))
	for _, id := range []string{"done", "cxl"} {
		_, err := b.node.Get(ctx, id)
		require.ErrorIs(t, err, skyring.ErrTimerNotFound, id)
	}
	require.Equal(t, []string{"later"}, listAll(t, b.node, "", 10))
	require.Eventually(t, func() bool {
		_, e1 := b.store.Get(ctx, "done")
		_, e2 := b.store.Get(ctx, "cxl")
		return errors.Is(e1, skyring.ErrTimerNotFound) && errors.Is(e2, skyring.ErrTimerNotFound)
	}, 10*time.Second, time.Millisecond, "the sweeper removed the finished timers")
	_, err := b.store.Get(ctx, "later")
	require.NoError(t, err, "the sweeper leaves pending timers alone")
}

// With a negative retention the node keeps no fates, as the original: a
// delivered or cancelled timer is removed at once. Dead letters stay.
func TestFateNoRetention(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, func(o *node.Options) error { o.TimerRetention = -1; return nil })
	ctx := context.Background()
	require.NoError(t, b.node.Create(ctx, b.timer(t, "done", time.Second, "")))
	require.NoError(t, b.node.Create(ctx, b.timer(t, "cxl", time.Hour, "")))
	require.NoError(t, b.node.Cancel(ctx, "cxl"))
	_, err := b.store.Get(ctx, "cxl")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)
	b.advanceTo(t, t0.Add(time.Second))
	b.rec.Wait(t, 1)
	require.Eventually(t, func() bool {
		_, err := b.store.Get(ctx, "done")
		return errors.Is(err, skyring.ErrTimerNotFound)
	}, 10*time.Second, time.Millisecond)
	_, err = b.node.Get(ctx, "done")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound)

	b.rec.SetError(transports.Permanent(errors.New("gone for good")))
	require.NoError(t, b.node.Create(ctx, b.timer(t, "dead", time.Second, "")))
	b.advanceTo(t, t0.Add(2*time.Second))
	require.Eventually(t, func() bool {
		info, err := b.node.Get(ctx, "dead")
		return err == nil && info.State == "failed"
	}, 10*time.Second, time.Millisecond)
}

// Fates survive a restart: a dead letter is still listed and can be
// retried; a delivered timer is not delivered again.
func TestFateSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() *leveldbstore.Store {
		s, err := leveldbstore.Open(storage.Options{Path: dir})
		require.NoError(t, err)
		return s
	}
	ctx := context.Background()
	s := open()
	b := setup(t, s)
	b.rec.SetFunc(func(_ context.Context, tm *skyring.Timer) error {
		if tm.ID == "bad" {
			return transports.Permanent(errors.New("status 404 Not Found"))
		}
		return nil
	})
	require.NoError(t, b.node.Create(ctx, b.timer(t, "bad", time.Second, "")))
	require.NoError(t, b.node.Create(ctx, b.timer(t, "good", time.Second, "")))
	b.advanceTo(t, t0.Add(time.Second))
	b.rec.Wait(t, 2)
	require.Eventually(t, func() bool {
		g, e1 := b.node.Get(ctx, "good")
		f, e2 := b.node.Get(ctx, "bad")
		return e1 == nil && e2 == nil && g.State == "delivered" && f.State == "failed"
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, b.node.Close())

	b2 := setup(t, open())
	b2.clock.Advance(2 * time.Second)
	require.Equal(t, []string{"bad"}, listAll(t, b2.node, "failed", 10))
	info, err := b2.node.Get(ctx, "good")
	require.NoError(t, err)
	require.Equal(t, "delivered", info.State)
	require.NoError(t, b2.node.Retry(ctx, "bad"))
	b2.settle(t)
	got := b2.rec.Wait(t, 1)
	require.Equal(t, "bad", got[0].ID, "only the retried dead letter runs after the restart")
	require.Eventually(t, func() bool {
		info, err := b2.node.Get(ctx, "bad")
		return err == nil && info.State == "delivered"
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, 1, b2.rec.Count())
}

// A create of an id whose attempt is under way and failing supersedes it:
// the old attempt's retry is dropped (its fail event says so) and the new
// generation's record is not touched.
func TestRecreateDuringFailingAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	w := watchTimerEvents(t, b.node.NATSURL())
	second := b.timer(t, "job", time.Hour, "second")
	created := make(chan error, 1)
	b.rec.SetFunc(func(_ context.Context, tm *skyring.Timer) error {
		if data, _ := tm.DataString(); data == "first" {
			created <- b.node.Create(ctx, second)
			return errors.New("status 503 Service Unavailable")
		}
		return nil
	})
	first := b.timer(t, "job", time.Second, "first")
	require.NoError(t, b.node.Create(ctx, first))
	b.advanceTo(t, first.DueTime())
	require.NoError(t, <-created)
	ev := w.next(t)
	require.Equal(t, bus.EventFail, ev.Type, "the outdated generation is not retried: %+v", ev)
	require.Contains(t, ev.Message, "replaced")
	stored, err := b.store.Get(ctx, "job")
	require.NoError(t, err)
	data, _ := stored.DataString()
	require.Equal(t, "second", data)
	require.Zero(t, stored.Attempts, "the new generation carries none of the old one's attempts")
	require.Equal(t, skyring.StatePending, stored.State)
	require.Equal(t, 1, b.node.Len())
	b.advanceTo(t, first.DueTime().Add(30*time.Minute))
	require.Equal(t, 1, b.rec.Count(), "the old generation never ran again")
}

// The list pages through every timer of the node in id order whatever the
// page size, and filters by state.
func TestListPaging(t *testing.T) {
	t.Parallel()
	b := setup(t, memstore.New())
	ctx := context.Background()
	var want []string
	for i := range 25 {
		id := fmt.Sprintf("t-%02d", i)
		want = append(want, id)
		require.NoError(t, b.node.Create(ctx, b.timer(t, id, time.Hour, "")))
	}
	for _, limit := range []int{1, 7, 25, 100} {
		require.Equal(t, want, listAll(t, b.node, "", limit), "limit %d", limit)
	}
	require.Equal(t, want, listAll(t, b.node, "pending", 10))
	require.Empty(t, listAll(t, b.node, "retrying", 10))
	page, err := b.node.List(ctx, skyring.ListQuery{Limit: 5, After: "t-22"})
	require.NoError(t, err)
	require.Len(t, page.Timers, 2)
	require.Equal(t, "t-24", page.Timers[1].ID)
	require.Equal(t, b.node.ID(), page.Timers[1].Node)
	require.Empty(t, page.Cursor, "the last page")
}

// Through any node, the list covers the whole cluster; dead letters move
// with the ring like pending timers, and a retry through any node reaches
// the one that holds the dead letter.
func TestClusterListAndDeadLetterHandoff(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	ctx := context.Background()
	c.recs[0].SetFunc(func(context.Context, *skyring.Timer) error {
		return transports.Permanent(errors.New("status 410 Gone"))
	})
	due := c.clock.Now().Add(time.Second)
	failed := c.createRoundRobin(t, "dead", 30, due)
	c.clock.Set(due)
	require.Eventually(t, func() bool {
		page, err := c.nodes[0].List(ctx, skyring.ListQuery{State: "failed", Limit: 100})
		return err == nil && len(page.Timers) == len(failed)
	}, 10*time.Second, time.Millisecond, "every timer failed")

	c.add(t)
	c.add(t)
	c.waitConverged(t)
	pending := c.createRoundRobin(t, "live", 30, due.Add(time.Hour))
	// The dead letters reach their new owners.
	require.Eventually(t, func() bool {
		for _, id := range failed {
			if c.nodes[0].Owner(id) != c.nodes[0].ID() {
				if info, err := c.nodes[0].Get(ctx, id); err != nil || info.Node == c.nodes[0].ID() {
					return false
				}
			}
		}
		return true
	}, 20*time.Second, 10*time.Millisecond, "dead letters were not handed off")
	all := append(slices.Clone(failed), pending...)
	slices.Sort(all)
	slices.Sort(failed)
	for i, n := range c.nodes {
		require.Equal(t, all, listAll(t, n, "", 7), "list through node %d", i)
		require.Equal(t, failed, listAll(t, n, "failed", 4), "failed list through node %d", i)
	}
	// Retry through a node that does not hold it.
	var target string
	for _, id := range failed {
		if c.nodes[1].Owner(id) == c.nodes[2].ID() {
			target = id
			break
		}
	}
	require.NotEmpty(t, target)
	require.NoError(t, c.nodes[0].Retry(ctx, target))
	require.Eventually(t, func() bool {
		info, err := c.nodes[1].Get(ctx, target)
		return err == nil && info.State == "delivered" && info.Node == c.nodes[2].ID()
	}, 10*time.Second, time.Millisecond)
}

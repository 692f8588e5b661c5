package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/transports"
)

// filterTimer is a timer id due at due whose callback URI is uri.
func (c *cluster) filterTimer(t *testing.T, id string, due time.Time, uri string) *skyring.Timer {
	t.Helper()
	body := fmt.Sprintf(`{"at":%d,"callback":{"transport":"rec","method":"post","uri":%q}}`, due.UnixMilli(), uri)
	tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: c.clock.Now(), ID: id})
	require.NoError(t, err)
	return tm
}

// listQuery pages through n's listing of q, q.Limit at a time, and returns
// the ids in the order listed.
func listQuery(t *testing.T, n *node.Node, q skyring.ListQuery) []string {
	t.Helper()
	ids := []string{}
	for pages := 0; ; pages++ {
		require.Less(t, pages, 1000, "the listing does not end")
		page, err := n.List(context.Background(), q)
		require.NoError(t, err)
		require.LessOrEqual(t, len(page.Timers), q.Limit)
		for _, i := range page.Timers {
			ids = append(ids, i.ID)
		}
		if page.Cursor == "" {
			return ids
		}
		q.After, err = skyring.DecodeCursor(page.Cursor)
		require.NoError(t, err)
	}
}

func sorted(ids ...[]string) []string {
	out := append([]string{}, slices.Concat(ids...)...)
	slices.Sort(out)
	return out
}

// Through any node, each filter (due range, id prefix, callback host, and
// the state) keeps exactly the timers it names, across the whole cluster,
// whatever the page size; filters combine.
func TestClusterListFilters(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	now := c.clock.Now()
	dueA, dueB := now.Add(time.Hour), now.Add(2*time.Hour)
	var alpha, beta, other []string
	for i := range 12 {
		id := fmt.Sprintf("alpha-%02d", i)
		alpha = append(alpha, id)
		require.NoError(t, c.nodes[i%3].Create(context.Background(), c.filterTimer(t, id, dueA, "http://a.example:8080/cb")))
		id = fmt.Sprintf("beta-%02d", i)
		beta = append(beta, id)
		require.NoError(t, c.nodes[i%3].Create(context.Background(), c.filterTimer(t, id, dueB, "https://B.example/hook")))
		id = fmt.Sprintf("alphabet-%02d", i) // "alpha" but not "alpha-"
		other = append(other, id)
		require.NoError(t, c.nodes[i%3].Create(context.Background(), c.filterTimer(t, id, dueB, "http://[::1]:9000/x")))
	}
	for _, tc := range []struct {
		name string
		q    skyring.ListQuery
		want []string
	}{
		{"prefix", skyring.ListQuery{Prefix: "alpha-"}, alpha},
		{"shorter prefix", skyring.ListQuery{Prefix: "alpha"}, sorted(alpha, other)},
		{"prefix of none", skyring.ListQuery{Prefix: "gamma"}, nil},
		{"host", skyring.ListQuery{Host: "a.example"}, alpha},
		{"host and port", skyring.ListQuery{Host: "a.example:8080"}, alpha},
		{"host, other port", skyring.ListQuery{Host: "a.example:8081"}, nil},
		{"host case", skyring.ListQuery{Host: "b.EXAMPLE"}, beta},
		{"ipv6 host", skyring.ListQuery{Host: "::1"}, other},
		{"ipv6 host and port", skyring.ListQuery{Host: "[::1]:9000"}, other},
		{"due after", skyring.ListQuery{DueAfter: dueB.UnixMilli()}, sorted(beta, other)},
		{"due before", skyring.ListQuery{DueBefore: dueB.UnixMilli()}, alpha},
		{"due range", skyring.ListQuery{DueAfter: dueA.UnixMilli() + 1, DueBefore: dueB.UnixMilli() + 1}, sorted(beta, other)},
		{"state and prefix", skyring.ListQuery{State: "pending", Prefix: "beta-"}, beta},
		{"state none", skyring.ListQuery{State: "failed", Prefix: "beta-"}, nil},
		{"prefix and host", skyring.ListQuery{Prefix: "alpha", Host: "::1"}, other},
		{"everything", skyring.ListQuery{}, sorted(alpha, beta, other)},
	} {
		for _, limit := range []int{1, 5, 100} {
			for i, n := range c.nodes {
				q := tc.q
				q.Limit = limit
				got := listQuery(t, n, q)
				require.Equal(t, sorted(tc.want), got, "%s, limit %d, through node %d", tc.name, limit, i)
			}
		}
	}
}

// A bulk cancel through any node cancels the matching timers on every
// member, with a cancel event each, and no others: the cancelled ones are
// never delivered, the rest are. Failed timers are dropped.
func TestClusterCancelMatching(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	ctx := context.Background()
	// Timers named dead-* fail for good; the others are recorded.
	for i, rec := range c.recs {
		rec.SetFunc(func(_ context.Context, tm *skyring.Timer) error {
			if strings.HasPrefix(tm.ID, "dead-") {
				return transports.Permanent(errors.New("status 410 Gone"))
			}
			c.mu.Lock()
			c.fired[tm.ID] = append(c.fired[tm.ID], firing{node: fmt.Sprint(i), at: c.clock.Now(), due: tm.Due})
			c.mu.Unlock()
			return nil
		})
	}
	watcher, err := nats.Connect(c.url)
	require.NoError(t, err)
	t.Cleanup(watcher.Close)
	var mu sync.Mutex
	cancelEvents := map[string]int{}
	sub, err := watcher.Subscribe("skyring.events.cancel", func(m *nats.Msg) {
		var e bus.TimerEvent
		if json.Unmarshal(m.Data, &e) == nil {
			mu.Lock()
			cancelEvents[e.Timer]++
			mu.Unlock()
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, watcher.Flush())

	now := c.clock.Now()
	dead := c.createRoundRobin(t, "dead", 6, now.Add(time.Second))
	c.clock.Set(now.Add(time.Second))
	require.Eventually(t, func() bool {
		page, err := c.nodes[0].List(ctx, skyring.ListQuery{State: "failed", Limit: 100})
		return err == nil && len(page.Timers) == len(dead)
	}, 10*time.Second, time.Millisecond, "every dead-* timer failed")

	due := now.Add(time.Hour)
	drop := c.createRoundRobin(t, "drop", 40, due)
	keep := c.createRoundRobin(t, "keep", 20, due)
	// A barrier due after the others: once it fired, every other timer
	// had its chance to fire.
	barrier := c.createRoundRobin(t, "zbarrier", 1, due.Add(time.Minute))

	// Bad filters are refused before anything is cancelled.
	_, err = c.nodes[1].CancelMatching(ctx, skyring.Filter{State: "delivered"})
	require.ErrorIs(t, err, skyring.ErrInvalid)

	n, err := c.nodes[1].CancelMatching(ctx, skyring.Filter{Prefix: "drop-"})
	require.NoError(t, err)
	require.Equal(t, len(drop), n)
	require.Empty(t, listQuery(t, c.nodes[2], skyring.ListQuery{State: "pending", Prefix: "drop-", Limit: 100}))
	require.Equal(t, sorted(drop), listQuery(t, c.nodes[2], skyring.ListQuery{State: "cancelled", Prefix: "drop-", Limit: 100}))
	n, err = c.nodes[1].CancelMatching(ctx, skyring.Filter{Prefix: "drop-"})
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to cancel")

	// Dead letters are dropped.
	n, err = c.nodes[2].CancelMatching(ctx, skyring.Filter{State: "failed"})
	require.NoError(t, err)
	require.Equal(t, len(dead), n)
	require.Empty(t, listQuery(t, c.nodes[0], skyring.ListQuery{State: "failed", Limit: 100}))

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range slices.Concat(drop, dead) {
			if cancelEvents[id] != 1 {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond, "a cancel event for each")

	c.waitDelivered(t, slices.Concat(keep, barrier), due.Add(time.Hour))
	c.mu.Lock()
	for _, id := range drop {
		require.Empty(t, c.fired[id], "cancelled timer %s was delivered", id)
	}
	c.mu.Unlock()
	mu.Lock()
	for _, id := range keep {
		require.Zero(t, cancelEvents[id], "timer %s was cancelled", id)
	}
	mu.Unlock()
}

// A member that does not answer a bulk cancel (it drops its replies) fails
// it with ErrNoOwner (503), never a silent partial count; the reason says
// how many were cancelled on the members that answered, and those are
// cancelled.
func TestClusterCancelMatchingMemberSilent(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 1)
	silent := c.add(t, node.WithFaults(node.Faults{DropRelayReply: func(op bus.Op) bool { return op == bus.OpCancelMany }}))
	c.waitConverged(t)
	ids := c.createRoundRobin(t, "bulk", 30, c.clock.Now().Add(time.Hour))
	onFirst := 0
	for _, id := range ids {
		if c.nodes[0].Owner(id) == c.nodes[0].ID() {
			onFirst++
		}
	}
	require.Positive(t, onFirst)
	require.Less(t, onFirst, len(ids))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := c.nodes[0].CancelMatching(ctx, skyring.Filter{Prefix: "bulk-"})
	require.ErrorIs(t, err, skyring.ErrNoOwner)
	require.Equal(t, onFirst, n)
	status, reason := skyring.Status(err)
	require.Equal(t, 503, status)
	require.Contains(t, reason, fmt.Sprintf("Cancelled %d timers", onFirst))
	require.Contains(t, reason, silent.ID())
	for _, id := range ids {
		if c.nodes[0].Owner(id) == c.nodes[0].ID() {
			info, err := c.nodes[0].Get(context.Background(), id)
			require.NoError(t, err)
			require.Equal(t, "cancelled", info.State, id)
		}
	}
}

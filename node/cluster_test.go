package node_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/transports/transportstest"
	"github.com/skyring/skyring/wheel"
)

// cluster is n in-process nodes on one NATS server, memory storage, each
// with its own recorder transport named "rec", and one fake clock for all
// their wheels: timers fire only when the test moves it, so a slow machine
// can never let a timer fire in the middle of what must happen before it
// is due (membership, relays and hand-offs run on real time).
type cluster struct {
	url   string
	clock *wheel.FakeClock
	nodes []*node.Node
	recs  []*transportstest.Recorder
	mu    sync.Mutex
	fired map[string][]firing // id → deliveries
}

type firing struct {
	node string
	at   time.Time // the fake clock's time
	due  int64
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	srv := bustest.RunServer(t)
	c := &cluster{url: srv.ClientURL(), clock: wheel.NewFakeClock(time.Now()), fired: map[string][]firing{}}
	for range n {
		c.add(t)
	}
	c.waitConverged(t)
	return c
}

func (c *cluster) add(t *testing.T, opts ...node.Option) *node.Node {
	t.Helper()
	rec := transportstest.NewRecorder("rec")
	nd, err := node.New(append([]node.Option{node.WithOptions(node.Options{
		HTTPAddr:          "127.0.0.1:0",
		NATSHosts:         []string{c.url},
		Store:             memstore.New(),
		Transports:        []string{"http"},
		HeartbeatInterval: 50 * time.Millisecond,
		MemberTimeout:     time.Second,
		Clock:             c.clock,
		Logger:            testLogger(t),
	}), node.WithTransport(rec)}, opts...)...)
	require.NoError(t, err)
	id := len(c.nodes)
	rec.SetFunc(func(ctx context.Context, tm *skyring.Timer) error {
		c.mu.Lock()
		c.fired[tm.ID] = append(c.fired[tm.ID], firing{node: fmt.Sprint(id), at: c.clock.Now(), due: tm.Due})
		c.mu.Unlock()
		return nil
	})
	require.NoError(t, nd.Start(context.Background()))
	t.Cleanup(func() { _ = nd.Close() })
	c.nodes = append(c.nodes, nd)
	c.recs = append(c.recs, rec)
	return nd
}

func (c *cluster) live() []*node.Node {
	var out []*node.Node
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitConverged waits until every live node sees exactly the live nodes.
func (c *cluster) waitConverged(t *testing.T) {
	t.Helper()
	live := c.live()
	require.Eventually(t, func() bool {
		for _, n := range live {
			if len(n.Cluster().Members) != len(live) {
				return false
			}
		}
		return true
	}, 15*time.Second, 5*time.Millisecond, "membership did not converge on %d members", len(live))
}

func (c *cluster) timer(t *testing.T, id string, at time.Time) *skyring.Timer {
	t.Helper()
	body := fmt.Sprintf(`{"at":%d,"data":%q,"callback":{"transport":"rec","method":"post","uri":"x"}}`, at.UnixMilli(), id)
	tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: c.clock.Now(), ID: id})
	require.NoError(t, err)
	return tm
}

// createRoundRobin creates n timers "<prefix>-<i>" due at due, through the
// nodes in turn, and returns their ids.
func (c *cluster) createRoundRobin(t *testing.T, prefix string, n int, due time.Time) []string {
	t.Helper()
	live := c.live()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		require.NoError(t, live[i%len(live)].Create(context.Background(), c.timer(t, ids[i], due)))
	}
	return ids
}

// waitDelivered moves the clock to until, waits until every id was
// delivered, then checks each exactly once and never early (not before the
// clock reached its due time).
func (c *cluster) waitDelivered(t *testing.T, ids []string, until time.Time) {
	t.Helper()
	c.clock.Set(until)
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, id := range ids {
			if len(c.fired[id]) == 0 {
				return false
			}
		}
		return true
	}, 30*time.Second, 10*time.Millisecond, "not every timer was delivered")
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		f := c.fired[id]
		require.Len(t, f, 1, "timer %s delivered %d times", id, len(f))
		require.False(t, f[0].at.Before(time.Unix(0, f[0].due)), "timer %s fired early", id)
	}
}

func TestClusterRelaysToOwner(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 3)
	ctx := context.Background()
	due := c.clock.Now().Add(1500 * time.Millisecond)
	ids := c.createRoundRobin(t, "relay", 300, due)
	// Every node holds a share; any node answers for any timer.
	for _, n := range c.nodes {
		require.Greater(t, n.Len(), 50, "node %s holds %d of 300", n.ID(), n.Len())
	}
	total := 0
	for _, n := range c.nodes {
		total += n.Len()
	}
	require.Equal(t, 300, total)
	info, err := c.nodes[2].Get(ctx, "relay-0")
	require.NoError(t, err)
	require.Contains(t, []string{c.nodes[0].ID(), c.nodes[1].ID(), c.nodes[2].ID()}, info.Node)
	require.ErrorIs(t, c.nodes[1].Create(ctx, c.timer(t, "relay-0", due)), skyring.ErrTimerExists)

	// Update through one node, cancel through another.
	upd := c.timer(t, "relay-1", due.Add(200*time.Millisecond))
	require.NoError(t, c.nodes[2].Update(ctx, upd))
	info, err = c.nodes[0].Get(ctx, "relay-1")
	require.NoError(t, err)
	require.Equal(t, upd.Due/1e6, info.Due)
	require.NoError(t, c.nodes[1].Cancel(ctx, "relay-2"))
	require.ErrorIs(t, c.nodes[0].Cancel(ctx, "relay-2"), skyring.ErrTimerNotFound)
	info, err = c.nodes[2].Get(ctx, "relay-2")
	require.NoError(t, err, "a cancelled timer answers during the retention period")
	require.Equal(t, "cancelled", info.State)

	ids = append(ids[:2], ids[3:]...)
	c.waitDelivered(t, ids, due.Add(200*time.Millisecond))
	c.mu.Lock()
	require.Empty(t, c.fired["relay-2"], "a cancelled timer fired")
	c.mu.Unlock()
}

func TestClusterJoinAndLeaveLoseNothing(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	due := c.clock.Now().Add(4 * time.Second)
	ids := c.createRoundRobin(t, "move", 2000, due)
	// A third node joins: it receives its share by hand-off.
	third := c.add(t)
	c.waitConverged(t)
	require.Eventually(t, func() bool { return third.Len() > 400 }, 10*time.Second, 5*time.Millisecond,
		"the joining node got %d timers", third.Len())

	// The first node leaves gracefully: it hands everything on.
	first := c.nodes[0]
	require.NoError(t, first.Close())
	require.Equal(t, 0, first.Len(), "a leaving node keeps nothing when others remain")
	c.nodes[0] = nil
	c.waitConverged(t)
	total := 0
	for _, n := range c.live() {
		total += n.Len()
	}
	require.Equal(t, 2000, total)
	c.waitDelivered(t, ids, due)
}

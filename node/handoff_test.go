package node_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// A hand-off whose answer comes too late (the receiver's disk takes longer
// than the hand-off timeout) delivers nothing twice: the sender keeps the
// timers unarmed and sends them again; the receiver, which stored them
// meanwhile, acknowledges them as the same generation; each fires once.
// While they travel, GET finds every one through either node, and a
// DELETE answered 202 is never followed by a delivery.
func TestHandoffTimeoutDeliversOnce(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 0)
	ctx := context.Background()
	a := c.add(t, func(o *node.Options) error { o.HandoffTimeout = 300 * time.Millisecond; return nil })
	due := c.clock.Now().Add(time.Minute)
	ids := c.createRoundRobin(t, "slow", 60, due)

	slow := storagetest.Flaky(memstore.New())
	slow.SlowWrites(1500 * time.Millisecond)
	b := c.add(t, func(o *node.Options) error { o.Store = slow; return nil })
	c.waitConverged(t)
	var toB []string
	for _, id := range ids {
		if a.Owner(id) == b.ID() {
			toB = append(toB, id)
		}
	}
	require.NotEmpty(t, toB)

	// While the first hand-off is under way (and times out), every timer
	// answers GET through either node.
	cancelled := map[string]bool{}
	deadline := time.Now().Add(4 * time.Second)
	// It goes on past the deadline until three are cancelled: on a loaded
	// machine a GET may wait out a hand-off, and the loop gets fewer turns.
	hard := time.Now().Add(30 * time.Second)
	for i := 0; (time.Now().Before(deadline) || len(cancelled) < 3) && time.Now().Before(hard); i++ {
		id := toB[i%len(toB)]
		for _, n := range []*node.Node{a, b} {
			info, err := n.Get(ctx, id)
			require.NoError(t, err, "GET %s through %s during the hand-off", id, n.ID())
			require.Equal(t, "pending", info.State)
		}
		if i%4 == 1 && len(cancelled) < 3 {
			require.NoError(t, b.Cancel(ctx, id), "DELETE %s during the hand-off", id)
			cancelled[id] = true
			toB = append(toB[:i%len(toB)], toB[i%len(toB)+1:]...)
		}
		time.Sleep(20 * time.Millisecond) // a GET every 20 ms for 4 s, spanning the hand-off
	}
	require.Len(t, cancelled, 3)
	require.Eventually(t, func() bool { return b.Len() == len(toB) && a.Len() == 60-len(toB)-len(cancelled) },
		20*time.Second, 10*time.Millisecond, "the hand-off did not settle: a %d, b %d", a.Len(), b.Len())
	var live []string
	for _, id := range ids {
		if !cancelled[id] {
			live = append(live, id)
		}
	}
	c.waitDelivered(t, live, due.Add(time.Second)) // each exactly once, never early
	c.mu.Lock()
	defer c.mu.Unlock()
	for id := range cancelled {
		require.Empty(t, c.fired[id], "%s fired after a 202 DELETE", id)
	}
}

// Two of four nodes closing at the same moment: every timer ends on the two
// that stay, within the shutdown deadline, and each fires once.
func TestClusterTwoLeaveTogether(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 4)
	due := c.clock.Now().Add(time.Minute)
	ids := c.createRoundRobin(t, "pair", 400, due)
	for _, n := range c.nodes {
		require.NotZero(t, n.Len(), "every node holds a share")
	}
	leaving := []*node.Node{c.nodes[0], c.nodes[1]}
	var wg sync.WaitGroup
	for _, n := range leaving {
		wg.Go(func() { require.NoError(t, n.Close()) })
	}
	wg.Wait()
	c.nodes[0], c.nodes[1] = nil, nil
	stay := c.live()
	require.Len(t, stay, 2)
	require.Equal(t, 400, stay[0].Len()+stay[1].Len(), "every timer of the leaving nodes ended on those that stay")
	c.waitDelivered(t, ids, due.Add(time.Second))
}

package main_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/bus/bustest"
)

const (
	clusterTimers  = 30000 // timers of the load tests
	clusterWorkers = 32    // concurrent clients creating them
)

// TestClusterEmbedded3: three nodes on embedded NATS servers routed to each
// other take 30,000 creates round-robin; each owns a fair share; every
// timer is delivered exactly once, never early.
func TestClusterEmbedded3(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy cluster test")
	}
	c := newEmbeddedCluster(t, heavyBin(t), 3)
	runSteadyLoad(t, c)
}

// TestClusterExternalNATS3 is TestClusterEmbedded3 with the nodes on an
// external three-server NATS cluster.
func TestClusterExternalNATS3(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy cluster test")
	}
	servers := bustest.RunCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	c := newExternalCluster(t, heavyBin(t), urls)
	runSteadyLoad(t, c)
}

// runSteadyLoad starts three nodes of c, creates clusterTimers timers
// through them round-robin, all due after the creates are over (spread over
// spread), checks each node's share before any is due, then checks delivery.
func runSteadyLoad(t *testing.T, c *cluster) {
	s := newSink(t)
	nodes := c.startN(3)
	t.Logf("nodes: %v", nodeNames(nodes))

	const path = "/cb/steady"
	const spread = 4000 // ms
	// Creating must end before the first timer is due (the shares are read
	// then): allow ~1,500 creates/s, far below what the cluster does.
	lead := 3*time.Second + time.Duration(clusterTimers/1500)*time.Second
	first := time.Now().Add(lead).UnixMilli()
	l := runLoad(t, newEntries(nodes...), "steady", clusterTimers, clusterWorkers, func(i int) (map[string]any, int64) {
		at := first + int64(i%spread)
		return timerBody(s, path, at, i), at
	})
	l.wait(t, lead)
	acked, failed, failures := l.split()
	t.Logf("creates: %d through %d nodes in %v: %.0f creates/s", len(acked)+len(failed), len(nodes), l.elapsed.Round(time.Millisecond), l.rate())
	for via, list := range failures {
		t.Errorf("%d creates through %s failed, e.g. %v", len(list), via, list[:min(5, len(list))])
	}
	require.Len(t, acked, clusterTimers, "every create answered 201")

	// Shares, read before anything is due.
	counts := timerCounts(t, nodes)
	require.Less(t, time.Now().UnixMilli(), first, "the shares must be read before the first timer is due")
	t.Logf("timers per node: %v", counts)
	sum := 0
	for name, n := range counts {
		sum += n
		even := clusterTimers / len(nodes)
		require.InDeltaf(t, even, n, float64(even)/4, "%s holds %d timers, more than 25%% off an even %d", name, n, even)
	}
	require.Equal(t, clusterTimers, sum, "the nodes hold every timer, once")

	last := first + spread
	waitArrivals(s, path, len(acked), time.Until(time.UnixMilli(last))+deliverWait)
	barriers(t, s, nodes, 300)
	rep := checkDeliveries(t, s, path, acked, failed)
	t.Logf("delivered %d; lateness p50 %v, p99 %v, max %v", rep.Delivered, rep.P50, rep.P99, rep.Max)
	if t.Failed() {
		missingOwners(t, s, path, acked, nodes)
	}
	for _, n := range nodes {
		require.Truef(t, n.Running(), "%s still running", n.Name)
	}
}

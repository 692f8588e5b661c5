package main_test

import (
	"cmp"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestClusterJoinLeaveUnderLoad: while 30,000 timers are created through
// every live node, a fourth node joins (and is handed the timers it now
// owns) and one of the first three leaves gracefully (handing its timers to
// the others). Every create answered 201 is delivered exactly once, never
// before its due time.
func TestClusterJoinLeaveUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy cluster test")
	}
	s := newSink(t)
	c := newEmbeddedCluster(t, heavyBin(t), 4)
	nodes := c.startN(3)
	// Node events (join, rebalance, leave) seen through a node that stays.
	ev := subscribeEvents(t, nodes[1].NATSURL, "skyring.node.>")

	const path = "/cb/churn"
	ents := newEntries(nodes...)
	l := runLoad(t, ents, "churn", clusterTimers, clusterWorkers, func(i int) (map[string]any, int64) {
		// Due 3 to 18 s after it is sent: deliveries run all along.
		at := time.Now().Add(3*time.Second + time.Duration(rand.IntN(15000))*time.Millisecond).UnixMilli()
		return timerBody(s, path, at, i), at
	}, retry504())

	// Join.
	l.waitCount(t, clusterTimers/6)
	ev.mu.Lock()
	mark := len(ev.list)
	ev.mu.Unlock()
	beforeJoin := l.ackedSoFar()
	joiner := c.start()
	ready := time.Since(joiner.started)
	c.waitConverged(append(nodes[:3:3], joiner), convergeWait)
	converged := time.Since(joiner.started)
	ents.add(joiner)
	t.Logf("join: %s ready %v after its start, cluster converged %v after its start (%d creates answered so far)",
		joiner.Name, ready.Round(time.Millisecond), converged.Round(time.Millisecond), l.created.Load())

	// The join hand-off is over when each original node has published its
	// rebalance (the count of timers it handed over).
	handed := waitRebalances(t, ev, mark, nodes, 30*time.Second)
	t.Logf("join hand-off: done %v after %s started; moved %v", time.Since(joiner.started).Round(time.Millisecond), joiner.Name, handed)
	joinerCount := timerCounts(t, []*cnode{joiner})[joiner.Name]
	require.Positive(t, joinerCount, "the new node holds timers after the hand-off")
	// Timers created before the join that the new node owns now were
	// handed to it with their due time. Sampled among those due last, at
	// least a second from now: a timer that has fired is no sample, and on
	// a slow machine the earlier ones may all have fired by now.
	type pending struct {
		id  string
		due int64
	}
	var cands []pending
	soon := time.Now().Add(time.Second).UnixMilli()
	for id, due := range beforeJoin {
		if due > soon {
			cands = append(cands, pending{id, due})
		}
	}
	slices.SortFunc(cands, func(a, b pending) int { return cmp.Compare(b.due, a.due) })
	cands = cands[:min(400, len(cands))]
	taken, notYetDue404 := 0, 0
	for _, c := range cands {
		r := joiner.do(t, http.MethodGet, timerPath(c.id), nil)
		if r.Status == http.StatusNotFound {
			if c.due > time.Now().UnixMilli() {
				notYetDue404++ // pending, yet not found: reported below
			}
			continue // fired already
		}
		require.Equal(t, http.StatusOK, r.Status, "GET %s through the new node: %s", c.id, r)
		var info timerInfo
		require.NoError(t, json.Unmarshal(r.Body, &info))
		if info.Node == joiner.Node {
			taken++
			require.Equal(t, c.due, info.Due, "%s handed to the new node keeps its due time", c.id)
		}
	}
	t.Logf("join hand-off: %d of %d timers created before the join (sampled among those still pending) are on the new node, due times kept", taken, len(cands))
	if notYetDue404 > 0 {
		t.Logf("join hand-off: %d sampled timers not yet due answered 404 through the new node", notYetDue404)
	}
	// With the new node owning about a quarter of them, 100 samples miss it
	// all with a chance of 0.75^100; fewer (only on a very slow machine)
	// prove nothing either way.
	if len(cands) >= 100 {
		require.Positive(t, taken, "the new node was handed timers created before it joined")
	} else {
		t.Logf("join hand-off: only %d timers created before the join are still pending: the sample is not judged", len(cands))
	}

	// Leave, half-way through: no more creates through n0, then SIGTERM;
	// it must exit 0.
	l.waitCount(t, clusterTimers/2)
	leaver := nodes[0]
	ents.remove(leaver)
	before := timerCounts(t, []*cnode{leaver})[leaver.Name]
	stopStart := time.Now()
	leaver.Stop()
	t.Logf("leave: %s held %d timers, stopped (exit 0) in %v (%d creates answered so far)",
		leaver.Name, before, time.Since(stopStart).Round(time.Millisecond), l.created.Load())
	live := []*cnode{nodes[1], nodes[2], joiner}
	c.waitConverged(live, convergeWait)
	t.Logf("leave: survivors converged %v after the SIGTERM", time.Since(stopStart).Round(time.Millisecond))
	require.Contains(t, leaver.Output(), "handed off timers", "the leaving node handed its timers over")
	require.NotContains(t, leaver.Output(), "timers kept on disk after leaving")

	l.wait(t)
	acked, failed, failures := l.split()
	t.Logf("creates: %d in %v: %.0f creates/s through the changing cluster (%d sent again after a 504)", len(acked)+len(failed), l.elapsed.Round(time.Millisecond), l.rate(), l.retried.Load())
	for via, list := range failures {
		t.Errorf("%d creates through %s did not get 201, e.g.:\n  %s", len(list), via, strings.Join(list[:min(5, len(list))], "\n  "))
	}
	if u := l.unsettled(); len(u) > 0 {
		t.Logf("%d creates still 504 too close to their due time to retry (may be stored; checked to arrive at most once), e.g. %v", len(u), u[:min(5, len(u))])
	}

	var last int64
	for _, due := range acked {
		last = max(last, due)
	}
	waitArrivals(s, path, acked, time.Until(time.UnixMilli(last))+deliverWait)
	barriers(t, s, live, 300)
	rep := checkDeliveries(t, s, path, acked, failed)
	t.Logf("delivered %d of %d acknowledged; lateness p50 %v, p99 %v, max %v", rep.Delivered, len(acked), rep.P50, rep.P99, rep.Max)
	if t.Failed() {
		missingOwners(t, s, path, acked, live)
	}

	// Nothing stayed behind on the node that left: started again on its
	// data directory, it recovers no timer.
	c.restart(leaver)
	require.Equal(t, "0", leaver.Ready["recovered"], "timers left on the disk of the node that left gracefully")
	leaver.Stop()
}

// waitRebalances waits until each of nodes has published a rebalance event
// after the first mark events, and returns the counts they moved.
func waitRebalances(t testing.TB, ev *events, mark int, nodes []*cnode, d time.Duration) map[string]float64 {
	t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		moved := map[string]float64{}
		ev.mu.Lock()
		for _, e := range ev.list[mark:] {
			if e.Subject != "skyring.node.rebalance" {
				continue
			}
			for _, n := range nodes {
				if e.Node == n.Node {
					if _, ok := moved[n.Name]; !ok {
						c, _ := e.Fields["count"].(float64)
						moved[n.Name] = c
					}
				}
			}
		}
		ch := ev.notify
		ev.mu.Unlock()
		if len(moved) == len(nodes) {
			return moved
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("rebalance events after the join from %d of %d nodes within %v (%v); events:\n%s", len(moved), len(nodes), d, moved, ev.dump())
		}
	}
}

package main_test

import (
	"os"
	"fmt"
	"math/rand/v2"
	"net/http"
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
	l := runLoad(ents, "churn", clusterTimers, clusterWorkers, func(i int) (map[string]any, int64) {
		// Due 3 to 18 s after it is sent: deliveries run all along.
		at := time.Now().Add(3*time.Second + time.Duration(rand.IntN(15000))*time.Millisecond).UnixMilli()
		return timerBody(s, path, at, i), at
	})

	// Join.
	l.waitCount(t, clusterTimers/6, 30*time.Second)
	ev.mu.Lock()
	mark := len(ev.list)
	ev.mu.Unlock()
	joiner := c.start()
	ready := time.Since(joiner.started)
	c.waitConverged(append(nodes[:3:3], joiner), 20*time.Second)
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

	// Leave: no more creates through n0, then SIGTERM; it must exit 0.
	leaver := nodes[0]
	ents.remove(leaver)
	before := timerCounts(t, []*cnode{leaver})[leaver.Name]
	stopStart := time.Now()
	leaver.Stop()
	t.Logf("leave: %s held %d timers, stopped (exit 0) in %v (%d creates answered so far)",
		leaver.Name, before, time.Since(stopStart).Round(time.Millisecond), l.created.Load())
	live := []*cnode{nodes[1], nodes[2], joiner}
	c.waitConverged(live, 10*time.Second)
	t.Logf("leave: survivors converged %v after the SIGTERM", time.Since(stopStart).Round(time.Millisecond))
	require.Contains(t, leaver.Output(), "handed off timers", "the leaving node handed its timers over")
	require.NotContains(t, leaver.Output(), "timers kept on disk after leaving")

	l.wait(t, 60*time.Second)
	acked, failed, failures := l.split()
	t.Logf("creates: %d in %v: %.0f creates/s through the changing cluster", len(acked)+len(failed), l.elapsed.Round(time.Millisecond), l.rate())
	for via, list := range failures {
		t.Errorf("%d creates through %s did not get 201, e.g.:\n  %s", len(list), via, strings.Join(list[:min(5, len(list))], "\n  "))
	}

	var last int64
	for _, due := range acked {
		last = max(last, due)
	}
	waitArrivals(s, path, len(acked), time.Until(time.UnixMilli(last))+deliverWait)
	barriers(t, s, live, 300)
	rep := checkDeliveries(t, s, path, acked, failed)
	t.Logf("delivered %d of %d acknowledged; lateness p50 %v, p99 %v, max %v", rep.Delivered, len(acked), rep.P50, rep.P99, rep.Max)
	if t.Failed() {
		missingOwners(t, s, path, acked, live)
	}
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

// TestClusterKill9Restart: a node killed with SIGKILL keeps its timers on
// disk; restarted on its data directory it rejoins under the same id and
// delivers them. Every timer is delivered exactly once, never early.
func TestClusterKill9Restart(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy cluster test")
	}
	s := newSink(t)
	c := newEmbeddedCluster(t, heavyBin(t), 3)
	nodes := c.startN(3)

	const path, total = "/cb/kill9", 3600
	first := time.Now().Add(8 * time.Second).UnixMilli()
	l := runLoad(newEntries(nodes...), "kill9", total, clusterWorkers, func(i int) (map[string]any, int64) {
		at := first + int64(i%500)
		return timerBody(s, path, at, i), at
	})
	l.wait(t, 6*time.Second)
	acked, failed, failures := l.split()
	for via, list := range failures {
		t.Errorf("%d creates through %s failed, e.g. %v", len(list), via, list[:min(5, len(list))])
	}
	require.Len(t, acked, total)
	counts := timerCounts(t, nodes)
	t.Logf("created %d in %v (%.0f/s); timers per node: %v", total, l.elapsed.Round(time.Millisecond), l.rate(), counts)

	victim := nodes[2]
	require.Positive(t, counts[victim.Name], "the victim owns timers")
	id := victim.Node
	if os.Getenv("NOKILL") == "" {
	victim.Kill()
	}
	killed := time.Now()
	survivors := nodes[:2]
	if os.Getenv("NOKILL") == "" {
	c.waitConverged(survivors, 10*time.Second)
	t.Logf("kill -9 %s: survivors list 2 members %v after the kill", victim.Name, time.Since(killed).Round(time.Millisecond))

	c.restart(victim)
	require.Equal(t, id, victim.Node, "restarted on its data directory, the node keeps its id")
	require.Equal(t, fmt.Sprint(counts[victim.Name]), victim.Ready["recovered"], "the restarted node recovered every timer it held")
	}
	c.waitConverged(nodes, 10*time.Second)
	t.Logf("restart: %s rejoined, cluster converged %v after its start; first timer due in %v",
		victim.Name, time.Since(victim.started).Round(time.Millisecond), time.Until(time.UnixMilli(first)).Round(time.Millisecond))

	waitArrivals(s, path, len(acked), time.Until(time.UnixMilli(first+500))+deliverWait)
	barriers(t, s, nodes, 300)
	rep := checkDeliveries(t, s, path, acked, failed)
	t.Logf("delivered %d; lateness p50 %v, p99 %v, max %v", rep.Delivered, rep.P50, rep.P99, rep.Max)
	if t.Failed() {
		missingOwners(t, s, path, acked, nodes)
	}
}

// TestClusterCreateThroughSurvivorWhileKill: a client keeps creating through
// node A while node C is killed with SIGKILL. Creates go on being answered;
// the survivors deliver theirs; the timers C had acknowledged come back when
// C restarts. Every create answered 201 is delivered exactly once, never
// early; a create that got an error may arrive at most once.
func TestClusterCreateThroughSurvivorWhileKill(t *testing.T) {
	if testing.Short() {
		t.Skip("heavy cluster test")
	}
	s := newSink(t)
	c := newEmbeddedCluster(t, heavyBin(t), 3)
	nodes := c.startN(3)
	a, b, victim := nodes[0], nodes[1], nodes[2]

	const path = "/cb/survivor"
	l := runLoad(newEntries(a), "survivor", 100_000, 16, func(i int) (map[string]any, int64) {
		at := time.Now().Add(4 * time.Second).UnixMilli()
		return timerBody(s, path, at, i), at
	})
	l.waitCount(t, 2000, 20*time.Second)
	victim.Kill()
	killed := time.Now()
	atKill := l.created.Load()
	c.waitConverged([]*cnode{a, b}, 10*time.Second)
	t.Logf("kill -9 %s after %d creates: survivors list 2 members %v after the kill", victim.Name, atKill, time.Since(killed).Round(time.Millisecond))
	l.waitCount(t, l.created.Load()+2000, 20*time.Second)
	l.stop.Store(true)
	l.wait(t, 10*time.Second)

	acked, failed, failures := l.split()
	t.Logf("creates through %s: %d answered 201, %d not, in %v (%.0f/s)", a.Name, len(acked), len(failed), l.elapsed.Round(time.Millisecond), l.rate())
	for via, list := range failures {
		// A create relayed to the victim as it died may time out (503):
		// allowed, but reported.
		t.Logf("%d creates through %s did not get 201, e.g.:\n  %s", len(list), via, strings.Join(list[:min(5, len(list))], "\n  "))
		for _, f := range list {
			require.Containsf(t, f, " 503 ", "a create through a survivor failed otherwise than 503: %s", f)
		}
	}

	// The survivors deliver theirs.
	var last int64
	for _, due := range acked {
		last = max(last, due)
	}
	if wait := time.Until(time.UnixMilli(last)); wait > 0 {
		barriers(t, s, []*cnode{a, b}, int(wait.Milliseconds())+300)
	} else {
		barriers(t, s, []*cnode{a, b}, 300)
	}
	before := s.Count(path)
	t.Logf("before %s restarts: %d of %d acknowledged timers delivered by the survivors", victim.Name, before, len(acked))

	c.restart(victim)
	c.waitConverged(nodes, 10*time.Second)
	t.Logf("%s restarted, recovered %s timers, converged %v after its start", victim.Name, victim.Ready["recovered"], time.Since(victim.started).Round(time.Millisecond))
	waitArrivals(s, path, len(acked), deliverWait)
	barriers(t, s, nodes, 300)
	rep := checkDeliveries(t, s, path, acked, failed)
	t.Logf("delivered %d of %d acknowledged (%d after the restart), %d of %d failed creates arrived anyway; lateness p50 %v, p99 %v, max %v",
		rep.Delivered, len(acked), s.Count(path)-before, rep.MaybeDelivered, len(failed), rep.P50, rep.P99, rep.Max)
	if t.Failed() {
		missingOwners(t, s, path, acked, nodes)
	}
}

// TestClusterAnyNodeCRUD: a timer created through one node can be read,
// updated and cancelled through the others; an unknown id is 404 through
// every node. Runs the race-built binary (it is light).
func TestClusterAnyNodeCRUD(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	c := newEmbeddedCluster(t, skyringBin, 3)
	nodes := c.startN(3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	// Create through n1 until every node owns at least two.
	type tm struct {
		id, path string
		owner    string
	}
	var ts []tm
	owned := map[string]int{}
	for i := 0; len(owned) < 3 || minCount(owned) < 2; i++ {
		require.Less(t, i, 200, "timers created through n1 did not land on every node: %v", owned)
		path := s.Path("crud")
		id := fmt.Sprintf("crud-%d", i)
		got, _ := n1.createTimer(t, with(body(s, path), "data", "v1"), "x-timer-id", id)
		require.Equal(t, id, got)
		info := n1.getTimer(t, id)
		owned[info.Node]++
		ts = append(ts, tm{id: id, path: path, owner: info.Node})
	}
	ids := map[string]bool{}
	for _, n := range nodes {
		ids[n.Node] = true
	}
	for o := range owned {
		require.True(t, ids[o], "owner %s is a member", o)
	}

	// Read through every node: the same timer.
	for _, x := range ts {
		i1 := n1.getTimer(t, x.id)
		require.Equal(t, i1, n2.getTimer(t, x.id), "GET %s through n2", x.id)
		require.Equal(t, i1, n3.getTimer(t, x.id), "GET %s through n3", x.id)
		require.Equal(t, `"v1"`, string(i1.Data))
	}

	// Update through n2, check through n3; cancel half through n3.
	at := atIn(1500 * time.Millisecond)
	cancelled := map[string]bool{}
	for i, x := range ts {
		r := n2.do(t, http.MethodPut, timerPath(x.id), with(body(s, x.path), "timeout", remove, "at", at, "data", "v2"))
		require.Equal(t, http.StatusOK, r.Status, "PUT %s through n2: %s", x.id, r)
		info := n3.getTimer(t, x.id)
		require.Equal(t, `"v2"`, string(info.Data), "after PUT through n2, GET through n3")
		require.Equal(t, at, info.Due)
		require.Equal(t, x.owner, info.Node, "PUT keeps the owner")
		if i%2 == 0 {
			r := n3.do(t, http.MethodDelete, timerPath(x.id), nil)
			require.Equal(t, http.StatusAccepted, r.Status, "DELETE %s through n3: %s", x.id, r)
			cancelled[x.id] = true
			for _, n := range nodes {
				requireError(t, n.do(t, http.MethodGet, timerPath(x.id), nil), http.StatusNotFound, "GET cancelled through "+n.Name)
				requireError(t, n.do(t, http.MethodDelete, timerPath(x.id), nil), http.StatusNotFound, "DELETE cancelled through "+n.Name)
				requireError(t, n.do(t, http.MethodPut, timerPath(x.id), body(s, x.path)), http.StatusNotFound, "PUT cancelled through "+n.Name)
			}
		}
	}

	// Unknown ids, through every node.
	for _, n := range nodes {
		for _, id := range []string{"no-such-timer", "crud-unknown-" + n.Name} {
			requireError(t, n.do(t, http.MethodGet, timerPath(id), nil), http.StatusNotFound, "GET unknown through "+n.Name)
			requireError(t, n.do(t, http.MethodPut, timerPath(id), body(s, "/cb/never")), http.StatusNotFound, "PUT unknown through "+n.Name)
			requireError(t, n.do(t, http.MethodDelete, timerPath(id), nil), http.StatusNotFound, "DELETE unknown through "+n.Name)
		}
	}

	// Delivery: the updated ones once, with the new body, not before the
	// new due time; the cancelled ones never.
	for _, x := range ts {
		if !cancelled[x.id] {
			s.waitPath(t, x.path, deliverWait)
		}
	}
	barriers(t, s, nodes, 300)
	for _, x := range ts {
		as := s.Arrivals(x.path)
		if cancelled[x.id] {
			require.Empty(t, as, "cancelled %s", x.id)
			continue
		}
		require.Len(t, as, 1, "%s delivered exactly once", x.id)
		require.Equal(t, "v2", string(as[0].Body), "%s delivered with the updated data", x.id)
		require.Equal(t, x.id, as[0].ID())
		requireNotEarlyWall(t, as[0], at, x.id)
	}
	require.Zero(t, s.Count("/cb/never"))
}

func minCount(m map[string]int) int {
	out := -1
	for _, v := range m {
		if out < 0 || v < out {
			out = v
		}
	}
	return out
}

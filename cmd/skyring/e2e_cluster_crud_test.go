package main_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

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
	ids := map[string]bool{}
	for _, n := range nodes {
		ids[n.Node] = true
	}
	mkTimers := func(prefix string) []tm {
		var ts []tm
		owned := map[string]int{}
		for i := 0; len(owned) < 3 || minCount(owned) < 2; i++ {
			require.Less(t, i, 200, "timers created through n1 did not land on every node: %v", owned)
			path := s.Path("crud")
			id := fmt.Sprintf("%s-%d", prefix, i)
			got, _ := n1.createTimer(t, with(body(s, path), "data", "v1"), "x-timer-id", id)
			require.Equal(t, id, got)
			info := n1.getTimer(t, id)
			owned[info.Node]++
			require.True(t, ids[info.Node], "owner %s is a member", info.Node)
			ts = append(ts, tm{id: id, path: path, owner: info.Node})
		}
		return ts
	}
	ts := mkTimers("crud")

	// Read through every node: the same timer.
	for _, x := range ts {
		i1 := n1.getTimer(t, x.id)
		require.Equal(t, i1, n2.getTimer(t, x.id), "GET %s through n2", x.id)
		require.Equal(t, i1, n3.getTimer(t, x.id), "GET %s through n3", x.id)
		require.Equal(t, `"v1"`, string(i1.Data))
	}

	// Update through one of n2 and n3, read through the other, and cancel
	// half of them through that other one. Every step must reach its timer
	// before the new due time; on a machine too slow for that (an answer
	// that is wrong only because the due time has passed), the round is
	// put away and run again on fresh timers with a longer lead
	// (withLead).
	var at int64
	attempt := 1
	cancelled := map[string]bool{}
	withLead(t, 1500*time.Millisecond, func(lead time.Duration) time.Duration {
		start := time.Now()
		at = atIn(lead)
		tooSlow := func(r response) bool {
			return slowAnswer(r, at)
		}
		retry := func() time.Duration {
			// The timers of this round are spent: fresh ones for the next.
			attempt++
			ts = mkTimers(fmt.Sprintf("crud%d", attempt))
			clear(cancelled)
			return 2*time.Since(start) + time.Second
		}
		for i, x := range ts {
			// Alternate the roles of n2 and n3.
			put, other := n2, n3
			if i%4 >= 2 {
				put, other = n3, n2
			}
			r := put.do(t, http.MethodPut, timerPath(x.id), with(body(s, x.path), "timeout", remove, "at", at, "data", "v2"))
			if r.Status != http.StatusOK && tooSlow(r) {
				return retry()
			}
			require.Equal(t, http.StatusOK, r.Status, "PUT %s through %s: %s", x.id, put.Name, r)
			info, r := other.tryTimer(t, x.id)
			if r.Status != http.StatusOK && tooSlow(r) {
				return retry()
			}
			require.Equal(t, http.StatusOK, r.Status, "GET %s through %s: %s", x.id, other.Name, r)
			require.Equal(t, `"v2"`, string(info.Data), "after PUT through %s, GET through %s", put.Name, other.Name)
			require.Equal(t, at, info.Due)
			require.Equal(t, x.owner, info.Node, "PUT keeps the owner")
			if i%2 == 0 {
				r := other.do(t, http.MethodDelete, timerPath(x.id), nil)
				if r.Status != http.StatusAccepted && tooSlow(r) {
					return retry()
				}
				require.Equal(t, http.StatusAccepted, r.Status, "DELETE %s through %s: %s", x.id, other.Name, r)
				cancelled[x.id] = true
				for _, n := range nodes {
					n.requireState(t, x.id, "cancelled", "GET cancelled through "+n.Name)
					requireError(t, n.do(t, http.MethodDelete, timerPath(x.id), nil), http.StatusNotFound, "DELETE cancelled through "+n.Name)
					requireError(t, n.do(t, http.MethodPut, timerPath(x.id), body(s, x.path)), http.StatusNotFound, "PUT cancelled through "+n.Name)
				}
			}
		}
		return 0
	})

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
			s.waitPath(t, x.path, time.Until(time.UnixMilli(at))+deliverWait)
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

package main_test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	return port
}

// startPair starts the README's two-node walk-through on free ports: each
// node with its own channel port, both listing both as seeds. It returns
// once a timer created on a can be owned by b: the ring has both.
func startPair(t *testing.T, s *sink) (a, b *proc) {
	t.Helper()
	ca, cb := freePort(t), freePort(t)
	seeds := []string{"-s", "127.0.0.1:" + strconv.Itoa(ca), "-s", "127.0.0.1:" + strconv.Itoa(cb)}
	a = startNode(t, append([]string{"--channel:port", strconv.Itoa(ca)}, seeds...)...)
	b = startNode(t, append([]string{"--channel:port", strconv.Itoa(cb)}, seeds...)...)
	require.NotEqual(t, a.Node, b.Node, "two nodes, two ids")

	// Poll (with a deadline) until timers created on a land on both.
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; ; i++ {
		owners := map[string]bool{}
		for j := range 16 {
			id := fmt.Sprintf("probe-%d-%d", i, j)
			a.createTimer(t, body(s, "/cb/never"), "x-timer-id", id)
			owners[a.getTimer(t, id).Node] = true
		}
		if owners[a.Node] && owners[b.Node] {
			return a, b
		}
		require.Truef(t, time.Now().Before(deadline), "the two nodes did not form one ring within 30s (owners seen: %v)", owners)
		// Wait for membership news: the next heartbeat shows up as a
		// probe round; keep the loop from spinning hot.
		<-time.After(100 * time.Millisecond)
	}
}

// TestClusterTwoNodes: any node accepts any request and relays it to the
// owner; every timer is delivered exactly once by its owner.
//
// The timers are due lead after the first create, and every create, cancel
// and replace must reach its timer before that; on a machine too slow for
// it (an answer that is wrong only because the due time has passed), the
// round is put away and run again with fresh timers and a longer lead
// (withLead).
func TestClusterTwoNodes(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	a, b := startPair(t, s)

	const n = 24
	type tm struct {
		id, path string
		at       int64
		owner    string
	}
	withLead(t, 1500*time.Millisecond, func(lead time.Duration) time.Duration {
		start := time.Now()
		at := atIn(lead)
		// tooSlow reports whether r, a wrong answer, came only because
		// the due time had passed.
		tooSlow := func(r response) bool {
			return slowAnswer(r, at)
		}
		retry := func() time.Duration { return 2*time.Since(start) + time.Second }

		var ts []tm
		for i := range n {
			entry := a
			if i%2 == 1 {
				entry = b
			}
			path := s.Path("cluster")
			r := entry.do(t, http.MethodPost, "/timer", with(body(s, path), "timeout", remove, "at", at, "data", fmt.Sprint(i)))
			if r.Status != http.StatusCreated && tooSlow(r) {
				return retry()
			}
			require.Equalf(t, http.StatusCreated, r.Status, "POST /timer: %s", r)
			id := locationID(t, r)
			ra, rb := a.do(t, http.MethodGet, timerPath(id), nil), b.do(t, http.MethodGet, timerPath(id), nil)
			if (ra.Status != http.StatusOK && tooSlow(ra)) || (rb.Status != http.StatusOK && tooSlow(rb)) {
				return retry()
			}
			require.Equalf(t, http.StatusOK, ra.Status, "GET through a: %s", ra)
			require.Equalf(t, http.StatusOK, rb.Status, "GET through b: %s", rb)
			var ia, ib timerInfo
			require.NoError(t, json.Unmarshal(ra.Body, &ia))
			require.NoError(t, json.Unmarshal(rb.Body, &ib))
			require.Equal(t, ia, ib, "GET through either node")
			require.Contains(t, []string{a.Node, b.Node}, ia.Node)
			ts = append(ts, tm{id: id, path: path, at: at, owner: ia.Node})
		}
		owners := map[string]int{}
		for _, x := range ts {
			owners[x.owner]++
		}
		t.Logf("owners: %v", owners)

		// Cancel a few and replace a few, through the node that does not
		// own them where possible.
		other := func(owner string) *proc {
			if owner == a.Node {
				return b
			}
			return a
		}
		cancelled := map[int]bool{}
		replaced := map[int]bool{}
		for i, x := range ts {
			switch i % 6 {
			case 0:
				r := other(x.owner).do(t, http.MethodDelete, timerPath(x.id), nil)
				if r.Status != http.StatusAccepted && tooSlow(r) {
					return retry()
				}
				require.Equal(t, http.StatusAccepted, r.Status, "relayed DELETE: %s", r)
				requireError(t, a.do(t, http.MethodDelete, timerPath(x.id), nil), http.StatusNotFound, "second DELETE")
				cancelled[i] = true
			case 1:
				r := other(x.owner).do(t, http.MethodPut, timerPath(x.id), with(body(s, x.path), "timeout", remove, "at", x.at, "data", "replaced"))
				if r.Status != http.StatusOK && tooSlow(r) {
					return retry()
				}
				require.Equal(t, http.StatusOK, r.Status, "relayed PUT: %s", r)
				replaced[i] = true
			}
		}
		requireError(t, a.do(t, http.MethodPost, "/timer", body(s, "/cb/never"), "x-timer-id", ts[2].id), http.StatusConflict, "duplicate id through a")
		requireError(t, b.do(t, http.MethodPost, "/timer", body(s, "/cb/never"), "x-timer-id", ts[2].id), http.StatusConflict, "duplicate id through b")

		for i, x := range ts {
			if !cancelled[i] {
				s.waitPath(t, x.path, time.Until(time.UnixMilli(at))+deliverWait)
			}
		}
		s.barrier(t, a, 300)
		s.barrier(t, b, 300)
		for i, x := range ts {
			as := s.Arrivals(x.path)
			if cancelled[i] {
				require.Empty(t, as, "cancelled timer %d", i)
				continue
			}
			require.Len(t, as, 1, "timer %d delivered exactly once", i)
			requireNotEarlyWall(t, as[0], x.at, fmt.Sprint("timer ", i))
			want := fmt.Sprint(i)
			if replaced[i] {
				want = "replaced"
			}
			require.Equal(t, want, string(as[0].Body), "timer %d", i)
		}
		require.Zero(t, s.Count("/cb/never"))
		return 0
	})
}

// TestClusterGracefulLeave: a node that stops gracefully hands its timers to
// the other, which delivers them exactly once.
//
// The timers are due lead after the first create and must still be pending
// when b has left and a is asked for them; on a machine too slow for that
// (an answer that is wrong only because the due time has passed), the
// round is put away and run again on a fresh pair with a longer lead
// (withLead).
func TestClusterGracefulLeave(t *testing.T) {
	t.Parallel()
	withLead(t, 3*time.Second, func(lead time.Duration) time.Duration {
		s := newSink(t)
		a, b := startPair(t, s)
		ev := subscribeEvents(t, a.NATSURL, "skyring.events.>", "skyring.node.>")

		start := time.Now()
		at := atIn(lead)
		// tooSlow reports whether r, a wrong answer, came only because
		// the due time had passed; then the pair is put away.
		tooSlow := func(r response) bool {
			if !slowAnswer(r, at) {
				return false
			}
			a.Kill()
			b.Kill()
			return true
		}
		retry := func() time.Duration { return 2*time.Since(start) + time.Second }

		var onB []string
		var paths []string
		for i := 0; len(onB) < 8; i++ {
			require.Less(t, i, 200, "no timer landed on b")
			path := s.Path("leave")
			r := a.do(t, http.MethodPost, "/timer", with(body(s, path), "timeout", remove, "at", at))
			if r.Status != http.StatusCreated && tooSlow(r) {
				return retry()
			}
			require.Equalf(t, http.StatusCreated, r.Status, "POST /timer: %s", r)
			id := locationID(t, r)
			info, r := a.tryTimer(t, id)
			if r.Status != http.StatusOK && tooSlow(r) {
				return retry()
			}
			require.Equalf(t, http.StatusOK, r.Status, "GET %s: %s", id, r)
			if info.Node == b.Node {
				onB = append(onB, id)
				paths = append(paths, path)
				continue
			}
			r = a.do(t, http.MethodDelete, timerPath(id), nil)
			if r.Status != http.StatusAccepted && tooSlow(r) {
				return retry()
			}
			require.Equal(t, http.StatusAccepted, r.Status, "DELETE %s: %s", id, r)
		}
		b.Stop()
		for _, id := range onB {
			info, r := a.tryTimer(t, id)
			if r.Status != http.StatusOK && tooSlow(r) {
				return retry()
			}
			require.Equalf(t, http.StatusOK, r.Status, "GET %s after b left: %s", id, r)
			require.Equal(t, a.Node, info.Node, "after b left, a owns %s", id)
			require.Equal(t, at, info.Due)
		}
		for _, path := range paths {
			s.waitPath(t, path, time.Until(time.UnixMilli(at))+deliverWait)
		}
		s.barrier(t, a, 300)
		for i, path := range paths {
			as := s.Arrivals(path)
			require.Len(t, as, 1, "handed-off timer %d delivered exactly once", i)
			requireNotEarlyWall(t, as[0], at, "handed-off timer")
			require.Equal(t, onB[i], as[0].ID())
		}
		t.Logf("evict events: %d", len(ev.find("skyring.events.evict", "")))
		return 0
	})
}

package main_test

import (
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRestartDurable stops a node gracefully with timers pending, some due
// around the restart, some long after; on the same data directory they come
// back: the due ones are delivered exactly once, never early, and the long
// ones answer GET as before.
func TestRestartDurable(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)
	nodeBefore := p.Node

	type due struct {
		path, id string
		at       int64
	}
	var soon []due
	for i := range 10 {
		d := 300 * time.Millisecond // likely overdue by the restart
		if i%2 == 1 {
			d = 2500 * time.Millisecond // due after the restart
		}
		path := s.Path("restart")
		id, at := p.createDue(t, with(body(s, path), "data", fmt.Sprint("restart ", i)), d)
		soon = append(soon, due{path, id, at})
	}
	var long []timerInfo
	for i := range 3 {
		id, _ := p.createTimer(t, with(body(s, "/cb/never"), "data", map[string]any{"i": i}))
		long = append(long, p.getTimer(t, id))
	}
	// Cancelled before its due time; on a machine too slow for that (404
	// once due: it may have fired), again with twice the lead.
	var cancelled, cancelledPath string
	for lead := time.Second; ; lead *= 2 {
		cancelledPath = s.Path("cancelled")
		id, at := p.createDue(t, body(s, cancelledPath), lead)
		r := p.do(t, http.MethodDelete, timerPath(id), nil)
		if r.Status == http.StatusNotFound && time.Now().UnixMilli() >= at && lead < time.Minute {
			continue
		}
		require.Equal(t, http.StatusAccepted, r.Status, "DELETE: %s", r)
		cancelled = id
		break
	}

	p.StopWith(syscall.SIGINT)
	p.Restart()
	t.Logf("node id before %q, after %q", nodeBefore, p.Node)

	for _, info := range long {
		got := p.getTimer(t, info.ID)
		require.Equal(t, info.ID, got.ID)
		require.Equal(t, info.Created, got.Created, "created survives a restart")
		require.Equal(t, info.Due, got.Due, "due survives a restart")
		require.JSONEq(t, string(info.Data), string(got.Data))
		require.Equal(t, info.Callback, got.Callback)
	}
	p.requireState(t, cancelled, "cancelled", "a cancelled timer stays cancelled")

	for _, d := range soon {
		s.waitPath(t, d.path, deliverWait+3*time.Second)
	}
	s.barrier(t, p, 300)
	for i, d := range soon {
		as := s.Arrivals(d.path)
		require.Len(t, as, 1, "timer %d delivered exactly once across the restart", i)
		requireNotEarlyWall(t, as[0], d.at, fmt.Sprint("timer ", i))
		require.Equal(t, fmt.Sprint("restart ", i), string(as[0].Body))
		requireHeaders(t, as[0], d.id)
	}
	require.Zero(t, s.Count("/cb/never"))
	require.Zero(t, s.Count(cancelledPath), "the cancelled timer called back")
	p.Stop()
}

// TestRestartGetWithStringData: a get callback with string data (which
// crashes the original, and then crash-loops it on every restart because the
// timer is still stored) is delivered with its body, across a kill -9, and
// the node keeps running and restarts cleanly afterwards.
func TestRestartGetWithStringData(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.success")

	// Delivered while running.
	path1 := s.Path("get-string")
	b := with(body(s, path1), "timeout", 50, "data", "get with a body")
	b["callback"].(map[string]any)["method"] = "get"
	id1, _ := p.createTimer(t, b)
	a := s.waitPath(t, path1, deliverWait)
	require.Equal(t, http.MethodGet, a.Method)
	require.Equal(t, "get with a body", string(a.Body))
	requireHeaders(t, a, id1)
	p.requireUp(t)
	// success is published once the delivered timer is removed from
	// storage; a kill -9 before that point would deliver it again at restart
	// (at least once), after it, never.
	ev.wait(t, "skyring.events.success", id1, deliverWait)

	// Pending across a kill -9: the kill must come before the due time. On
	// a machine too slow for that, the node is started again (the timer
	// may come once or twice: at least once across a crash, not judged
	// here) and a new timer tried with twice the lead.
	var path2, id2 string
	var at int64
	for lead := 1500 * time.Millisecond; ; lead *= 2 {
		path2 = s.Path("get-string-kill")
		b = with(body(s, path2), "data", "after the crash")
		b["callback"].(map[string]any)["method"] = "GET"
		id2, at = p.createDue(t, b, lead)
		p.Kill()
		if time.Now().UnixMilli() < at || lead >= time.Minute {
			break
		}
		t.Logf("killed after the due time (lead %v); again with a longer lead", lead)
		p.Restart()
	}
	require.Zero(t, s.Count(path2), "not due before the kill")
	p.Restart()
	a = s.waitPath(t, path2, time.Until(time.UnixMilli(at))+deliverWait)
	require.Equal(t, http.MethodGet, a.Method)
	require.Equal(t, "after the crash", string(a.Body))
	requireNotEarlyWall(t, a, at, "get after restart")
	requireHeaders(t, a, id2)
	p.requireUp(t)

	// And it is gone: a clean stop and a second restart do not replay it.
	s.barrier(t, p, 200)
	p.Stop()
	p.Restart()
	p.requireState(t, id2, "delivered", "delivered timer after restart")
	s.barrier(t, p, 300)
	require.Equal(t, 1, s.Count(path1))
	require.Equal(t, 1, s.Count(path2))
	p.Stop()
}

// TestRestartMemoryBackend: the memory backend works and keeps nothing.
func TestRestartMemoryBackend(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t, "--storage:backend", "memory")
	path := s.Path("mem")
	p.createTimer(t, with(body(s, path), "timeout", 50))
	s.waitPath(t, path, deliverWait)
	id, _ := p.createTimer(t, body(s, "/cb/never"))
	p.Stop()
	p.Restart()
	requireError(t, p.do(t, http.MethodGet, timerPath(id), nil), http.StatusNotFound, "memory backend after restart")
	p.Stop()
}

package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// natsArrival is one message a natsSink received.
type natsArrival struct {
	ID   string // Skyring-Timer-Id header
	Data string
	At   time.Time // when the handler got it
}

// natsSink records the messages on one NATS subject: the receiving end of
// the `nats` transport.
type natsSink struct {
	nc     *nats.Conn
	mu     sync.Mutex
	list   []natsArrival
	notify chan struct{}
}

// newNATSSink connects to url and subscribes to subject; the subscription
// is in place when it returns.
func newNATSSink(t testing.TB, url, subject string) *natsSink {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("skyring-e2e-natssink"))
	require.NoErrorf(t, err, "connect to NATS at %s", url)
	t.Cleanup(nc.Close)
	s := &natsSink{nc: nc, notify: make(chan struct{})}
	_, err = nc.Subscribe(subject, func(m *nats.Msg) {
		a := natsArrival{ID: m.Header.Get("Skyring-Timer-Id"), Data: string(m.Data), At: time.Now()}
		s.mu.Lock()
		s.list = append(s.list, a)
		close(s.notify)
		s.notify = make(chan struct{})
		s.mu.Unlock()
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	return s
}

// All is every message so far, in order of arrival.
func (s *natsSink) All() []natsArrival {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]natsArrival(nil), s.list...)
}

// waitFor waits until cond holds over the arrivals, up to d, and reports
// whether it did.
func (s *natsSink) waitFor(d time.Duration, cond func([]natsArrival) bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok := cond(s.list)
		ch := s.notify
		s.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// TestRestartOverdueNATSTransportExternalNATS: a node on an external NATS
// server is killed with SIGKILL while it holds timers with a `nats`
// transport callback (method publish), and started again on the same data
// directory after they are due. Every one of them must be published on its
// subject exactly once, not before its due time.
//
// It pins a bug: the node started its timing wheel and its delivery
// workers before its bus had connected to NATS, so the timers recovered as
// overdue fired at once, the `nats` transport found no connection ("node:
// NATS connection not ready"), and each timer was counted as failed and
// deleted: acknowledged timers lost across a crash. The window is the time
// the connect takes; on loopback it is short and a loaded machine can close
// it by luck, so the test puts a proxy in front of the server that holds the
// restarted node's connection for connectHold: a remote or busy server.
func TestRestartOverdueNATSTransportExternalNATS(t *testing.T) {
	t.Parallel()
	const (
		n = 10
		// How long the proxy holds the restarted node's connection: well
		// under the node's NATS connect timeout (5 s), well over the time it
		// takes to hand overdue timers to the transport.
		connectHold = 2 * time.Second
	)

	opts := natstest.DefaultTestOptions
	opts.Host = "127.0.0.1"
	opts.Port = -1
	ns := natstest.RunServer(&opts)
	t.Cleanup(ns.Shutdown)

	// The timers must be created (and fsynced: 201) and the node killed
	// before their due time; on a machine too slow for that, the attempt is
	// put away and run again on a fresh node and subject with a longer
	// lead (withLead).
	var (
		proxy   *tcpProxy
		subject string
		sub     *natsSink
		ev      *events
		p       *proc
		ids     []string
		at      int64
		due     time.Time
	)
	withLead(t, 4*time.Second, func(lead time.Duration) time.Duration {
		// The node reaches the server through a proxy that, for the
		// restart, holds its new connection for connectHold before passing
		// it on.
		proxy = newTCPProxy(t, ns.Addr().String())
		subject = fmt.Sprintf("e2e.overdue.%d", time.Now().UnixNano())
		sub = newNATSSink(t, ns.ClientURL(), subject)
		ev = subscribeEvents(t, ns.ClientURL(), "skyring.events.>", "skyring.node.>")
		// Debug logs say why a delivery failed ("delivery failed … err=…").
		p = startNode(t, "--nats:hosts", proxy.URL(), "--log:level", "debug")
		require.NotEmpty(t, p.Dir, "a leveldb data directory kept across the restart")

		// All due at one absolute time, lead ahead.
		start := time.Now()
		at = atIn(lead)
		due = time.UnixMilli(at)
		tooSlow := func(what string) time.Duration {
			p.Kill()
			t.Logf("harness: %s %v after the start; the timers were due %v after it", what, time.Since(start).Round(time.Millisecond), lead)
			return 2*time.Since(start) + time.Second
		}
		ids = make([]string, n)
		for i := range n {
			ids[i] = fmt.Sprintf("overdue-nats-%d-%d", i, at)
			b := natsPublishBody(subject, "at", at, fmt.Sprint("overdue ", i))
			r := p.do(t, http.MethodPost, "/timer", b, "x-timer-id", ids[i])
			if r.Status == http.StatusBadRequest && time.Now().UnixMilli() >= at {
				return tooSlow(fmt.Sprintf("create %d of %d answered 400 (%s)", i+1, n, r.Reason()))
			}
			require.Equalf(t, http.StatusCreated, r.Status, "POST /timer: %s", r)
			require.Equal(t, ids[i], locationID(t, r))
		}
		for _, id := range ids {
			ev.wait(t, "skyring.events.create", id, eventWait)
		}
		if !time.Now().Before(due.Add(-500 * time.Millisecond)) {
			return tooSlow(fmt.Sprintf("created %d timers", n))
		}

		p.Kill()
		killed := time.Now()
		if !killed.Before(due) {
			return tooSlow("killed")
		}
		// Whatever the node published before it died has reached the
		// server; a round trip on the sink's connection brings it to the
		// sink.
		require.NoError(t, sub.nc.Flush())
		require.Empty(t, sub.All(), "nothing was due before the kill, so nothing may have been published")
		t.Logf("killed %v before the due time", due.Sub(killed).Round(time.Millisecond))
		return 0
	})

	// Restart once they are all overdue.
	<-time.After(time.Until(due.Add(300 * time.Millisecond)))
	proxy.SetHold(connectHold)
	p.Restart()
	require.Equal(t, fmt.Sprint(n), p.Ready["recovered"], "the restarted node recovered every stored timer")
	t.Logf("restarted %v after the due time; its NATS connection was held %v", time.Since(due).Round(time.Millisecond), connectHold)

	// A barrier on the same subject, created now that the node is ready:
	// when it arrives, the overdue timers (fired at start) have had their
	// chance.
	barrier := "overdue-nats-barrier"
	p.createTimer(t, natsPublishBody(subject, "timeout", 300, "barrier"), "x-timer-id", barrier)
	want := map[string]bool{barrier: true}
	for _, id := range ids {
		want[id] = true
	}
	// Every timer and the barrier, or the deadline (the report below says
	// what is missing).
	complete := sub.waitFor(deliverWait, func(list []natsArrival) bool {
		got := map[string]bool{}
		for _, a := range list {
			got[a.ID] = true
		}
		for id := range want {
			if !got[id] {
				return false
			}
		}
		return true
	})
	// One more round trip on the sink's connection: a duplicate already
	// published would show up now.
	require.NoError(t, sub.nc.Flush())

	arrivals := map[string][]natsArrival{}
	for _, a := range sub.All() {
		arrivals[a.ID] = append(arrivals[a.ID], a)
	}
	// A success event follows each delivery (once the timer is removed).
	var published []string
	for _, id := range ids {
		if len(arrivals[id]) > 0 {
			published = append(published, id)
		}
	}
	ev.waitAll("skyring.events.success", published, eventWait)
	var problems []string
	for i, id := range ids {
		as := arrivals[id]
		switch {
		case len(as) == 0:
			problems = append(problems, fmt.Sprintf("%s: never published after the restart; %s", id, whyLost(p, ev, id)))
			continue
		case len(as) > 1:
			problems = append(problems, fmt.Sprintf("%s: published %d times", id, len(as)))
		}
		a := as[0]
		if a.At.Round(0).UnixNano() < at*int64(time.Millisecond) {
			problems = append(problems, fmt.Sprintf("%s: published at %s, %v before its due time", id,
				a.At.Format(time.RFC3339Nano), due.Sub(a.At.Round(0))))
		}
		if a.Data != fmt.Sprint("overdue ", i) {
			problems = append(problems, fmt.Sprintf("%s: data %q", id, a.Data))
		}
		if succ := ev.find("skyring.events.success", id); len(succ) != 1 {
			problems = append(problems, fmt.Sprintf("%s: %d success events", id, len(succ)))
		}
	}
	for id := range arrivals {
		if !want[id] {
			problems = append(problems, fmt.Sprintf("unexpected message for timer %q", id))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("%d overdue nats-transport timers recovered after a kill -9 (external NATS): %d of them published "+
			"(the barrier timer created after the restart: %d times); problems:\n  %s",
			n, len(published), len(arrivals[barrier]), strings.Join(problems, "\n  "))
	}
	require.True(t, complete, "the barrier timer was published")
	p.requireUp(t)
	p.Stop()
}

// waitAll waits until an event on subject arrived for each of ids, up to d,
// and reports whether they all did.
func (e *events) waitAll(subject string, ids []string, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		e.mu.Lock()
		seen := map[string]bool{}
		for _, ev := range e.list {
			if ev.Subject == subject {
				seen[ev.Timer] = true
			}
		}
		ch := e.notify
		e.mu.Unlock()
		all := true
		for _, id := range ids {
			all = all && seen[id]
		}
		if all {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return false
		}
	}
}

// whyLost says what the node tells about a timer that was never delivered:
// whether it is still stored (GET), its outcome events, and its failed
// delivery in the log.
func whyLost(p *proc, ev *events, id string) string {
	var why []string
	if r, err := p.try(http.MethodGet, timerPath(id), nil); err != nil {
		why = append(why, fmt.Sprintf("GET: %v", err))
	} else if r.Status == http.StatusNotFound {
		why = append(why, "GET: 404 (no longer stored)")
	} else {
		why = append(why, fmt.Sprintf("GET: %d", r.Status))
	}
	for _, e := range ev.find("skyring.events.fail", id) {
		why = append(why, fmt.Sprintf("fail event: %v", e.Fields["error"]))
	}
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.Contains(line, "delivery failed") && strings.Contains(line, "timer_id="+id+" ") {
			if i := strings.Index(line, "err="); i >= 0 {
				why = append(why, "log: delivery failed: "+line[i:])
			} else {
				why = append(why, "log: "+line)
			}
		}
	}
	return strings.Join(why, "; ")
}

// natsPublishBody is a create body with a `nats` publish callback to
// subject, due by timing ("at" or "timeout") value.
func natsPublishBody(subject, timing string, value any, data string) map[string]any {
	return map[string]any{
		timing:     value,
		"data":     data,
		"callback": map[string]any{"transport": "nats", "method": "publish", "uri": subject},
	}
}

// tcpProxy forwards TCP connections to target, each after an adjustable
// hold: a slow link to a NATS server.
type tcpProxy struct {
	ln     net.Listener
	target string
	hold   atomic.Int64 // ns a new connection waits before it is passed on
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// newTCPProxy listens on 127.0.0.1 and forwards to target until the test
// ends.
func newTCPProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{ln: ln, target: target, stop: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

// URL is the proxy's address as a NATS URL.
func (p *tcpProxy) URL() string { return "nats://" + p.ln.Addr().String() }

// SetHold sets how long connections accepted from now on wait.
func (p *tcpProxy) SetHold(d time.Duration) { p.hold.Store(int64(d)) }

func (p *tcpProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Add(1)
		go p.handle(c, time.Duration(p.hold.Load()))
	}
}

// track records c so that close can close it; false once closing.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns == nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) handle(c net.Conn, hold time.Duration) {
	defer p.wg.Done()
	defer c.Close()
	if hold > 0 {
		t := time.NewTimer(hold)
		select {
		case <-t.C:
		case <-p.stop:
			t.Stop()
			return
		}
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	if !p.track(up) {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(up, c)
		up.Close()
	}()
	_, _ = io.Copy(c, up)
	c.Close()
	<-done
}

func (p *tcpProxy) close() {
	p.ln.Close()
	close(p.stop)
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}

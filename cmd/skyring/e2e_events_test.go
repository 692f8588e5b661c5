package main_test

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/stretchr/testify/require"
)

const eventWait = 10 * time.Second

// requireEvent checks the common fields of a timer event.
func requireEvent(t testing.TB, ev event, typ, timer, node string) {
	t.Helper()
	require.Equal(t, typ, ev.Type, "type of %s %v", ev.Subject, ev.Fields)
	require.Equal(t, timer, ev.Timer, "timer of %s %v", ev.Subject, ev.Fields)
	require.NotEmpty(t, ev.Node, "node of %s %v", ev.Subject, ev.Fields)
	if node != "" {
		require.Equal(t, node, ev.Node, "node of %s %v", ev.Subject, ev.Fields)
	}
}

// TestEventsTimerLifecycle follows a timer's events on NATS: create,
// replace, cancel, execute then success, execute then fail.
func TestEventsTimerLifecycle(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	// The delivery timeout ends the /slow/ delivery below (the sink never
	// answers it). It also bounds every delivery that must succeed, so it
	// is far beyond what a callback to the local sink takes even on a
	// loaded machine.
	const deliveryTimeout = 5 * time.Second
	p := startNode(t, "--delivery:timeout", deliveryTimeout.String())
	ev := subscribeEvents(t, p.NATSURL, "skyring.events.>")

	// create, replace, cancel
	id, _ := p.createTimer(t, body(s, "/cb/never"))
	requireEvent(t, ev.wait(t, "skyring.events.create", id, eventWait), "create", id, p.Node)
	r := p.do(t, http.MethodPut, timerPath(id), with(body(s, "/cb/never"), "data", "v2"))
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	requireEvent(t, ev.wait(t, "skyring.events.replace", id, eventWait), "replace", id, p.Node)
	r = p.do(t, http.MethodDelete, timerPath(id), nil)
	require.Equal(t, http.StatusAccepted, r.Status, "%s", r)
	requireEvent(t, ev.wait(t, "skyring.events.cancel", id, eventWait), "cancel", id, p.Node)

	// execute then success
	okPath := s.Path("ok")
	okID, _ := p.createTimer(t, with(body(s, okPath), "timeout", 50))
	exec := ev.wait(t, "skyring.events.execute", okID, eventWait)
	requireEvent(t, exec, "execute", okID, p.Node)
	succ := ev.wait(t, "skyring.events.success", okID, eventWait)
	requireEvent(t, succ, "success", okID, p.Node)
	require.Less(t, exec.Seq, succ.Seq, "execute comes before success")
	require.Equal(t, 1, s.Count(okPath))

	// execute then fail: a closed port, a 500, a delivery timeout
	closed := with(body(s, "/unused"), "timeout", 50)
	closed["callback"].(map[string]any)["uri"] = closedPortURL(t)
	status500 := with(body(s, s.Path("/status/500/fail")), "timeout", 50)
	slow := with(body(s, s.Path("/slow/fail")), "timeout", 50)
	for name, b := range map[string]map[string]any{"closed port": closed, "status 500": status500, "delivery timeout": slow} {
		b["callback"].(map[string]any)["retry"] = map[string]any{"attempts": 1} // one attempt: fail at once
		fid, _ := p.createTimer(t, b)
		exec := ev.wait(t, "skyring.events.execute", fid, eventWait)
		fail := ev.wait(t, "skyring.events.fail", fid, deliveryTimeout+eventWait)
		requireEvent(t, fail, "fail", fid, p.Node)
		require.Less(t, exec.Seq, fail.Seq, "%s: execute comes before fail", name)
		msg, _ := fail.Fields["error"].(string)
		if msg == "" {
			msg, _ = fail.Fields["message"].(string)
		}
		require.NotEmpty(t, msg, "%s: fail event says why: %v", name, fail.Fields)
		require.Empty(t, ev.find("skyring.events.success", fid), "%s: no success", name)
	}

	// Barrier: later events are in; then check what must not have happened.
	bPath := s.Path("barrier")
	bID, _ := p.createTimer(t, with(body(s, bPath), "timeout", 100))
	ev.wait(t, "skyring.events.success", bID, eventWait)
	require.Len(t, ev.find("skyring.events.create", id), 1, "a PUT sends replace, not create")
	require.Empty(t, ev.find("skyring.events.execute", id), "a cancelled timer does not execute")
	require.Len(t, ev.find("skyring.events.execute", okID), 1, "one execute per firing")
	require.Len(t, ev.find("skyring.events.success", okID), 1, "one success")
	p.requireUp(t)
}

// TestEventsNodeShutdown: a graceful stop announces skyring.node.shutdown.
func TestEventsNodeShutdown(t *testing.T) {
	t.Parallel()
	p := startNode(t)
	ev := subscribeEvents(t, p.NATSURL, "skyring.node.>")
	p.Stop()
	sd := ev.wait(t, "skyring.node.shutdown", "", eventWait)
	require.Equal(t, "shutdown", sd.Type, "%v", sd.Fields)
	require.Equal(t, p.Node, sd.Node, "%v", sd.Fields)
}

// TestEventsPrefix: --nats:prefix moves the events' subjects.
func TestEventsPrefix(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t, "--nats:prefix", "sky2")
	ev := subscribeEvents(t, p.NATSURL, "sky2.events.>", "skyring.events.>")
	id, _ := p.createTimer(t, with(body(s, s.Path("prefix")), "timeout", 50))
	requireEvent(t, ev.wait(t, "sky2.events.create", id, eventWait), "create", id, p.Node)
	ev.wait(t, "sky2.events.success", id, eventWait)
	require.Empty(t, ev.find("skyring.events.create", ""), "nothing on the default prefix")
}

// TestEventsExternalNATS runs a node on an external NATS server (the
// original's setup): subscribed before the node starts, the test sees
// skyring.node.ready, then the timer events, then shutdown.
func TestEventsExternalNATS(t *testing.T) {
	t.Parallel()
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	ns := natstest.RunServer(&opts)
	t.Cleanup(ns.Shutdown)
	addr := ns.Addr().(*net.TCPAddr)
	hostport := net.JoinHostPort("127.0.0.1", strconv.Itoa(addr.Port))

	ev := subscribeEvents(t, ns.ClientURL(), "skyring.node.>", "skyring.events.>")
	s := newSink(t)
	p := startNode(t, "--nats:hosts", hostport)
	ready := ev.wait(t, "skyring.node.ready", "", eventWait)
	require.Equal(t, "ready", ready.Type, "%v", ready.Fields)
	require.Equal(t, p.Node, ready.Node, "%v", ready.Fields)

	path := s.Path("external")
	id, _ := p.createTimer(t, with(body(s, path), "timeout", 50))
	requireEvent(t, ev.wait(t, "skyring.events.create", id, eventWait), "create", id, p.Node)
	s.waitPath(t, path, deliverWait)
	ev.wait(t, "skyring.events.success", id, eventWait)

	p.Stop()
	sd := ev.wait(t, "skyring.node.shutdown", "", eventWait)
	require.Equal(t, p.Node, sd.Node)
	require.Less(t, ready.Seq, sd.Seq)
}

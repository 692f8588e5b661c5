package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// TestNATSCallbackReservedSubjectRefused: with the real binary, a nats
// callback to the node's own subjects (the example: a forged
// heartbeat on the membership subject) is a 400 naming callback.uri, over
// HTTP and NATS, and nothing reaches the subject; with --nats:callback-allow
// a subject off the list is a 400 too.
func TestNATSCallbackReservedSubjectRefused(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	const secret = "guard-e2e-cluster-secret"
	p := startNode(t, "--nats:callback-allow", "jobs.>", "--channel:secret", secret)
	nc, err := nats.Connect(p.NATSURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	// The members subject is watched with the node credentials (an API
	// client may not), and the watcher does see the node's heartbeats.
	watcher, err := nats.Connect(p.NATSURL, nats.UserInfo("skyring-node", secret))
	require.NoError(t, err)
	t.Cleanup(watcher.Close)
	forged := make(chan *nats.Msg, 16)
	heartbeat := make(chan struct{}, 1)
	sub, err := watcher.Subscribe("_SKYRING.skyring.members", func(m *nats.Msg) {
		if strings.Contains(string(m.Data), `"evil"`) {
			forged <- m
		}
		select {
		case heartbeat <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, watcher.Flush())

	for i, subj := range []string{"_SKYRING.skyring.members", "_SKYRING.skyring.relay." + p.Node, "skyring.timer.create", "skyring.events.success", "_INBOX.x", "$SYS.REQ.SERVER.PING", "other.subject"} {
		cb := map[string]any{"transport": "nats", "method": "publish", "uri": subj}
		b := with(body(s, "/cb/never"), "timeout", 1, "data", map[string]any{"kind": "heartbeat", "id": "evil"}, "callback", cb)
		id := fmt.Sprintf("guard-%d", i)
		r := p.do(t, http.MethodPost, "/timer", b, "x-timer-id", id)
		requireError(t, r, http.StatusBadRequest, subj)
		require.Contains(t, r.Reason(), "callback.uri", subj)
		n := natsRequest(t, nc, "skyring.timer.create", with(b, "id", id+"-n"))
		require.Equal(t, 400, n.Status, "%s over NATS: %+v", subj, n)
		require.Equal(t, r.Reason(), n.Error, subj)
	}
	// An allowed subject is still accepted.
	p.createTimer(t, with(body(s, "/cb/never"), "callback", map[string]any{"transport": "nats", "method": "publish", "uri": "jobs.x"}))

	require.NoError(t, nc.Flush())
	select {
	case <-heartbeat:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher saw no heartbeat of the node")
	}
	select {
	case m := <-forged:
		t.Fatalf("a forged heartbeat reached the membership subject: %s", m.Data)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestTimerMaxPending: `--timer:max-pending 2` answers the third create
// with 503 and a reason naming the maximum.
func TestTimerMaxPending(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t, "--timer:max-pending", "2")
	p.createTimer(t, body(s, "/cb/never"))
	p.createTimer(t, body(s, "/cb/never"))
	r := p.do(t, http.MethodPost, "/timer", body(s, "/cb/never"))
	requireError(t, r, http.StatusServiceUnavailable)
	require.Equal(t, "Node holds its maximum of 2 pending timers", r.Reason())
}

package node_test

// The security issue's items 2 and 7: a nats callback cannot target the
// node's own subjects (nor, with an allow-list, any subject off the list),
// and a node holds at most Options.MaxPending timers.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/transports/natstransport"
)

// TestNATSCallbackToMembershipRefused is the example: a timer whose
// callback publishes a forged heartbeat on the membership subject gets a 400
// naming callback.uri, over HTTP and NATS, nothing reaches the subject, and
// the ring is unchanged.
func TestNATSCallbackToMembershipRefused(t *testing.T) {
	t.Parallel()
	const secret = "guard-test-cluster-secret"
	a := setupAPI(t, withNATSTransport, func(o *node.Options) error { o.ClusterSecret = secret; return nil })
	members := "_SKYRING." + node.DefaultPrefix + ".members"
	// Watch the members subject as a node would: an API client may not.
	watcher, err := nats.Connect(a.node.NATSURL(), nats.UserInfo(bus.NodeUser, secret))
	require.NoError(t, err)
	t.Cleanup(watcher.Close)
	forged := make(chan *nats.Msg, 64)
	heartbeats := make(chan struct{}, 64)
	sub, err := watcher.Subscribe(members, func(m *nats.Msg) {
		if strings.Contains(string(m.Data), `"evil"`) {
			forged <- m
		}
		select {
		case heartbeats <- struct{}{}:
		default:
		}
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, watcher.Flush())
	before := a.node.Cluster()

	body := `{"timeout":1,"data":{"kind":"heartbeat","id":"evil"},"callback":{"transport":"nats","method":"publish","uri":"` + members + `"}}`
	for _, side := range []apiSide{a.http, a.nats} {
		req := apiReq{op: "create", id: "evil-{side}", body: body}.on(side.name())
		res := side.do(t, req)
		require.Equal(t, http.StatusBadRequest, res.status, "%s: %s", side.name(), res.reason)
		require.Contains(t, res.reason, "callback.uri")
		require.Contains(t, res.reason, members)
		require.Nil(t, a.httpGet(t, req.id), "nothing stored")
	}
	a.advanceTo(t, t0.Add(time.Second))
	require.NoError(t, a.nats.nc.Flush())
	// The watcher does see the members subject (the node's own
	// heartbeats), so its silence about "evil" means something.
	select {
	case <-heartbeats:
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher saw no membership message at all")
	}
	select {
	case m := <-forged:
		t.Fatalf("a forged heartbeat reached %s: %s", members, m.Data)
	case <-time.After(100 * time.Millisecond):
	}
	after := a.node.Cluster()
	require.Equal(t, before.Members, after.Members, "the ring is unchanged")
	require.Equal(t, before.RingVersion, after.RingVersion)
	require.Zero(t, a.node.Len())
}

// TestNATSCallbackAllowList: with NATSCallbackAllow set, only matching
// subjects are accepted; reserved ones stay refused.
func TestNATSCallbackAllowList(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, withNATSTransport, func(o *node.Options) error {
		o.NATSCallbackAllow = []string{"jobs.>", "alerts.*"}
		return nil
	})
	cases := []struct {
		subject string
		status  int
	}{
		{"jobs.a", http.StatusCreated},
		{"jobs.a.b", http.StatusCreated},
		{"alerts.x", http.StatusCreated},
		{"alerts.x.y", http.StatusBadRequest},
		{"other", http.StatusBadRequest},
		{"skyring.timer.create", http.StatusBadRequest},
	}
	for i, c := range cases {
		body := `{"timeout":60000,"callback":{"transport":"nats","method":"publish","uri":"` + c.subject + `"}}`
		for _, side := range []apiSide{a.http, a.nats} {
			res := side.do(t, apiReq{op: "create", id: fmt.Sprintf("allow-%d-{side}", i), body: body}.on(side.name()))
			require.Equal(t, c.status, res.status, "%s on %s: %s", c.subject, side.name(), res.reason)
			if c.status == http.StatusBadRequest {
				require.Contains(t, res.reason, "callback.uri")
			}
		}
	}
}

func TestNATSCallbackAllowBadPattern(t *testing.T) {
	t.Parallel()
	n, err := node.New(node.WithOptions(node.Options{
		StorageBackend: "memory", HTTPAddr: "127.0.0.1:0", NATSPort: -1, ChannelPort: -1,
		Logger: testLogger(t), NATSCallbackAllow: []string{"a.>.b"},
	}), withNATSTransport)
	if err == nil {
		err = n.Start(context.Background())
		if err == nil {
			_ = n.Close()
		}
	}
	require.ErrorIs(t, err, natstransport.ErrBadPattern)
}

func maxPending(n int) node.Option {
	return func(o *node.Options) error { o.MaxPending = n; return nil }
}

// TestMaxPending: a node with MaxPending 3 answers the 4th create with 503
// and a reason naming the maximum, over Go, HTTP and NATS; once one timer
// fired, a create succeeds again.
func TestMaxPending(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, maxPending(3))
	ctx := context.Background()
	require.NoError(t, a.node.Create(ctx, a.timer(t, "soon", 10*time.Millisecond, "x")))
	require.NoError(t, a.node.Create(ctx, a.timer(t, "late-1", time.Hour, "x")))
	require.NoError(t, a.node.Create(ctx, a.timer(t, "late-2", time.Hour, "x")))

	err := a.node.Create(ctx, a.timer(t, "over", time.Hour, "x"))
	require.ErrorIs(t, err, skyring.ErrTooManyTimers)
	status, reason := skyring.Status(err)
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.Equal(t, "Node holds its maximum of 3 pending timers", reason)
	require.Equal(t, skyring.CodeTooManyTimers, skyring.CodeOf(err))
	require.ErrorIs(t, skyring.ErrorFromStatus(status, reason), skyring.ErrTooManyTimers, "a client tells it from ErrNoOwner")

	body := `{"timeout":60000,"data":"x","callback":{"transport":"rec","method":"post","uri":"x"}}`
	for _, side := range []apiSide{a.http, a.nats} {
		res := side.do(t, apiReq{op: "create", id: "over-{side}", body: body}.on(side.name()))
		require.Equal(t, http.StatusServiceUnavailable, res.status, side.name())
		require.Equal(t, reason, res.reason, side.name())
	}
	require.Equal(t, 3, a.node.Len())

	a.advanceTo(t, t0.Add(time.Second))
	a.rec.Wait(t, 1)
	require.NoError(t, a.node.Create(ctx, a.timer(t, "after", time.Hour, "x")), "a slot is free once one fired")
	err = a.node.Create(ctx, a.timer(t, "over-again", time.Hour, "x"))
	require.True(t, errors.Is(err, skyring.ErrTooManyTimers), "%v", err)
}

func TestMaxPendingNegative(t *testing.T) {
	t.Parallel()
	_, err := node.New(node.WithOptions(node.Options{StorageBackend: "memory", MaxPending: -1}))
	require.ErrorContains(t, err, "max pending")
}

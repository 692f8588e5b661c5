package bus_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
)

func TestNewValidates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts bus.Options
	}{
		{"no node id", bus.Options{}},
		{"node id with a dot", bus.Options{NodeID: "a.b"}},
		{"node id with a wildcard", bus.Options{NodeID: "a*"}},
		{"empty prefix token", bus.Options{NodeID: "a", Prefix: "x..y"}},
		{"wildcard prefix", bus.Options{NodeID: "a", Prefix: "x.>"}},
		{"bad port", bus.Options{NodeID: "a", NATSPort: 70000}},
		{"bad cluster port", bus.Options{NodeID: "a", ClusterPort: -2}},
		{"negative interval", bus.Options{NodeID: "a", HeartbeatInterval: -time.Second}},
		{"empty server", bus.Options{NodeID: "a", Servers: []string{" "}}},
	} {
		_, err := bus.New(tc.opts)
		require.Error(t, err, tc.name)
	}
	b, err := bus.New(bus.Options{NodeID: "Node_1-x"})
	require.NoError(t, err)
	require.Equal(t, "Node_1-x", b.NodeID())
	require.NoError(t, b.Close())
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("life"))
	b, err := bus.New(bus.Options{NodeID: h.id, NATSPort: -1, ClusterPort: -1, Logger: testLogger(t)})
	require.NoError(t, err)
	require.Nil(t, b.Conn())
	require.Empty(t, b.ClientURL())
	b.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeReady}) // before Start: nothing
	_, err = b.Relay(context.Background(), "x", bus.Command{Op: bus.OpGet, ID: "x"})
	require.Error(t, err)

	ctx := ctxTimeout(t, 10*time.Second)
	require.Error(t, b.Start(ctx, nil), "a handler is required")
	require.NoError(t, b.Start(ctx, h))
	require.Error(t, b.Start(ctx, h), "already started")
	require.NotNil(t, b.Conn())
	require.NotNil(t, b.Server())
	require.Regexp(t, `^nats://127\.0\.0\.1:\d+$`, b.ClientURL())
	require.True(t, b.Conn().IsConnected())

	require.NoError(t, b.Close())
	require.NoError(t, b.Close(), "idempotent")
	require.True(t, b.Conn().IsClosed())
	require.False(t, b.Server().Running())
	require.ErrorIs(t, b.Start(ctx, h), skyring.ErrClosed)
	b.PublishTimerEvent(bus.TimerEvent{Type: bus.EventCreate, Timer: "x"}) // after Close: nothing
	_, err = b.Relay(ctx, h.id, bus.Command{Op: bus.OpGet, ID: "x"})
	require.ErrorIs(t, err, skyring.ErrClosed)
	require.NoError(t, b.StopAPI(ctx))
	b.Leave()

	// Close without Start.
	b2, err := bus.New(bus.Options{NodeID: "never"})
	require.NoError(t, err)
	require.NoError(t, b2.Close())
	require.ErrorIs(t, b2.Start(ctx, h), skyring.ErrClosed)
}

// Close lets in-flight API messages finish and answers them.
func TestCloseDrains(t *testing.T) {
	t.Parallel()
	h := &blockingHandler{fakeHandler: newFakeHandler(nodeID("drain")), entered: make(chan struct{}), release: make(chan struct{})}
	srv := bustest.RunServer(t) // outlives the bus
	b, err := bus.New(bus.Options{NodeID: h.id, Logger: testLogger(t), Servers: []string{srv.ClientURL()}})
	require.NoError(t, err)
	require.NoError(t, b.Start(ctxTimeout(t, 10*time.Second), h))
	t.Cleanup(func() { _ = b.Close() })

	nc := bustest.Connect(t, srv)
	reply := make(chan string, 1)
	go func() {
		m, err := nc.Request(b.Subject("timer", "get"), []byte(`{"id":"slow"}`), 10*time.Second)
		if err != nil {
			reply <- err.Error()
			return
		}
		reply <- string(m.Data)
	}()
	<-h.entered
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	close(h.release)
	require.NoError(t, <-closed)
	require.JSONEq(t, `{"status":404,"error":"Timer not found"}`, <-reply)
}

func TestPortInUse(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port

	for _, tc := range []struct {
		name string
		opts bus.Options
		msg  string
	}{
		{"client", bus.Options{NATSPort: port, ClusterPort: -1}, fmt.Sprintf("bus: NATS port %d in use", port)},
		{"cluster", bus.Options{NATSPort: -1, ClusterPort: port}, fmt.Sprintf("bus: cluster port %d in use", port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHandler(nodeID("port"))
			tc.opts.NodeID = h.id
			tc.opts.Logger = testLogger(t)
			b, err := bus.New(tc.opts)
			require.NoError(t, err)
			// It fails on the taken port, not on a deadline (a minute: far
			// beyond how long the server takes to find out, even on a slow
			// machine).
			ctx := ctxTimeout(t, time.Minute)
			err = b.Start(ctx, h)
			require.ErrorIs(t, err, bus.ErrPortInUse)
			require.ErrorContains(t, err, tc.msg)
			require.NotErrorIs(t, err, context.DeadlineExceeded)
			require.NoError(t, ctx.Err(), "fails fast, not at the deadline")
			require.Nil(t, b.Server(), "the failed start shut the server down")
			require.NoError(t, b.Close())
		})
	}
}

func TestExternalUnreachable(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now

	h := newFakeHandler(nodeID("ext"))
	b, err := bus.New(bus.Options{NodeID: h.id, Servers: []string{"nats://" + addr}, Logger: testLogger(t)})
	require.NoError(t, err)
	// It fails on the refused connection (within its connect timeout), not
	// on Start's deadline (a minute).
	ctx := ctxTimeout(t, time.Minute)
	err = b.Start(ctx, h)
	require.ErrorContains(t, err, "bus: connecting to NATS at nats://"+addr)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, ctx.Err(), "fails on its own, not at the deadline")
	require.Nil(t, b.Conn())
	require.NoError(t, b.Close())
}

func TestBadSeed(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("seed"))
	b, err := bus.New(bus.Options{NodeID: h.id, NATSPort: -1, ClusterPort: -1, Seeds: []string{"nohost"}, Logger: testLogger(t)})
	require.NoError(t, err, "seeds are checked at Start")
	require.ErrorContains(t, b.Start(ctxTimeout(t, 5*time.Second), h), `seed "nohost" is not host:port`)
	require.NoError(t, b.Close())
}

func TestDuplicateNodeID(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("dup"))
	a := startBus(t, bus.Options{NodeID: h.id}, h)
	b, err := bus.New(bus.Options{NodeID: h.id, Servers: []string{nodeURL(a)}, Logger: testLogger(t)})
	require.NoError(t, err)
	err = b.Start(ctxTimeout(t, 5*time.Second), newFakeHandler(h.id))
	require.ErrorIs(t, err, bus.ErrDuplicateNode)
	require.ErrorContains(t, err, h.id)
	require.NoError(t, b.Close())
	h.mu.Lock()
	defer h.mu.Unlock()
	require.Empty(t, h.relays, "the check never reaches the Handler")
}

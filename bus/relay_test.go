package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
)

func newTimer(id string) *skyring.Timer {
	return &skyring.Timer{
		ID:       id,
		Created:  t0.UnixNano(),
		Due:      t0.Add(time.Minute).UnixNano(),
		Data:     json.RawMessage(`{"k":"v"}`),
		Callback: skyring.Callback{Transport: "http", Method: "post", URI: "http://127.0.0.1:9/" + id},
	}
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// relayRoundTrip exercises every op from a to b's node.
func relayRoundTrip(t *testing.T, a *bus.Bus, from string, hb *fakeHandler) {
	ctx := ctxTimeout(t, 5*time.Second)

	rep, err := a.Relay(ctx, hb.id, bus.Command{Op: bus.OpCreate, Timer: newTimer("r1")})
	require.NoError(t, err)
	require.Equal(t, bus.Reply{Status: 201}, rep)
	require.Equal(t, newTimer("r1"), hb.timer("r1"))

	rep, err = a.Relay(ctx, hb.id, bus.Command{Op: bus.OpCreate, Timer: newTimer("r1")})
	require.NoError(t, err)
	require.Equal(t, 409, rep.Status)
	require.Equal(t, skyring.CodeExists, rep.Code)
	require.ErrorIs(t, rep.Err(), skyring.ErrTimerExists)

	upd := newTimer("r1")
	upd.Data = nil
	rep, err = a.Relay(ctx, hb.id, bus.Command{Op: bus.OpUpdate, Timer: upd})
	require.NoError(t, err)
	require.Equal(t, 200, rep.Status)
	require.NoError(t, rep.Err())

	rep, err = a.Relay(ctx, hb.id, bus.Command{Op: bus.OpGet, ID: "r1"})
	require.NoError(t, err)
	want := upd.Info(hb.id)
	require.Equal(t, bus.Reply{Status: 200, Info: &want}, rep)

	rep, err = a.Relay(ctx, hb.id, bus.Command{Op: bus.OpCancel, ID: "r1"})
	require.NoError(t, err)
	require.Equal(t, 202, rep.Status)

	rep, err = a.Relay(ctx, hb.id, bus.Command{Op: bus.OpGet, ID: "r1"})
	require.NoError(t, err)
	require.Equal(t, bus.Reply{Status: 404, Code: skyring.CodeNotFound, Reason: "Timer not found"}, rep)
	require.ErrorIs(t, rep.Err(), skyring.ErrTimerNotFound)

	batch := []*skyring.Timer{newTimer("h1"), newTimer("h2"), newTimer("h3")}
	rep, err = a.Relay(ctx, hb.id, bus.Command{Op: bus.OpHandoff, Timers: batch})
	require.NoError(t, err)
	require.Equal(t, 200, rep.Status)
	for _, tm := range batch {
		require.Equal(t, tm, hb.timer(tm.ID))
	}

	hb.mu.Lock()
	defer hb.mu.Unlock()
	for i, cmd := range hb.relays {
		require.Equal(t, from, cmd.From, "From filled in")
		require.True(t, hb.deadline[i], "the receiver's context has the sender's deadline")
	}
}

func TestRelayOneServer(t *testing.T) {
	t.Parallel()
	ha, hb := newFakeHandler(nodeID("ra")), newFakeHandler(nodeID("rb"))
	a := startBus(t, bus.Options{NodeID: ha.id}, ha)
	startBus(t, bus.Options{NodeID: hb.id, Servers: []string{nodeURL(a)}}, hb)
	relayRoundTrip(t, a, ha.id, hb)
}

// Two embedded buses form a routed cluster (ClusterPort + Seeds) and relay
// across it.
func TestRelayCluster(t *testing.T) {
	t.Parallel()
	ha, hb := newFakeHandler(nodeID("ca")), newFakeHandler(nodeID("cb"))
	a := startBus(t, bus.Options{NodeID: ha.id, ClusterPort: -1, HeartbeatInterval: time.Hour}, ha)
	seed := a.Server().ClusterAddr().String()
	b := startBus(t, bus.Options{
		NodeID: hb.id, ClusterPort: -1, HeartbeatInterval: time.Hour,
		Seeds: []string{seed, "127.0.0.1:1"}, // an unreachable seed does not hold up the start
	}, hb)
	require.NotEqual(t, a.ClientURL(), b.ClientURL())
	bustest.WaitForRoutes(t, a.Server(), b.Server())

	// Once a has heard b's announce (or its answer to a's sync), b's relay
	// subject is known on a's server: the subscription went over the route
	// before the announce did.
	ha.waitEvent(t, "seen:"+hb.id)
	relayRoundTrip(t, a, ha.id, hb)

	hb.waitEvent(t, "seen:"+ha.id)
	rep, err := b.Relay(ctxTimeout(t, 5*time.Second), ha.id, bus.Command{Op: bus.OpGet, ID: "zz"})
	require.NoError(t, err)
	require.Equal(t, 404, rep.Status)
}

func TestRelayUnknownNode(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("unk"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)

	// No responders is reported as such, not at the deadline (a minute:
	// far beyond how long the answer takes even on a slow machine).
	ctx := ctxTimeout(t, time.Minute)
	_, err := b.Relay(ctx, "nobody", bus.Command{Op: bus.OpGet, ID: "x"})
	require.ErrorIs(t, err, bus.ErrNodeUnreachable)
	require.NotErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, ctx.Err(), "no responders is reported at once, not at the deadline")
	require.Contains(t, err.Error(), "nobody")

	_, err = b.Relay(context.Background(), "bad.id", bus.Command{Op: bus.OpGet, ID: "x"})
	require.Error(t, err)
}

func TestRelayTimeout(t *testing.T) {
	t.Parallel()
	ha, hb := newFakeHandler(nodeID("ta")), newFakeHandler(nodeID("tb"))
	hb.block = make(chan struct{})
	a := startBus(t, bus.Options{NodeID: ha.id}, ha)
	startBus(t, bus.Options{NodeID: hb.id, Servers: []string{nodeURL(a)}}, hb)
	t.Cleanup(func() { close(hb.block) }) // before the buses close

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := a.Relay(ctx, hb.id, bus.Command{Op: bus.OpGet, ID: "x"})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, bus.ErrNodeUnreachable)
	hb.waitEvent(t, "relay:get")
	hb.mu.Lock()
	defer hb.mu.Unlock()
	require.Equal(t, []bool{true}, hb.deadline, "the receiver got the sender's deadline")
}

// A handoff batch larger than the max payload is split by HandoffPieces
// into requests that each fit, and every timer arrives; a timer too large
// to travel alone is a piece of its own that Relay refuses.
func TestRelayHandoffSplit(t *testing.T) {
	t.Parallel()
	ha, hb := newFakeHandler(nodeID("sa")), newFakeHandler(nodeID("sb"))
	a := startBus(t, bus.Options{NodeID: ha.id, MaxPayload: 64 << 10}, ha)
	startBus(t, bus.Options{NodeID: hb.id, Servers: []string{nodeURL(a)}}, hb)
	require.EqualValues(t, 64<<10, a.Conn().MaxPayload())

	const n = 2000
	batch := make([]*skyring.Timer, n)
	for i := range batch {
		batch[i] = newTimer(fmt.Sprintf("split-%04d", i))
		batch[i].Data = json.RawMessage(`"` + strings.Repeat("d", 100) + `"`)
	}
	pieces := a.HandoffPieces(batch)
	require.Greater(t, len(pieces), 3, "split into several messages")
	var joined []*skyring.Timer
	for _, p := range pieces {
		joined = append(joined, p...)
		rep, err := a.Relay(ctxTimeout(t, 10*time.Second), hb.id, bus.Command{Op: bus.OpHandoff, Timers: p})
		require.NoError(t, err)
		require.Equal(t, 200, rep.Status)
	}
	require.Equal(t, batch, joined, "in order, none left out")
	require.Equal(t, n, hb.numTimers())
	for _, tm := range batch {
		require.Equal(t, tm, hb.timer(tm.ID))
	}
	hb.mu.Lock()
	requests := len(hb.relays)
	hb.mu.Unlock()
	require.Equal(t, len(pieces), requests)

	// A single timer over the limit travels alone and is refused, not a hang.
	big := newTimer("big")
	big.Data = json.RawMessage(`"` + strings.Repeat("d", 100<<10) + `"`)
	pieces = a.HandoffPieces([]*skyring.Timer{batch[0], big, batch[1]})
	require.Equal(t, [][]*skyring.Timer{{batch[0]}, {big}, {batch[1]}}, pieces)
	_, err := a.Relay(ctxTimeout(t, 5*time.Second), hb.id, bus.Command{Op: bus.OpHandoff, Timers: pieces[1]})
	require.ErrorIs(t, err, bus.ErrTooLarge)
	_, err = a.Relay(ctxTimeout(t, 5*time.Second), hb.id, bus.Command{Op: bus.OpCreate, Timer: big})
	require.ErrorIs(t, err, bus.ErrTooLarge)
}

// A relay to this node's own id goes through NATS like any other.
func TestRelaySelf(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("self"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	rep, err := b.Relay(ctxTimeout(t, 5*time.Second), h.id, bus.Command{Op: bus.OpCreate, Timer: newTimer("s1")})
	require.NoError(t, err)
	require.Equal(t, 201, rep.Status)
}

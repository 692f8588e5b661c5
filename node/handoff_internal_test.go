package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/ring"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/transports/transportstest"
	"github.com/skyring/skyring/wheel"
)

// startTestNode starts one node on a fake clock and memory storage.
func startTestNode(t *testing.T) (*Node, *wheel.FakeClock) {
	t.Helper()
	clock := wheel.NewFakeClock(time.Unix(1_800_000_000, 0))
	n, err := New(WithOptions(Options{
		HTTPAddr: "127.0.0.1:0", NATSPort: -1, ChannelPort: -1,
		Store: memstore.New(), Transports: []string{"http"}, Clock: clock,
		ShutdownTimeout: time.Second, // a test member that never answers holds a leave up to this
		Logger:          slog.New(slog.NewTextHandler(io.Discard, nil)),
	}), WithTransport(transportstest.NewRecorder("rec")))
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { _ = n.Close() })
	return n, clock
}

func handedTimer(id string, created time.Time, data string) *skyring.Timer {
	return &skyring.Timer{
		ID: id, Created: created.UnixNano(), Due: created.Add(time.Hour).UnixNano(),
		Data:     json.RawMessage(fmt.Sprintf("%q", data)),
		Callback: skyring.Callback{Transport: "rec", Method: "post", URI: "x"},
	}
}

// A hand-off is idempotent: the same generation twice is stored once and
// acknowledged both times; a newer generation of a held id replaces it and
// the older one is reported by a conflict event with its data; an older
// generation is acknowledged, not stored, and reported; an id with a
// command under way here is not acknowledged (the sender keeps it).
func TestTakeIdempotentAndConflicts(t *testing.T) {
	t.Parallel()
	n, clock := startTestNode(t)
	ctx := context.Background()
	nc, err := nats.Connect(n.NATSURL())
	require.NoError(t, err)
	defer nc.Close()
	conflicts := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("skyring.events."+bus.EventConflict, conflicts)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.Flush())
	nextConflict := func() bus.TimerEvent {
		t.Helper()
		select {
		case m := <-conflicts:
			var ev bus.TimerEvent
			require.NoError(t, json.Unmarshal(m.Data, &ev))
			return ev
		case <-time.After(10 * time.Second):
			t.Fatal("no conflict event")
			return bus.TimerEvent{}
		}
	}
	now := clock.Now()

	// The same generation twice.
	a1 := handedTimer("a", now, "a1")
	acked, err := n.rebalance.take(ctx, "peer", []*skyring.Timer{a1}, false)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, acked)
	again := handedTimer("a", now, "a1")
	acked, err = n.rebalance.take(ctx, "peer", []*skyring.Timer{again}, false)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, acked, "a hand-off sent again is acknowledged")
	require.Equal(t, 1, n.Len())
	stored, err := n.store.Get(ctx, "a")
	require.NoError(t, err)
	require.EqualValues(t, 1, stored.Moves, "stored once: one move")

	// A newer generation replaces the held one; the held one is reported.
	a2 := handedTimer("a", now.Add(time.Second), "a2")
	acked, err = n.rebalance.take(ctx, "peer", []*skyring.Timer{a2}, false)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, acked)
	stored, err = n.store.Get(ctx, "a")
	require.NoError(t, err)
	require.JSONEq(t, `"a2"`, string(stored.Data))
	require.EqualValues(t, 2, stored.Moves, "a replacement counts as a move: its fence is higher")
	ev := nextConflict()
	require.Equal(t, "a", ev.Timer)
	require.JSONEq(t, `"a1"`, string(ev.Payload), "the loser's data is in the event")
	require.Equal(t, n.ID(), ev.From)
	require.Equal(t, 1, n.Len(), "one timer under the id, armed once")

	// An older generation loses: acknowledged, not stored, reported.
	a0 := handedTimer("a", now.Add(-time.Second), "a0")
	acked, err = n.rebalance.take(ctx, "peer", []*skyring.Timer{a0}, false)
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, acked)
	stored, err = n.store.Get(ctx, "a")
	require.NoError(t, err)
	require.JSONEq(t, `"a2"`, string(stored.Data))
	ev = nextConflict()
	require.JSONEq(t, `"a0"`, string(ev.Payload))
	require.Equal(t, "peer", ev.From)

	// A command under way on the id: not now.
	require.NoError(t, n.index.reserve(ctx, "b"))
	acked, err = n.rebalance.take(ctx, "peer", []*skyring.Timer{handedTimer("b", now, "b"), handedTimer("c", now, "c")}, false)
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, acked, "b is not acknowledged while a create of it is under way")
	n.index.release("b")
	require.Equal(t, 2, n.Len(), "a and c pending")
}

// newer decides the same for both orders, and by Created first.
func TestNewer(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	x, y := handedTimer("x", now, "1"), handedTimer("x", now.Add(time.Nanosecond), "0")
	require.True(t, newer(y, x))
	require.False(t, newer(x, y))
	p, q := handedTimer("x", now, "p"), handedTimer("x", now, "q")
	require.NotEqual(t, newer(p, q), newer(q, p), "a tie is broken the same way on every node")
	require.False(t, newer(p, p))
}

// Timers move only between nodes that agree on the ring: a hand-off chosen
// by another view of the ring is refused, nothing stored; the same one
// stamped with this node's ring is taken.
func TestHandoffRefusedOnAnotherRing(t *testing.T) {
	t.Parallel()
	n, clock := startTestNode(t)
	ctx := context.Background()
	h := busHandler{n}
	tm := handedTimer("r", clock.Now(), "r")
	rep := h.HandleRelay(ctx, bus.Command{Op: bus.OpHandoff, From: "peer", Ring: n.members.ringChecksum() + 1, Timers: []*skyring.Timer{tm}})
	require.ErrorIs(t, rep.Err(), skyring.ErrStaleRing)
	require.Equal(t, 409, rep.Status)
	require.Empty(t, rep.Acked)
	require.Zero(t, n.Len(), "nothing stored")
	rep = h.HandleRelay(ctx, bus.Command{Op: bus.OpHandoff, From: "peer", Ring: n.members.ringChecksum(), Timers: []*skyring.Timer{tm}})
	require.NoError(t, rep.Err())
	require.Equal(t, []string{"r"}, rep.Acked)
	require.Equal(t, 1, n.Len())
}

// A create relayed by a node whose view of the ring differs (here: this
// node knows a member that owns the id) is stored as asked and queued to
// move to its owner by this node's view at the next reconcile pass.
func TestRelayedCreateForAnotherOwnerIsKept(t *testing.T) {
	t.Parallel()
	n, clock := startTestNode(t)
	ctx := context.Background()
	n.members.view.Seen(ring.Member{ID: "ghost", Started: 1}, time.Now())
	var id string
	for i := 0; ; i++ {
		id = fmt.Sprintf("k-%d", i)
		if n.members.owner(id) == "ghost" {
			break
		}
	}
	tm := handedTimer(id, clock.Now(), "k")
	rep := busHandler{n}.HandleRelay(ctx, bus.Command{Op: bus.OpCreate, Timer: tm, From: "peer"})
	require.NoError(t, rep.Err())
	require.Equal(t, 201, rep.Status)
	// Kept for the next pass (and again after each try: ghost does not
	// answer).
	require.Eventually(t, func() bool {
		n.rebalance.mu.Lock()
		defer n.rebalance.mu.Unlock()
		_, kept := n.rebalance.kept[id]
		return kept
	}, 10*time.Second, 5*time.Millisecond, "the create is kept for its owner by this node's view")
	require.True(t, n.index.armed(id), "still armed here while its owner does not answer")
}

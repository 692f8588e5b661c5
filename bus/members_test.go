package bus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/bus"
)

// Two buses see each other at once through announce and its answer (the
// heartbeat interval is an hour), and a goodbye reaches the other side.
func TestMembership(t *testing.T) {
	t.Parallel()
	ha, hb := newFakeHandler(nodeID("ma")), newFakeHandler(nodeID("mb"))
	hb.http = "127.0.0.1:3001"
	a := startBus(t, bus.Options{NodeID: ha.id, HeartbeatInterval: time.Hour}, ha)

	before := time.Now().UnixMilli()
	b, err := bus.New(bus.Options{NodeID: hb.id, Servers: []string{nodeURL(a)}, HeartbeatInterval: time.Hour, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, b.Start(ctxTimeout(t, 5*time.Second), hb))
	t.Cleanup(func() { require.NoError(t, b.Close()) })

	ha.waitEvent(t, "seen:"+hb.id)
	hb.waitEvent(t, "seen:"+ha.id)
	m, ok := ha.member(hb.id)
	require.True(t, ok)
	require.Equal(t, hb.id, m.ID, "ID is the bus's NodeID whatever LocalMember says")
	require.Equal(t, "127.0.0.1:3001", m.HTTPAddr)
	require.GreaterOrEqual(t, m.Started, before, "Started defaults to the start time")
	_, self := ha.member(ha.id)
	require.False(t, self, "own messages are skipped")

	require.NoError(t, b.Close())
	ha.waitEvent(t, "left:"+hb.id)
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	ha, hb := newFakeHandler(nodeID("hba")), newFakeHandler(nodeID("hbb"))
	a := startBus(t, bus.Options{NodeID: ha.id, HeartbeatInterval: 10 * time.Millisecond}, ha)
	startBus(t, bus.Options{NodeID: hb.id, Servers: []string{nodeURL(a)}, HeartbeatInterval: 10 * time.Millisecond}, hb)

	ha.waitEvent(t, "seen:"+hb.id)
	hb.timersGauge.Store(42)
	// Fresh LocalMember info arrives with the following heartbeats.
	deadline := time.Now().Add(10 * time.Second)
	for {
		ha.waitEvent(t, "seen:"+hb.id)
		if m, _ := ha.member(hb.id); m.Timers == 42 {
			break
		}
		require.True(t, time.Now().Before(deadline), "heartbeat with timers=42 not seen")
	}
}

// The bus keeps no liveness state: whether a member is new is the Handler's
// answer, and a new one (joined, or restarted) gets a heartbeat at once while
// a known one's heartbeat gets none.
func TestMemberSeenAnswersNewMembers(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("ms"))
	b := startBus(t, bus.Options{NodeID: h.id, HeartbeatInterval: time.Hour}, h)
	nc := connectNode(t, b)
	sub, err := nc.SubscribeSync("_SKYRING.skyring.members")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	heartbeat := func(id string, started int64) {
		t.Helper()
		hb, err := json.Marshal(map[string]any{"kind": "heartbeat", "id": id, "http": "x", "timers": 1, "started": started})
		require.NoError(t, err)
		require.NoError(t, nc.Publish("_SKYRING.skyring.members", hb))
	}
	// drain counts the bus's heartbeats on sub. The membership messages
	// are handled one at a time, in arrival order, each to the end (its
	// answer published) before the next: once the handler has seen a
	// marker sent after the others, every answer to them is published;
	// flushing the bus's connection and then ours brings it to sub, so
	// what is not there by then never comes.
	drain := func() int {
		t.Helper()
		heartbeat("marker", 1)
		h.waitEvent(t, "seen:marker")
		require.NoError(t, b.Conn().Flush())
		require.NoError(t, nc.Flush())
		n := 0
		for {
			m, err := sub.NextMsg(50 * time.Millisecond)
			if err != nil {
				require.ErrorIs(t, err, nats.ErrTimeout)
				return n
			}
			var msg struct{ Kind, ID string }
			require.NoError(t, json.Unmarshal(m.Data, &msg))
			if msg.ID == h.id && msg.Kind == "heartbeat" {
				n++
			}
		}
	}
	// The marker is new once: its answer is drained here; from then on it
	// is a known member whose heartbeats get none.
	require.Equal(t, 1, drain(), "the marker, new, gets an answer")
	answers := func(started int64) int {
		t.Helper()
		heartbeat("ghost", started)
		h.waitEvent(t, "seen:ghost")
		return drain()
	}
	require.Equal(t, 1, answers(1), "a member new to the handler gets an answer")
	require.Equal(t, 0, answers(1), "a known member's heartbeat gets none")
	require.Equal(t, 1, answers(2), "a restarted member gets an answer")
	_, ok := h.member("ghost")
	require.True(t, ok, "no member expires in the bus: it has no timeout")
}

// Leave says goodbye at once; relays keep working until Close; the
// departed node no longer answers sync requests.
func TestLeave(t *testing.T) {
	t.Parallel()
	ha, hb := newFakeHandler(nodeID("la")), newFakeHandler(nodeID("lb"))
	a := startBus(t, bus.Options{NodeID: ha.id, HeartbeatInterval: time.Hour}, ha)
	b := startBus(t, bus.Options{NodeID: hb.id, Servers: []string{nodeURL(a)}, HeartbeatInterval: time.Hour}, hb)
	ha.waitEvent(t, "seen:"+hb.id)

	b.Leave()
	b.Leave()
	ha.waitEvent(t, "left:"+hb.id)

	rep, err := a.Relay(ctxTimeout(t, 5*time.Second), hb.id, bus.Command{Op: bus.OpGet, ID: "x"})
	require.NoError(t, err)
	require.Equal(t, 404, rep.Status)

	// A sync request is answered by a only. A marker heartbeat after the
	// sync tells when both have handled it; flushing their connections then
	// ours brings any answer to our subscription.
	nc := connectNode(t, a)
	sub, err := nc.SubscribeSync("_SKYRING.skyring.members")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())
	require.NoError(t, nc.Publish("_SKYRING.skyring.members", []byte(`{"kind":"sync","id":"probe"}`)))
	require.NoError(t, nc.Publish("_SKYRING.skyring.members", []byte(`{"kind":"heartbeat","id":"marker"}`)))
	ha.waitEvent(t, "seen:marker")
	hb.waitEvent(t, "seen:marker")
	require.NoError(t, a.Conn().Flush())
	require.NoError(t, b.Conn().Flush())
	require.NoError(t, nc.Flush())
	var answers []string
	for {
		m, err := sub.NextMsg(20 * time.Millisecond)
		if err != nil {
			require.ErrorIs(t, err, nats.ErrTimeout)
			break
		}
		var msg struct{ Kind, ID string }
		require.NoError(t, json.Unmarshal(m.Data, &msg))
		if msg.Kind == "heartbeat" && msg.ID != "marker" {
			answers = append(answers, msg.ID)
		}
	}
	require.Contains(t, answers, ha.id)
	require.NotContains(t, answers, hb.id, "a node that left does not answer")
}

package bus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
)

func TestEvents(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("ev"))
	b := startBus(t, bus.Options{NodeID: h.id, Prefix: "acme.sky"}, h)
	nc := bustest.Connect(t, b.Server())
	sub, err := nc.SubscribeSync("acme.sky.>")
	require.NoError(t, err)
	require.NoError(t, nc.Flush())

	b.PublishTimerEvent(bus.TimerEvent{
		Type: bus.EventCreate, Timer: "t1", Created: 1000, Due: 2000,
		Payload: json.RawMessage(`{"data":"x"}`),
	})
	b.PublishTimerEvent(bus.TimerEvent{Type: bus.EventFail, Timer: "t1", Node: "other", Executed: 2001, Error: "boom", Message: "callback failed"})
	b.PublishTimerEvent(bus.TimerEvent{Type: bus.EventEvict, Timer: "t2", To: "n2"})
	b.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeJoin, Member: "n2", Count: 2})
	b.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeReady})
	b.PublishTimerEvent(bus.TimerEvent{Type: "bad.type", Timer: "t3"}) // dropped

	for _, want := range []struct{ subj, json string }{
		{"acme.sky.events.create", `{"type":"create","timer":"t1","node":"` + h.id + `","created":1000,"due":2000,"payload":{"data":"x"}}`},
		{"acme.sky.events.fail", `{"type":"fail","timer":"t1","node":"other","executed":2001,"message":"callback failed","error":"boom"}`},
		{"acme.sky.events.evict", `{"type":"evict","timer":"t2","node":"` + h.id + `","to":"n2"}`},
		{"acme.sky.node.join", `{"type":"join","node":"` + h.id + `","member":"n2","count":2}`},
		{"acme.sky.node.ready", `{"type":"ready","node":"` + h.id + `"}`},
	} {
		m, err := sub.NextMsg(5 * time.Second)
		require.NoError(t, err)
		require.Equal(t, want.subj, m.Subject)
		require.JSONEq(t, want.json, string(m.Data))
	}
	// The bad type was dropped: the next message is one published later.
	b.PublishNodeEvent(bus.NodeEvent{Type: bus.NodeShutdown})
	m, err := sub.NextMsg(5 * time.Second)
	require.NoError(t, err)
	require.Equal(t, "acme.sky.node.shutdown", m.Subject)
}

func TestSubject(t *testing.T) {
	t.Parallel()
	b, err := bus.New(bus.Options{NodeID: "n1", Prefix: "p.q"})
	require.NoError(t, err)
	require.Equal(t, "p.q", b.Subject())
	require.Equal(t, "p.q.timer.create", b.Subject("timer", "create"))
	require.NoError(t, b.Close())
}

// TestEventTypeNames pins the event type constants to the names API.md
// section 5 promises: they are subjects and "type" values clients match.
func TestEventTypeNames(t *testing.T) {
	t.Parallel()
	require.Equal(t,
		[]string{"create", "replace", "execute", "cancel", "success", "retry", "fail", "evict"},
		[]string{bus.EventCreate, bus.EventReplace, bus.EventExecute, bus.EventCancel, bus.EventSuccess, bus.EventRetry, bus.EventFail, bus.EventEvict})
	require.Equal(t,
		[]string{"ready", "recover", "rebalance", "purge", "shutdown", "join", "leave"},
		[]string{bus.NodeReady, bus.NodeRecover, bus.NodeRebalance, bus.NodePurge, bus.NodeShutdown, bus.NodeJoin, bus.NodeLeave})
}

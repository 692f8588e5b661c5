package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/storage/jsstore"
)

// The embedded servers of three routed nodes with Options.JetStream form one
// JetStream cluster: an R3 jsstore opened through one node's connection is
// read through another's, and keeps taking writes and answering reads when
// a third node (its server) is gone. API users stay out of $JS and $SYS.
func TestEmbeddedJetStreamCluster(t *testing.T) {
	t.Parallel()
	// A clustered JetStream server needs routes from the start: every node
	// lists all three cluster addresses as seeds (its own is left out).
	ports := make([]int, 3)
	var seeds []string
	for i := range ports {
		ports[i] = bustest.SlotPort(t)
		seeds = append(seeds, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	var buses []*bus.Bus
	for i := range 3 {
		h := newFakeHandler(nodeID(fmt.Sprintf("js%d", i)))
		buses = append(buses, startBus(t, bus.Options{
			NodeID: h.id, ClusterPort: ports[i], Seeds: seeds, HeartbeatInterval: time.Hour,
			JetStream: true, JetStreamDir: t.TempDir(),
		}, h))
	}
	bustest.WaitForRoutes(t, buses[0].Server(), buses[1].Server(), buses[2].Server())

	// JetStream's meta leader is elected once the three servers see each
	// other; until then its API answers with an error.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	open := func(b *bus.Bus) *jsstore.Store {
		t.Helper()
		for {
			s, err := jsstore.Open(ctx, jsstore.Options{Conn: b.Conn(), Replicas: 3})
			if err == nil {
				t.Cleanup(func() { _ = s.Close() })
				return s
			}
			require.NoError(t, ctx.Err(), "no R3 store on the embedded cluster: %v", err)
			time.Sleep(100 * time.Millisecond)
		}
	}
	start := time.Now()
	a := open(buses[0])
	t.Logf("R3 store open after %v", time.Since(start).Round(time.Millisecond))
	timers := make([]*skyring.Timer, 100)
	for i := range timers {
		timers[i] = newTimer(fmt.Sprintf("js-%03d", i))
	}
	require.NoError(t, a.Put(ctx, timers...))
	c := open(buses[2])
	for _, tm := range timers {
		got, err := c.Get(ctx, tm.ID)
		require.NoError(t, err)
		require.Equal(t, tm.ID, got.ID)
	}

	// One node (and its server) goes: two of three still make a quorum.
	require.NoError(t, buses[1].Close())
	late := newTimer("js-late")
	for {
		err := a.Put(ctx, late)
		if err == nil {
			break
		}
		require.NoError(t, ctx.Err(), "no write after losing one of three servers: %v", err)
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("a write after the loss of a server %v in", time.Since(start).Round(time.Millisecond))
	got, err := c.Get(ctx, "js-late")
	require.NoError(t, err)
	require.Equal(t, "js-late", got.ID)
	got, err = c.Get(ctx, timers[42].ID)
	require.NoError(t, err)
	require.Equal(t, timers[42].ID, got.ID)

	t.Logf("reads after the loss %v in", time.Since(start).Round(time.Millisecond))
	// API users reach neither the JetStream API nor the system account.
	nc, errs := apiClient(t, buses[0].Server())
	require.NoError(t, nc.PublishRequest("$JS.API.INFO", nc.NewRespInbox(), nil))
	waitViolation(t, errs, `Publish to "$JS.API.INFO"`)
	require.NoError(t, nc.Publish("$SYS.REQ.SERVER.PING", nil))
	waitViolation(t, errs, `Publish to "$SYS.REQ.SERVER.PING"`)
}

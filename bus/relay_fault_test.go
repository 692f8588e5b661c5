package bus_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/bus"
)

// DropRelayReply drops the reply to a relayed command once it was carried
// out: the sender times out, the receiver has done it.
func TestRelayDropReply(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var asked []bus.Op
	ha, hb := newFakeHandler(nodeID("da")), newFakeHandler(nodeID("db"))
	a := startBus(t, bus.Options{NodeID: ha.id}, ha)
	startBus(t, bus.Options{NodeID: hb.id, Servers: []string{nodeURL(a)}, DropRelayReply: func(op bus.Op) bool {
		mu.Lock()
		defer mu.Unlock()
		asked = append(asked, op)
		return op == bus.OpCreate
	}}, hb)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := a.Relay(ctx, hb.id, bus.Command{Op: bus.OpCreate, Timer: newTimer("lost-reply")})
	require.ErrorIs(t, err, context.DeadlineExceeded, "no reply: the sender times out")
	require.Equal(t, newTimer("lost-reply"), hb.timer("lost-reply"), "the command was carried out")

	// Other replies go through.
	rep, err := a.Relay(ctxTimeout(t, 5*time.Second), hb.id, bus.Command{Op: bus.OpGet, ID: "lost-reply"})
	require.NoError(t, err)
	require.Equal(t, 200, rep.Status)

	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []bus.Op{bus.OpCreate, bus.OpGet}, asked, "asked once per relayed command, with its op")
}

package node_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/transports/transportstest"
	"github.com/skyring/skyring/wheel"
)

// countingStore counts the writes that reach it through the node.
type countingStore struct {
	storage.Store
	puts   atomic.Int64
	closed atomic.Bool
}

func (s *countingStore) Put(ctx context.Context, ts ...*skyring.Timer) error {
	s.puts.Add(1)
	return s.Store.Put(ctx, ts...)
}

func (s *countingStore) Close() error {
	s.closed.Store(true)
	return s.Store.Close()
}

// Faults.WrapStore wraps the store the node uses, and the node closes the
// wrapper.
func TestFaultsWrapStore(t *testing.T) {
	t.Parallel()
	var wrapped *countingStore
	b := setup(t, nil, node.WithFaults(node.Faults{WrapStore: func(s storage.Store) storage.Store {
		wrapped = &countingStore{Store: s}
		return wrapped
	}}))
	require.NotNil(t, wrapped, "the store was wrapped at start")
	require.NoError(t, b.node.Create(context.Background(), b.timer(t, "wrapped", time.Minute, "x")))
	require.Positive(t, wrapped.puts.Load(), "the create went through the wrapper")
	require.NoError(t, b.node.Close())
	require.True(t, wrapped.closed.Load(), "the node closed the wrapper")
}

// Faults.DropRelayReply reaches the bus: a create relayed to a node that
// drops its replies is carried out there, and the sender gets no answer.
func TestFaultsDropRelayReply(t *testing.T) {
	t.Parallel()
	srv := bustest.RunServer(t)
	clock := wheel.NewFakeClock(time.Now())
	var dropped atomic.Int64
	start := func(faults node.Faults) *node.Node {
		nd, err := node.New(node.WithOptions(node.Options{
			HTTPAddr:          "127.0.0.1:0",
			NATSHosts:         []string{srv.ClientURL()},
			Store:             memstore.New(),
			Transports:        []string{"http"},
			HeartbeatInterval: 50 * time.Millisecond,
			MemberTimeout:     5 * time.Second,
			Clock:             clock,
			Logger:            testLogger(t),
			Faults:            faults,
		}), node.WithTransport(transportstest.NewRecorder("rec")))
		require.NoError(t, err)
		require.NoError(t, nd.Start(context.Background()))
		t.Cleanup(func() { _ = nd.Close() })
		return nd
	}
	a := start(node.Faults{})
	b := start(node.Faults{DropRelayReply: func(op bus.Op) bool {
		if op == bus.OpCreate {
			dropped.Add(1)
			return true
		}
		return false
	}})
	require.Eventually(t, func() bool {
		return len(a.Cluster().Members) == 2 && len(b.Cluster().Members) == 2
	}, 15*time.Second, 5*time.Millisecond)

	id := ""
	for i := 0; id == ""; i++ {
		if c := fmt.Sprint("lost-reply-", i); a.Owner(c) == b.ID() {
			id = c
		}
	}
	const body = `{"timeout":60000,"callback":{"transport":"rec","method":"post","uri":"x"}}`
	tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: clock.Now(), ID: id})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	require.Error(t, a.Create(ctx, tm), "no reply came back")
	require.EqualValues(t, 1, dropped.Load())

	info, err := b.Get(context.Background(), id)
	require.NoError(t, err, "the owner carried the create out")
	require.Equal(t, b.ID(), info.Node)
	// Through a, the get is relayed and answered (only creates are
	// dropped here).
	info, err = a.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, b.ID(), info.Node)
}

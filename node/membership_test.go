package node_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/ring"
	"github.com/skyring/skyring/storage/memstore"
)

// peer is a stand-in for another node on the bus: a real bus.Bus whose
// handler refuses every command while "down" (as a node that is shutting
// down does) and stores hand-offs once "up". Its Started is set by the test,
// so that it can come back as a new incarnation without ever saying goodbye.
type peer struct {
	started  atomic.Int64
	up       atomic.Bool
	refused  chan bus.Op // every command refused while down
	mu       sync.Mutex
	received map[string]bool // ids handed to it while up
}

func (p *peer) HandleRelay(_ context.Context, cmd bus.Command) bus.Reply {
	if !p.up.Load() {
		select {
		case p.refused <- cmd.Op:
		default:
		}
		return bus.ReplyFromError(skyring.ErrClosed)
	}
	if cmd.Op != bus.OpHandoff {
		return bus.Reply{Status: http.StatusBadRequest, Reason: "only hand-offs"}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	acked := make([]string, 0, len(cmd.Timers))
	for _, t := range cmd.Timers {
		p.received[t.ID] = true
		acked = append(acked, t.ID)
	}
	return bus.Reply{Status: http.StatusOK, Acked: acked}
}

func (p *peer) has() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.received)
}

func (p *peer) Create(context.Context, *skyring.Timer) error { return skyring.ErrClosed }
func (p *peer) Update(context.Context, *skyring.Timer) error { return skyring.ErrClosed }
func (p *peer) Cancel(context.Context, string) error         { return skyring.ErrClosed }
func (p *peer) Get(context.Context, string) (skyring.Info, error) {
	return skyring.Info{}, skyring.ErrClosed
}
func (p *peer) List(context.Context, skyring.ListQuery) (skyring.ListPage, error) {
	return skyring.ListPage{}, skyring.ErrClosed
}
func (p *peer) Retry(context.Context, string) error { return skyring.ErrClosed }
func (p *peer) CancelMatching(context.Context, skyring.Filter) (int, error) {
	return 0, skyring.ErrClosed
}
func (p *peer) MemberSeen(ring.Member) bool { return false }
func (p *peer) MemberLeft(string)           {}
func (p *peer) LocalMember() ring.Member {
	return ring.Member{HTTPAddr: "127.0.0.1:1", Started: p.started.Load()}
}

// A member that restarts within the member timeout is never dropped, so no
// join or leave happens; the node must still see the new incarnation and
// rebalance: the timers it kept for that member while it could not take
// them move to it.
func TestMemberRestartWithinTimeoutRebalances(t *testing.T) {
	t.Parallel()
	srv := bustest.RunServer(t)
	a, err := node.New(node.WithOptions(node.Options{
		HTTPAddr:          "127.0.0.1:0",
		NATSHosts:         []string{srv.ClientURL()},
		Store:             memstore.New(),
		Transports:        []string{"http"},
		HeartbeatInterval: 20 * time.Millisecond,
		MemberTimeout:     time.Hour, // the restart is surely within it
		Logger:            testLogger(t),
	}))
	require.NoError(t, err)
	require.NoError(t, a.Start(context.Background()))
	t.Cleanup(func() { _ = a.Close() })

	// Timers the peer will own once it joins; until then the node owns
	// them all.
	future := ring.New([]string{a.ID(), "peer-b"}, ring.DefaultVNodes)
	var ids []string
	for i := 0; len(ids) < 20; i++ {
		id := fmt.Sprintf("kept-%d", i)
		if o, _ := future.Owner(id); o != "peer-b" {
			continue
		}
		body := `{"timeout":3600000,"data":"x","callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:1/"}}`
		tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: time.Now(), ID: id})
		require.NoError(t, err)
		require.NoError(t, a.Create(context.Background(), tm))
		ids = append(ids, id)
	}

	// The peer joins but refuses everything: the join's one rebalance is
	// refused and the node keeps the timers. Nothing else asks for a
	// rebalance from here on.
	p := &peer{refused: make(chan bus.Op, 64), received: map[string]bool{}}
	p.started.Store(1000)
	pb, err := bus.New(bus.Options{NodeID: "peer-b", Servers: []string{srv.ClientURL()}, HeartbeatInterval: 20 * time.Millisecond, Logger: testLogger(t)})
	require.NoError(t, err)
	require.NoError(t, pb.Start(context.Background(), p))
	t.Cleanup(func() { _ = pb.Close() })
	select {
	case op := <-p.refused:
		require.Equal(t, bus.OpHandoff, op)
	case <-time.After(20 * time.Second):
		t.Fatal("the node never tried to hand the timers to the new member")
	}
	require.Equal(t, len(ids), a.Len(), "the node keeps what the peer refused")
	require.Equal(t, "peer-b", a.Owner(ids[0]))
	versionBefore := a.Cluster().RingVersion

	// The peer restarts: a later Started, no goodbye, no timeout.
	p.up.Store(true)
	p.started.Store(2000)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, len(ids), p.has(), "timers the restarted member got")
		assert.Zero(c, a.Len(), "timers the node still keeps for it")
	}, 20*time.Second, 5*time.Millisecond, "the restarted member did not get the timers kept for it")
	require.Greater(t, a.Cluster().RingVersion, versionBefore, "a restart is a change of the view")
	require.Len(t, a.Cluster().Members, 2, "the member was never dropped")
}

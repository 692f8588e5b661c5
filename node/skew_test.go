package node_test

// Clock skew between nodes: a timeout relayed from the node that accepted
// it to the node that owns it counts from when the owner stores it, so it is
// never early by the accepting node's clock, whichever clock is ahead; an
// `at` is absolute and is not shifted.

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/transports/transportstest"
	"github.com/skyring/skyring/wheel"
)

// skew is how far the fast node's clock is ahead of the slow node's.
const skew = 10 * time.Minute

// skewPair is two nodes on one NATS server, each with its own fake clock:
// slow's reads t0, fast's t0+skew. The test plays real time by moving both
// clocks by the same amounts (advance). Membership and relays run on real
// time, as in startCluster.
type skewPair struct {
	url        string
	slow, fast *skewNode
}

// skewNode is one node of a skewPair and the clients of its APIs.
type skewNode struct {
	*bundle
	http httpSide
}

func startSkewPair(t *testing.T) *skewPair {
	t.Helper()
	srv := bustest.RunServer(t)
	p := &skewPair{url: srv.ClientURL()}
	p.slow = p.add(t, t0)
	p.fast = p.add(t, t0.Add(skew))
	require.Eventually(t, func() bool {
		return len(p.slow.node.Cluster().Members) == 2 && len(p.fast.node.Cluster().Members) == 2
	}, 15*time.Second, 5*time.Millisecond, "membership did not converge")
	return p
}

func (p *skewPair) add(t *testing.T, start time.Time) *skewNode {
	t.Helper()
	b := &bundle{clock: wheel.NewFakeClock(start), rec: transportstest.NewRecorder("rec"), store: memstore.New()}
	n, err := node.New(node.WithOptions(node.Options{
		HTTPAddr:          "127.0.0.1:0",
		NATSHosts:         []string{p.url},
		Store:             b.store,
		Transports:        []string{"http"},
		HeartbeatInterval: 50 * time.Millisecond,
		MemberTimeout:     time.Second,
		Clock:             b.clock,
		Logger:            testLogger(t),
	}), node.WithTransport(b.rec))
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	b.node = n
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &skewNode{
		bundle: b,
		http:   httpSide{base: "http://" + n.HTTPAddr().String(), c: &http.Client{Transport: tr, Timeout: apiWait}},
	}
}

// ownedBy returns n ids that both nodes agree owner owns.
func (p *skewPair) ownedBy(t *testing.T, owner *skewNode, prefix string, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; len(ids) < n; i++ {
		require.Less(t, i, 10_000, "no id owned by %s", owner.node.ID())
		id := fmt.Sprintf("%s-%d", prefix, i)
		if p.slow.node.Owner(id) == owner.node.ID() && p.fast.node.Owner(id) == owner.node.ID() {
			ids = append(ids, id)
		}
	}
	return ids
}

// advance plays d of real time: owner's clock moves wheel wake-up by
// wake-up (bundle.advanceTo), the other's by d at once.
func (p *skewPair) advance(t *testing.T, owner *skewNode, d time.Duration) {
	t.Helper()
	other := p.slow
	if owner == p.slow {
		other = p.fast
	}
	other.clock.Advance(d)
	owner.advanceTo(t, owner.clock.Now().Add(d))
}

// stored is the owner's stored record of id: its created and due times.
func (n *skewNode) stored(t *testing.T, id string) (created, due time.Time) {
	t.Helper()
	tm, err := n.store.Get(context.Background(), id)
	require.NoError(t, err)
	require.False(t, tm.Relative, "a stored timer is absolute")
	return time.Unix(0, tm.Created).UTC(), time.Unix(0, tm.Due).UTC()
}

func timeoutBody(ms int64) string {
	return `{"timeout":` + strconv.FormatInt(ms, 10) + `,"callback":` + recCallback + `}`
}

// The owner's clock is ahead of the accepting node's: counted by the
// accepting node (due = its now + 60 s), the timer would be long overdue on
// the owner and fire at once, ten minutes early by the accepting clock. It
// must count from the owner's now instead, for a create and an update.
func TestSkewOwnerAheadTimeoutNotEarly(t *testing.T) {
	t.Parallel()
	p := startSkewPair(t)
	accept, owner := p.slow, p.fast
	id := p.ownedBy(t, owner, "ahead", 1)[0]

	acceptNow, ownerNow := accept.clock.Now(), owner.clock.Now()
	res := accept.http.do(t, apiReq{op: "create", id: id, body: timeoutBody(60_000)})
	require.Equal(t, http.StatusCreated, res.status, res.reason)
	created, due := owner.stored(t, id)
	require.Equal(t, ownerNow, created, "created by the owner's clock")
	require.Equal(t, ownerNow.Add(time.Minute), due, "due by the owner's clock, not %v", acceptNow.Add(time.Minute))
	info, err := accept.node.Get(context.Background(), id)
	require.NoError(t, err)
	require.Equal(t, ownerNow.UnixMilli(), info.Created)
	require.Equal(t, ownerNow.Add(time.Minute).UnixMilli(), info.Due)
	require.EqualValues(t, 60_000, info.Timeout)

	// The owner's clock is past acceptNow + 60 s already: nothing fired.
	require.True(t, owner.clock.Now().After(acceptNow.Add(time.Minute)))
	owner.settle(t)
	require.Zero(t, owner.rec.Count(), "fired early by the accepting node's clock")

	// Half a minute later, the update counts 60 s again from the owner's now.
	p.advance(t, owner, 30*time.Second)
	require.Zero(t, owner.rec.Count())
	acceptNow, ownerNow = accept.clock.Now(), owner.clock.Now()
	res = accept.http.do(t, apiReq{op: "update", id: id, body: timeoutBody(60_000)})
	require.Equal(t, http.StatusOK, res.status, res.reason)
	created, due = owner.stored(t, id)
	require.Equal(t, ownerNow, created)
	require.Equal(t, ownerNow.Add(time.Minute), due)

	p.advance(t, owner, time.Minute-time.Nanosecond)
	require.Zero(t, owner.rec.Count(), "fired early")
	p.advance(t, owner, time.Nanosecond)
	got := owner.rec.Wait(t, 1)
	require.Equal(t, id, got[0].ID)
	require.Equal(t, acceptNow.Add(time.Minute), accept.clock.Now(), "fired when the accepting clock reads its timeout")
	require.Zero(t, accept.rec.Count())
}

// The accepting node's clock is ahead: counted by the accepting node the
// timer would fire ten minutes late; it fires 60 s after the owner stored
// it, which is 60 s after the accepting node took it by its clock.
func TestSkewAcceptAheadTimeoutOnTime(t *testing.T) {
	t.Parallel()
	p := startSkewPair(t)
	accept, owner := p.fast, p.slow
	id := p.ownedBy(t, owner, "behind", 1)[0]

	acceptNow, ownerNow := accept.clock.Now(), owner.clock.Now()
	res := accept.http.do(t, apiReq{op: "create", id: id, body: timeoutBody(60_000)})
	require.Equal(t, http.StatusCreated, res.status, res.reason)
	created, due := owner.stored(t, id)
	require.Equal(t, ownerNow, created)
	require.Equal(t, ownerNow.Add(time.Minute), due)

	p.advance(t, owner, time.Minute-time.Nanosecond)
	require.Zero(t, owner.rec.Count(), "fired early")
	p.advance(t, owner, time.Nanosecond)
	owner.rec.Wait(t, 1)
	require.Equal(t, acceptNow.Add(time.Minute), accept.clock.Now(), "not early, and not late by the skew")
}

// `at` is absolute: the owner stores it as the accepting node parsed it,
// whichever clock is ahead, and fires it when its own clock reaches it.
func TestSkewAtNotShifted(t *testing.T) {
	t.Parallel()
	p := startSkewPair(t)

	// Accepting node ahead: a shifted at would fire 60 s after the owner
	// stored it; it fires when the owner's clock reads at.
	accept, owner := p.fast, p.slow
	id := p.ownedBy(t, owner, "at-behind", 1)[0]
	acceptNow, at := accept.clock.Now(), accept.clock.Now().Add(time.Minute)
	res := accept.http.do(t, apiReq{op: "create", id: id, body: atBody(strconv.FormatInt(at.UnixMilli(), 10))})
	require.Equal(t, http.StatusCreated, res.status, res.reason)
	created, due := owner.stored(t, id)
	require.Equal(t, acceptNow, created, "created as the accepting node stamped it")
	require.Equal(t, at, due)
	p.advance(t, owner, time.Minute)
	require.Zero(t, owner.rec.Count(), "an at timer was shifted to the owner's clock")
	p.advance(t, owner, at.Sub(owner.clock.Now())-time.Nanosecond)
	require.Zero(t, owner.rec.Count(), "fired early")
	p.advance(t, owner, time.Nanosecond)
	owner.rec.Wait(t, 1)
	require.Equal(t, at, owner.clock.Now())

	// Owner ahead: at stays as given, in the owner's past, so it fires at
	// once. That is what at means; skew is the operator's to bound (NTP).
	accept, owner = p.slow, p.fast
	id = p.ownedBy(t, owner, "at-ahead", 1)[0]
	at = accept.clock.Now().Add(time.Minute)
	res = accept.http.do(t, apiReq{op: "create", id: id, body: atBody(strconv.FormatInt(at.UnixMilli(), 10))})
	require.Equal(t, http.StatusCreated, res.status, res.reason)
	_, due = owner.stored(t, id)
	require.Equal(t, at, due)
	got := owner.rec.Wait(t, 1)
	require.Equal(t, id, got[0].ID)
}

// The same over the public NATS API. Its queue group hands each request to
// either node at random, so about half of these creates are accepted by
// the node that does not own them and relayed; each must be counted from
// the owner's now. (Before the fix, the chance that all of them landed on
// the owner, hiding the bug, was 2^-16.)
func TestSkewNATSAPITimeoutCountsOnOwner(t *testing.T) {
	t.Parallel()
	p := startSkewPair(t)
	owner := p.fast
	nc, err := nats.Connect(p.url)
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	api := natsSide{nc: nc, prefix: node.DefaultPrefix}

	ownerNow := owner.clock.Now()
	for _, id := range p.ownedBy(t, owner, "nats", 16) {
		res := api.do(t, apiReq{op: "create", id: id, body: timeoutBody(60_000)})
		require.Equal(t, http.StatusCreated, res.status, res.reason)
		created, due := owner.stored(t, id)
		require.Equal(t, ownerNow, created, "timer %s", id)
		require.Equal(t, ownerNow.Add(time.Minute), due, "timer %s", id)
	}
	owner.settle(t)
	require.Zero(t, owner.rec.Count(), "fired early")
}

package node_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/wheel"
)

// destDouble is a transport whose destinations are callback.uri
// (transports.Keyer): "hang" blocks until released (or the attempt's
// ctx ends), "down" fails while down is set, the rest succeed. It counts
// the attempts in flight per destination and the most seen.
type destDouble struct {
	release chan struct{}

	mu       sync.Mutex
	down     bool
	inflight map[string]int
	maxSeen  map[string]int
	calls    map[string]int
	ok       map[string][]string // ids delivered, per destination
	changed  chan struct{}
}

var _ transports.Keyer = (*destDouble)(nil)

func newDestDouble() *destDouble {
	return &destDouble{
		release: make(chan struct{}), inflight: map[string]int{}, maxSeen: map[string]int{},
		calls: map[string]int{}, ok: map[string][]string{}, changed: make(chan struct{}),
	}
}

func (d *destDouble) Name() string                   { return "dest" }
func (d *destDouble) Key(cb skyring.Callback) string { return cb.URI }

func (d *destDouble) notify() { close(d.changed); d.changed = make(chan struct{}) }

func (d *destDouble) Execute(ctx context.Context, t *skyring.Timer) error {
	dst := t.Callback.URI
	d.mu.Lock()
	d.calls[dst]++
	d.inflight[dst]++
	d.maxSeen[dst] = max(d.maxSeen[dst], d.inflight[dst])
	down := d.down
	d.notify()
	d.mu.Unlock()
	var err error
	switch {
	case dst == "hang":
		select {
		case <-d.release:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case dst == "down" && down:
		err = errors.New("503 down")
	}
	d.mu.Lock()
	d.inflight[dst]--
	if err == nil {
		d.ok[dst] = append(d.ok[dst], t.ID)
	}
	d.notify()
	d.mu.Unlock()
	return err
}

// waitFor waits until cond holds (checked under the lock at every change).
func (d *destDouble) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		d.mu.Lock()
		ok, ch := cond(), d.changed
		d.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			d.mu.Lock()
			defer d.mu.Unlock()
			t.Fatalf("%s: not reached (calls %v, in flight %v, delivered %d/%d)", what, d.calls, d.inflight, len(d.ok["fine"]), len(d.ok["hang"]))
		}
	}
}

func destTimer(t *testing.T, b *bundle, id, uri string, timeout time.Duration) *skyring.Timer {
	t.Helper()
	body := fmt.Sprintf(`{"timeout":%d,"data":"x","callback":{"transport":"dest","method":"post","uri":%q}}`, timeout.Milliseconds(), uri)
	tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: b.clock.Now(), ID: id})
	require.NoError(t, err)
	return tm
}

// TestDestinationHangIsolated: a destination that hangs holds at most
// DeliveryPerDestination attempts (and so workers); its other fired timers
// wait parked, holding none, while every timer of another destination due
// at the same instant is delivered. Released, the hanging destination's
// timers are all delivered, never more than the limit at once.
func TestDestinationHangIsolated(t *testing.T) {
	t.Parallel()
	dbl := newDestDouble()
	const workers, limit, nHang, nFine = 4, 2, 30, 40
	b := setup(t, nil, node.WithTransport(dbl), func(o *node.Options) error {
		o.DeliveryWorkers, o.DeliveryPerDestination = workers, limit
		o.DeliveryTimeout = time.Minute
		return nil
	})
	ctx := context.Background()
	for i := range nHang {
		require.NoError(t, b.node.Create(ctx, destTimer(t, b, fmt.Sprintf("hang-%d", i), "hang", time.Second)))
	}
	for i := range nFine {
		require.NoError(t, b.node.Create(ctx, destTimer(t, b, fmt.Sprintf("fine-%d", i), "fine", time.Second)))
	}
	b.clock.Advance(time.Second)
	dbl.waitFor(t, "the fine destination's timers delivered while the other hangs", func() bool {
		return len(dbl.ok["fine"]) == nFine
	})
	dbl.waitFor(t, "the hanging destination at its limit", func() bool { return dbl.inflight["hang"] == limit })
	dbl.mu.Lock()
	require.Equal(t, limit, dbl.calls["hang"], "no attempt of the hanging destination beyond its limit")
	dbl.mu.Unlock()

	close(dbl.release)
	dbl.waitFor(t, "the hanging destination's timers delivered once released", func() bool {
		return len(dbl.ok["hang"]) == nHang
	})
	dbl.mu.Lock()
	require.Equal(t, limit, dbl.maxSeen["hang"], "never more than the limit in flight")
	require.LessOrEqual(t, dbl.maxSeen["fine"], limit)
	require.Equal(t, nHang, dbl.calls["hang"], "each delivered once")
	dbl.mu.Unlock()
	require.Eventually(t, func() bool {
		info, err := b.node.Get(ctx, fmt.Sprintf("hang-%d", nHang-1))
		return err == nil && info.State == "delivered"
	}, 10*time.Second, time.Millisecond)
}

// TestDestinationParkedReleasedAtClose: timers parked behind a hanging
// destination when the node closes stay stored (pending, no attempt
// counted) and are all delivered after a restart; Close does not hang on
// them.
func TestDestinationParkedReleasedAtClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ctx := context.Background()
	clock := wheel.NewFakeClock(t0)
	start := func(dbl *destDouble) *node.Node {
		s, err := leveldbstore.Open(storage.Options{Path: dir})
		require.NoError(t, err)
		n, err := node.New(node.WithOptions(node.Options{
			HTTPAddr: "127.0.0.1:0", NATSPort: -1, ChannelPort: -1, Store: s,
			Transports: []string{"http"}, Clock: clock, Logger: testLogger(t),
			DeliveryWorkers: 4, DeliveryPerDestination: 1, DeliveryTimeout: time.Minute,
			ShutdownTimeout: 200 * time.Millisecond,
		}), node.WithTransport(dbl))
		require.NoError(t, err)
		require.NoError(t, n.Start(ctx))
		return n
	}
	dbl := newDestDouble()
	n1 := start(dbl)
	const n = 5
	for i := range n {
		body := `{"timeout":1000,"data":"x","callback":{"transport":"dest","method":"post","uri":"hang"}}`
		tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: clock.Now(), ID: fmt.Sprintf("hang-%d", i)})
		require.NoError(t, err)
		require.NoError(t, n1.Create(ctx, tm))
	}
	clock.Advance(time.Second)
	dbl.waitFor(t, "one attempt in flight, the others parked", func() bool { return dbl.inflight["hang"] == 1 })
	// The hanging attempt is abandoned at ShutdownTimeout, which then
	// leaves the transports no time: Close reports it, and returns.
	if err := n1.Close(); err != nil {
		t.Logf("close: %v", err)
	}
	dbl.mu.Lock()
	require.Equal(t, 1, dbl.calls["hang"], "parked timers were not attempted")
	dbl.mu.Unlock()

	again := newDestDouble()
	close(again.release)
	n2 := start(again)
	t.Cleanup(func() { require.NoError(t, n2.Close()) })
	for i := range n {
		info, err := n2.Get(ctx, fmt.Sprintf("hang-%d", i))
		require.NoError(t, err)
		if info.State == "pending" {
			require.Zero(t, info.Attempts, "hang-%d: an abandoned or parked attempt costs none", i)
		}
	}
	again.waitFor(t, "all delivered after the restart", func() bool { return len(again.ok["hang"]) == n })
}

// TestDestinationBreaker: a destination that keeps failing opens its
// breaker; its timers due while it is open are not attempted and cost no
// attempt (armed again); after the open period a probe goes, succeeds, and
// they are all delivered on their first attempt.
func TestDestinationBreaker(t *testing.T) {
	t.Parallel()
	dbl := newDestDouble()
	dbl.down = true
	const open = time.Second
	b := setup(t, nil, node.WithTransport(dbl), oneAttempt, func(o *node.Options) error {
		o.DeliveryWorkers, o.DeliveryPerDestination = 4, 1
		o.DeliveryBreakerFailures, o.DeliveryBreakerOpen, o.DeliveryBreakerProbes = 3, open, 1
		o.DeliveryBreakerRetry = time.Second // on the fake clock
		return nil
	})
	ctx := context.Background()
	for i := range 3 {
		require.NoError(t, b.node.Create(ctx, destTimer(t, b, fmt.Sprintf("fail-%d", i), "down", time.Second)))
	}
	for i := range 5 {
		require.NoError(t, b.node.Create(ctx, destTimer(t, b, fmt.Sprintf("later-%d", i), "down", 2*time.Second)))
	}
	b.advanceTo(t, t0.Add(time.Second))
	dbl.waitFor(t, "3 failed attempts", func() bool { return dbl.calls["down"] == 3 })
	for i := range 3 {
		require.Eventually(t, func() bool {
			info, err := b.node.Get(ctx, fmt.Sprintf("fail-%d", i))
			return err == nil && info.State == "failed"
		}, 10*time.Second, time.Millisecond)
	}
	opened := time.Now()
	b.advanceTo(t, t0.Add(2*time.Second))
	b.settle(t)
	if time.Since(opened) < open/2 {
		// Well within the open period: the breaker let nothing through.
		dbl.mu.Lock()
		require.Equal(t, 3, dbl.calls["down"], "no attempt while the breaker is open")
		dbl.mu.Unlock()
		for i := range 5 {
			info, err := b.node.Get(ctx, fmt.Sprintf("later-%d", i))
			require.NoError(t, err)
			require.Equal(t, "pending", info.State, "later-%d armed again", i)
			require.Zero(t, info.Attempts)
		}
	}
	dbl.mu.Lock()
	dbl.down = false
	dbl.mu.Unlock()
	deadline := time.Now().Add(20 * time.Second)
	for {
		dbl.mu.Lock()
		n := len(dbl.ok["down"])
		dbl.mu.Unlock()
		if n == 5 {
			break
		}
		require.True(t, time.Now().Before(deadline), "timers of the recovered destination delivered after the open period (%d of 5)", n)
		b.clock.Advance(2 * time.Second) // past every re-arm (1s + up to 0.5s)
		b.settle(t)
		time.Sleep(20 * time.Millisecond) // real time for the breaker's open period
	}
	for i := range 5 {
		require.Eventually(t, func() bool {
			info, err := b.node.Get(ctx, fmt.Sprintf("later-%d", i))
			return err == nil && info.State == "delivered" && info.Attempts == 1
		}, 10*time.Second, time.Millisecond, "later-%d delivered on its first attempt", i)
	}
}

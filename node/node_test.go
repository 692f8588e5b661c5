package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"github.com/syndtr/goleveldb/leveldb"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/leveldbstore"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/storage/storagetest"
	"github.com/skyring/skyring/transports/transportstest"
	"github.com/skyring/skyring/wheel"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

type bundle struct {
	node  *node.Node
	clock *wheel.FakeClock
	rec   *transportstest.Recorder
	store storage.Store
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SKYRING_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// setup starts a single node on a fake clock, an embedded NATS server on a
// free port, a cluster listener on a free port, and the given store (memory by default).
func setup(t *testing.T, store storage.Store, opts ...node.Option) *bundle {
	t.Helper()
	if store == nil {
		store = memstore.New()
	}
	b := &bundle{clock: wheel.NewFakeClock(t0), rec: transportstest.NewRecorder("rec"), store: store}
	base := node.Options{
		HTTPAddr:    "127.0.0.1:0",
		NATSPort:    -1,
		ChannelPort: -1,
		Store:       store,
		Transports:  []string{"http"},
		Clock:       b.clock,
		Logger:      testLogger(t),
	}
	all := append([]node.Option{node.WithOptions(base), node.WithTransport(b.rec)}, opts...)
	n, err := node.New(all...)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	b.node = n
	return b
}

func (b *bundle) timer(t *testing.T, id string, timeout time.Duration, data string) *skyring.Timer {
	t.Helper()
	body := `{"timeout":` + jsonNum(timeout.Milliseconds()) + `,"data":` + quote(data) +
		`,"callback":{"transport":"rec","method":"post","uri":"x"}}`
	tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: b.clock.Now(), ID: id})
	require.NoError(t, err)
	return tm
}

// oneAttempt makes the node deliver each timer once, without retries, for
// tests about what follows a failed delivery.
func oneAttempt(o *node.Options) error { o.DeliveryAttempts = 1; return nil }

func jsonNum(v int64) string { b, _ := json.Marshal(v); return string(b) }
func quote(s string) string  { b, _ := json.Marshal(s); return string(b) }

// settle waits until the wheel has handed out everything due by the fake
// clock's now: it sleeps again on a deadline in the future, or holds nothing.
func (b *bundle) settle(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ds := b.clock.Deadlines()
		if len(ds) > 0 && ds[0].After(b.clock.Now()) || len(ds) == 0 && b.node.Len() == 0 {
			return
		}
		time.Sleep(100 * time.Microsecond) // polling, with a deadline
	}
	t.Fatalf("the wheel did not settle at %v (deadlines %v, pending %d)", b.clock.Now(), b.clock.Deadlines(), b.node.Len())
}

// advanceTo moves the fake clock to target, one wheel wake-up at a time, so
// that every timer due by target is handed out at the instant the wheel
// asked to be woken.
func (b *bundle) advanceTo(t *testing.T, target time.Time) {
	t.Helper()
	for {
		b.settle(t)
		now := b.clock.Now()
		if !now.Before(target) {
			return
		}
		next := target
		if ds := b.clock.Deadlines(); len(ds) > 0 && ds[0].Before(target) {
			next = ds[0]
		}
		b.clock.Advance(next.Sub(now))
	}
}

func TestFiresAtDueNeverEarly(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	tm := b.timer(t, "a", time.Second, "hello")
	require.NoError(t, b.node.Create(ctx, tm))

	b.advanceTo(t, tm.DueTime().Add(-time.Nanosecond))
	require.Equal(t, 0, b.rec.Count(), "fired early")

	b.advanceTo(t, tm.DueTime())
	got := b.rec.Wait(t, 1)
	require.Equal(t, "a", got[0].ID)
	s, ok := got[0].DataString()
	require.True(t, ok)
	require.Equal(t, "hello", s)

	// Fired: out of the index (cancel finds nothing); stored as delivered.
	require.ErrorIs(t, b.node.Cancel(ctx, "a"), skyring.ErrTimerNotFound)
	require.Eventually(t, func() bool {
		tm, err := b.store.Get(ctx, "a")
		return err == nil && tm.State == skyring.StateDelivered
	}, 10*time.Second, time.Millisecond)
	info, err := b.node.Get(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, "delivered", info.State)
	require.Equal(t, 1, info.Attempts)
	require.Equal(t, tm.Due/1e6, info.DeliveredAt, "delivered at its due time, by the fake clock")
}

func TestCancelledNeverFires(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	require.NoError(t, b.node.Create(ctx, b.timer(t, "cancel-me", 100*time.Millisecond, "")))
	require.NoError(t, b.node.Create(ctx, b.timer(t, "barrier", 200*time.Millisecond, "")))
	require.NoError(t, b.node.Cancel(ctx, "cancel-me"))
	require.ErrorIs(t, b.node.Cancel(ctx, "cancel-me"), skyring.ErrTimerNotFound)
	stored, err := b.store.Get(ctx, "cancel-me")
	require.NoError(t, err)
	require.Equal(t, skyring.StateCancelled, stored.State, "a 202 means the cancel is stored")

	b.advanceTo(t, t0.Add(time.Second))
	got := b.rec.Wait(t, 1)
	require.Equal(t, "barrier", got[0].ID)
	require.Equal(t, 0, b.node.Len())
	require.Equal(t, []string{"barrier"}, b.rec.IDs())
}

func TestUpdateReplacesAndRetimes(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	require.NoError(t, b.node.Create(ctx, b.timer(t, "u", 100*time.Millisecond, "old")))
	b.advanceTo(t, t0.Add(50*time.Millisecond))
	upd := b.timer(t, "u", 100*time.Millisecond, "new") // counts from now: due t0+150ms
	require.NoError(t, b.node.Update(ctx, upd))

	info, err := b.node.Get(ctx, "u")
	require.NoError(t, err)
	require.Equal(t, int64(100), info.Timeout)
	require.Equal(t, t0.Add(150*time.Millisecond).UnixMilli(), info.Due)
	require.JSONEq(t, `"new"`, string(info.Data))
	require.Equal(t, b.node.ID(), info.Node)

	b.advanceTo(t, upd.DueTime().Add(-time.Nanosecond)) // the old due time has passed
	require.Equal(t, 0, b.rec.Count())
	b.advanceTo(t, upd.DueTime())
	got := b.rec.Wait(t, 1)
	s, _ := got[0].DataString()
	require.Equal(t, "new", s)

	require.ErrorIs(t, b.node.Update(ctx, b.timer(t, "nope", time.Second, "")), skyring.ErrTimerNotFound)
}

func TestDuplicateAndUnknownTransport(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	require.NoError(t, b.node.Create(ctx, b.timer(t, "dup", time.Minute, "")))
	require.ErrorIs(t, b.node.Create(ctx, b.timer(t, "dup", time.Minute, "")), skyring.ErrTimerExists)

	bad := b.timer(t, "bad", time.Minute, "")
	bad.Callback.Transport = "carrier-pigeon"
	err := b.node.Create(ctx, bad)
	require.ErrorIs(t, err, skyring.ErrUnknownTransport)
	status, reason := skyring.Status(err)
	require.Equal(t, 400, status)
	require.Contains(t, reason, "carrier-pigeon")
}

// A failed storage write is never acknowledged, and it stops the node
// (fail-stop): every command is refused from then on, Done is closed and Err
// says why, even once the store works again.
func TestFailedStoreWriteStopsTheNode(t *testing.T) {
	t.Parallel()
	flaky := storagetest.Flaky(memstore.New())
	b := setup(t, flaky)
	ctx := context.Background()
	require.NoError(t, b.node.Create(ctx, b.timer(t, "before", time.Hour, "")))
	require.Nil(t, b.node.Err())

	flaky.Fail(errors.New("disk on fire"))
	err := b.node.Create(ctx, b.timer(t, "lost", 10*time.Millisecond, ""))
	require.Error(t, err)
	status, _ := skyring.Status(err)
	require.Equal(t, 500, status)
	select {
	case <-b.node.Done():
	default:
		t.Fatal("Done is not closed after a failed write")
	}
	require.ErrorIs(t, b.node.Err(), node.ErrStorageFailed)
	require.ErrorContains(t, b.node.Err(), "disk on fire")

	flaky.Recover()
	require.ErrorIs(t, b.node.Create(ctx, b.timer(t, "after", time.Minute, "")), skyring.ErrClosed)
	_, err = b.node.Get(ctx, "before")
	require.ErrorIs(t, err, skyring.ErrClosed)
	require.ErrorIs(t, b.node.Cancel(ctx, "before"), skyring.ErrClosed)
}

func TestRecoversStoredTimersAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() storage.Store {
		s, err := leveldbstore.Open(storage.Options{Path: dir})
		require.NoError(t, err)
		return s
	}
	ctx := context.Background()
	clock := wheel.NewFakeClock(t0)
	start := func(s storage.Store, rec *transportstest.Recorder) *node.Node {
		n, err := node.New(node.WithOptions(node.Options{
			HTTPAddr: "127.0.0.1:0", NATSPort: -1, ChannelPort: -1, Store: s,
			Transports: []string{"http"}, Clock: clock, Logger: testLogger(t),
		}), node.WithTransport(rec))
		require.NoError(t, err)
		require.NoError(t, n.Start(ctx))
		return n
	}
	rec1 := transportstest.NewRecorder("rec")
	n1 := start(open(), rec1)
	id1 := n1.ID()
	for _, id := range []string{"r1", "r2", "r3"} {
		tm, err := skyring.ParseTimer([]byte(`{"timeout":1000,"data":{"k":"`+id+`"},"callback":{"transport":"rec","method":"post","uri":"x"}}`),
			skyring.ParseParams{Now: clock.Now(), ID: id})
		require.NoError(t, err)
		require.NoError(t, n1.Create(ctx, tm))
	}
	require.NoError(t, n1.Close())
	require.Equal(t, 0, rec1.Count())

	rec2 := transportstest.NewRecorder("rec")
	n2 := start(open(), rec2)
	t.Cleanup(func() { require.NoError(t, n2.Close()) })
	require.Equal(t, id1, n2.ID(), "the node keeps its identity across restarts")
	info, err := n2.Get(ctx, "r2")
	require.NoError(t, err)
	require.JSONEq(t, `{"k":"r2"}`, string(info.Data))

	require.NoError(t, clock.BlockUntilContext(ctx, 1))
	clock.Advance(2 * time.Second)
	got := rec2.Wait(t, 3)
	require.ElementsMatch(t, []string{"r1", "r2", "r3"}, []string{got[0].ID, got[1].ID, got[2].ID})
}

func TestEventsOnNATS(t *testing.T) {
	t.Parallel()
	b := setup(t, nil, oneAttempt)
	ctx := context.Background()
	nc, err := nats.Connect(b.node.NATSURL())
	require.NoError(t, err)
	defer nc.Close()
	msgs := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("skyring.events.*", msgs)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.Flush())

	require.NoError(t, b.node.Create(ctx, b.timer(t, "ev", 10*time.Millisecond, "x")))
	require.NoError(t, b.node.Update(ctx, b.timer(t, "ev", 10*time.Millisecond, "y")))
	b.rec.SetError(errors.New("refused"))
	b.advanceTo(t, t0.Add(time.Second))

	var types []string
	for len(types) < 4 {
		select {
		case m := <-msgs:
			var ev map[string]any
			require.NoError(t, json.Unmarshal(m.Data, &ev))
			require.Equal(t, "ev", ev["timer"])
			require.Equal(t, b.node.ID(), ev["node"])
			require.Equal(t, "skyring.events."+ev["type"].(string), m.Subject)
			types = append(types, ev["type"].(string))
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far: %v", types)
		}
	}
	require.Equal(t, []string{"create", "replace", "execute", "fail"}, types)
}

// gatedStore holds every write of a finished timer (its fate) until the
// test releases it.
type gatedStore struct {
	storage.Store
	entered chan []string
	release chan struct{}
}

func (g *gatedStore) Put(ctx context.Context, ts ...*skyring.Timer) error {
	var ids []string
	for _, t := range ts {
		if t.State.Final() {
			ids = append(ids, t.ID)
		}
	}
	if len(ids) > 0 {
		select {
		case g.entered <- ids:
		default:
		}
		<-g.release
	}
	return g.Store.Put(ctx, ts...)
}

// TestSuccessEventAfterRemoval: a timer's success event is published only
// once its fate (delivered) is stored, so a client that has seen it knows
// that no crash can deliver the timer again.
func TestSuccessEventAfterRemoval(t *testing.T) {
	t.Parallel()
	g := &gatedStore{Store: memstore.New(), entered: make(chan []string, 1), release: make(chan struct{})}
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(g.release) }) }
	b := setup(t, g)
	t.Cleanup(release) // runs before the node's Close (cleanups run last-in first-out)
	ctx := context.Background()
	nc, err := nats.Connect(b.node.NATSURL())
	require.NoError(t, err)
	defer nc.Close()
	msgs := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("skyring.events.success", msgs)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.Flush())

	require.NoError(t, b.node.Create(ctx, b.timer(t, "gone", 10*time.Millisecond, "x")))
	b.advanceTo(t, t0.Add(time.Second))
	b.rec.Wait(t, 1)
	select {
	case ids := <-g.entered:
		require.Equal(t, []string{"gone"}, ids)
	case <-time.After(10 * time.Second):
		t.Fatal("the delivered timer's fate was never written")
	}
	// The removal is held: no success may be published meanwhile. (A bounded
	// window: absence cannot be awaited otherwise.)
	select {
	case m := <-msgs:
		t.Fatalf("success published before the timer was removed: %s", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
	release()
	select {
	case m := <-msgs:
		var ev map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &ev))
		require.Equal(t, "gone", ev["timer"])
	case <-time.After(10 * time.Second):
		t.Fatal("no success event after the removal")
	}
	stored, err := g.Store.Get(ctx, "gone")
	require.NoError(t, err)
	require.Equal(t, skyring.StateDelivered, stored.State)
}

// A wall clock that steps back (12:00 → 13:00 → 12:00) never makes a timer
// early: one created after the step back with a 30-minute timeout fires
// when the clock reads its due time, not at once; one created before the
// step forward fires by its own due time too. Each delivery records the
// clock's time as the transport runs.
func TestClockStepBackNeverEarly(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	var mu sync.Mutex
	ranAt := map[string]time.Time{}
	// ran gets each id once the transport read the clock: the recorder
	// counts an execution when it starts, before this runs, and the clock
	// must not be stepped back in between (the transport would read the
	// stepped-back time for a delivery decided at 13:00).
	ran := make(chan string, 8)
	b.rec.SetFunc(func(_ context.Context, tm *skyring.Timer) error {
		mu.Lock()
		ranAt[tm.ID] = b.clock.Now()
		mu.Unlock()
		ran <- tm.ID
		return nil
	})
	ctx := context.Background()
	before := b.timer(t, "before", 90*time.Minute, "")
	require.NoError(t, b.node.Create(ctx, before))
	// A timer due at 13:00 makes the wheel look at the clock then.
	atStep := b.timer(t, "at-step", time.Hour, "")
	require.NoError(t, b.node.Create(ctx, atStep))

	b.clock.Set(t0.Add(time.Hour)) // step forward
	require.Equal(t, "at-step", b.rec.Wait(t, 1)[0].ID)
	select {
	case id := <-ran:
		require.Equal(t, "at-step", id)
	case <-time.After(10 * time.Second):
		t.Fatal("the transport never ran at-step")
	}
	b.settle(t)
	b.clock.Set(t0) // step back
	after := b.timer(t, "after", 30*time.Minute, "")
	require.NoError(t, b.node.Create(ctx, after))
	// The wheel waits for the clock to read after's due time (it would fire
	// at once if it went by its own idea of the time, 13:00).
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, b.clock.BlockUntilDeadline(wctx, after.DueTime()), "the wheel does not wait for 12:30")
	require.Equal(t, 1, b.rec.Count())

	b.advanceTo(t, before.DueTime())
	for range 2 { // after and before, each once its transport read the clock
		select {
		case <-ran:
		case <-time.After(10 * time.Second):
			t.Fatal("the transport did not run after and before")
		}
	}
	require.Equal(t, 3, b.rec.Count())
	mu.Lock()
	defer mu.Unlock()
	for _, tm := range []*skyring.Timer{atStep, after, before} {
		require.False(t, ranAt[tm.ID].Before(tm.DueTime()), "%s ran at %v, due %v", tm.ID, ranAt[tm.ID], tm.DueTime())
	}
}

// Re-creating an id while its previous timer is being delivered (a callback
// handler that re-arms a recurring job under a fixed id) is a new
// generation: the create is accepted, the old delivery's removal leaves the
// new record alone, and the new timer is delivered once, at its own due
// time.
func TestRecreateDuringDeliveryIsANewGeneration(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := context.Background()
	nc, err := nats.Connect(b.node.NATSURL())
	require.NoError(t, err)
	defer nc.Close()
	successes := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("skyring.events.success", successes)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.Flush())

	second := b.timer(t, "job", 2*time.Second, "second") // due t0+2s
	var mu sync.Mutex
	ranAt := map[string]time.Time{}
	created := make(chan error, 1)
	release := make(chan struct{})
	b.rec.SetFunc(func(_ context.Context, tm *skyring.Timer) error {
		data, _ := tm.DataString()
		mu.Lock()
		ranAt[data] = b.clock.Now()
		mu.Unlock()
		if data == "first" {
			// The receiver re-arms the job, then answers slowly.
			created <- b.node.Create(ctx, second)
			<-release
		}
		return nil
	})
	first := b.timer(t, "job", time.Second, "first")
	require.NoError(t, b.node.Create(ctx, first))
	b.advanceTo(t, first.DueTime())
	select {
	case err := <-created:
		require.NoError(t, err, "a create of an id whose delivery is under way is accepted")
	case <-time.After(10 * time.Second):
		t.Fatal("the first delivery never ran")
	}
	require.Equal(t, 1, b.node.Len(), "the new generation is pending")
	close(release)
	select {
	case <-successes: // the first generation's outcome, after its removal
	case <-time.After(10 * time.Second):
		t.Fatal("no success event for the first delivery")
	}
	stored, err := b.store.Get(ctx, "job")
	require.NoError(t, err, "the old delivery's removal deleted the new generation")
	data, _ := stored.DataString()
	require.Equal(t, "second", data)

	b.advanceTo(t, second.DueTime())
	b.rec.Wait(t, 2)
	select {
	case <-successes:
	case <-time.After(10 * time.Second):
		t.Fatal("no success event for the second delivery")
	}
	mu.Lock()
	defer mu.Unlock()
	require.False(t, ranAt["first"].Before(first.DueTime()))
	require.False(t, ranAt["second"].Before(second.DueTime()), "the new generation ran early")
	require.Equal(t, 2, b.rec.Count(), "each generation delivered once")
	require.Eventually(t, func() bool {
		stored, err := b.store.Get(ctx, "job")
		data, _ := stored.DataString()
		return err == nil && stored.State == skyring.StateDelivered && data == "second"
	}, 10*time.Second, time.Millisecond, "the second generation's fate is stored")
}

// A transport that panics costs a failed delivery, not the process: the
// timer gets a fail event naming the panic and the node goes on delivering.
func TestPanickingTransportIsAFailedDelivery(t *testing.T) {
	t.Parallel()
	boom := transportstest.NewRecorder("boom")
	boom.SetFunc(func(context.Context, *skyring.Timer) error { panic("receiver exploded") })
	b := setup(t, nil, node.WithTransport(boom), oneAttempt)
	ctx := context.Background()
	nc, err := nats.Connect(b.node.NATSURL())
	require.NoError(t, err)
	defer nc.Close()
	fails := make(chan *nats.Msg, 8)
	sub, err := nc.ChanSubscribe("skyring.events.fail", fails)
	require.NoError(t, err)
	defer sub.Unsubscribe()
	require.NoError(t, nc.Flush())

	bad := b.timer(t, "bad", time.Second, "")
	bad.Callback.Transport = "boom"
	require.NoError(t, b.node.Create(ctx, bad))
	require.NoError(t, b.node.Create(ctx, b.timer(t, "good", 2*time.Second, "")))
	b.advanceTo(t, t0.Add(2*time.Second))
	select {
	case m := <-fails:
		var ev map[string]any
		require.NoError(t, json.Unmarshal(m.Data, &ev))
		require.Equal(t, "bad", ev["timer"])
		require.Contains(t, ev["error"], "receiver exploded")
	case <-time.After(10 * time.Second):
		t.Fatal("no fail event for the panicking transport")
	}
	require.Equal(t, "good", b.rec.Wait(t, 1)[0].ID)
}

// A stored record that cannot be decoded does not keep the node from
// starting: it is moved aside, and every other timer is recovered.
func TestCorruptRecordDoesNotStopRecovery(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := leveldb.OpenFile(dir, nil)
	require.NoError(t, err)
	require.NoError(t, db.Put([]byte("t/broken"), []byte("not a timer"), nil))
	require.NoError(t, db.Close())
	s, err := leveldbstore.Open(storage.Options{Path: dir})
	require.NoError(t, err)
	tm, err := skyring.ParseTimer([]byte(`{"timeout":1000,"data":"x","callback":{"transport":"rec","method":"post","uri":"x"}}`),
		skyring.ParseParams{Now: t0, ID: "fine"})
	require.NoError(t, err)
	require.NoError(t, s.Put(context.Background(), tm))
	require.NoError(t, s.Close())

	b := setup(t, nil, func(o *node.Options) error {
		o.Store, o.StorageBackend, o.StoragePath = nil, "leveldb", dir
		return nil
	})
	require.Equal(t, 1, b.node.Len(), "the good timer is recovered")
	b.advanceTo(t, tm.DueTime())
	require.Equal(t, "fine", b.rec.Wait(t, 1)[0].ID)
}

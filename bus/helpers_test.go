package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/ring"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the injected clock of the tests.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fakeHandler is an in-memory node: it stores timers, answers relays from
// the same store, and records what the bus told it.
type fakeHandler struct {
	id   string
	http string

	mu       sync.Mutex
	timers   map[string]*skyring.Timer
	handled  map[string]int // create calls per id
	relays   []bus.Command
	lists    []skyring.ListQuery
	deadline []bool // whether each relay's context had a deadline
	seen     map[string]ring.Member

	timersGauge atomic.Int64
	block       chan struct{} // when set, HandleRelay waits for it to close
	events      chan string   // "create:<id>", "retry:<id>", "seen:<id>", "left:<id>", "relay:<op>"
}

func newFakeHandler(id string) *fakeHandler {
	return &fakeHandler{
		id:      id,
		http:    "127.0.0.1:3000",
		timers:  make(map[string]*skyring.Timer),
		handled: make(map[string]int),
		seen:    make(map[string]ring.Member),
		events:  make(chan string, 4096),
	}
}

func (h *fakeHandler) signal(ev string) {
	select {
	case h.events <- ev:
	default:
	}
}

// waitEvent waits for the event ev, skipping others.
func (h *fakeHandler) waitEvent(t testing.TB, ev string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case got := <-h.events:
			if got == ev {
				return
			}
		case <-timeout:
			t.Fatalf("%s: no event %q within 10s", h.id, ev)
		}
	}
}

func (h *fakeHandler) Create(_ context.Context, t *skyring.Timer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.handled[t.ID]++
	if _, ok := h.timers[t.ID]; ok {
		return skyring.ErrTimerExists
	}
	h.timers[t.ID] = t
	h.timersGauge.Add(1)
	h.signal("create:" + t.ID)
	return nil
}

func (h *fakeHandler) Update(_ context.Context, t *skyring.Timer) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.timers[t.ID]; !ok {
		return skyring.ErrTimerNotFound
	}
	h.timers[t.ID] = t
	return nil
}

func (h *fakeHandler) Cancel(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.timers[id]; !ok {
		return skyring.ErrTimerNotFound
	}
	delete(h.timers, id)
	h.timersGauge.Add(-1)
	return nil
}

func (h *fakeHandler) Get(_ context.Context, id string) (skyring.Info, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.timers[id]
	if !ok {
		return skyring.Info{}, skyring.ErrTimerNotFound
	}
	return t.Info(h.id), nil
}

// List pages through the timers in id order: those in q.State (all for
// ""), after q.After, at most q.Limit; the cursor is set while more follow.
func (h *fakeHandler) List(_ context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lists = append(h.lists, q)
	ids := make([]string, 0, len(h.timers))
	for id, t := range h.timers {
		if id > q.After && q.Filter().Match(t) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var page skyring.ListPage
	for i, id := range ids {
		if i == q.Limit {
			page.Cursor = skyring.EncodeCursor(ids[i-1])
			break
		}
		page.Timers = append(page.Timers, h.timers[id].Info(h.id))
	}
	return page, nil
}

// Retry re-arms a failed timer: ErrTimerNotFound for an unknown id,
// ErrNotFailed for one in another state.
// CancelMatching removes the pending and failed timers f matches and
// counts them.
func (h *fakeHandler) CancelMatching(_ context.Context, f skyring.Filter) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for id, t := range h.timers {
		if (t.State == skyring.StatePending || t.State == skyring.StateFailed) && f.Match(t) {
			delete(h.timers, id)
			n++
		}
	}
	return n, nil
}

func (h *fakeHandler) Retry(_ context.Context, id string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	t, ok := h.timers[id]
	if !ok {
		return skyring.ErrTimerNotFound
	}
	if t.State != skyring.StateFailed {
		return skyring.ErrNotFailed
	}
	c := *t // copy on write: a test may hold the old pointer
	c.State, c.Attempts, c.Next, c.Finished, c.LastError, c.LastStatus = skyring.StatePending, 0, 0, 0, "", 0
	h.timers[id] = &c
	h.signal("retry:" + id)
	return nil
}

// setState gives the stored timer id a fate, as delivery would.
func (h *fakeHandler) setState(id string, state skyring.State, attempts int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := *h.timers[id]
	c.State, c.Attempts = state, attempts
	if state.Final() {
		c.Finished = t0.UnixNano()
	}
	if state == skyring.StateFailed {
		c.LastError, c.LastStatus = "receiver answered 503", 503
	}
	h.timers[id] = &c
}

// listQueries returns the queries List was given.
func (h *fakeHandler) listQueries() []skyring.ListQuery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.lists)
}

func (h *fakeHandler) HandleRelay(ctx context.Context, cmd bus.Command) bus.Reply {
	_, hasDeadline := ctx.Deadline()
	h.mu.Lock()
	h.relays = append(h.relays, cmd)
	h.deadline = append(h.deadline, hasDeadline)
	block := h.block
	h.mu.Unlock()
	h.signal("relay:" + cmd.Op.String())
	if block != nil {
		<-block // ignoring ctx: the sender must give up on its own
	}
	switch cmd.Op {
	case bus.OpCreate:
		if err := h.Create(ctx, cmd.Timer); err != nil {
			return bus.ReplyFromError(err)
		}
		return bus.Reply{Status: http.StatusCreated}
	case bus.OpUpdate:
		return bus.ReplyFromError(h.Update(ctx, cmd.Timer))
	case bus.OpCancel:
		if err := h.Cancel(ctx, cmd.ID); err != nil {
			return bus.ReplyFromError(err)
		}
		return bus.Reply{Status: http.StatusAccepted}
	case bus.OpGet:
		info, err := h.Get(ctx, cmd.ID)
		if err != nil {
			return bus.ReplyFromError(err)
		}
		return bus.Reply{Status: http.StatusOK, Info: &info}
	case bus.OpHandoff:
		h.mu.Lock()
		for _, t := range cmd.Timers {
			h.timers[t.ID] = t
		}
		h.mu.Unlock()
		return bus.Reply{Status: http.StatusOK}
	}
	return bus.Reply{Status: http.StatusBadRequest, Reason: "unknown op"}
}

func (h *fakeHandler) MemberSeen(m ring.Member) bool {
	h.mu.Lock()
	old, known := h.seen[m.ID]
	h.seen[m.ID] = m
	h.mu.Unlock()
	h.signal("seen:" + m.ID)
	return !known || m.Started > old.Started
}

func (h *fakeHandler) MemberLeft(id string) {
	h.mu.Lock()
	delete(h.seen, id)
	h.mu.Unlock()
	h.signal("left:" + id)
}

func (h *fakeHandler) LocalMember() ring.Member {
	return ring.Member{ID: "ignored", HTTPAddr: h.http, Timers: int(h.timersGauge.Load())}
}

func (h *fakeHandler) timer(id string) *skyring.Timer {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.timers[id]
}

func (h *fakeHandler) numTimers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.timers)
}

func (h *fakeHandler) member(id string) (ring.Member, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.seen[id]
	return m, ok
}

// testLogger logs to t.Log until the test's cleanup ends; with
// SKYRING_TEST_DEBUG=1 at debug level (the embedded server's logs included).
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(w.stop) // registered first: runs last
	level := slog.LevelInfo
	if os.Getenv("SKYRING_TEST_DEBUG") == "1" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// startBus starts a Bus with test defaults (embedded server on a random
// port, unless opts say otherwise) and closes it at cleanup.
func startBus(t testing.TB, opts bus.Options, h bus.Handler) *bus.Bus {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	freePorts(&opts)
	if len(opts.Servers) == 0 && opts.Secret == "" {
		opts.Secret = testSecret
	}
	b, err := bus.New(opts)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.Start(ctx, h))
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

var idSeq atomic.Int64

// nodeID returns a fresh node id for a test.
func nodeID(name string) string { return fmt.Sprintf("%s-%d", name, idSeq.Add(1)) }

// freePorts makes an embedded server's unset ports free ones (-1), so that
// parallel tests never meet on the default ports.
func freePorts(o *bus.Options) {
	if o.NATSPort == 0 {
		o.NATSPort = -1
	}
	if o.ClusterPort == 0 {
		o.ClusterPort = -1
	}
}

// testSecret is the cluster secret of the embedded servers startBus runs.
const testSecret = "test-cluster-secret"

// nodeURL is the client URL of b's embedded server with the node
// credentials: another bus connects through it as a node.
func nodeURL(b *bus.Bus) string {
	u, err := url.Parse(b.ClientURL())
	if err != nil {
		panic(err)
	}
	u.User = url.UserPassword(bus.NodeUser, testSecret)
	return u.String()
}

// connectNode connects to b's embedded server as a node (every subject).
func connectNode(t testing.TB, b *bus.Bus) *nats.Conn {
	t.Helper()
	return bustest.Connect(t, b.Server(), nats.UserInfo(bus.NodeUser, testSecret))
}

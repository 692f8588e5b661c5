package bus_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
)

func request(t testing.TB, nc *nats.Conn, subj, body string) string {
	t.Helper()
	m, err := nc.Request(subj, []byte(body), 5*time.Second)
	require.NoError(t, err)
	return string(m.Data)
}

const cb = `"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:9/x"}`

func TestAPI(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("api"))
	b := startBus(t, bus.Options{NodeID: h.id, MaxTimeout: 60000}, h)
	nc := bustest.Connect(t, b.Server())

	create, update := b.Subject("timer", "create"), b.Subject("timer", "update")
	cancel, get := b.Subject("timer", "cancel"), b.Subject("timer", "get")
	require.Equal(t, "skyring.timer.create", create)

	t.Run("create with id", func(t *testing.T) {
		got := request(t, nc, create, `{"id":"t1","timeout":1000,"data":{"a": 1},`+cb+`}`)
		require.JSONEq(t, `{"id":"t1","status":201}`, got)
		tm := h.timer("t1")
		require.NotNil(t, tm)
		require.Equal(t, t0.UnixNano(), tm.Created, "stamped with Options.Now")
		require.Equal(t, t0.Add(time.Second).UnixNano(), tm.Due)
		require.JSONEq(t, `{"a":1}`, string(tm.Data))
	})
	t.Run("create generates an id", func(t *testing.T) {
		var rep struct {
			ID     string `json:"id"`
			Status int    `json:"status"`
		}
		require.NoError(t, json.Unmarshal([]byte(request(t, nc, create, `{"timeout":"1e3",`+cb+`}`)), &rep))
		require.Equal(t, 201, rep.Status)
		require.NoError(t, skyring.ValidateID(rep.ID))
		require.NotNil(t, h.timer(rep.ID))
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct{ subj, body, want string }{
			{create, `{"id":"t1","timeout":1000,` + cb + `}`, `{"status":409,"error":"A timer with that id already exists"}`},
			{create, `{"timeout":0,` + cb + `}`, `{"status":400,"error":"timeout must be between 1 and 60000 milliseconds"}`},
			{create, `{"timeout":60001,` + cb + `}`, `{"status":400,"error":"timeout must be between 1 and 60000 milliseconds"}`},
			{create, `{"timeout":`, `{"status":400,"error":"Invalid JSON body"}`},
			{create, `[1]`, `{"status":400,"error":"Request body must be a JSON object"}`},
			{create, `{"id":"a b","timeout":1,` + cb + `}`, `{"status":400,"error":"Timer id may hold only printable ASCII without spaces or '/'"}`},
			{update, `{"timeout":1000,` + cb + `}`, `{"status":400,"error":"id is required"}`},
			{update, `{"id":"nope","timeout":1000,` + cb + `}`, `{"status":404,"error":"Timer not found"}`},
			{update, `{"id":"t1","timeout":"x",` + cb + `}`, `{"status":400,"error":"timeout must be a number of milliseconds"}`},
			{cancel, `{"id":"nope"}`, `{"status":404,"error":"Timer not found"}`},
			{cancel, `{}`, `{"status":400,"error":"id is required"}`},
			{get, `{"id":"nope"}`, `{"status":404,"error":"Timer not found"}`},
			{get, `{"id":5}`, `{"status":400,"error":"id must be a string"}`},
		} {
			got := request(t, nc, tc.subj, tc.body)
			require.JSONEq(t, tc.want, got, "%s %s", tc.subj, tc.body)
		}
	})
	t.Run("update", func(t *testing.T) {
		got := request(t, nc, update, `{"id":"t1","at":"2030-01-02T03:04:15Z","data":"hi",`+cb+`}`)
		require.JSONEq(t, `{"id":"t1","status":200}`, got)
		tm := h.timer("t1")
		require.Equal(t, t0.Add(10*time.Second).UnixNano(), tm.Due)
		require.Equal(t, `"hi"`, string(tm.Data))
	})
	t.Run("get", func(t *testing.T) {
		got := request(t, nc, get, `{"id":"t1"}`)
		want := fmt.Sprintf(`{"status":200,"timer":{"id":"t1","timeout":10000,"data":"hi",
			"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:9/x"},
			"created":%d,"due":%d,"node":%q,"state":"pending","attempts":0}}`, t0.UnixMilli(), t0.UnixMilli()+10000, h.id)
		require.JSONEq(t, want, got)
	})
	t.Run("cancel", func(t *testing.T) {
		require.JSONEq(t, `{"id":"t1","status":202}`, request(t, nc, cancel, `{"id":"t1"}`))
		require.JSONEq(t, `{"status":404,"error":"Timer not found"}`, request(t, nc, cancel, `{"id":"t1"}`))
		require.Nil(t, h.timer("t1"))
	})
	t.Run("body too large", func(t *testing.T) {
		body := `{"timeout":1000,"data":"` + strings.Repeat("x", 1<<20) + `",` + cb + `}`
		require.JSONEq(t, `{"status":413,"error":"Request body too large"}`, request(t, nc, create, body))
	})
}

func TestAPIFireAndForget(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("ff"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())

	require.NoError(t, nc.Publish(b.Subject("timer", "create"), []byte(`{"id":"ff1","timeout":500,`+cb+`}`)))
	h.waitEvent(t, "create:ff1")
	require.Equal(t, t0.Add(500*time.Millisecond).UnixNano(), h.timer("ff1").Due)

	// A failing fire-and-forget message is dropped without an answer, and
	// does not disturb the next one.
	require.NoError(t, nc.Publish(b.Subject("timer", "create"), []byte(`{"id":"ff1","timeout":500,`+cb+`}`)))
	require.NoError(t, nc.Publish(b.Subject("timer", "cancel"), []byte(`{"id":"ff1"}`)))
	require.NoError(t, nc.Publish(b.Subject("timer", "create"), []byte(`{"id":"ff2","timeout":500,`+cb+`}`)))
	h.waitEvent(t, "create:ff2")
}

// Two buses on one NATS server take API messages in one queue group: each
// message is handled by exactly one of them.
func TestAPIQueueGroup(t *testing.T) {
	t.Parallel()
	srv := bustest.RunServer(t)
	h1, h2 := newFakeHandler(nodeID("q")), newFakeHandler(nodeID("q"))
	b1 := startBus(t, bus.Options{NodeID: h1.id, Servers: []string{srv.ClientURL()}}, h1)
	startBus(t, bus.Options{NodeID: h2.id, Servers: []string{srv.ClientURL()}}, h2)
	require.Equal(t, srv.ClientURL(), b1.ClientURL())
	require.Nil(t, b1.Server())

	nc := bustest.Connect(t, srv)
	const n = 50
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			got := request(t, nc, "skyring.timer.create", fmt.Sprintf(`{"id":"q%d","timeout":1000,%s}`, i, cb))
			require.JSONEq(t, fmt.Sprintf(`{"id":"q%d","status":201}`, i), got)
		})
	}
	wg.Wait()
	h1.mu.Lock()
	h2.mu.Lock()
	defer h1.mu.Unlock()
	defer h2.mu.Unlock()
	for i := range n {
		id := fmt.Sprintf("q%d", i)
		require.Equal(t, 1, h1.handled[id]+h2.handled[id], "create %s handled once", id)
	}
	t.Logf("split between the two buses: %d / %d", len(h1.timers), len(h2.timers))
}

// The API is served concurrently: a handler that blocks does not hold up
// the messages behind it.
func TestAPIConcurrent(t *testing.T) {
	t.Parallel()
	h := &blockingHandler{fakeHandler: newFakeHandler(nodeID("conc")), entered: make(chan struct{}), release: make(chan struct{})}
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())

	slow := make(chan string, 1)
	go func() {
		m, err := nc.Request(b.Subject("timer", "get"), []byte(`{"id":"slow"}`), 10*time.Second)
		if err != nil {
			slow <- err.Error()
			return
		}
		slow <- string(m.Data)
	}()
	<-h.entered // the slow get is in its handler
	// Meanwhile other messages are served.
	require.JSONEq(t, `{"id":"c1","status":201}`, request(t, nc, b.Subject("timer", "create"), `{"id":"c1","timeout":1000,`+cb+`}`))
	close(h.release)
	require.JSONEq(t, `{"status":404,"error":"Timer not found"}`, <-slow)
}

type blockingHandler struct {
	*fakeHandler
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (h *blockingHandler) Get(ctx context.Context, id string) (skyring.Info, error) {
	if id == "slow" {
		h.once.Do(func() { close(h.entered) })
		<-h.release
	}
	return h.fakeHandler.Get(ctx, id)
}

func TestStopAPI(t *testing.T) {
	t.Parallel()
	h1, h2 := newFakeHandler(nodeID("stop")), newFakeHandler(nodeID("stop"))
	b1 := startBus(t, bus.Options{NodeID: h1.id}, h1)
	b2 := startBus(t, bus.Options{NodeID: h2.id, Servers: []string{b1.ClientURL()}}, h2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, b1.StopAPI(ctx))
	require.NoError(t, b2.StopAPI(ctx))
	require.NoError(t, b2.StopAPI(ctx), "idempotent")

	nc := bustest.Connect(t, b1.Server())
	_, err := nc.Request(b1.Subject("timer", "get"), []byte(`{"id":"x"}`), 5*time.Second)
	require.ErrorIs(t, err, nats.ErrNoResponders)

	// Relays still work.
	rep, err := b2.Relay(ctx, h1.id, bus.Command{Op: bus.OpGet, ID: "x"})
	require.NoError(t, err)
	require.Equal(t, 404, rep.Status)
}

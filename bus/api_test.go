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
	b2 := startBus(t, bus.Options{NodeID: h2.id, Servers: []string{nodeURL(b1)}}, h2)
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

// listReply is a list answer of the NATS API.
type listReply struct {
	Status int             `json:"status"`
	Timers *[]skyring.Info `json:"timers"`
	Cursor string          `json:"cursor"`
	Error  string          `json:"error"`
}

func requestList(t *testing.T, nc *nats.Conn, subj, body string) listReply {
	t.Helper()
	var rep listReply
	raw := request(t, nc, subj, body)
	require.NoError(t, json.Unmarshal([]byte(raw), &rep), raw)
	require.Equal(t, 200, rep.Status, raw)
	require.NotNil(t, rep.Timers, "timers is always there: %s", raw)
	return rep
}

func replyIDs(rep listReply) []string {
	var ids []string
	for _, i := range *rep.Timers {
		ids = append(ids, i.ID)
	}
	return ids
}

func TestAPIList(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("list"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())
	list, create := b.Subject("timer", "list"), b.Subject("timer", "create")
	require.Equal(t, "skyring.timer.list", list)

	// Empty: [] and no cursor, whatever the payload says of it.
	for _, body := range []string{``, ` `, `{}`, `{"state":null,"limit":null,"cursor":null}`, `{"cursor":""}`} {
		require.JSONEq(t, `{"status":200,"timers":[]}`, request(t, nc, list, body), "payload %q", body)
	}
	require.Equal(t, skyring.ListQuery{Limit: skyring.DefaultListLimit}, h.listQueries()[0])

	var all []string
	for i := range 12 {
		id := fmt.Sprintf("l%02d", i)
		all = append(all, id)
		require.JSONEq(t, `{"id":"`+id+`","status":201}`, request(t, nc, create, `{"id":"`+id+`","timeout":1000,`+cb+`}`))
	}
	failed := []string{"l02", "l05", "l09"}
	for _, id := range failed {
		h.setState(id, skyring.StateFailed, 4)
	}

	// Everything in one page, with the shape of GET /timer/:id.
	rep := requestList(t, nc, list, `{}`)
	require.Equal(t, all, replyIDs(rep))
	require.Empty(t, rep.Cursor)
	require.Equal(t, h.timer("l02").Info(h.id), (*rep.Timers)[2])
	require.Equal(t, "failed", (*rep.Timers)[2].State)
	require.Equal(t, "receiver answered 503", (*rep.Timers)[2].LastError)

	// Paging with a number limit, then a string limit.
	for _, limit := range []string{`5`, `"5"`} {
		var got []string
		pages := 0
		cursor := ""
		for {
			body := `{"limit":` + limit + `}`
			if cursor != "" {
				body = `{"limit":` + limit + `,"cursor":"` + cursor + `"}`
			}
			rep := requestList(t, nc, list, body)
			pages++
			require.LessOrEqual(t, len(*rep.Timers), 5)
			got = append(got, replyIDs(rep)...)
			if rep.Cursor == "" {
				break
			}
			cursor = rep.Cursor
		}
		require.Equal(t, all, got, "limit %s", limit)
		require.Equal(t, 3, pages)
	}

	// The state filter, with paging; other members are ignored.
	rep = requestList(t, nc, list, `{"state":"failed","limit":2,"other":[1]}`)
	require.Equal(t, failed[:2], replyIDs(rep))
	require.NotEmpty(t, rep.Cursor)
	rep = requestList(t, nc, list, `{"state":"failed","limit":2,"cursor":"`+rep.Cursor+`"}`)
	require.Equal(t, failed[2:], replyIDs(rep))
	require.Empty(t, rep.Cursor)

	// What the handler was given.
	requestList(t, nc, list, `{"state":"pending","limit":1000,"cursor":"`+skyring.EncodeCursor("l10")+`"}`)
	qs := h.listQueries()
	require.Equal(t, skyring.ListQuery{State: "pending", After: "l10", Limit: 1000}, qs[len(qs)-1])
	// Keys match exactly, and the last of duplicates wins.
	requestList(t, nc, list, `{"State":"failed","LIMIT":3,"limit":1,"limit":7}`)
	qs = h.listQueries()
	require.Equal(t, skyring.ListQuery{Limit: 7}, qs[len(qs)-1])
}

func TestAPIListErrors(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("listerr"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())
	list := b.Subject("timer", "list")

	const (
		badState  = `{"status":400,"error":"state must be one of pending, retrying, delivered, failed, cancelled"}`
		badLimit  = `{"status":400,"error":"limit must be an integer from 1 to 1000"}`
		badCursor = `{"status":400,"error":"cursor is not one this service handed out"}`
	)
	for _, tc := range []struct{ body, want string }{
		{`{"state":"dead"}`, badState},
		{`{"state":"Failed"}`, badState},
		{`{"state":""}`, `{"status":200,"timers":[]}`},
		{`{"state":5}`, `{"status":400,"error":"state must be a string"}`},
		{`{"state":["failed"]}`, `{"status":400,"error":"state must be a string"}`},
		{`{"limit":0}`, badLimit},
		{`{"limit":-1}`, badLimit},
		{`{"limit":1001}`, badLimit},
		{`{"limit":1.5}`, badLimit},
		{`{"limit":1e2}`, badLimit},
		{`{"limit":10.0}`, badLimit},
		{`{"limit":"ten"}`, badLimit},
		{`{"limit":" 5"}`, badLimit},
		{`{"limit":true}`, badLimit},
		{`{"limit":[5]}`, badLimit},
		{`{"limit":{"n":5}}`, badLimit},
		{`{"limit":99999999999999999999}`, badLimit},
		{`{"cursor":"!!!"}`, badCursor},
		{`{"cursor":1234}`, `{"status":400,"error":"cursor must be a string"}`},
		{`{"cursor":"` + skyring.EncodeCursor(strings.Repeat("x", skyring.MaxIDLen+1)) + `"}`, badCursor},
		{`{`, `{"status":400,"error":"Invalid JSON body"}`},
		{`{"limit":5}x`, `{"status":400,"error":"Invalid JSON body"}`},
		{`[]`, `{"status":400,"error":"Request body must be a JSON object"}`},
		{`null`, `{"status":400,"error":"Request body must be a JSON object"}`},
		{`"failed"`, `{"status":400,"error":"Request body must be a JSON object"}`},
	} {
		require.JSONEq(t, tc.want, request(t, nc, list, tc.body), "payload %s", tc.body)
	}
	require.Len(t, h.listQueries(), 1, "only the valid payload reached the handler")

	body := `{"state":"failed","pad":"` + strings.Repeat("x", 1<<20) + `"}`
	require.JSONEq(t, `{"status":413,"error":"Request body too large"}`, request(t, nc, list, body))
}

func TestAPIRetry(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("retry"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())
	retry, create := b.Subject("timer", "retry"), b.Subject("timer", "create")
	require.Equal(t, "skyring.timer.retry", retry)

	for _, id := range []string{"r1", "r2"} {
		require.JSONEq(t, `{"id":"`+id+`","status":201}`, request(t, nc, create, `{"id":"`+id+`","timeout":1000,`+cb+`}`))
	}
	h.setState("r1", skyring.StateFailed, 5)

	require.JSONEq(t, `{"id":"r1","status":202}`, request(t, nc, retry, `{"id":"r1"}`))
	require.Equal(t, skyring.StatePending, h.timer("r1").State)
	require.Zero(t, h.timer("r1").Attempts)

	const notFailed = `{"status":409,"error":"Only a failed timer can be retried"}`
	for _, tc := range []struct{ body, want string }{
		{`{"id":"r1"}`, notFailed}, // retried already: pending
		{`{"id":"r2"}`, notFailed},
		{`{"id":"nope"}`, `{"status":404,"error":"Timer not found"}`},
		{`{}`, `{"status":400,"error":"id is required"}`},
		{`{"id":null}`, `{"status":400,"error":"id is required"}`},
		{`{"id":5}`, `{"status":400,"error":"id must be a string"}`},
		{`{"id":"a/b"}`, `{"status":400,"error":"Timer id may hold only printable ASCII without spaces or '/'"}`},
		{``, `{"status":400,"error":"Invalid JSON body"}`},
		{`"r1"`, `{"status":400,"error":"Request body must be a JSON object"}`},
	} {
		require.JSONEq(t, tc.want, request(t, nc, retry, tc.body), "payload %s", tc.body)
	}
	h.setState("r2", skyring.StateDelivered, 1)
	require.JSONEq(t, notFailed, request(t, nc, retry, `{"id":"r2"}`))
}

// Without a reply subject, list and retry are carried out all the same (a
// list so is of no use, but harmless), and a failing one disturbs nothing.
func TestAPIListRetryFireAndForget(t *testing.T) {
	t.Parallel()
	h := newFakeHandler(nodeID("ffr"))
	b := startBus(t, bus.Options{NodeID: h.id}, h)
	nc := bustest.Connect(t, b.Server())
	retry, list := b.Subject("timer", "retry"), b.Subject("timer", "list")

	request(t, nc, b.Subject("timer", "create"), `{"id":"f1","timeout":1000,`+cb+`}`)
	h.setState("f1", skyring.StateFailed, 5)

	require.NoError(t, nc.Publish(retry, []byte(`{"id":"nope"}`)))
	require.NoError(t, nc.Publish(retry, []byte(`{`)))
	require.NoError(t, nc.Publish(list, []byte(`{"limit":0}`)))
	require.NoError(t, nc.Publish(list, []byte(`{"state":"failed"}`)))
	require.NoError(t, nc.Publish(retry, []byte(`{"id":"f1"}`)))
	h.waitEvent(t, "retry:f1")
	require.Equal(t, skyring.StatePending, h.timer("f1").State)
	require.Eventually(t, func() bool { return len(h.listQueries()) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, skyring.ListQuery{State: "failed", Limit: skyring.DefaultListLimit}, h.listQueries()[0])
}

// A reply NATS cannot carry (here a list page of two big timers over a
// server with the default 1 MB max payload) is answered with an error, not
// left to time out.
func TestAPIReplyTooLarge(t *testing.T) {
	t.Parallel()
	srv := bustest.RunServer(t)
	h := newFakeHandler(nodeID("big"))
	b := startBus(t, bus.Options{NodeID: h.id, Servers: []string{srv.ClientURL()}}, h)
	nc := bustest.Connect(t, srv)
	big := strings.Repeat("x", 600<<10)
	for _, id := range []string{"big1", "big2"} {
		require.JSONEq(t, `{"id":"`+id+`","status":201}`,
			request(t, nc, b.Subject("timer", "create"), `{"id":"`+id+`","timeout":1000,"data":"`+big+`",`+cb+`}`))
	}
	var rep struct {
		Status int    `json:"status"`
		Error  string `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(request(t, nc, b.Subject("timer", "list"), `{}`)), &rep))
	require.Equal(t, 500, rep.Status)
	require.Contains(t, rep.Error, "exceeds the NATS max payload")
	require.Contains(t, rep.Error, "smaller limit")
	// One at a time fits.
	require.Len(t, *requestList(t, nc, b.Subject("timer", "list"), `{"limit":1}`).Timers, 1)
}

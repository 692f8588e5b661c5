package node_test

// The "nats" transport as a node runs it: timers created over the NATS API
// with callback.transport "nats" are delivered on NATS when they fire, and
// their outcome is published on <prefix>.events.success or .fail.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage/memstore"
)

// withNATSTransport enables the built-in http and nats transports.
func withNATSTransport(o *node.Options) error {
	o.Transports = []string{"http", "nats"}
	return nil
}

// natsTimer creates a timer with a nats callback over the NATS API; data is
// JSON or "" for none.
func (a *apiBundle) natsTimer(t *testing.T, id string, timeout time.Duration, method, subject, data string) {
	t.Helper()
	body := `{"timeout":` + jsonNum(timeout.Milliseconds()) +
		`,"callback":{"transport":"nats","method":` + quote(method) + `,"uri":` + quote(subject) + `}`
	if data != "" {
		body += `,"data":` + data
	}
	body += `}`
	res := a.nats.do(t, apiReq{op: "create", id: id, body: body})
	require.Equal(t, apiResult{status: 201, id: id}, res, "creating %s", id)
}

// timerEvent is the part of a timer event these tests read.
type timerEvent struct {
	Type    string          `json:"type"`
	Timer   string          `json:"timer"`
	Node    string          `json:"node"`
	Error   string          `json:"error"`
	Payload json.RawMessage `json:"payload"`
}

// eventWatch collects the node's timer events, subscribed before anything is
// created.
type eventWatch struct {
	ch   chan *nats.Msg
	seen map[string][]timerEvent // by timer id, in order
}

func watchEvents(t *testing.T, nc *nats.Conn) *eventWatch {
	t.Helper()
	w := &eventWatch{ch: make(chan *nats.Msg, 1024), seen: map[string][]timerEvent{}}
	sub, err := nc.ChanSubscribe("skyring.events.>", w.ch)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, nc.Flush())
	return w
}

// outcomes waits until each id has a success or fail event and returns it.
func (w *eventWatch) outcomes(t *testing.T, ids ...string) map[string]timerEvent {
	t.Helper()
	got := map[string]timerEvent{}
	final := func() bool {
		for _, id := range ids {
			for _, ev := range w.seen[id] {
				if ev.Type == "success" || ev.Type == "fail" {
					got[id] = ev
				}
			}
		}
		return len(got) == len(ids)
	}
	deadline := time.After(apiWait)
	for !final() {
		select {
		case m := <-w.ch:
			var ev timerEvent
			require.NoError(t, json.Unmarshal(m.Data, &ev), "event %s", m.Data)
			require.Equal(t, "skyring.events."+ev.Type, m.Subject)
			w.seen[ev.Timer] = append(w.seen[ev.Timer], ev)
		case <-deadline:
			t.Fatalf("outcomes after %s: %v (events %v)", apiWait, got, w.seen)
		}
	}
	return got
}

// types lists the event types seen for id, in order.
func (w *eventWatch) types(id string) []string {
	var ts []string
	for _, ev := range w.seen[id] {
		ts = append(ts, ev.Type)
	}
	return ts
}

func TestNATSTransportPublishOnce(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, withNATSTransport)
	nc := a.nats.nc
	// One connection for the deliveries and the events: the node publishes
	// a delivery before its success event, on one connection, so the
	// delivery reaches this connection first.
	fired := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("jobs.fired", fired)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	w := watchEvents(t, nc)

	a.natsTimer(t, "str", 10*time.Millisecond, "publish", "jobs.fired", `"hello, \"world\""`)
	a.natsTimer(t, "obj", 20*time.Millisecond, "PUBLISH", "jobs.fired", `{ "k" : "v", "n" : 1 }`)
	a.natsTimer(t, "none", 30*time.Millisecond, "publish", "jobs.fired", "")
	a.advanceTo(t, t0.Add(100*time.Millisecond))
	for id, ev := range w.outcomes(t, "str", "obj", "none") {
		require.Equal(t, "success", ev.Type, "%s: %s", id, ev.Error)
		require.Equal(t, []string{"create", "execute", "success"}, w.types(id))
	}

	// Barrier: a later timer on the same subject. Once its success event is
	// in, any second delivery of the first three, made before it, is too.
	a.natsTimer(t, "barrier", time.Second, "publish", "jobs.fired", `"barrier"`)
	a.advanceTo(t, t0.Add(2*time.Second))
	require.Equal(t, "success", w.outcomes(t, "barrier")["barrier"].Type)

	msgs := map[string][]*nats.Msg{}
	for drained := false; !drained; {
		select {
		case m := <-fired:
			id := m.Header.Get("Skyring-Timer-Id")
			msgs[id] = append(msgs[id], m)
		default:
			drained = true
		}
	}
	for _, id := range []string{"str", "obj", "none", "barrier"} {
		require.Len(t, msgs[id], 1, "deliveries of %s", id)
	}
	require.Len(t, msgs, 4, "deliveries: %v", msgs)

	str := msgs["str"][0]
	require.Equal(t, `hello, "world"`, string(str.Data), "a string is sent verbatim")
	require.Empty(t, str.Header.Get("Content-Type"))
	obj := msgs["obj"][0]
	require.JSONEq(t, `{"k":"v","n":1}`, string(obj.Data), "an object is sent as JSON")
	require.Equal(t, "application/json", obj.Header.Get("Content-Type"))
	require.Empty(t, msgs["none"][0].Data, "no data, no payload")
	require.Equal(t, "barrier", string(msgs["barrier"][0].Data))

	for _, id := range []string{"str", "obj", "none", "barrier"} {
		require.Equal(t, "delivered", a.stateOf(t, id), "a delivered timer shows its fate")
	}
}

func TestNATSTransportRequest(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, withNATSTransport, oneAttempt)
	nc := a.nats.nc
	asked := make(chan *nats.Msg, 4)
	sub, err := nc.Subscribe("jobs.ask", func(m *nats.Msg) {
		asked <- m
		_ = m.Respond([]byte("done"))
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	w := watchEvents(t, nc)

	a.natsTimer(t, "ask", 10*time.Millisecond, "request", "jobs.ask", `{"q":1}`)
	a.natsTimer(t, "ask-nobody", 10*time.Millisecond, "Request", "jobs.nobody", `"anyone?"`)
	a.advanceTo(t, t0.Add(time.Second))
	out := w.outcomes(t, "ask", "ask-nobody")

	require.Equal(t, "success", out["ask"].Type, out["ask"].Error)
	require.Equal(t, []string{"create", "execute", "success"}, w.types("ask"))
	require.Equal(t, a.node.ID(), out["ask"].Node)
	select {
	case m := <-asked:
		require.JSONEq(t, `{"q":1}`, string(m.Data))
		require.Equal(t, "ask", m.Header.Get("Skyring-Timer-Id"))
	default:
		t.Fatal("success without a request reaching the responder")
	}
	require.Empty(t, asked, "one request per delivery")

	require.Equal(t, "fail", out["ask-nobody"].Type, "a request with no responder fails")
	require.Equal(t, []string{"create", "execute", "fail"}, w.types("ask-nobody"))
	require.Contains(t, strings.ToLower(out["ask-nobody"].Error), "no responders")
	require.Equal(t, "failed", a.stateOf(t, "ask-nobody"), "a failed timer is a dead letter")
}

// TestNATSTransportStoredBadCallbackFails: a nats callback that can never be
// delivered is refused at create (validate_test.go), but one stored before
// that check existed is recovered, fails when it fires, and is not retried.
func TestNATSTransportStoredBadCallbackFails(t *testing.T) {
	t.Parallel()
	cases := []struct{ id, method, subject, errHas string }{
		{"empty-token", "publish", "a..b", "subject"},
		{"star", "publish", "*", "subject"},
		{"full-wildcard", "publish", "jobs.>", "subject"},
		{"leading-dot", "publish", ".jobs", "subject"},
		{"star-request", "request", "jobs.*", "subject"},
		{"bad-method", "shout", "jobs.fired", "method"},
		// Reserved subjects, refused at create since: not sent, failed.
		{"members", "publish", "_SKYRING.skyring.members", "reserved"},
		{"relay", "request", "_SKYRING.skyring.relay.x", "reserved"},
		{"api", "request", "skyring.timer.create", "reserved"},
		{"forged-event", "publish", "skyring.events.success", "reserved"},
		{"sys", "request", "$SYS.REQ.SERVER.PING", "reserved"},
	}
	store := memstore.New()
	ids := make([]string, len(cases))
	for i, c := range cases {
		require.NoError(t, store.Put(context.Background(), &skyring.Timer{
			ID: c.id, Created: t0.UnixNano(), Due: t0.Add(10 * time.Millisecond).UnixNano(), Data: []byte(`"x"`),
			Callback: skyring.Callback{Transport: "nats", Method: c.method, URI: c.subject},
		}))
		ids[i] = c.id
	}
	a := setupAPI(t, withNATSTransport, func(o *node.Options) error { o.Store = store; return nil })
	w := watchEvents(t, a.nats.nc)
	a.advanceTo(t, t0.Add(time.Second))
	out := w.outcomes(t, ids...)
	for _, c := range cases {
		ev := out[c.id]
		require.Equal(t, "fail", ev.Type, "%s (%s %q)", c.id, c.method, c.subject)
		require.Contains(t, ev.Error, c.errHas, c.id)
		require.Equal(t, []string{"execute", "fail"}, w.types(c.id), c.id)
		require.Equal(t, "failed", a.stateOf(t, c.id), "a failed timer is a dead letter")
	}
}

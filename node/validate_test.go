package node_test

// Callbacks that can never be delivered are refused when a timer is created
// or updated (transports.Registry.Check): 400 with a reason naming the
// field, the same over HTTP and NATS, on the node that owns the timer and on
// one that would relay it.

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

// badCallbacks are callbacks of the built-in transports that can never be
// delivered, with the field the answer must name.
var badCallbacks = []struct {
	name, callback, field string
}{
	{"http method fetch", `{"transport":"http","method":"fetch","uri":"http://localhost:9000/hook"}`, "callback.method"},
	{"http uri not a url", `{"transport":"http","method":"post","uri":"not a url"}`, "callback.uri"},
	{"http uri ftp", `{"transport":"http","method":"post","uri":"ftp://x"}`, "callback.uri"},
	{"http uri relative", `{"transport":"http","method":"get","uri":"/hook"}`, "callback.uri"},
	{"nats subject with a space", `{"transport":"nats","method":"publish","uri":"a b"}`, "callback.uri"},
	{"nats wildcard", `{"transport":"nats","method":"request","uri":"jobs.>"}`, "callback.uri"},
	{"nats method post", `{"transport":"nats","method":"post","uri":"jobs.x"}`, "callback.method"},
	// The node's own subjects and the server's (natstransport.ReservedPatterns).
	{"nats membership", `{"transport":"nats","method":"publish","uri":"_SKYRING.skyring.members"}`, "callback.uri"},
	{"nats relay", `{"transport":"nats","method":"request","uri":"_SKYRING.skyring.relay.n1"}`, "callback.uri"},
	{"nats api", `{"transport":"nats","method":"request","uri":"skyring.timer.create"}`, "callback.uri"},
	{"nats events", `{"transport":"nats","method":"publish","uri":"skyring.events.success"}`, "callback.uri"},
	{"nats node events", `{"transport":"nats","method":"publish","uri":"skyring.node.leave"}`, "callback.uri"},
	{"nats inbox", `{"transport":"nats","method":"REQUEST","uri":"_INBOX.a.b"}`, "callback.uri"},
	{"nats system", `{"transport":"nats","method":"request","uri":"$SYS.REQ.SERVER.PING"}`, "callback.uri"},
	{"nats jetstream", `{"transport":"nats","method":"request","uri":"$JS.API.STREAM.LIST"}`, "callback.uri"},
}

// goodCallbacks are API.md's and the README's callbacks, and the cases that
// API.md leaves open (any case of method): all still accepted.
var goodCallbacks = []string{
	`{"transport":"http","method":"post","uri":"http://localhost:9000/hook"}`,
	`{"transport":"http","method":"put","uri":"http://localhost:9000/orders/42/expire"}`,
	`{"transport":"http","method":"post","uri":"http://api.someservice.com/hook/timeout"}`,
	`{"transport":"http","method":"DELETE","uri":"https://user:pw@example.com:8443/a?b=1#c"}`,
	`{"transport":"http","method":"Head","uri":"http://[::1]:3000/"}`,
	`{"transport":"nats","method":"publish","uri":"jobs.reminders"}`,
	`{"transport":"nats","method":"REQUEST","uri":"jobs.a.b"}`,
	`{"transport":"nats","method":"publish","uri":"skyring.timers.x"}`, // not under skyring.timer.
	`{"transport":"rec","method":"anything","uri":"not even a URL"}`,   // no Validator
}

func TestCreateRejectsBadCallback(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, withNATSTransport)
	for i, bc := range badCallbacks {
		body := `{"timeout":60000,"data":"x","callback":` + bc.callback + `}`
		req := apiReq{op: "create", id: fmt.Sprintf("bad-%d-{side}", i), body: body}
		var reasons []string
		for _, side := range []apiSide{a.http, a.nats} {
			res := side.do(t, req.on(side.name()))
			require.Equal(t, http.StatusBadRequest, res.status, "%s on %s: %s", bc.name, side.name(), res.reason)
			require.Contains(t, res.reason, bc.field, "%s: the reason names the field", bc.name)
			reasons = append(reasons, res.reason)
			require.Nil(t, a.httpGet(t, req.on(side.name()).id), "%s: nothing stored", bc.name)
		}
		require.Equal(t, reasons[0], reasons[1], "%s: HTTP and NATS give the same reason", bc.name)
	}
	require.Zero(t, a.node.Len(), "no timer was armed")

	for i, cb := range goodCallbacks {
		body := `{"timeout":60000,"data":"x","callback":` + cb + `}`
		for _, side := range []apiSide{a.http, a.nats} {
			req := apiReq{op: "create", id: fmt.Sprintf("good-%d-{side}", i), body: body}.on(side.name())
			res := side.do(t, req)
			require.Equal(t, http.StatusCreated, res.status, "%s on %s: %s", cb, side.name(), res.reason)
		}
	}
}

func TestUpdateRejectsBadCallback(t *testing.T) {
	t.Parallel()
	a := setupAPI(t, withNATSTransport)
	good := `{"timeout":60000,"data":"old","callback":{"transport":"http","method":"post","uri":"http://localhost:9000/hook"}}`
	for _, side := range []apiSide{a.http, a.nats} {
		id := "upd-" + side.name()
		require.Equal(t, http.StatusCreated, side.do(t, apiReq{op: "create", id: id, body: good}).status)
		before := a.httpGet(t, id)
		for _, bc := range badCallbacks {
			body := `{"timeout":1000,"data":"new","callback":` + bc.callback + `}`
			res := side.do(t, apiReq{op: "update", id: id, body: body})
			require.Equal(t, http.StatusBadRequest, res.status, "%s on %s: %s", bc.name, side.name(), res.reason)
			require.Contains(t, res.reason, bc.field, "%s: the reason names the field", bc.name)
		}
		require.JSONEq(t, string(before), string(a.httpGet(t, id)), "a refused update leaves the timer as it was")
	}
}

// TestClusterRejectsBadCallback: a node refuses a bad callback before it
// would relay the command to the owner, and the owner refuses it too; either
// way the caller gets the field.
func TestClusterRejectsBadCallback(t *testing.T) {
	t.Parallel()
	c := startCluster(t, 2)
	ctx := context.Background()
	now := time.Now()
	relayed := 0
	for i := range 16 { // enough ids that each node both owns some and relays some
		for j, nd := range c.nodes {
			id := fmt.Sprintf("bad-%d-%d", i, j)
			body := `{"timeout":60000,"callback":{"transport":"http","method":"fetch","uri":"http://localhost:9000/hook"}}`
			tm, err := skyring.ParseTimer([]byte(body), skyring.ParseParams{Now: now, ID: id})
			require.NoError(t, err)
			for op, call := range map[string]func(context.Context, *skyring.Timer) error{"create": nd.Create, "update": nd.Update} {
				err := call(ctx, tm)
				var ve *skyring.ValidationError
				require.ErrorAs(t, err, &ve, "%s %s on node %d", op, id, j)
				require.Equal(t, "callback.method", ve.Field)
				status, reason := skyring.Status(err)
				require.Equal(t, http.StatusBadRequest, status)
				require.Contains(t, reason, `callback.method "fetch"`)
			}
			_, err = c.nodes[1-j].Get(ctx, id)
			require.ErrorIs(t, err, skyring.ErrTimerNotFound, "%s was not stored", id)
			if c.nodes[0].Owner(id) != nd.ID() {
				relayed++
			}
		}
	}
	require.Positive(t, relayed, "some creates went through the relay path")
	for _, nd := range c.nodes {
		require.Zero(t, nd.Len())
	}
}

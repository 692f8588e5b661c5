package main_test

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

// TestCallbackValidatedAtCreate: with the real binary and its default
// transports, a callback that can never be delivered is a 400 naming the
// field, over HTTP (POST and PUT) and over the NATS API, with the same
// reason; nothing is stored. The README's callbacks are still accepted.
func TestCallbackValidatedAtCreate(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)
	nc, err := nats.Connect(p.NATSURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	bad := []struct {
		name     string
		callback map[string]any
		field    string
	}{
		{"method fetch", cbWith(s, "method", "fetch"), "callback.method"},
		{"uri not a url", cbWith(s, "uri", "not a url"), "callback.uri"},
		{"uri ftp", cbWith(s, "uri", "ftp://x"), "callback.uri"},
		{"nats subject with a space", map[string]any{"transport": "nats", "method": "publish", "uri": "a b"}, "callback.uri"},
		{"nats method post", map[string]any{"transport": "nats", "method": "post", "uri": "jobs.x"}, "callback.method"},
	}
	existing, _ := p.createTimer(t, body(s, "/cb/never"))
	before := p.getTimer(t, existing)
	for i, tc := range bad {
		id := fmt.Sprintf("bad-%d", i)
		r := p.do(t, http.MethodPost, "/timer", with(body(s, "/cb/never"), "callback", tc.callback), "x-timer-id", id)
		requireError(t, r, http.StatusBadRequest, tc.name)
		require.Contains(t, r.Reason(), tc.field, "%s: the reason names the field", tc.name)
		require.Equal(t, "/timer/"+id, r.Header.Get("Location"), "a POST's 400 carries Location, as API.md says")
		requireError(t, p.do(t, http.MethodGet, timerPath(id), nil), http.StatusNotFound, tc.name+": not stored")

		n := natsRequest(t, nc, "skyring.timer.create", with(body(s, "/cb/never"), "id", id+"-n", "callback", tc.callback))
		require.Equal(t, 400, n.Status, "%s over NATS: %+v", tc.name, n)
		require.Equal(t, r.Reason(), n.Error, "%s: HTTP and NATS give the same reason", tc.name)
		requireError(t, p.do(t, http.MethodGet, timerPath(id+"-n"), nil), http.StatusNotFound, tc.name+": not stored")

		r = p.do(t, http.MethodPut, timerPath(existing), with(body(s, "/cb/never"), "callback", tc.callback))
		requireError(t, r, http.StatusBadRequest, "PUT "+tc.name)
		require.Contains(t, r.Reason(), tc.field, "PUT %s", tc.name)
		n = natsRequest(t, nc, "skyring.timer.update", with(body(s, "/cb/never"), "id", existing, "callback", tc.callback))
		require.Equal(t, 400, n.Status, "update %s over NATS: %+v", tc.name, n)
		require.Equal(t, r.Reason(), n.Error, "update %s", tc.name)
	}
	require.Equal(t, before, p.getTimer(t, existing), "refused updates leave the timer as it was")

	// The README's callbacks (and the seed's lower-case methods) still work.
	for _, cb := range []map[string]any{
		{"transport": "http", "method": "post", "uri": "http://localhost:9000/hook"},
		{"transport": "http", "method": "put", "uri": "http://localhost:9000/orders/42/expire"},
		{"transport": "http", "method": "PATCH", "uri": s.URL("/cb/never")},
		{"transport": "nats", "method": "publish", "uri": "jobs.reminders"},
	} {
		p.createTimer(t, with(body(s, "/cb/never"), "callback", cb))
		n := natsRequest(t, nc, "skyring.timer.create", with(body(s, "/cb/never"), "callback", cb))
		require.Equal(t, 201, n.Status, "%v over NATS: %+v", cb, n)
	}
}

package main_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
)

type natsReply struct {
	ID     string          `json:"id"`
	Status int             `json:"status"`
	Error  string          `json:"error"`
	Timer  json.RawMessage `json:"timer"`
}

func natsRequest(t testing.TB, nc *nats.Conn, subject string, payload any) natsReply {
	t.Helper()
	b, err := json.Marshal(payload)
	require.NoError(t, err)
	m, err := nc.Request(subject, b, 10*time.Second)
	require.NoErrorf(t, err, "request on %s", subject)
	var r natsReply
	require.NoErrorf(t, json.Unmarshal(m.Data, &r), "reply %q", m.Data)
	return r
}

// TestNATSAPI drives the timer API over NATS (API.md section 4): create,
// get, update, cancel with replies, errors as status plus text, and a
// fire-and-forget create.
func TestNATSAPI(t *testing.T) {
	t.Parallel()
	s := newSink(t)
	p := startNode(t)
	nc, err := nats.Connect(p.NATSURL)
	require.NoError(t, err)
	t.Cleanup(nc.Close)

	r := natsRequest(t, nc, "skyring.timer.create", with(body(s, "/cb/never"), "id", "nats-1"))
	require.Equal(t, 201, r.Status, "%+v", r)
	require.Equal(t, "nats-1", r.ID)
	require.Equal(t, "nats-1", p.getTimer(t, "nats-1").ID, "visible over HTTP")

	r = natsRequest(t, nc, "skyring.timer.create", body(s, "/cb/never"))
	require.Equal(t, 201, r.Status, "%+v", r)
	require.Regexp(t, uuidRE, r.ID, "server-chosen id")

	r = natsRequest(t, nc, "skyring.timer.create", with(body(s, "/cb/never"), "id", "nats-1"))
	require.Equal(t, 409, r.Status, "%+v", r)
	require.NotEmpty(t, r.Error)
	r = natsRequest(t, nc, "skyring.timer.create", with(body(s, "/cb/never"), "timeout", 0))
	require.Equal(t, 400, r.Status, "%+v", r)
	require.NotEmpty(t, r.Error)
	r = natsRequest(t, nc, "skyring.timer.create", with(body(s, "/cb/never"), "id", "has space"))
	require.Equal(t, 400, r.Status, "%+v", r)

	r = natsRequest(t, nc, "skyring.timer.get", map[string]any{"id": "nats-1"})
	require.Equal(t, 200, r.Status, "%+v", r)
	var info timerInfo
	require.NoError(t, json.Unmarshal(r.Timer, &info))
	require.Equal(t, p.getTimer(t, "nats-1"), info, "get over NATS is GET over HTTP")

	path := s.Path("nats")
	r = natsRequest(t, nc, "skyring.timer.update", with(body(s, path), "id", "nats-1", "timeout", 100, "data", "via nats"))
	require.Equal(t, 200, r.Status, "%+v", r)
	a := s.waitPath(t, path, deliverWait)
	require.Equal(t, "via nats", string(a.Body))

	r = natsRequest(t, nc, "skyring.timer.cancel", map[string]any{"id": "nats-1"})
	require.Equal(t, 404, r.Status, "fired timer: %+v", r)
	// Its fate: delivered once the receiver's answer is stored (the callback
	// can arrive a moment before that).
	require.Eventually(t, func() bool {
		r = natsRequest(t, nc, "skyring.timer.get", map[string]any{"id": "nats-1"})
		return r.Status == 200 && json.Unmarshal(r.Timer, &info) == nil && info.State == "delivered"
	}, deliverWait, 5*time.Millisecond, "get of a delivered timer: %+v", r)
	require.Equal(t, 1, info.Attempts)

	// Fire and forget.
	ffPath := s.Path("nats-ff")
	b, _ := json.Marshal(with(body(s, ffPath), "id", "nats-ff", "timeout", 50))
	require.NoError(t, nc.Publish("skyring.timer.create", b))
	require.NoError(t, nc.Flush())
	a = s.waitPath(t, ffPath, deliverWait)
	require.Equal(t, "nats-ff", a.ID())

	// Cancel a pending one.
	r = natsRequest(t, nc, "skyring.timer.create", with(body(s, "/cb/never"), "id", "nats-2"))
	require.Equal(t, 201, r.Status)
	r = natsRequest(t, nc, "skyring.timer.cancel", map[string]any{"id": "nats-2"})
	require.Equal(t, 202, r.Status, "%+v", r)
	p.requireState(t, "nats-2", "cancelled", "cancelled over NATS")
	require.Zero(t, s.Count("/cb/never"))
}

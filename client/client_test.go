package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
)

// clientCase is one case run through both the HTTP and the NATS client
// against the same real node.
type clientCase struct {
	name string
	run  func(t *testing.T, b *bundle, c client.Client)
}

var clientCases = []clientCase{
	{"RoundTrip", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		id, err := c.Create(ctx, spec(nil))
		require.NoError(t, err)
		require.NoError(t, skyring.ValidateID(id))
		require.Len(t, id, 36, "a server-generated UUID")

		info, err := c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, id, info.ID)
		require.Equal(t, int64(60_000), info.Timeout)
		require.Equal(t, info.Created+60_000, info.Due)
		require.Equal(t, "null", string(info.Data))
		require.Equal(t, recCallback, info.Callback)
		require.Equal(t, b.node.ID(), info.Node)

		upd := client.TimerSpec{Timeout: 2 * time.Minute, Data: "new", Callback: client.Callback{Transport: recName, Method: "put", URI: "rec://other"}}
		require.NoError(t, c.Update(ctx, id, upd))
		info, err = c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, int64(120_000), info.Timeout)
		require.Equal(t, `"new"`, string(info.Data))
		require.Equal(t, upd.Callback, info.Callback)

		require.NoError(t, c.Cancel(ctx, id))
		// Kept with its fate; a cancelled timer is no longer pending.
		info, err = c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, skyring.StateNameCancelled, info.State)
		require.NotZero(t, info.FinishedAt)
		require.ErrorIs(t, c.Cancel(ctx, id), skyring.ErrTimerNotFound)
		require.ErrorIs(t, c.Update(ctx, id, upd), skyring.ErrTimerNotFound)
	}},
	{"ClientChosenID", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		want := uniqueID(t, "")
		s := spec(nil)
		s.ID = want
		id, err := c.Create(ctx, s)
		require.NoError(t, err)
		require.Equal(t, want, id)
		info, err := c.Get(ctx, want)
		require.NoError(t, err)
		require.Equal(t, want, info.ID)
		// Update may repeat the id in the spec.
		require.NoError(t, c.Update(ctx, want, s))
		require.NoError(t, c.Cancel(ctx, want))
	}},
	{"OddIDs", func(t *testing.T, b *bundle, c client.Client) {
		// Ids that need escaping in a URL path or could be taken for path
		// syntax: they must round-trip unchanged.
		ctx := context.Background()
		for _, suffix := range []string{".", "..", "%41", "%2F", "a?b#c", "x&y=z", `"q"`, "~!$'()*+,;:@[]{}|\\^`<>"} {
			want := uniqueID(t, "-") + suffix
			s := spec(nil)
			s.ID = want
			id, err := c.Create(ctx, s)
			require.NoError(t, err, "id %q", want)
			require.Equal(t, want, id)
			info, err := c.Get(ctx, want)
			require.NoError(t, err, "id %q", want)
			require.Equal(t, want, info.ID)
			require.NoError(t, c.Update(ctx, want, spec("u")), "id %q", want)
			require.NoError(t, c.Cancel(ctx, want), "id %q", want)
		}
		// The same ids, each alone (no prefix): "." and ".." are where a
		// path cleaner would bite.
		for _, want := range []string{".", ".."} {
			_ = c.Cancel(ctx, want) // the other client's case may hold it
			_, err := c.Get(ctx, want)
			require.ErrorIs(t, err, skyring.ErrTimerNotFound, "id %q", want)
		}
	}},
	{"ServerGeneratedIDCanBeUsed", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		id, err := c.Create(ctx, spec("x"))
		require.NoError(t, err)
		require.NoError(t, c.Cancel(ctx, id))
	}},
	{"Duplicate", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		s := spec("first")
		s.ID = uniqueID(t, "")
		_, err := c.Create(ctx, s)
		require.NoError(t, err)
		s.Data = "second"
		_, err = c.Create(ctx, s)
		require.ErrorIs(t, err, skyring.ErrTimerExists)
		info, err := c.Get(ctx, s.ID)
		require.NoError(t, err)
		require.Equal(t, `"first"`, string(info.Data), "a refused create changes nothing")
	}},
	{"UnknownID", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		id := uniqueID(t, "")
		_, err := c.Get(ctx, id)
		require.ErrorIs(t, err, skyring.ErrTimerNotFound)
		require.ErrorIs(t, c.Update(ctx, id, spec(nil)), skyring.ErrTimerNotFound)
		require.ErrorIs(t, c.Cancel(ctx, id), skyring.ErrTimerNotFound)
		require.NotErrorIs(t, err, skyring.ErrInvalid)
	}},
	{"UnknownTransport", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		s := spec(nil)
		s.Callback.Transport = "carrier-pigeon"
		_, err := c.Create(ctx, s)
		require.ErrorIs(t, err, skyring.ErrInvalid)
		require.ErrorIs(t, err, skyring.ErrUnknownTransport)
		var ve *skyring.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Contains(t, ve.Reason, "carrier-pigeon")
		require.Contains(t, ve.Reason, recName, "the reason lists the known transports")
		require.Equal(t, "callback.transport", ve.Field)

		// The same on update, and the timer is left as it was.
		s.Callback = recCallback
		s.ID = uniqueID(t, "")
		_, err = c.Create(ctx, s)
		require.NoError(t, err)
		bad := spec("changed")
		bad.Callback.Transport = "carrier-pigeon"
		require.ErrorIs(t, c.Update(ctx, s.ID, bad), skyring.ErrUnknownTransport)
		info, err := c.Get(ctx, s.ID)
		require.NoError(t, err)
		require.Equal(t, "null", string(info.Data))
	}},
	{"InvalidOnServer", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		for name, s := range map[string]client.TimerSpec{
			"timeout under 1ms":   {Timeout: 500 * time.Microsecond, Callback: recCallback},
			"negative timeout":    {Timeout: -time.Second, Callback: recCallback},
			"timeout over 2^31-1": {Timeout: 30 * 24 * time.Hour, Callback: recCallback},
			"at in the past":      {At: time.Now().Add(-time.Hour), Callback: recCallback},
			"number data":         {Timeout: time.Minute, Data: 42, Callback: recCallback},
			"array data":          {Timeout: time.Minute, Data: []string{"a"}, Callback: recCallback},
			"bool data":           {Timeout: time.Minute, Data: true, Callback: recCallback},
			"no callback":         {Timeout: time.Minute},
			"no method":           {Timeout: time.Minute, Callback: client.Callback{Transport: recName, URI: "x"}},
		} {
			_, err := c.Create(ctx, s)
			require.ErrorIs(t, err, skyring.ErrInvalid, name)
			var ve *skyring.ValidationError
			require.ErrorAs(t, err, &ve, name)
			require.NotEmpty(t, ve.Reason, name)
		}
	}},
	{"InvalidOnClient", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		both := spec(nil)
		both.At = time.Now().Add(time.Hour)
		neither := spec(nil)
		neither.Timeout = 0
		badID := spec(nil)
		badID.ID = "has space"
		for name, s := range map[string]client.TimerSpec{"both": both, "neither": neither, "bad id": badID} {
			_, err := c.Create(ctx, s)
			var ve *skyring.ValidationError
			require.ErrorAs(t, err, &ve, name)
			require.ErrorIs(t, err, skyring.ErrInvalid, name)
		}
		for _, id := range []string{"", "a/b", "é", string(make([]byte, skyring.MaxIDLen+1))} {
			_, err := c.Get(ctx, id)
			require.ErrorIs(t, err, skyring.ErrInvalid, "get %q", id)
			require.ErrorIs(t, c.Cancel(ctx, id), skyring.ErrInvalid, "cancel %q", id)
			require.ErrorIs(t, c.Update(ctx, id, spec(nil)), skyring.ErrInvalid, "update %q", id)
		}
		other := spec(nil)
		other.ID = "other"
		require.ErrorIs(t, c.Update(ctx, "this", other), skyring.ErrInvalid, "spec.ID differs from id")
	}},
	{"Data", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		type payload struct {
			Order int    `json:"order"`
			Note  string `json:"note,omitempty"`
		}
		const tricky = "héllo <b>&amp;</b> \"quoted\" \\ \u2028 \t"
		for i, tc := range []struct {
			name string
			data any
			want string // Info.Data, as JSON
		}{
			{"nil", nil, "null"},
			{"string", "hello", `"hello"`},
			{"empty string", "", `""`},
			{"tricky string", tricky, ""},
			{"bytes", []byte("raw <bytes>"), `"raw <bytes>"`},
			{"map", map[string]any{"a": 1, "b": []any{"x", true}}, `{"a":1,"b":["x",true]}`},
			{"struct", payload{Order: 42, Note: "<n>"}, `{"order":42,"note":"<n>"}`},
			{"pointer to struct", &payload{Order: 7}, `{"order":7}`},
			{"raw object", json.RawMessage(` { "k" : [1, 2] } `), `{"k":[1,2]}`},
			{"raw string", json.RawMessage(`"verbatim"`), `"verbatim"`},
			{"raw null", json.RawMessage(`null`), "null"},
			{"nil pointer", (*payload)(nil), "null"},
		} {
			s := spec(tc.data)
			s.ID = uniqueID(t, fmt.Sprintf("-%d", i))
			id, err := c.Create(ctx, s)
			require.NoError(t, err, tc.name)
			info, err := c.Get(ctx, id)
			require.NoError(t, err, tc.name)
			// Info.Data is the stored value as the server re-encodes it
			// (encoding/json, so with "<" as \u003c): compare values.
			if tc.name == "tricky string" {
				var got string
				require.NoError(t, json.Unmarshal(info.Data, &got))
				require.Equal(t, tricky, got)
			} else {
				require.JSONEq(t, tc.want, string(info.Data), tc.name)
			}

			// Update carries data the same way.
			require.NoError(t, c.Update(ctx, id, spec(tc.data)), tc.name)
			again, err := c.Get(ctx, id)
			require.NoError(t, err, tc.name)
			require.Equal(t, string(info.Data), string(again.Data), tc.name)
		}
		_, err := c.Create(ctx, spec(json.RawMessage(`{"broken"`)))
		require.ErrorIs(t, err, skyring.ErrInvalid)
		_, err = c.Create(ctx, spec(func() {}))
		require.ErrorIs(t, err, skyring.ErrInvalid)
	}},
	{"At", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		at := time.Now().Add(time.Hour).Truncate(time.Millisecond).Add(123 * time.Microsecond)
		id, err := c.Create(ctx, client.TimerSpec{At: at, Callback: recCallback})
		require.NoError(t, err)
		info, err := c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, at.UnixMilli(), info.Due)

		// Update from a relative timeout to an absolute time, in another
		// zone: the instant is what counts.
		at2 := at.Add(time.Minute).In(time.FixedZone("X", -7*3600))
		require.NoError(t, c.Update(ctx, id, client.TimerSpec{At: at2, Callback: recCallback}))
		info, err = c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, at2.UnixMilli(), info.Due)
	}},
	{"TimeoutRoundedDown", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		id, err := c.Create(ctx, client.TimerSpec{Timeout: time.Minute + 999*time.Microsecond, Callback: recCallback})
		require.NoError(t, err)
		info, err := c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, int64(60_000), info.Timeout)
	}},
	{"Delivery", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		s := client.TimerSpec{
			ID:       uniqueID(t, ""),
			Timeout:  50 * time.Millisecond,
			Data:     map[string]any{"hello": "world"},
			Callback: client.Callback{Transport: recName, Method: "post", URI: "rec://delivery"},
		}
		start := time.Now()
		id, err := c.Create(ctx, s)
		require.NoError(t, err)
		got := waitDelivered(t, b.rec, id)
		require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "never early")
		body, isJSON := got.Body()
		require.True(t, isJSON)
		require.JSONEq(t, `{"hello":"world"}`, string(body))
		require.Equal(t, s.Callback, got.Callback)

		// Fired: delivered, kept with its fate, no longer pending.
		require.Eventually(t, func() bool {
			info, err := c.Get(ctx, id)
			return err == nil && info.State == skyring.StateNameDelivered
		}, 10*time.Second, time.Millisecond)
		require.ErrorIs(t, c.Cancel(ctx, id), skyring.ErrTimerNotFound)
	}},
	{"DeliveryStringData", func(t *testing.T, b *bundle, c client.Client) {
		ctx := context.Background()
		s := client.TimerSpec{ID: uniqueID(t, ""), Timeout: time.Millisecond, Data: "a <verbatim> & string", Callback: recCallback}
		_, err := c.Create(ctx, s)
		require.NoError(t, err)
		got := waitDelivered(t, b.rec, s.ID)
		body, isJSON := got.Body()
		require.False(t, isJSON)
		require.Equal(t, "a <verbatim> & string", string(body))
	}},
	{"ContextCancelled", func(t *testing.T, b *bundle, c client.Client) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Create(ctx, spec(nil))
		require.ErrorIs(t, err, context.Canceled)
		_, err = c.Get(ctx, "x")
		require.ErrorIs(t, err, context.Canceled)
		require.ErrorIs(t, c.Update(ctx, "x", spec(nil)), context.Canceled)
		require.ErrorIs(t, c.Cancel(ctx, "x"), context.Canceled)
	}},
}

// TestClients runs every case through the HTTP and the NATS client against
// one real node.
func TestClients(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, nc := range b.clients(t) {
		t.Run(nc.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range clientCases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, b, nc.c)
				})
			}
		})
	}
}

// TestCrossClient: a timer created through one API is seen and managed
// through the other.
func TestCrossClient(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	hc, nc := b.httpClient(t), b.natsClient(t)

	id, err := hc.Create(ctx, spec(map[string]int{"n": 1}))
	require.NoError(t, err)
	viaHTTP, err := hc.Get(ctx, id)
	require.NoError(t, err)
	viaNATS, err := nc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, viaHTTP, viaNATS)

	require.NoError(t, nc.Update(ctx, id, spec("via nats")))
	info, err := hc.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, `"via nats"`, string(info.Data))
	require.NoError(t, nc.Cancel(ctx, id))
	require.ErrorIs(t, hc.Cancel(ctx, id), skyring.ErrTimerNotFound)
}

func TestPublish(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	c := b.natsClient(t)

	id, err := c.Publish(spec("fire and forget"))
	require.NoError(t, err)
	require.NoError(t, skyring.ValidateID(id))
	chosen := spec(nil)
	chosen.ID = "published-with-an-id"
	id2, err := c.Publish(chosen)
	require.NoError(t, err)
	require.Equal(t, chosen.ID, id2)
	require.NoError(t, b.nc.Flush())

	for _, want := range []string{id, id2} {
		var info skyring.Info
		require.Eventually(t, func() bool {
			info, err = c.Get(ctx, want)
			return err == nil
		}, 10*time.Second, time.Millisecond, "published timer %q never appeared: %v", want, err)
		require.Equal(t, want, info.ID)
		require.Equal(t, int64(60_000), info.Timeout)
	}
	info, err := c.Get(ctx, id)
	require.NoError(t, err)
	require.Equal(t, `"fire and forget"`, string(info.Data))

	// A fire-and-forget create that delivers.
	fast := client.TimerSpec{Timeout: time.Millisecond, Data: "fast", Callback: recCallback}
	id3, err := c.Publish(fast)
	require.NoError(t, err)
	got := waitDelivered(t, b.rec, id3)
	s, ok := got.DataString()
	require.True(t, ok)
	require.Equal(t, "fast", s)

	// Only what the client can check is reported.
	_, err = c.Publish(client.TimerSpec{Callback: recCallback})
	require.ErrorIs(t, err, skyring.ErrInvalid)
}

func TestNATSOptions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()

	// The default prefix has no responder on this node (it uses testPrefix).
	def, err := client.NewNATS(b.nc)
	require.NoError(t, err)
	_, err = def.Get(ctx, "x")
	require.ErrorIs(t, err, nats.ErrNoResponders)

	// A responder that never answers: WithTimeout bounds the wait.
	sub, err := b.nc.Subscribe("silent.timer.get", func(*nats.Msg) {})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	require.NoError(t, b.nc.Flush())
	silent, err := client.NewNATS(b.nc, client.WithPrefix("silent"), client.WithTimeout(20*time.Millisecond))
	require.NoError(t, err)
	_, err = silent.Get(ctx, "x")
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// A reply that is not the API's shape.
	sub2, err := b.nc.Subscribe("odd.timer.get", func(m *nats.Msg) { _ = m.Respond([]byte(`{"hello":1}`)) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub2.Unsubscribe() })
	sub3, err := b.nc.Subscribe("odd.timer.cancel", func(m *nats.Msg) { _ = m.Respond([]byte(`{"status":418,"error":"teapot"}`)) })
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub3.Unsubscribe() })
	require.NoError(t, b.nc.Flush())
	odd, err := client.NewNATS(b.nc, client.WithPrefix("odd"))
	require.NoError(t, err)
	_, err = odd.Get(ctx, "x")
	require.ErrorContains(t, err, "no status")
	var se *skyring.StatusError
	require.ErrorAs(t, odd.Cancel(ctx, "x"), &se)
	require.Equal(t, 418, se.Status)
	require.Equal(t, "teapot", se.Reason)

	for _, bad := range []string{"", "a b", "a.*", ">", ".a", "a.", "a..b"} {
		_, err := client.NewNATS(b.nc, client.WithPrefix(bad))
		require.Error(t, err, "prefix %q", bad)
	}
	_, err = client.NewNATS(b.nc, client.WithTimeout(0))
	require.Error(t, err)
	_, err = client.NewNATS(nil)
	require.Error(t, err)
}

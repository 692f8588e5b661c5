package client_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
)

// TestHTTPCluster: Cluster shows the node asked, its members with their
// timer counts, and the ring version.
func TestHTTPCluster(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.httpClient(t)
	ctx := context.Background()
	for range 2 {
		_, err := c.Create(ctx, spec("counted"))
		require.NoError(t, err)
	}
	cl, err := c.Cluster(ctx)
	require.NoError(t, err)
	require.Equal(t, b.node.ID(), cl.Node.ID)
	require.Equal(t, 2, cl.Node.Timers, "this node's own count is fresh")
	require.Len(t, cl.Members, 1)
	require.Equal(t, b.node.ID(), cl.Members[0].ID)
	require.NotZero(t, cl.RingVersion)
}

// TestListFiltersSent: the filters of a ListQuery reach the server as the
// query parameters prefix, due_after, due_before and host over HTTP, and
// as the list payload's fields of the same names over NATS; empty ones
// are left out.
func TestListFiltersSent(t *testing.T) {
	t.Parallel()
	q := skyring.ListQuery{State: "failed", Limit: 5, After: "a", Prefix: "lg-", DueAfter: "1700000000000", DueBefore: "2030-01-01T00:00:00Z", Host: "example.com:8080"}
	want := map[string]string{"state": "failed", "limit": "5", "cursor": skyring.EncodeCursor("a"),
		"prefix": "lg-", "due_after": "1700000000000", "due_before": "2030-01-01T00:00:00Z", "host": "example.com:8080"}

	got := make(chan url.Values, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Query()
		_, _ = w.Write([]byte(`{"timers":[]}`))
	}))
	t.Cleanup(srv.Close)
	hc, err := client.NewHTTP(srv.URL, client.WithHTTPClient(srv.Client()))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = hc.List(ctx, q)
	require.NoError(t, err)
	params := <-got
	for k, v := range want {
		require.Equal(t, v, params.Get(k), "query parameter %s", k)
	}
	_, err = hc.List(ctx, skyring.ListQuery{})
	require.NoError(t, err)
	require.Empty(t, <-got, "no filters, no parameters")

	b := setup(t)
	payloads := make(chan map[string]any, 1)
	sub, err := b.nc.Subscribe("filters.timer.list", func(m *nats.Msg) {
		var p map[string]any
		_ = json.Unmarshal(m.Data, &p)
		payloads <- p
		_ = m.Respond([]byte(`{"status":200,"timers":[]}`))
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	nc, err := client.NewNATS(b.nc, client.WithPrefix("filters"))
	require.NoError(t, err)
	_, err = nc.List(ctx, q)
	require.NoError(t, err)
	p := <-payloads
	for k, v := range want {
		if k == "limit" {
			require.EqualValues(t, 5, p[k])
			continue
		}
		require.Equal(t, v, p[k], "payload field %s", k)
	}
}

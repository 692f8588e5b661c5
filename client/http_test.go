package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
)

// TestHTTPBehindPrefix: a node mounted under a path by a reverse proxy. The
// node's Location header does not know the prefix; the client reads the id
// from it all the same.
func TestHTTPBehindPrefix(t *testing.T) {
	t.Parallel()
	b := setup(t)
	target, err := url.Parse(b.baseURL())
	require.NoError(t, err)
	proxy := httputil.NewSingleHostReverseProxy(target)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	proxy.Transport = tr
	mux := http.NewServeMux()
	mux.Handle("/skyring/", http.StripPrefix("/skyring", proxy))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(tr.CloseIdleConnections)

	ctx := context.Background()
	for _, base := range []string{srv.URL + "/skyring", srv.URL + "/skyring/"} {
		c, err := client.NewHTTP(base, client.WithHTTPClient(srv.Client()))
		require.NoError(t, err)
		id, err := c.Create(ctx, spec("behind a proxy"))
		require.NoError(t, err)
		info, err := c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, id, info.ID)
		require.NoError(t, c.Cancel(ctx, id))
		info, err = c.Get(ctx, id)
		require.NoError(t, err)
		require.Equal(t, skyring.StateNameCancelled, info.State, "kept for the retention period")
		require.ErrorIs(t, c.Cancel(ctx, id), skyring.ErrTimerNotFound)
	}
}

// TestHTTPStatuses: answers a Skyring node gives rarely, or a proxy gives
// instead of it.
func TestHTTPStatuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		status  int
		reason  string
		check   func(t *testing.T, err error)
		headers map[string]string
	}{
		{"no owner", 503, "No ring member can take the timer", func(t *testing.T, err error) {
			require.ErrorIs(t, err, skyring.ErrNoOwner)
		}, nil},
		{"closing", 503, "Node is shutting down", func(t *testing.T, err error) {
			require.ErrorIs(t, err, skyring.ErrClosed)
		}, nil},
		{"too large", 413, "Request body too large", func(t *testing.T, err error) {
			require.ErrorIs(t, err, skyring.ErrBodyTooLarge)
		}, nil},
		{"proxy without reason", 502, "", func(t *testing.T, err error) {
			var se *skyring.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, 502, se.Status)
			require.Equal(t, "Bad Gateway", se.Reason)
		}, nil},
		{"internal", 500, "Internal error: disk full", func(t *testing.T, err error) {
			var se *skyring.StatusError
			require.ErrorAs(t, err, &se)
			require.Equal(t, "Internal error: disk full", se.Reason)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.reason != "" {
					w.Header().Set("X-Skyring-Reason", tc.reason)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte("<html>an error page</html>"))
			}))
			t.Cleanup(srv.Close)
			c, err := client.NewHTTP(srv.URL, client.WithHTTPClient(srv.Client()))
			require.NoError(t, err)
			ctx := context.Background()
			_, err = c.Create(ctx, spec(nil))
			tc.check(t, err)
			_, err = c.Get(ctx, "x")
			tc.check(t, err)
			tc.check(t, c.Update(ctx, "x", spec(nil)))
			tc.check(t, c.Cancel(ctx, "x"))
		})
	}
}

// TestHTTPCreateWithoutLocation: a 2xx create that names no timer is an
// error, not an empty id.
func TestHTTPCreateWithoutLocation(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(srv.Close)
	c, err := client.NewHTTP(srv.URL, client.WithHTTPClient(srv.Client()))
	require.NoError(t, err)
	id, err := c.Create(context.Background(), spec(nil))
	require.ErrorContains(t, err, "no Location")
	require.Empty(t, id)
}

func TestHTTPUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	hc := srv.Client()
	srv.Close() // nothing listens there any more
	c, err := client.NewHTTP(srv.URL, client.WithHTTPClient(hc))
	require.NoError(t, err)
	_, err = c.Get(context.Background(), "x")
	require.Error(t, err)
	require.NotErrorIs(t, err, skyring.ErrTimerNotFound)
	var ue *url.Error
	require.ErrorAs(t, err, &ue)
}

func TestNewHTTP(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"", "127.0.0.1:3000", "ftp://host", "http://", "http://host/?q=1", "http://host/#f", "http://[::1"} {
		_, err := client.NewHTTP(bad)
		require.Error(t, err, "base URL %q", bad)
	}
	_, err := client.NewHTTP("http://127.0.0.1:3000", client.WithHTTPClient(nil))
	require.Error(t, err)
	_, err = client.NewHTTP("https://skyring.example.com/api/")
	require.NoError(t, err)
}

package httptransport_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/httptransport"
	"github.com/skyring/skyring/transports/transportstest"
)

func newTransport(t *testing.T, opts httptransport.Options) *httptransport.Transport {
	t.Helper()
	tr := httptransport.New(opts)
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func timer(id, method, uri, data string) *skyring.Timer {
	return transportstest.NewTimer(id, skyring.Callback{Transport: "http", Method: method, URI: uri}, data)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), transportstest.WaitTimeout)
	t.Cleanup(cancel)
	return c
}

func TestConformance(t *testing.T) {
	t.Parallel()
	transportstest.Exercise(t, transportstest.Harness{
		New: func(t *testing.T) transports.Transport {
			return newTransport(t, httptransport.Options{})
		},
		Endpoint: func(t *testing.T, b transportstest.Behaviour) (skyring.Callback, *transportstest.Sink) {
			s := newServer(t)
			cb := skyring.Callback{Transport: "http", Method: "post"}
			switch b {
			case transportstest.Succeed:
				cb.URI = s.url("/ok")
			case transportstest.Fail:
				cb.URI = s.url("/status/500")
			case transportstest.Hang:
				cb.URI = s.url("/hang")
			}
			return cb, s.Sink
		},
		ClosedAfterShutdown: true,
		Invalid: []skyring.Callback{
			{Transport: "http", Method: "fetch", URI: "http://127.0.0.1:1/x"},
			{Transport: "http", Method: "post", URI: "not a url"},
			{Transport: "http", Method: "post", URI: "ftp://127.0.0.1/x"},
		},
	})
}

func TestName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "http", httptransport.New(httptransport.Options{}).Name())
}

// TestMethods: every accepted method, in any case, arrives as that method
// with the string data as its body, GET and HEAD included.
func TestMethods(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tr := newTransport(t, httptransport.Options{})
	cases := map[string]string{
		"post": "POST", "PUT": "PUT", "Patch": "PATCH", "delete": "DELETE",
		"GET": "GET", "get": "GET", "oPtIoNs": "OPTIONS", "head": "HEAD", "HEAD": "HEAD",
	}
	for in, want := range cases {
		t.Run(in, func(t *testing.T) {
			id := "m-" + in
			require.NoError(t, tr.Execute(ctx(t), timer(id, in, s.url("/ok"), `"payload for `+in+`"`)))
			r := findRequest(t, s, id)
			require.Equal(t, want, r.Method)
			require.Equal(t, "payload for "+in, r.Body, "string data arrives verbatim")
			require.Equal(t, int64(len("payload for "+in)), r.ContentLength)
			require.Equal(t, "text/plain; charset=utf-8", r.Header.Get("Content-Type"))
		})
	}
}

func findRequest(t *testing.T, s *server, id string) request {
	t.Helper()
	var found []request
	for _, r := range s.requests() {
		if r.Header.Get("x-skyring-timer-id") == id {
			found = append(found, r)
		}
	}
	require.Len(t, found, 1, "timer %s must arrive exactly once", id)
	return found[0]
}

func TestBody(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tr := newTransport(t, httptransport.Options{})
	for _, tc := range []struct {
		name, method, data, body, contentType string
	}{
		{"string", "post", `"a \"quoted\" string\nwith é"`, "a \"quoted\" string\nwith é", "text/plain; charset=utf-8"},
		{"json-looking string", "put", `"{\"not\":\"an object\"}"`, `{"not":"an object"}`, "text/plain; charset=utf-8"},
		{"empty string", "post", `""`, "", ""},
		{"object", "post", `{"x":1,"y":{"z":[1,2]}}`, `{"x":1,"y":{"z":[1,2]}}`, "application/json"},
		{"object on get", "get", `{"q":"v"}`, `{"q":"v"}`, "application/json"},
		{"object on head", "head", `{"q":"v"}`, `{"q":"v"}`, "application/json"},
		{"no data post", "post", "", "", ""},
		{"no data get", "get", "", "", ""},
		{"no data head", "head", "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "b-" + strings.ReplaceAll(tc.name, " ", "-")
			require.NoError(t, tr.Execute(ctx(t), timer(id, tc.method, s.url("/ok"), tc.data)))
			r := findRequest(t, s, id)
			require.Equal(t, tc.body, r.Body)
			require.Equal(t, int64(len(tc.body)), r.ContentLength)
			require.Equal(t, tc.contentType, r.Header.Get("Content-Type"))
		})
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	s := newServer(t)

	tr := newTransport(t, httptransport.Options{Version: "1.2.3"})
	tm := timer("h-1", "post", s.url("/ok"), `"x"`)
	tm.Fence = 3<<20 | 7
	require.NoError(t, tr.Execute(ctx(t), tm))
	r := findRequest(t, s, "h-1")
	require.Equal(t, []string{"3145735"}, r.Header.Values("x-skyring-fence"))
	require.Equal(t, "skyring/1.2.3", r.Header.Get("User-Agent"))
	require.Equal(t, []string{"h-1"}, r.Header.Values("x-skyring-timer-id"))
	require.Equal(t, []string{"1"}, r.Header.Values("x-skyring-attempt"))
	require.Empty(t, r.Header.Get("Accept-Encoding"), "the answer is discarded, so no gzip is asked for")

	def := newTransport(t, httptransport.Options{})
	require.NoError(t, def.Execute(ctx(t), timer("h-2", "post", s.url("/ok"), "")))
	require.Equal(t, "skyring/dev", findRequest(t, s, "h-2").Header.Get("User-Agent"))

	ua := newTransport(t, httptransport.Options{Version: "9", UserAgent: "custom/1"})
	require.NoError(t, ua.Execute(ctx(t), timer("h-3", "post", s.url("/ok"), "")))
	require.Equal(t, "custom/1", findRequest(t, s, "h-3").Header.Get("User-Agent"))
}

func TestStatus(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tr := newTransport(t, httptransport.Options{})
	for _, code := range []int{200, 201, 202, 204, 299} {
		require.NoError(t, tr.Execute(ctx(t), timer(fmt.Sprint("s-", code), "post", s.url(fmt.Sprint("/status/", code)), "")), "status %d", code)
	}
	for _, code := range []int{300, 304, 400, 404, 408, 410, 422, 429, 499, 500, 502, 503} {
		err := tr.Execute(ctx(t), timer(fmt.Sprint("s-", code), "post", s.url(fmt.Sprint("/status/", code)), ""))
		require.ErrorIs(t, err, httptransport.ErrStatus, "status %d", code)
		var se *httptransport.StatusError
		require.ErrorAs(t, err, &se)
		require.Equal(t, code, se.Code)
		status, ok := transports.Status(err)
		require.True(t, ok)
		require.Equal(t, code, status, "what the node stores as last_status")
		// A 4xx is final, except 408 and 429; the rest are retried.
		if code >= 400 && code <= 499 && code != 408 && code != 429 {
			require.ErrorIs(t, err, transports.ErrPermanent, "status %d", code)
		} else {
			require.NotErrorIs(t, err, transports.ErrPermanent, "status %d", code)
		}
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tr := newTransport(t, httptransport.Options{})
	err := tr.Execute(ctx(t), timer("r-1", "post", s.url("/redirect"), `"x"`))
	var se *httptransport.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, http.StatusFound, se.Code)
	require.Zero(t, s.Sink.Len(), "the redirect target must not be called")
	require.Len(t, s.requests(), 1)
}

func TestBadMethod(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tr := newTransport(t, httptransport.Options{})
	for _, m := range []string{"trace", "CONNECT", "", "publish", "get ", "PoSt\n", "FETCH"} {
		err := tr.Execute(ctx(t), timer("bm", m, s.url("/ok"), `"x"`))
		require.ErrorIs(t, err, httptransport.ErrBadMethod, "method %q", m)
		require.ErrorIs(t, err, transports.ErrPermanent, "method %q", m)
	}
	require.Empty(t, s.requests(), "a bad method sends nothing")
}

func TestBadURI(t *testing.T) {
	t.Parallel()
	tr := newTransport(t, httptransport.Options{})
	for _, u := range []string{"not a url", "ftp://example.com/x", "/relative/path", "http://", "://x", "mailto:a@b.c"} {
		err := tr.Execute(ctx(t), timer("bu", "post", u, `"x"`))
		require.ErrorIs(t, err, httptransport.ErrBadURI, "uri %q", u)
		require.ErrorIs(t, err, transports.ErrPermanent, "uri %q", u)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	s := newServer(t)

	t.Run("Options.Timeout", func(t *testing.T) {
		t.Parallel()
		tr := newTransport(t, httptransport.Options{Timeout: 100 * time.Millisecond})
		err := tr.Execute(context.Background(), timer("t-opt", "post", s.url("/hang"), ""))
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.NotErrorIs(t, err, transports.ErrPermanent)
	})
	t.Run("ctx deadline earlier than Options.Timeout", func(t *testing.T) {
		t.Parallel()
		tr := newTransport(t, httptransport.Options{Timeout: time.Hour})
		c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := tr.Execute(c, timer("t-ctx", "post", s.url("/hang"), ""))
		require.ErrorIs(t, err, context.DeadlineExceeded)
	})
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close()) // nothing listens there now
	tr := newTransport(t, httptransport.Options{})
	err = tr.Execute(ctx(t), timer("n-1", "post", "http://"+addr+"/ok", `"x"`))
	require.Error(t, err)
	require.NotErrorIs(t, err, httptransport.ErrStatus)
	require.NotErrorIs(t, err, transports.ErrPermanent)
	var opErr *net.OpError
	require.ErrorAs(t, err, &opErr)
}

// TestConnectionReuse: sequential deliveries share a keep-alive connection,
// also when the answers carry a body (drained before close). Without reuse
// the 50 deliveries would open 50 connections (25 if bodies were not
// drained). net/http may still drop a connection whose request write it has
// not seen acknowledged within 50 ms of the answer (persistConn.wroteRequest),
// which a loaded machine running -race can hit, hence "a few", not "one".
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tr := newTransport(t, httptransport.Options{})
	for i := range 50 {
		path := "/ok"
		if i%2 == 1 {
			path = "/big"
		}
		require.NoError(t, tr.Execute(ctx(t), timer(fmt.Sprint("k-", i), "post", s.url(path), `"x"`)))
	}
	opened, _ := s.connCounts()
	require.LessOrEqual(t, opened, 3)
	t.Logf("50 sequential deliveries over %d connection(s)", opened)
}

// dialCounter wraps dialing to count, on the client side, the connections
// the transport holds open at once.
type dialCounter struct {
	mu        sync.Mutex
	live, max int
	dials     int
	dialer    net.Dialer
}

func (d *dialCounter) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := d.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.dials++
	d.live++
	d.max = max(d.max, d.live)
	d.mu.Unlock()
	return &countedConn{Conn: c, d: d}, nil
}

func (d *dialCounter) counts() (dials, maxLive int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials, d.max
}

type countedConn struct {
	net.Conn
	d    *dialCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.d.mu.Lock()
		c.d.live--
		c.d.mu.Unlock()
	})
	return c.Conn.Close()
}

// TestBurstBoundedConnections: 2,000 deliveries started at once to one host
// never hold more than MaxConnsPerHost connections open, and all arrive.
func TestBurstBoundedConnections(t *testing.T) {
	t.Parallel()
	const n, maxConns = 2000, 16
	s := newServer(t)
	dc := &dialCounter{}
	tr := newTransport(t, httptransport.Options{MaxConnsPerHost: maxConns, DialContext: dc.DialContext})
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = tr.Execute(ctx(t), timer(fmt.Sprint("burst-", i), "post", s.url("/ok"), fmt.Sprintf(`"%d"`, i)))
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, errors.Join(errs...))
	require.Equal(t, n, s.Sink.Len())
	dials, maxLive := dc.counts()
	require.LessOrEqual(t, maxLive, maxConns)
	require.Positive(t, maxLive)
	// Every connection the server sees came through the dialer.
	s.waitConns(t, func(opened, _ int) bool { return opened == dials })
	t.Logf("%d deliveries: %d dials, at most %d connections open at once", n, dials, maxLive)
}

func TestShutdownClosesIdleConnections(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	tr := httptransport.New(httptransport.Options{})
	for i := range 4 {
		require.NoError(t, tr.Execute(ctx(t), timer(fmt.Sprint("sd-", i), "post", s.url("/ok"), "")))
	}
	opened, _ := s.connCounts()
	require.Positive(t, opened)

	require.NoError(t, tr.Shutdown(context.Background()))
	s.waitConns(t, func(o, c int) bool { return c == o })

	err := tr.Execute(ctx(t), timer("sd-after", "post", s.url("/ok"), ""))
	require.ErrorIs(t, err, skyring.ErrClosed)
	require.NoError(t, tr.Shutdown(context.Background()), "Shutdown is idempotent")
}

// TestCustomClient: Options.Client is used for deliveries and left alone by
// Shutdown.
func TestCustomClient(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	rt := &countingRT{next: s.Client().Transport}
	tr := httptransport.New(httptransport.Options{Client: &http.Client{Transport: rt}})
	require.NoError(t, tr.Execute(ctx(t), timer("cc", "post", s.url("/ok"), `"x"`)))
	require.Equal(t, 1, rt.count())
	require.NoError(t, tr.Shutdown(context.Background()))
}

type countingRT struct {
	mu   sync.Mutex
	n    int
	next http.RoundTripper
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.n++
	c.mu.Unlock()
	return c.next.RoundTrip(r)
}

func (c *countingRT) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func TestFactory(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	cat := transports.NewCatalog()
	require.NoError(t, cat.Add(httptransport.Name, httptransport.Factory))
	build := func(deps transports.Deps) transports.Transport {
		t.Helper()
		reg, err := cat.Build([]string{"http"}, deps)
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Shutdown(context.Background()) })
		tr, err := reg.Lookup("http")
		require.NoError(t, err)
		return tr
	}

	// deps.Version reached the transport (with a deps.Timeout no
	// delivery to the test server outlasts, even on a slow machine).
	tr := build(transports.Deps{Version: "4.5.6", Timeout: time.Minute})
	require.NoError(t, tr.Execute(ctx(t), timer("f-1", "post", s.url("/ok"), "")))
	require.Equal(t, "skyring/4.5.6", findRequest(t, s, "f-1").Header.Get("User-Agent"))
	// deps.Timeout reached the transport: a delivery that hangs ends at it.
	tr = build(transports.Deps{Version: "4.5.6", Timeout: 100 * time.Millisecond})
	err := tr.Execute(context.Background(), timer("f-2", "post", s.url("/hang"), ""))
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// NewFactory: explicit options win over deps.
	f := httptransport.NewFactory(httptransport.Options{Version: "explicit"})
	tr2, err := f(transports.Deps{Version: "ignored"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr2.(transports.Shutdowner).Shutdown(context.Background()) })
	require.NoError(t, tr2.Execute(ctx(t), timer("f-3", "post", s.url("/ok"), "")))
	require.Equal(t, "skyring/explicit", findRequest(t, s, "f-3").Header.Get("User-Agent"))
}

func TestMethodFunc(t *testing.T) {
	t.Parallel()
	m, err := httptransport.Method("dElEtE")
	require.NoError(t, err)
	require.Equal(t, http.MethodDelete, m)
	_, err = httptransport.Method("trace")
	require.ErrorIs(t, err, httptransport.ErrBadMethod)
}

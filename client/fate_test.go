package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/client"
	skyhttp "github.com/skyring/skyring/http"
	"github.com/skyring/skyring/ring"
)

// These tests run List, Retry and ListAll through both clients against the
// real HTTP handler and the real NATS API of package bus, in front of
// fateService, a double of the node's List and Retry: they exercise the
// client, the edges and the wire, whatever the node does. The tests
// against a real node are in fate_node_test.go.

// fateService is an in-memory node behind the edges: timers are Infos
// (with a state), List pages through them in id order as the node does,
// Retry re-arms the failed ones. maxPage, when set, makes pages shorter
// than their limit, as a node's may be. It implements skyhttp.Service and
// bus.Handler.
type fateService struct {
	mu      sync.Mutex
	timers  map[string]skyring.Info
	maxPage int
	lists   []skyring.ListQuery
	calls   int
}

var (
	_ skyhttp.Service = (*fateService)(nil)
	_ bus.Handler     = (*fateService)(nil)
)

func newFateService() *fateService {
	return &fateService{timers: map[string]skyring.Info{}}
}

func (s *fateService) add(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	info := skyring.Info{ID: id, Data: []byte("null"), Callback: recCallback, Node: "fate-node", State: state}
	if state == skyring.StateNameFailed {
		info.Attempts, info.LastError, info.LastStatus = 3, "receiver answered 503", 503
	}
	s.timers[id] = info
}

func (s *fateService) state(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.timers[id].State
}

func (s *fateService) queries() []skyring.ListQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lists)
}

func (s *fateService) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *fateService) Create(context.Context, *skyring.Timer) error { return errors.New("not here") }
func (s *fateService) Update(context.Context, *skyring.Timer) error { return errors.New("not here") }
func (s *fateService) Cancel(context.Context, string) error         { return errors.New("not here") }

func (s *fateService) Get(_ context.Context, id string) (skyring.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	info, ok := s.timers[id]
	if !ok {
		return info, skyring.ErrTimerNotFound
	}
	return info, nil
}

func (s *fateService) List(_ context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	s.lists = append(s.lists, q)
	var ids []string
	for id, info := range s.timers {
		if id > q.After && (q.State == "" || info.State == q.State) && strings.HasPrefix(id, q.Prefix) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	limit := q.Limit
	if s.maxPage > 0 && s.maxPage < limit {
		limit = s.maxPage
	}
	var page skyring.ListPage
	for i, id := range ids {
		if i == limit {
			page.Cursor = skyring.EncodeCursor(ids[i-1])
			break
		}
		page.Timers = append(page.Timers, s.timers[id])
	}
	return page, nil
}

func (s *fateService) CancelMatching(context.Context, skyring.Filter) (int, error) {
	return 0, errors.New("not here")
}

func (s *fateService) Retry(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	info, ok := s.timers[id]
	switch {
	case !ok:
		return skyring.ErrTimerNotFound
	case info.State != skyring.StateNameFailed:
		return skyring.ErrNotFailed
	}
	info.State, info.Attempts, info.LastError, info.LastStatus = skyring.StateNamePending, 0, "", 0
	s.timers[id] = info
	return nil
}

func (s *fateService) HandleRelay(context.Context, bus.Command) bus.Reply {
	return bus.Reply{Status: http.StatusBadRequest, Reason: "no relays here"}
}
func (s *fateService) MemberSeen(ring.Member) bool { return false }
func (s *fateService) MemberLeft(string)           {}
func (s *fateService) LocalMember() ring.Member    { return ring.Member{HTTPAddr: "127.0.0.1:0"} }

// fateClients serves svc over HTTP (skyhttp.NewHandler) and over NATS (a
// bus with an embedded server, prefix testPrefix) and returns a client of
// each.
func fateClients(t *testing.T, svc *fateService) []namedClient {
	t.Helper()
	srv := httptest.NewServer(skyhttp.NewHandler(svc, skyhttp.Options{Logger: testLogger(t)}))
	t.Cleanup(srv.Close)
	hc, err := client.NewHTTP(srv.URL, client.WithHTTPClient(srv.Client()))
	require.NoError(t, err)

	b, err := bus.New(bus.Options{
		NodeID: "fate-node", Prefix: testPrefix, NATSPort: -1, ClusterPort: -1,
		HeartbeatInterval: time.Hour, Logger: testLogger(t),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, b.Start(ctx, svc))
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	nc, err := nats.Connect(b.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	natsc, err := client.NewNATS(nc, client.WithPrefix(testPrefix))
	require.NoError(t, err)
	return []namedClient{{"http", hc}, {"nats", natsc}}
}

func infoIDs(infos []skyring.Info) []string {
	ids := make([]string, 0, len(infos))
	for _, i := range infos {
		ids = append(ids, i.ID)
	}
	return ids
}

func TestListAndRetryEdges(t *testing.T) {
	t.Parallel()
	svc := newFateService()
	ctx := context.Background()
	for _, nc := range fateClients(t, svc) {
		t.Run(nc.name, func(t *testing.T) {
			c := nc.c
			// Empty: a page with no timers (not nil) and no cursor.
			page, err := c.List(ctx, skyring.ListQuery{State: skyring.StateNameCancelled})
			require.NoError(t, err)
			require.NotNil(t, page.Timers)
			require.Empty(t, page.Timers)
			require.Empty(t, page.Cursor)
			qs := svc.queries()
			require.Equal(t, skyring.ListQuery{State: "cancelled", Limit: skyring.DefaultListLimit}, qs[len(qs)-1],
				"no limit sent: the server's default")
		})
	}

	// Ids that need escaping in a query string, in id order.
	all := []string{"a!b", "a%b", "a&b=c", "a+b", "a?b", "b#1", "b~2", "c", "d", "e"}
	failed := []string{"a&b=c", "b#1", "d"}
	for _, id := range all {
		state := skyring.StateNamePending
		if slices.Contains(failed, id) {
			state = skyring.StateNameFailed
		}
		svc.add(id, state)
	}

	for _, nc := range fateClients(t, svc) {
		t.Run(nc.name, func(t *testing.T) {
			c := nc.c
			page, err := c.List(ctx, skyring.ListQuery{})
			require.NoError(t, err)
			require.Equal(t, all, infoIDs(page.Timers))
			require.Empty(t, page.Cursor)
			require.Equal(t, "receiver answered 503", page.Timers[2].LastError)

			// By hand: limit 4, the next After from the cursor.
			var got []string
			q := skyring.ListQuery{Limit: 4}
			for {
				page, err := c.List(ctx, q)
				require.NoError(t, err)
				got = append(got, infoIDs(page.Timers)...)
				qs := svc.queries()
				require.Equal(t, q, qs[len(qs)-1], "the query reaches the node as given")
				if page.Cursor == "" {
					break
				}
				q.After, err = skyring.DecodeCursor(page.Cursor)
				require.NoError(t, err)
			}
			require.Equal(t, all, got)

			// ListAll, from a starting point, with a state.
			got = nil
			require.NoError(t, client.ListAll(ctx, c, skyring.ListQuery{State: "failed", Limit: 1}, func(i skyring.Info) error {
				require.Equal(t, "failed", i.State)
				got = append(got, i.ID)
				return nil
			}))
			require.Equal(t, failed, got)
			got = nil
			require.NoError(t, client.ListAll(ctx, c, skyring.ListQuery{After: "b#1", Limit: 2}, func(i skyring.Info) error {
				got = append(got, i.ID)
				return nil
			}))
			require.Equal(t, []string{"b~2", "c", "d", "e"}, got)

			// fn's error stops the listing.
			stop := errors.New("enough")
			n := 0
			err = client.ListAll(ctx, c, skyring.ListQuery{Limit: 3}, func(skyring.Info) error {
				n++
				if n == 4 {
					return stop
				}
				return nil
			})
			require.ErrorIs(t, err, stop)
			require.Equal(t, 4, n)
		})
	}

	t.Run("short pages", func(t *testing.T) {
		svc.mu.Lock()
		svc.maxPage = 1
		svc.mu.Unlock()
		t.Cleanup(func() {
			svc.mu.Lock()
			svc.maxPage = 0
			svc.mu.Unlock()
		})
		for _, nc := range fateClients(t, svc) {
			var got []string
			require.NoError(t, client.ListAll(ctx, nc.c, skyring.ListQuery{Limit: 100}, func(i skyring.Info) error {
				got = append(got, i.ID)
				return nil
			}), nc.name)
			require.Equal(t, all, got, nc.name)
		}
	})
}

func TestListErrorsEdges(t *testing.T) {
	t.Parallel()
	svc := newFateService()
	ctx := context.Background()
	for _, nc := range fateClients(t, svc) {
		t.Run(nc.name, func(t *testing.T) {
			for _, tc := range []struct {
				q      skyring.ListQuery
				reason string
			}{
				{skyring.ListQuery{State: "dead"}, "state must be one of"},
				{skyring.ListQuery{State: "FAILED"}, "state must be one of"},
				{skyring.ListQuery{Limit: -1}, "limit must be an integer"},
				{skyring.ListQuery{Limit: skyring.MaxListLimit + 1}, "limit must be an integer"},
				{skyring.ListQuery{After: string(make([]byte, skyring.MaxIDLen+1))}, "cursor"},
			} {
				_, err := nc.c.List(ctx, tc.q)
				require.ErrorIs(t, err, skyring.ErrInvalid, "%+v", tc.q)
				var ve *skyring.ValidationError
				require.ErrorAs(t, err, &ve)
				require.Contains(t, ve.Reason, tc.reason)
				require.ErrorContains(t, err, "client: list timers")
			}
			require.Empty(t, svc.queries(), "the server refused them all")
		})
	}
}

func TestRetryEdges(t *testing.T) {
	t.Parallel()
	svc := newFateService()
	ctx := context.Background()
	for _, nc := range fateClients(t, svc) {
		t.Run(nc.name, func(t *testing.T) {
			c := nc.c
			id := "r-" + nc.name + "-%?#&" // escaped in a URL path
			svc.add(id, skyring.StateNameFailed)
			svc.add(id+"-delivered", skyring.StateNameDelivered)

			require.NoError(t, c.Retry(ctx, id))
			require.Equal(t, skyring.StateNamePending, svc.state(id))
			info, err := c.Get(ctx, id)
			require.NoError(t, err)
			require.Equal(t, skyring.StateNamePending, info.State)
			require.Zero(t, info.Attempts)

			err = c.Retry(ctx, id)
			require.ErrorIs(t, err, skyring.ErrNotFailed, "retried already")
			require.ErrorContains(t, err, `client: retry timer "`+id+`"`)
			require.ErrorIs(t, c.Retry(ctx, id+"-delivered"), skyring.ErrNotFailed)
			require.NotErrorIs(t, c.Retry(ctx, id+"-delivered"), skyring.ErrTimerExists, "409 tells not failed from exists")
			require.ErrorIs(t, c.Retry(ctx, "nope"), skyring.ErrTimerNotFound)

			// Invalid ids never leave the client.
			calls := svc.callCount()
			for _, bad := range []string{"", "a/b", "a b", string(make([]byte, skyring.MaxIDLen+1))} {
				require.ErrorIs(t, c.Retry(ctx, bad), skyring.ErrInvalid, "id %q", bad)
			}
			require.Equal(t, calls, svc.callCount())
		})
	}
}

// stubClient answers List with scripted pages.
type stubClient struct {
	client.Client
	pages []skyring.ListPage
	err   error
	qs    []skyring.ListQuery
}

func (s *stubClient) List(_ context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	s.qs = append(s.qs, q)
	if len(s.pages) == 0 {
		return skyring.ListPage{}, s.err
	}
	p := s.pages[0]
	s.pages = s.pages[1:]
	return p, nil
}

func TestListAllCursors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	nop := func(skyring.Info) error { return nil }

	// Empty pages with a cursor go on; the After of each query is the
	// previous page's cursor, decoded.
	s := &stubClient{pages: []skyring.ListPage{
		{Cursor: skyring.EncodeCursor("b")},
		{Timers: []skyring.Info{{ID: "c"}}, Cursor: skyring.EncodeCursor("f")},
		{},
	}}
	var got []string
	require.NoError(t, client.ListAll(ctx, s, skyring.ListQuery{State: "failed", After: "a", Limit: 7}, func(i skyring.Info) error {
		got = append(got, i.ID)
		return nil
	}))
	require.Equal(t, []string{"c"}, got)
	require.Equal(t, []skyring.ListQuery{
		{State: "failed", After: "a", Limit: 7},
		{State: "failed", After: "b", Limit: 7},
		{State: "failed", After: "f", Limit: 7},
	}, s.qs)

	// A cursor that does not decode, or does not move on, is an error, not
	// an endless loop.
	for _, cursor := range []string{"!!", skyring.EncodeCursor("a"), skyring.EncodeCursor("0")} {
		s := &stubClient{pages: []skyring.ListPage{{Cursor: cursor}, {Cursor: cursor}}}
		err := client.ListAll(ctx, s, skyring.ListQuery{After: "a"}, nop)
		require.ErrorContains(t, err, "bad cursor", "cursor %q", cursor)
	}

	// A List error is returned as is.
	s = &stubClient{err: skyring.ErrNoOwner}
	require.ErrorIs(t, client.ListAll(ctx, s, skyring.ListQuery{}, nop), skyring.ErrNoOwner)
}

// WithToken sends the bearer token a node started with --http:token asks
// for, on every request; without it the node answers 401.
func TestHTTPWithToken(t *testing.T) {
	t.Parallel()
	svc := newFateService()
	srv := httptest.NewServer(skyhttp.NewHandler(svc, skyhttp.Options{Logger: testLogger(t), Tokens: []string{"tok"}}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	bare, err := client.NewHTTP(srv.URL, client.WithHTTPClient(srv.Client()))
	require.NoError(t, err)
	_, err = bare.List(ctx, skyring.ListQuery{})
	var se *skyring.StatusError
	require.ErrorAs(t, err, &se)
	require.Equal(t, 401, se.Status)
	withTok, err := client.NewHTTP(srv.URL, client.WithHTTPClient(srv.Client()), client.WithToken("tok"))
	require.NoError(t, err)
	_, err = withTok.List(ctx, skyring.ListQuery{})
	require.NoError(t, err)
	_, err = withTok.Get(ctx, "nobody")
	require.ErrorIs(t, err, skyring.ErrTimerNotFound, "every request carries the token")
	_, err = client.NewHTTP(srv.URL, client.WithToken(""))
	require.Error(t, err)
}

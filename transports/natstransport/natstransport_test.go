package natstransport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports"
	"github.com/skyring/skyring/transports/natstransport"
	"github.com/skyring/skyring/transports/transportstest"
)

func newTransport(t *testing.T, opts natstransport.Options) *natstransport.Transport {
	t.Helper()
	if opts.Conn == nil {
		opts.Conn = natstransport.FromConn(connect(t))
	}
	tr, err := natstransport.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	return tr
}

func timer(id, method, subj, data string) *skyring.Timer {
	return transportstest.NewTimer(id, skyring.Callback{Transport: "nats", Method: method, URI: subj}, data)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), transportstest.WaitTimeout)
	t.Cleanup(cancel)
	return c
}

// subscribe records every message on subj (from its own connection) in the
// returned sink and channel; if reply is set it answers requests with "ok".
func subscribe(t *testing.T, subj string, reply bool) (*transportstest.Sink, chan *nats.Msg) {
	t.Helper()
	nc := connect(t)
	sink := transportstest.NewSink()
	msgs := make(chan *nats.Msg, 1024)
	_, err := nc.Subscribe(subj, func(m *nats.Msg) {
		msgs <- m
		sink.Record(m.Data)
		if reply && m.Reply != "" {
			_ = m.Respond([]byte("ok"))
		}
	})
	require.NoError(t, err)
	require.NoError(t, nc.Flush()) // the server has the subscription
	return sink, msgs
}

// harness runs the suite with successful deliveries made by method
// ("publish" or "request").
func harness(method string) transportstest.Harness {
	return transportstest.Harness{
		New: func(t *testing.T) transports.Transport { return newTransport(t, natstransport.Options{}) },
		Endpoint: func(t *testing.T, b transportstest.Behaviour) (skyring.Callback, *transportstest.Sink) {
			cb := skyring.Callback{Transport: "nats", URI: subject(b.String())}
			switch b {
			case transportstest.Succeed:
				cb.Method = method
				sink, _ := subscribe(t, cb.URI, true)
				return cb, sink
			case transportstest.Fail:
				cb.Method = "request" // nobody listens: no responders
				return cb, nil
			default: // Hang: a listener that never answers
				cb.Method = "request"
				sink, _ := subscribe(t, cb.URI, false)
				return cb, sink
			}
		},
		ClosedAfterShutdown: true,
		Invalid: []skyring.Callback{
			{Transport: "nats", Method: "post", URI: "jobs.x"},
			{Transport: "nats", Method: method, URI: "a b"},
			{Transport: "nats", Method: method, URI: "jobs.>"},
		},
	}
}

func TestConformancePublish(t *testing.T) {
	t.Parallel()
	transportstest.Exercise(t, harness("publish"))
}

func TestConformanceRequest(t *testing.T) {
	t.Parallel()
	transportstest.Exercise(t, harness("request"))
}

func TestName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "nats", newTransport(t, natstransport.Options{}).Name())
}

func TestPublishExactlyOnceWithHeaders(t *testing.T) {
	t.Parallel()
	subj := subject("pub")
	sink, msgs := subscribe(t, subj, false)
	tr := newTransport(t, natstransport.Options{})

	require.NoError(t, tr.Execute(ctx(t), timer("p-1", "PUBLISH", subj, `"hello"`)))
	require.NoError(t, tr.Execute(ctx(t), timer("p-2", "Publish", subj, `{"a":1}`)))
	third := timer("p-3", "publish", subj, "")
	third.Attempts = 2 // two attempts failed before this one
	require.NoError(t, tr.Execute(ctx(t), third))
	require.Len(t, sink.Wait(t, 3), 3)
	require.Len(t, msgs, 3, "each timer published exactly once")

	m := <-msgs
	require.Equal(t, "hello", string(m.Data))
	require.Equal(t, "p-1", m.Header.Get(natstransport.HeaderTimerID))
	require.Equal(t, "1", m.Header.Get(natstransport.HeaderAttempt))
	require.Empty(t, m.Header.Get(natstransport.HeaderContentType))
	m = <-msgs
	require.Equal(t, `{"a":1}`, string(m.Data))
	require.Equal(t, "p-2", m.Header.Get(natstransport.HeaderTimerID))
	require.Equal(t, "application/json", m.Header.Get(natstransport.HeaderContentType))
	m = <-msgs
	require.Empty(t, m.Data)
	require.Equal(t, "p-3", m.Header.Get(natstransport.HeaderTimerID))
	require.Equal(t, "3", m.Header.Get(natstransport.HeaderAttempt))
	require.Equal(t, "0", m.Header.Get(natstransport.HeaderFence), "the fence is always sent")
}

func TestRequestWithResponder(t *testing.T) {
	t.Parallel()
	subj := subject("req")
	_, msgs := subscribe(t, subj, true)
	tr := newTransport(t, natstransport.Options{})
	require.NoError(t, tr.Execute(ctx(t), timer("r-1", "REQUEST", subj, `"do it"`)))
	m := <-msgs
	require.Equal(t, "do it", string(m.Data))
	require.Equal(t, "r-1", m.Header.Get(natstransport.HeaderTimerID))
	require.NotEmpty(t, m.Reply)
}

// TestRequestNoResponders fails at once (not at the timeout) with
// nats.ErrNoResponders.
func TestRequestNoResponders(t *testing.T) {
	t.Parallel()
	tr := newTransport(t, natstransport.Options{Timeout: time.Hour})
	err := tr.Execute(ctx(t), timer("nr", "request", subject("nobody"), `"x"`))
	require.ErrorIs(t, err, nats.ErrNoResponders)
	require.NotErrorIs(t, err, transports.ErrPermanent)
	require.NoError(t, ctx(t).Err())
}

func TestRequestTimeout(t *testing.T) {
	t.Parallel()
	subj := subject("silent")
	sink, _ := subscribe(t, subj, false)
	tr := newTransport(t, natstransport.Options{Timeout: 100 * time.Millisecond})
	err := tr.Execute(context.Background(), timer("rt", "request", subj, `"x"`))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	// The request arrived (the subscriber may see it after the requester
	// gave up: wait for it); no reply came.
	require.Len(t, sink.Wait(t, 1), 1, "the request arrived; no reply came")
}

func TestBadMethod(t *testing.T) {
	t.Parallel()
	subj := subject("bad")
	sink, _ := subscribe(t, subj, true)
	tr := newTransport(t, natstransport.Options{})
	for _, m := range []string{"post", "", "pub", "publish ", "requests"} {
		err := tr.Execute(ctx(t), timer("bm", m, subj, `"x"`))
		require.ErrorIs(t, err, natstransport.ErrBadMethod, "method %q", m)
		require.ErrorIs(t, err, transports.ErrPermanent, "method %q", m)
	}
	// Barrier: a good publish arrives alone.
	require.NoError(t, tr.Execute(ctx(t), timer("ok", "publish", subj, `"good"`)))
	require.Equal(t, [][]byte{[]byte("good")}, sink.Wait(t, 1))
}

func TestValidateSubject(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"a", "skyring.events.fire", "a.b-c_d.E9", "$SYS.x", "_INBOX.abc", "a.*b", "a>"} {
		require.NoError(t, natstransport.ValidateSubject(s), "subject %q", s)
	}
	for _, s := range []string{"", "a b", "a\tb", "a\nb", ".a", "a.", "a..b", "*", "a.*", "a.>", ">", "a.*.b", "http://x/y z"} {
		err := natstransport.ValidateSubject(s)
		require.ErrorIs(t, err, natstransport.ErrBadSubject, "subject %q", s)
		require.ErrorIs(t, err, transports.ErrPermanent, "subject %q", s)
	}
	tr := newTransport(t, natstransport.Options{})
	err := tr.Execute(ctx(t), timer("bs", "publish", "a.*", `"x"`))
	require.ErrorIs(t, err, natstransport.ErrBadSubject)
}

// plainConn hides the HeaderConn methods: the transport then sends the data
// alone.
type plainConn struct{ c transports.NATSConn }

func (p plainConn) Publish(subj string, data []byte) error { return p.c.Publish(subj, data) }
func (p plainConn) Request(ctx context.Context, subj string, data []byte) ([]byte, error) {
	return p.c.Request(ctx, subj, data)
}

func TestPlainConn(t *testing.T) {
	t.Parallel()
	subj := subject("plain")
	_, msgs := subscribe(t, subj, true)
	tr := newTransport(t, natstransport.Options{Conn: plainConn{natstransport.FromConn(connect(t))}})
	require.NoError(t, tr.Execute(ctx(t), timer("pl-1", "publish", subj, `"a"`)))
	require.NoError(t, tr.Execute(ctx(t), timer("pl-2", "request", subj, `{"b":2}`)))
	m := <-msgs
	require.Equal(t, "a", string(m.Data))
	require.Empty(t, m.Header)
	m = <-msgs
	require.Equal(t, `{"b":2}`, string(m.Data))
	require.Empty(t, m.Header)
	err := tr.Execute(ctx(t), timer("pl-3", "request", subject("nobody"), ""))
	require.ErrorIs(t, err, nats.ErrNoResponders)
}

func TestClosedConnection(t *testing.T) {
	t.Parallel()
	nc := connect(t)
	tr := newTransport(t, natstransport.Options{Conn: natstransport.FromConn(nc)})
	nc.Close()
	for _, m := range []string{"publish", "request"} {
		err := tr.Execute(ctx(t), timer("cl", m, subject("closed"), `"x"`))
		require.ErrorIs(t, err, nats.ErrConnectionClosed, "method %s", m)
		require.NotErrorIs(t, err, transports.ErrPermanent)
	}
}

func TestNewWithoutConn(t *testing.T) {
	t.Parallel()
	_, err := natstransport.New(natstransport.Options{})
	require.ErrorIs(t, err, natstransport.ErrNoConn)
}

func TestFactory(t *testing.T) {
	t.Parallel()
	cat := transports.NewCatalog()
	require.NoError(t, cat.Add(natstransport.Name, natstransport.Factory))

	_, err := cat.Build([]string{"nats"}, transports.Deps{})
	require.ErrorIs(t, err, natstransport.ErrNoConn)

	reg, err := cat.Build([]string{"nats"}, transports.Deps{NATS: natstransport.FromConn(connect(t)), Timeout: 100 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Shutdown(context.Background()) })
	tr, err := reg.Lookup("nats")
	require.NoError(t, err)

	subj := subject("factory")
	sink, _ := subscribe(t, subj, false)
	require.NoError(t, tr.Execute(ctx(t), timer("f-1", "publish", subj, `"via catalog"`)))
	require.Equal(t, "via catalog", string(sink.Wait(t, 1)[0]))
	// deps.Timeout reached the transport: the silent subscriber times it out.
	err = tr.Execute(context.Background(), timer("f-2", "request", subj, ""))
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
}

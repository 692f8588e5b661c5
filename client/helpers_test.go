package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/client"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/transports/transportstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPrefix is the NATS prefix of the test node: not the default, so that
// WithPrefix is exercised by every NATS test.
const testPrefix = "acme.timers"

// recName is the name of the recording transport of the test node.
const recName = "rec"

// recCallback is a callback through the recording transport.
var recCallback = client.Callback{Transport: recName, Method: "post", URI: "rec://sink"}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("SKYRING_TEST_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// bundle is one real in-process Skyring node (memory storage, embedded NATS
// on a free port, HTTP on a free port, cluster listener on a free port) with a
// recording transport, and a NATS connection to it.
type bundle struct {
	node *node.Node
	rec  *transportstest.Recorder
	nc   *nats.Conn
}

func setup(t testing.TB) *bundle {
	t.Helper()
	b := &bundle{rec: transportstest.NewRecorder(recName)}
	n, err := node.New(
		node.WithOptions(node.Options{
			HTTPAddr:    "127.0.0.1:0",
			NATSPort:    -1,
			ChannelPort: -1,
			Prefix:      testPrefix,
			Store:       memstore.New(),
			Transports:  []string{"http"},
			Logger:      testLogger(t),
		}),
		node.WithTransport(b.rec),
	)
	require.NoError(t, err)
	require.NoError(t, n.Start(context.Background()))
	t.Cleanup(func() { require.NoError(t, n.Close()) })
	b.node = n

	nc, err := nats.Connect(n.NATSURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	b.nc = nc
	return b
}

func (b *bundle) baseURL() string { return "http://" + b.node.HTTPAddr().String() }

// httpClient returns an HTTP client of the node with its own connection
// pool, closed at cleanup.
func (b *bundle) httpClient(t testing.TB) *client.HTTPClient {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	c, err := client.NewHTTP(b.baseURL(), client.WithHTTPClient(&http.Client{Transport: tr}))
	require.NoError(t, err)
	return c
}

func (b *bundle) natsClient(t testing.TB, opts ...client.NATSOption) *client.NATSClient {
	t.Helper()
	c, err := client.NewNATS(b.nc, append([]client.NATSOption{client.WithPrefix(testPrefix)}, opts...)...)
	require.NoError(t, err)
	return c
}

// clients returns both clients of the node, by name.
func (b *bundle) clients(t testing.TB) []namedClient {
	return []namedClient{
		{"http", b.httpClient(t)},
		{"nats", b.natsClient(t)},
	}
}

type namedClient struct {
	name string
	c    client.Client
}

// uniqueID makes a timer id from the test's name, so that parallel tests on
// one node never collide.
func uniqueID(t testing.TB, suffix string) string {
	id := strings.NewReplacer("/", ".", " ", "_").Replace(t.Name()) + suffix
	require.NoError(t, skyring.ValidateID(id))
	return id
}

// waitDelivered waits until the recorder executed the timer id and returns
// it.
func waitDelivered(t testing.TB, rec *transportstest.Recorder, id string) skyring.Timer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		changed := rec.Changed()
		for _, tm := range rec.Timers() {
			if tm.ID == id {
				return tm
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatalf("timer %q not delivered within 10s (delivered: %v)", id, rec.IDs())
		}
	}
}

// spec is a minute-long timer through the recorder.
func spec(data any) client.TimerSpec {
	return client.TimerSpec{Timeout: time.Minute, Data: data, Callback: recCallback}
}

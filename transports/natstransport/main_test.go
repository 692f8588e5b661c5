package natstransport_test

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// srv is one embedded nats-server for the whole package (a random port);
// tests isolate themselves with their own connections and unique subjects.
var srv *server.Server

func TestMain(m *testing.M) {
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	srv = natstest.RunServer(&opts)
	code := m.Run()
	srv.Shutdown()
	srv.WaitForShutdown()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// connect returns a new connection to srv, closed at cleanup.
func connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

var subjects atomic.Int64

// subject returns a subject no other test uses.
func subject(kind string) string {
	return fmt.Sprintf("skyring.test.%s.%d", kind, subjects.Add(1))
}

package skyringcli

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTimerMaxPendingFlag(t *testing.T) {
	opts, err := parseRun(t)
	require.NoError(t, err)
	require.Zero(t, opts.MaxPending, "unlimited by default")

	opts, err = parseRun(t, "--timer:max-pending", "1000")
	require.NoError(t, err)
	require.Equal(t, 1000, opts.MaxPending)

	t.Setenv("SKYRING_TIMER_MAX_PENDING", "7")
	opts, err = parseRun(t)
	require.NoError(t, err)
	require.Equal(t, 7, opts.MaxPending)

	_, err = parseRun(t, "--timer:max-pending", "-1")
	require.ErrorContains(t, err, "--timer:max-pending must not be negative")
}

func TestNATSCallbackAllowFlag(t *testing.T) {
	opts, err := parseRun(t)
	require.NoError(t, err)
	require.Empty(t, opts.NATSCallbackAllow)

	opts, err = parseRun(t, "--nats:callback-allow", "jobs.>", "--nats:callback-allow", "alerts.*.high")
	require.NoError(t, err)
	require.Equal(t, []string{"jobs.>", "alerts.*.high"}, opts.NATSCallbackAllow)
}

func TestPprofServerTimeouts(t *testing.T) {
	srv := pprofServer(http.NotFoundHandler())
	require.Positive(t, srv.ReadHeaderTimeout)
	require.Positive(t, srv.ReadTimeout)
	require.Positive(t, srv.IdleTimeout)
	require.GreaterOrEqual(t, srv.WriteTimeout, 2*time.Minute, "room for a long CPU profile")

	// A client that never finishes its request header is cut off.
	srv.ReadHeaderTimeout = 50 * time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET /debug/pprof/ HTTP/1.1\r\nHost: x\r\n"))
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
	_, err = io.ReadAll(c)
	require.NoError(t, err, "the server closed the connection before the 5s deadline")
}

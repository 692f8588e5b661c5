package skyringcli

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
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

func TestClusterSecretFlags(t *testing.T) {
	opts, err := parseRun(t, "--channel:secret", "0123456789abcdef")
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef", opts.ClusterSecret)

	f := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(f, []byte("from-a-file-0123456789\nignored\n"), 0o600))
	opts, err = parseRun(t, "--channel:secret-file", f)
	require.NoError(t, err)
	require.Equal(t, "from-a-file-0123456789", opts.ClusterSecret)

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--channel:secret", "short"}, "at least 16 characters"},
		{[]string{"--channel:secret", "0123456789abcdef", "--channel:secret-file", f}, "not both"},
		{[]string{"--channel:secret-file", filepath.Join(t.TempDir(), "none")}, "--channel:secret-file"},
		{[]string{"--channel:secret", "0123456789abcdef", "--nats:hosts", "nats://h:4222"}, "configures the embedded NATS server"},
		{[]string{"--nats:nkey", "x.nk"}, "for external NATS servers"},
		{[]string{"--nats:creds", "x.creds"}, "for external NATS servers"},
	} {
		_, err := parseRun(t, c.args...)
		require.ErrorContains(t, err, c.want, "%v", c.args)
		require.NotContains(t, err.Error(), "0123456789abcdef", "the secret is not in the error")
	}

	opts, err = parseRun(t, "--nats:hosts", "nats://h:4222", "--nats:nkey", "n.nk", "--nats:tls-ca", "ca.pem")
	require.NoError(t, err)
	require.Equal(t, "n.nk", opts.NATSNkeyFile)
	require.Equal(t, "ca.pem", opts.NATSTLS.CAFile)
}

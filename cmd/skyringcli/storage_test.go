package skyringcli

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/storage/memstore"
)

// A custom storage backend registered by name before the CLI runs is
// selected with --storage:backend and gets the --storage:* options it
// declares.
func TestCustomStorageBackend(t *testing.T) {
	app := New()
	ready := make(chan struct{})
	app.Stdout, app.Stderr = io.Discard, testWriter{t, ready}
	opened := make(chan storage.Options, 1)
	require.NoError(t, app.Storage.Register("scylladown", func(o storage.Options) (storage.Store, error) {
		opened <- o
		return memstore.New(), nil
	}, "@skyring/scylladown"))
	require.NoError(t, app.Storage.DeclareOptions("scylladown", "contactPoints"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() {
		code <- app.MainContext(ctx, []string{"skyring", "run", "-p", "-1", "--channel:port", "-1", "--nats:port", "-1",
			"--storage:backend=@skyring/scylladown", "--storage:path=skyring-1",
			"--storage:contactPoints=0.0.0.0:9042", "--storage:contactPoints", "0.0.0.0:9043"})
	}()
	select {
	case o := <-opened:
		require.Equal(t, "skyring-1", o.Path)
		require.Equal(t, map[string][]string{"contactPoints": {"0.0.0.0:9042", "0.0.0.0:9043"}}, o.Extra)
	case c := <-code:
		t.Fatalf("the CLI exited with %d before opening storage", c)
	case <-time.After(30 * time.Second):
		t.Fatal("the custom backend was never opened")
	}
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatal("the node never became ready")
	}
	cancel()
	select {
	case c := <-code:
		require.Equal(t, 0, c)
	case <-time.After(30 * time.Second):
		t.Fatal("the CLI did not stop")
	}
}

func TestSplitStorageExtras(t *testing.T) {
	args, extra := splitStorageExtras([]string{"skyring", "run", "--storage:path", "p", "--storage:a=1", "--storage:b", "2", "--storage:nosync", "--", "--storage:c=3"})
	require.Equal(t, []string{"skyring", "run", "--storage:path", "p", "--storage:nosync", "--", "--storage:c=3"}, args)
	require.Equal(t, map[string][]string{"a": {"1"}, "b": {"2"}}, extra)
}

// testWriter sends the CLI's output to the test log and signals the ready
// line.
type testWriter struct {
	t     *testing.T
	ready chan struct{}
}

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	if strings.Contains(string(p), `msg="skyring ready"`) {
		close(w.ready)
	}
	return len(p), nil
}

package http

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
)

func TestServerLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	// Close without Start, twice; Start after Close.
	s := NewServer(newMemService(), Options{Addr: "127.0.0.1:0", Logger: testLogger(t)})
	require.Nil(t, s.Addr())
	require.NoError(t, s.Close(ctx))
	require.NoError(t, s.Close(ctx))
	require.ErrorIs(t, s.Start(ctx), skyring.ErrClosed)

	// Start, Start again, Close twice.
	s = NewServer(newMemService(), Options{Addr: "127.0.0.1:0", Logger: testLogger(t)})
	require.NoError(t, s.Start(ctx))
	addr := s.Addr()
	require.NotNil(t, addr)
	require.NotEqual(t, 0, addr.(*net.TCPAddr).Port)
	require.ErrorIs(t, s.Start(ctx), ErrAlreadyStarted)

	client := &http.Client{Timeout: 30 * time.Second} // a bound, not a speed
	resp, err := client.Get("http://" + addr.String() + "/ping")
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
	client.CloseIdleConnections()

	require.NoError(t, s.Close(ctx))
	require.NoError(t, s.Close(ctx))
	require.Equal(t, addr, s.Addr())
	_, err = net.Dial("tcp", addr.String())
	require.Error(t, err, "the listener is closed")
	require.ErrorIs(t, s.Start(ctx), skyring.ErrClosed)
}

func TestServerDefaults(t *testing.T) {
	t.Parallel()
	s := NewServer(newMemService(), Options{})
	require.Equal(t, ":3000", s.opts.Addr)
	require.EqualValues(t, 1<<20, s.opts.MaxBodyBytes)
	require.NotNil(t, s.opts.Now)
	require.NotNil(t, s.opts.Logger)
	require.NoError(t, s.Close(context.Background()))
}

func TestServerPortInUse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := NewServer(newMemService(), Options{Addr: b.srv.Addr().String(), Logger: testLogger(t)})
	err := s.Start(context.Background())
	require.ErrorIs(t, err, syscall.EADDRINUSE)
	require.Contains(t, err.Error(), b.srv.Addr().String())
	require.Nil(t, s.Addr())
	require.NoError(t, s.Close(context.Background()))
	// The first server is unaffected.
	require.Equal(t, http.StatusOK, b.do(t, http.MethodGet, "/ping", nil).status)
}

func TestServerGracefulClose(t *testing.T) {
	t.Parallel()
	svc := newMemService()
	entered, release := make(chan struct{}), make(chan struct{})
	svc.setHook(func(_ context.Context, op string) {
		if op == "create" {
			close(entered)
			<-release
		}
	})
	s := NewServer(svc, Options{Addr: "127.0.0.1:0", Logger: testLogger(t)})
	require.NoError(t, s.Start(context.Background()))
	addr := s.Addr().String()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	type answer struct {
		status int
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := client.Post("http://"+addr+"/timer", "application/json", strings.NewReader(validBody))
		if err != nil {
			answered <- answer{err: err}
			return
		}
		_ = resp.Body.Close()
		answered <- answer{status: resp.StatusCode}
	}()
	<-entered

	closed := make(chan error, 1)
	go func() { closed <- s.Close(context.Background()) }()

	// Closing stops new connections while the request is in flight.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
		}
		return err != nil
	}, 5*time.Second, 5*time.Millisecond)
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a request was in flight", err)
	default:
	}

	close(release)
	a := <-answered
	require.NoError(t, a.err)
	require.Equal(t, http.StatusCreated, a.status, "the in-flight request finishes")
	require.NoError(t, <-closed)
}

func TestServerCloseDeadline(t *testing.T) {
	t.Parallel()
	svc := newMemService()
	entered, exited := make(chan struct{}), make(chan struct{})
	svc.setHook(func(ctx context.Context, op string) {
		if op == "create" {
			defer close(exited)
			close(entered)
			<-ctx.Done() // a stuck command that honours its context
		}
	})
	s := NewServer(svc, Options{Addr: "127.0.0.1:0", Logger: testLogger(t)})
	require.NoError(t, s.Start(context.Background()))
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}

	failed := make(chan error, 1)
	go func() {
		resp, err := client.Post("http://"+s.Addr().String()+"/timer", "application/json", strings.NewReader(validBody))
		if err == nil {
			_ = resp.Body.Close()
			err = errors.New("unexpected answer " + resp.Status)
		}
		failed <- err
	}()
	<-entered

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := s.Close(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorIs(t, s.Close(context.Background()), context.DeadlineExceeded, "Close is idempotent")

	// The connection was dropped, so the request's context ended.
	<-exited
	require.Error(t, <-failed)
}

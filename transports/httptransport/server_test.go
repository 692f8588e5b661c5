package httptransport_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/skyring/skyring/transports/transportstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request is what the test server saw.
type request struct {
	Method        string
	Path          string
	Header        http.Header
	ContentLength int64
	Body          string
}

// server is a real HTTP server on 127.0.0.1:0 that records requests and
// counts connections. Paths:
//
//	/ok          204, records the request (body also into Sink)
//	/status/N    answers N
//	/redirect    302 to /ok
//	/hang        never answers until the client gives up
//	/big         200 with a 32 KiB body
type server struct {
	*httptest.Server
	Sink *transportstest.Sink

	mu       sync.Mutex
	reqs     []request
	newConns int
	closed   int
	changed  chan struct{}
}

func newServer(t *testing.T) *server {
	t.Helper()
	s := &server{Sink: transportstest.NewSink(), changed: make(chan struct{})}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(s.handle))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		switch st {
		case http.StateNew:
			s.newConns++
		case http.StateClosed, http.StateHijacked:
			s.closed++
		}
		close(s.changed)
		s.changed = make(chan struct{})
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) handle(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rec := request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), ContentLength: r.ContentLength, Body: string(body)}
	s.mu.Lock()
	s.reqs = append(s.reqs, rec)
	s.mu.Unlock()
	switch {
	case r.URL.Path == "/ok":
		s.Sink.Record(body)
		w.WriteHeader(http.StatusNoContent)
	case strings.HasPrefix(r.URL.Path, "/status/"):
		code, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/status/"))
		w.WriteHeader(code)
	case r.URL.Path == "/redirect":
		http.Redirect(w, r, "/ok", http.StatusFound)
	case r.URL.Path == "/hang":
		<-r.Context().Done()
	case r.URL.Path == "/big":
		_, _ = w.Write(make([]byte, 32<<10))
	default:
		http.NotFound(w, r)
	}
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func (s *server) connCounts() (opened, closed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newConns, s.closed
}

// waitConns waits until cond holds for the connection counts.
func (s *server) waitConns(t *testing.T, cond func(opened, closed int) bool) {
	t.Helper()
	deadline := time.NewTimer(transportstest.WaitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok, ch := cond(s.newConns, s.closed), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			o, c := s.connCounts()
			t.Fatalf("connection condition not met: opened %d, closed %d", o, c)
		}
	}
}

func (s *server) url(path string) string { return s.URL + path }

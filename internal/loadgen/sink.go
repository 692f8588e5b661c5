package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// maxSinkBody bounds what the sink reads of a callback body.
const maxSinkBody = 64 << 10

// sink is the callback server: it records, for each timer of the run, how
// many times it arrived and how late its first arrival was.
type sink struct {
	ids     idScheme
	planDue func(seq int) int64 // due of a planned timer; nil if not known exactly

	counts []atomic.Int32 // arrivals per seq
	late   []atomic.Int64 // first arrival minus due, ns, per seq

	distinct   atomic.Int64 // seqs that arrived at least once
	dups       atomic.Int64 // arrivals after the first
	early      atomic.Int64 // arrivals before their due instant
	unexpected atomic.Int64 // arrivals that name no timer of this run
	badData    atomic.Int64 // arrivals whose body is not the data that was sent
	arrivals   atomic.Int64
	last       atomic.Int64 // Unix ns of the last arrival

	bufs sync.Pool

	srv       *http.Server
	uri       string
	served    chan struct{}
	closeOnce sync.Once
	closeErr  error
}

func newSink(ids idScheme, capacity int, planDue func(int) int64) *sink {
	s := &sink{
		ids:     ids,
		planDue: planDue,
		counts:  make([]atomic.Int32, capacity),
		late:    make([]atomic.Int64, capacity),
	}
	s.bufs.New = func() any { return new(bytes.Buffer) }
	return s
}

// Start listens on addr and serves until Close. It returns once listening.
func (s *sink) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("starting callback sink on %s: %w", addr, err)
	}
	s.uri = "http://" + ln.Addr().String() + "/cb"
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	s.served = make(chan struct{})
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(ln) // returns http.ErrServerClosed after Close
	}()
	return nil
}

// URI is the callback URI timers point at.
func (s *sink) URI() string { return s.uri }

// Close stops the server, waiting (bounded) for handlers in flight. It is
// idempotent and tolerates close without start.
func (s *sink) Close() error {
	s.closeOnce.Do(func() {
		if s.srv == nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.srv.Shutdown(ctx); err != nil {
			_ = s.srv.Close()
			if !errors.Is(err, context.DeadlineExceeded) {
				s.closeErr = fmt.Errorf("closing callback sink: %w", err)
			}
		}
		<-s.served
	})
	return s.closeErr
}

// ServeHTTP records one arrival and answers 200.
func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	arrival := time.Now().UnixNano()
	buf := s.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	_, _ = buf.ReadFrom(io.LimitReader(r.Body, maxSinkBody))
	id := r.Header.Get("X-Skyring-Timer-Id")
	s.record(id, buf.Bytes(), arrival)
	s.bufs.Put(buf)
	w.WriteHeader(http.StatusOK)
}

// record accounts for one arrival of timer id (empty: read it from body) at
// Unix ns arrival.
func (s *sink) record(id string, body []byte, arrival int64) {
	s.arrivals.Add(1)
	for {
		l := s.last.Load()
		if arrival <= l || s.last.CompareAndSwap(l, arrival) {
			break
		}
	}
	bodyID, due, dueOK := parseData(body)
	if id == "" {
		id = bodyID
	}
	seq, ok := s.ids.seq(id)
	if !ok || seq >= len(s.counts) {
		s.unexpected.Add(1)
		return
	}
	if s.planDue != nil {
		// The plan is exact; the body must repeat it.
		plan := s.planDue(seq)
		if !dueOK || due != plan || bodyID != id {
			s.badData.Add(1)
		}
		due, dueOK = plan, true
	}
	if dueOK && arrival < due {
		s.early.Add(1)
	}
	if s.counts[seq].Add(1) == 1 {
		if dueOK {
			s.late[seq].Store(arrival - due)
		}
		s.distinct.Add(1)
	} else {
		s.dups.Add(1)
	}
}

// arrived reports whether timer seq arrived at least once.
func (s *sink) arrived(seq int) bool {
	return seq < len(s.counts) && s.counts[seq].Load() > 0
}

// parseData reads the id and due instant a timer's data carries:
// "<id>|<dueUnixNs>" or {"id":"<id>","due":<dueUnixNs>}.
func parseData(body []byte) (id string, due int64, ok bool) {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '{' {
		var v struct {
			ID  string `json:"id"`
			Due *int64 `json:"due"`
		}
		if json.Unmarshal(body, &v) != nil {
			return "", 0, false
		}
		if v.Due == nil {
			return v.ID, 0, false
		}
		return v.ID, *v.Due, true
	}
	i := bytes.LastIndexByte(body, '|')
	if i < 0 {
		return string(body), 0, false
	}
	due, err := strconv.ParseInt(string(body[i+1:]), 10, 64)
	idPart := body[:i]
	if j := bytes.LastIndexByte(idPart, '#'); j >= 0 { // padding
		idPart = idPart[j+1:]
	}
	return string(idPart), due, err == nil
}

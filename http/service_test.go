package http

import (
	"context"
	"slices"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/skyring/skyring"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var _ Service = (*memService)(nil)

// memService is an in-memory Service: it keeps timers in a map (with their
// state: setState gives one a fate), lists them in id order and retries the
// failed ones, answers ErrTimerExists / ErrTimerNotFound / ErrNotFailed as
// the node would, knows only the
// transports in known, and can be told to fail every call with err or to
// run hook (which may block) before each call.
type memService struct {
	mu     sync.Mutex
	timers map[string]*skyring.Timer
	known  []string
	err    error
	hook   func(ctx context.Context, op string)
	calls  []string
	lists  []skyring.ListQuery
}

func newMemService() *memService {
	return &memService{timers: map[string]*skyring.Timer{}, known: []string{"http"}}
}

func (s *memService) enter(ctx context.Context, op string) error {
	s.mu.Lock()
	s.calls = append(s.calls, op)
	hook, err := s.hook, s.err
	s.mu.Unlock()
	if hook != nil {
		hook(ctx, op)
	}
	return err
}

func (s *memService) checkTransport(t *skyring.Timer) error {
	for _, k := range s.known {
		if k == t.Callback.Transport {
			return nil
		}
	}
	return skyring.UnknownTransportError(t.Callback.Transport, s.known)
}

func (s *memService) Create(ctx context.Context, t *skyring.Timer) error {
	if err := s.enter(ctx, "create"); err != nil {
		return err
	}
	if err := s.checkTransport(t); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.timers[t.ID]; ok {
		return skyring.ErrTimerExists
	}
	s.timers[t.ID] = t
	return nil
}

func (s *memService) Update(ctx context.Context, t *skyring.Timer) error {
	if err := s.enter(ctx, "update"); err != nil {
		return err
	}
	if err := s.checkTransport(t); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.timers[t.ID]; !ok {
		return skyring.ErrTimerNotFound
	}
	s.timers[t.ID] = t
	return nil
}

func (s *memService) Cancel(ctx context.Context, id string) error {
	if err := s.enter(ctx, "cancel"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.timers[id]; !ok {
		return skyring.ErrTimerNotFound
	}
	delete(s.timers, id)
	return nil
}

func (s *memService) Get(ctx context.Context, id string) (skyring.Info, error) {
	if err := s.enter(ctx, "get"); err != nil {
		return skyring.Info{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.timers[id]
	if !ok {
		return skyring.Info{}, skyring.ErrTimerNotFound
	}
	return t.Info("node-1"), nil
}

// List pages through the timers in id order as the node does: those in
// q.State (all for ""), after q.After, at most q.Limit; the cursor is set
// while more follow.
func (s *memService) List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	if err := s.enter(ctx, "list"); err != nil {
		return skyring.ListPage{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists = append(s.lists, q)
	ids := make([]string, 0, len(s.timers))
	for id, t := range s.timers {
		if id > q.After && q.Filter().Match(t) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	var page skyring.ListPage
	for i, id := range ids {
		if i == q.Limit {
			page.Cursor = skyring.EncodeCursor(ids[i-1])
			break
		}
		page.Timers = append(page.Timers, s.timers[id].Info("node-1"))
	}
	return page, nil
}

// CancelMatching removes the pending, retrying and failed timers f
// matches, as the node does, and counts them.
func (s *memService) CancelMatching(ctx context.Context, f skyring.Filter) (int, error) {
	if err := s.enter(ctx, "cancel_many"); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, t := range s.timers {
		if (t.State == skyring.StatePending || t.State == skyring.StateFailed) && f.Match(t) {
			delete(s.timers, id)
			n++
		}
	}
	return n, nil
}

// Retry re-arms a failed timer: ErrTimerNotFound for an unknown id,
// ErrNotFailed for one in another state.
func (s *memService) Retry(ctx context.Context, id string) error {
	if err := s.enter(ctx, "retry"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.timers[id]
	if !ok {
		return skyring.ErrTimerNotFound
	}
	if t.State != skyring.StateFailed {
		return skyring.ErrNotFailed
	}
	c := *t // copy on write: tests may hold the old pointer
	c.State, c.Attempts, c.Next, c.Finished, c.LastError, c.LastStatus = skyring.StatePending, 0, 0, 0, "", 0
	s.timers[id] = &c
	return nil
}

// setState gives the stored timer id a fate, as delivery would (failed:
// after attempts attempts).
func (s *memService) setState(id string, state skyring.State, attempts int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *s.timers[id]
	c.State, c.Attempts = state, attempts
	if state.Final() {
		c.Finished = testNow.UnixNano()
	}
	if state == skyring.StateFailed {
		c.LastError, c.LastStatus = "receiver answered 503", 503
	}
	s.timers[id] = &c
}

// listQueries returns the queries List was given.
func (s *memService) listQueries() []skyring.ListQuery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lists)
}

func (s *memService) timer(id string) (*skyring.Timer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.timers[id]
	return t, ok
}

func (s *memService) setErr(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *memService) setHook(h func(ctx context.Context, op string)) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

func (s *memService) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}

// nopService accepts everything and keeps nothing (benchmarks, fuzzing).
type nopService struct{ exists string }

func (s nopService) Create(_ context.Context, t *skyring.Timer) error {
	if s.exists != "" && t.ID == s.exists {
		return skyring.ErrTimerExists
	}
	return nil
}
func (nopService) Update(context.Context, *skyring.Timer) error { return nil }
func (nopService) Cancel(context.Context, string) error         { return nil }
func (nopService) Get(_ context.Context, id string) (skyring.Info, error) {
	return skyring.Info{ID: id}, nil
}
func (nopService) List(context.Context, skyring.ListQuery) (skyring.ListPage, error) {
	return skyring.ListPage{}, nil
}
func (nopService) Retry(context.Context, string) error { return nil }
func (nopService) CancelMatching(context.Context, skyring.Filter) (int, error) {
	return 0, nil
}

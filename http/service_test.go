package http

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/skyring/skyring"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var _ Service = (*memService)(nil)

// memService is an in-memory Service: it keeps timers in a map, answers
// ErrTimerExists / ErrTimerNotFound as the node would, knows only the
// transports in known, and can be told to fail every call with err or to
// run hook (which may block) before each call.
type memService struct {
	mu     sync.Mutex
	timers map[string]*skyring.Timer
	known  []string
	err    error
	hook   func(ctx context.Context, op string)
	calls  []string
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

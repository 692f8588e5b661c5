package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage"
	"github.com/skyring/skyring/wheel"
)

// Sweeping.
const (
	sweepBatch    = 4096        // most finished timers removed in one write
	sweepMinEvery = time.Second // bounds of the sweep period (retention/24)
	sweepMaxEvery = time.Hour
)

// sweeper removes delivered and cancelled timers whose retention period
// is over: every Options.SweepInterval of real time (default retention/24,
// at least a second, at most an hour) it scans the store and deletes them
// in batches; what is over is judged by the node's clock. Until it does,
// GET and lists already treat them as gone (Node.expired), so the period
// only bounds how long they take disk space. (It keeps off the node's
// clock's timers, which belong to the wheel: tests that drive a fake clock
// watch those.) A node that keeps no fates has no sweeper.
type sweeper struct {
	store     storage.Store
	index     *index
	clock     wheel.Clock
	log       *slog.Logger
	retention time.Duration
	interval  time.Duration // Options.SweepInterval; 0: every()
	fault     func(op string, err error) error
	mine      func(id string) bool // the ids this node sweeps (Node.answersFor)

	loop sync.WaitGroup
}

func newSweeper(n *Node) *sweeper {
	return &sweeper{
		store: n.store, index: n.index, clock: n.clock, log: n.log,
		retention: n.opts.TimerRetention, interval: n.opts.SweepInterval, fault: n.storageFault,
		mine: n.answersFor,
	}
}

// every is the sweep period.
func (s *sweeper) every() time.Duration {
	if s.interval > 0 {
		return s.interval
	}
	return min(max(s.retention/24, sweepMinEvery), sweepMaxEvery)
}

// start sweeps every period until ctx ends; stop waits for it.
func (s *sweeper) start(ctx context.Context) {
	if s.retention < 0 {
		return
	}
	s.loop.Add(1)
	go func() {
		defer s.loop.Done()
		t := time.NewTicker(s.every())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if n, err := s.sweep(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("sweeping finished timers failed", "removed", n, "err", err)
			} else if n > 0 {
				s.log.Debug("swept finished timers", "count", n)
			}
		}
	}()
}

func (s *sweeper) stop() { s.loop.Wait() }

// errSweepBatch stops a scan once a batch is full.
var errSweepBatch = errors.New("node: sweep batch full")

// sweep removes every finished timer past its retention and returns how
// many it removed.
func (s *sweeper) sweep(ctx context.Context) (int, error) {
	removed := 0
	for after := ""; ; {
		cutoff := s.clock.Now().UnixNano() - int64(s.retention)
		var ids []string
		last := ""
		err := s.store.List(ctx, after, func(t *skyring.Timer) error {
			last = t.ID
			if finishedBefore(t, cutoff) && s.mine(t.ID) {
				ids = append(ids, t.ID)
				if len(ids) == sweepBatch {
					return errSweepBatch
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, errSweepBatch) {
			return removed, err
		}
		n, derr := s.remove(ctx, ids, cutoff)
		removed += n
		if derr != nil || err == nil {
			return removed, derr
		}
		after = last
	}
}

// remove deletes those of ids that are still finished before cutoff. Each
// is locked first (busy), so that a create of the same id waits, and read
// again, so that a newer generation stored since the scan is kept.
func (s *sweeper) remove(ctx context.Context, ids []string, cutoff int64) (int, error) {
	if len(ids) == 0 {
		return 0, nil
	}
	locked := s.index.lockIdle(ids)
	defer s.index.releaseBusy(locked...)
	gone := locked[:0:0]
	for _, id := range locked {
		t, err := s.store.Get(ctx, id)
		if err == nil && finishedBefore(t, cutoff) {
			gone = append(gone, id)
		}
	}
	if err := s.store.Delete(context.WithoutCancel(ctx), gone...); err != nil {
		return 0, s.fault("sweep", err)
	}
	return len(gone), nil
}

// finishedBefore reports whether t was delivered or cancelled before cutoff.
func finishedBefore(t *skyring.Timer, cutoff int64) bool {
	return (t.State == skyring.StateDelivered || t.State == skyring.StateCancelled) && t.Finished <= cutoff
}

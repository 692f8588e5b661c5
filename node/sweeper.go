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
	// shared: the store is the stream every node shares (shared.go): one
	// scan of it (Iterate), not a listing in id order (List), which on
	// that store reads each record with a request of its own; and removals
	// in pieces of at most sharedSweepBatch (a JetStream atomic batch).
	shared bool

	loop sync.WaitGroup
}

func newSweeper(n *Node) *sweeper {
	return &sweeper{
		store: n.store, index: n.index, clock: n.clock, log: n.log,
		retention: n.opts.TimerRetention, interval: n.opts.SweepInterval, fault: n.storageFault,
		mine: n.answersFor, shared: n.sharedMode(),
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
	if s.shared {
		return s.sweepShared(ctx)
	}
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

// sharedSweepBatch is the most timers one removal deletes in shared-store
// mode: an external JetStream's default max_batch_size.
const sharedSweepBatch = 1000

// sweepShared is sweep on the shared store: one scan of the stream for the
// finished timers of the partitions this node owns, then removals in
// pieces.
func (s *sweeper) sweepShared(ctx context.Context) (int, error) {
	cutoff := s.clock.Now().UnixNano() - int64(s.retention)
	var ids []string
	err := s.store.Iterate(ctx, func(t *skyring.Timer) error {
		if finishedBefore(t, cutoff) && s.mine(t.ID) {
			ids = append(ids, t.ID)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	removed := 0
	for len(ids) > 0 {
		k := min(len(ids), sharedSweepBatch)
		n, err := s.remove(ctx, ids[:k], cutoff)
		removed += n
		if err != nil {
			return removed, err
		}
		ids = ids[k:]
	}
	return removed, nil
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

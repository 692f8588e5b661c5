package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/ring"
)

// partitionSource is the shared store's reading of whole partitions
// (jsstore.Store).
type partitionSource interface {
	IteratePartition(ctx context.Context, p int, fn func(*skyring.Timer) error) error
	Iterate(ctx context.Context, fn func(*skyring.Timer) error) error
}

// partitions keeps, in shared-store mode, which partitions this node has
// loaded into its index: those it owns. The rebalancer syncs it on every
// pass: a partition gained (at start; a member left, or was dropped after
// the member timeout: the takeover of a dead node's timers) is loaded from
// the store; a partition lost is forgotten here, and its timers go to their
// new owner with the ordinary hand-off, which in shared mode moves no data.
type partitions struct {
	src    partitionSource
	owns   func(p int) bool
	n      int // partition count
	loaded []bool
	mu     sync.Mutex // one sync at a time
	warned time.Time  // the last failed load logged (by the rebalance loop)
}

// bulkLoad: gaining more partitions than this at once reads the whole
// stream once rather than each partition with a consumer of its own.
const bulkLoad = 32

// partitionWorkers read that many gained partitions at once.
const partitionWorkers = 8

func newPartitions(src partitionSource, owns func(int) bool) *partitions {
	return &partitions{src: src, owns: owns, n: ring.DefaultPartitions, loaded: make([]bool, ring.DefaultPartitions)}
}

// sync loads the partitions this node owns now and had not loaded, and
// forgets those it no longer owns. place is called with every timer of a
// gained partition (from several goroutines). It returns how many timers
// it loaded and how many partitions it gained and lost; a partition whose
// load failed stays unloaded and is tried again on the next sync.
func (ps *partitions) sync(ctx context.Context, place func([]*skyring.Timer) int) (timers, gained, lost int, err error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var gain []int
	for p := range ps.n {
		switch owns := ps.owns(p); {
		case owns && !ps.loaded[p]:
			gain = append(gain, p)
		case !owns && ps.loaded[p]:
			ps.loaded[p] = false
			lost++
		}
	}
	if len(gain) == 0 {
		return 0, 0, lost, nil
	}
	if len(gain) > bulkLoad {
		want := make([]bool, ps.n)
		for _, p := range gain {
			want[p] = true
		}
		batch := make([]*skyring.Timer, 0, 256)
		err = ps.src.Iterate(ctx, func(t *skyring.Timer) error {
			if want[ring.PartitionOf(t.ID, ps.n)] {
				if batch = append(batch, t); len(batch) == cap(batch) {
					timers += place(batch)
					batch = batch[:0]
				}
			}
			return nil
		})
		timers += place(batch)
		if err != nil {
			return timers, 0, lost, fmt.Errorf("node: loading %d partitions: %w", len(gain), err)
		}
		for _, p := range gain {
			ps.loaded[p] = true
		}
		return timers, len(gain), lost, nil
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		work  = make(chan int)
		first error
	)
	for range min(partitionWorkers, len(gain)) {
		wg.Go(func() {
			for p := range work {
				var batch []*skyring.Timer
				err := ps.src.IteratePartition(ctx, p, func(t *skyring.Timer) error {
					batch = append(batch, t)
					return nil
				})
				k := place(batch)
				mu.Lock()
				timers += k
				if err != nil {
					if first == nil {
						first = fmt.Errorf("node: loading partition %d: %w", p, err)
					}
				} else {
					ps.loaded[p] = true
					gained++
				}
				mu.Unlock()
			}
		})
	}
	for _, p := range gain {
		work <- p
	}
	close(work)
	wg.Wait()
	return timers, gained, lost, first
}

// loadPartitions loads the partitions this node owns at start (shared-store
// mode; the recovery of the other mode). The wheel is not running yet.
func (r *rebalancer) loadPartitions(ctx context.Context) (int, error) {
	start := time.Now()
	timers, gained, _, err := r.parts.sync(ctx, r.placeLoaded)
	if err != nil {
		return timers, err
	}
	r.log.Info("loaded owned partitions", "partitions", gained, "timers", timers, "took", time.Since(start).Round(time.Millisecond))
	return timers, nil
}

// syncPartitions is a rebalance pass's part in shared-store mode: it loads
// what this node gained since the last pass.
func (r *rebalancer) syncPartitions(ctx context.Context) {
	start := time.Now()
	timers, gained, lost, err := r.parts.sync(ctx, r.placeLoaded)
	if err != nil && time.Since(r.parts.warned) >= 10*time.Second {
		r.parts.warned = time.Now()
		r.log.Warn("loading gained partitions failed; trying again on every pass", "err", err)
	}
	if gained > 0 || lost > 0 {
		r.log.Info("partitions changed owner", "gained", gained, "lost", lost, "timers_loaded", timers, "took", time.Since(start).Round(time.Millisecond))
		r.metrics.tookHandoff(timers)
	}
}

// placeLoaded arms (or files as dead letters) the timers of a gained
// partition that this node does not hold yet, and returns how many it
// placed. Those it holds (armed, a dead letter, or under way) stay as they
// are: the store is the one copy, and a fired timer's record is read again
// when it fires.
func (r *rebalancer) placeLoaded(ts []*skyring.Timer) int {
	if len(ts) == 0 {
		return 0
	}
	placed := 0
	for i, res := range r.index.offer(ts) {
		if res != takeFresh {
			continue
		}
		t := ts[i]
		r.index.place(t)
		if t.State == skyring.StatePending {
			placed++
		}
	}
	return placed
}

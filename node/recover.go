package node

import (
	"context"
	"fmt"
	"time"

	"github.com/skyring/skyring"
)

// recoverTimers loads every stored timer into the index. The wheel is not
// running yet: those already due fire once it starts, which Start does only
// when every transport can deliver.
func (n *Node) recoverTimers(ctx context.Context) (int, error) {
	start := time.Now()
	count, failed, finished := 0, 0, 0
	err := n.store.Iterate(ctx, func(t *skyring.Timer) error {
		switch t.State {
		case skyring.StatePending:
			n.index.arm(t.ID, t.FireAt()) // a timer between attempts: its next attempt
			count++
		case skyring.StateFailed:
			n.index.addFailed(t.ID)
			failed++
		default:
			finished++ // kept for its fate only; the sweeper removes it
		}
		return nil
	})
	if err != nil {
		return count, fmt.Errorf("node: recovering stored timers: %w", err)
	}
	if count+failed+finished > 0 {
		n.log.Info("recovered timers", "count", count, "failed", failed, "finished", finished, "took", time.Since(start).Round(time.Millisecond))
	}
	if bad := n.corrupt.Load(); bad > 0 {
		n.log.Error("stored timers that could not be decoded were moved aside and will not fire", "count", bad)
	}
	return count, nil
}

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
	count := 0
	err := n.store.Iterate(ctx, func(t *skyring.Timer) error {
		n.index.arm(t.ID, t.FireAt()) // a timer between attempts: its next attempt
		count++
		return nil
	})
	if err != nil {
		return count, fmt.Errorf("node: recovering stored timers: %w", err)
	}
	if count > 0 {
		n.log.Info("recovered timers", "count", count, "took", time.Since(start).Round(time.Millisecond))
	}
	if bad := n.corrupt.Load(); bad > 0 {
		n.log.Error("stored timers that could not be decoded were moved aside and will not fire", "count", bad)
	}
	return count, nil
}

package node

import (
	"context"
	"errors"

	"github.com/skyring/skyring"
)

// List pages through the timers of the whole cluster.
func (n *Node) List(ctx context.Context, q skyring.ListQuery) (skyring.ListPage, error) {
	return skyring.ListPage{}, errors.New("node: list: under construction")
}

// Retry re-arms a failed timer now with a fresh attempt budget.
func (n *Node) Retry(ctx context.Context, id string) error {
	return errors.New("node: retry: under construction")
}

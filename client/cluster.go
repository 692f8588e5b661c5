package client

import (
	"context"
	"fmt"

	"github.com/skyring/skyring/ring"
)

// Cluster is what GET /cluster answers: the node asked, the live members as
// it sees them (each with the timers it holds, as last reported), and the
// version of its ring.
type Cluster struct {
	Node        ring.Member   `json:"node"`
	Members     []ring.Member `json:"members"`
	RingVersion uint64        `json:"ring_version"`
}

// maxClusterBytes bounds a GET /cluster answer read into memory.
const maxClusterBytes = 16 << 20

// Cluster sends GET /cluster: the view of the cluster of the node at the
// client's base URL. The NATS API has no such subject.
func (c *HTTPClient) Cluster(ctx context.Context) (Cluster, error) {
	var cl Cluster
	if err := c.getJSON(ctx, c.base+"/cluster", maxClusterBytes, &cl); err != nil {
		return Cluster{}, fmt.Errorf("client: cluster: %w", err)
	}
	return cl, nil
}

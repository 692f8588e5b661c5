package client_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestHTTPCluster: Cluster shows the node asked, its members with their
// timer counts, and the ring version.
func TestHTTPCluster(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := b.httpClient(t)
	ctx := context.Background()
	for range 2 {
		_, err := c.Create(ctx, spec("counted"))
		require.NoError(t, err)
	}
	cl, err := c.Cluster(ctx)
	require.NoError(t, err)
	require.Equal(t, b.node.ID(), cl.Node.ID)
	require.Equal(t, 2, cl.Node.Timers, "this node's own count is fresh")
	require.Len(t, cl.Members, 1)
	require.Equal(t, b.node.ID(), cl.Members[0].ID)
	require.NotZero(t, cl.RingVersion)
}

package jsstore_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/ring"
	"github.com/skyring/skyring/storage/jsstore"
)

func TestEncodeID(t *testing.T) {
	t.Parallel()
	var printable strings.Builder
	for c := byte(' '); c <= '~'; c++ {
		if c != '/' {
			printable.WriteByte(c)
		}
	}
	ids := []string{"a", "A", "0", "a.b", "*", ">", "a b", "~", "_", "-", printable.String(),
		strings.Repeat("~", skyring.MaxIDLen), "\x00\xff"}
	for _, id := range ids {
		tok := jsstore.EncodeID(id)
		require.NotEmpty(t, tok)
		require.False(t, strings.ContainsAny(tok, ".*> \t\r\n"), "token %q of %q is not subject-safe", tok, id)
		back, err := jsstore.DecodeID(tok)
		require.NoError(t, err, id)
		require.Equal(t, id, back)
	}
	require.Len(t, jsstore.EncodeID(strings.Repeat("~", skyring.MaxIDLen)), 2*skyring.MaxIDLen)

	// The empty string (a meta key, never an id) has a token too.
	back, err := jsstore.DecodeID(jsstore.EncodeID(""))
	require.NoError(t, err)
	require.Empty(t, back)

	// Tokens sort like the ids they encode.
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	toks := make([]string, len(sorted))
	for i, id := range sorted {
		toks[i] = jsstore.EncodeID(id)
	}
	require.True(t, slices.IsSorted(toks))

	for _, bad := range []string{"", "abc", "zz", "AB", "a.b"} {
		_, err := jsstore.DecodeID(bad)
		require.ErrorIs(t, err, jsstore.ErrBadToken, bad)
	}
}

func TestPartition(t *testing.T) {
	t.Parallel()
	// The function is part of the stored layout and the node's placement:
	// it is ring.PartitionOf with 1,024 partitions, whose values
	// ring.TestPartitionOfIsStable pins.
	for _, id := range []string{"", "a", "foobar", "order-42-expiry"} {
		require.Equal(t, ring.PartitionOf(id, 1024), jsstore.Partition(id), id)
	}
	require.Equal(t, 1024, jsstore.Partitions)

	// Ids spread evenly: with 200 ids a partition on average, none holds
	// fewer than half or more than twice that.
	const n = 200 * jsstore.Partitions
	counts := make([]int, jsstore.Partitions)
	for i := range n {
		p := jsstore.Partition(fmt.Sprintf("timer-%d", i))
		require.True(t, p >= 0 && p < jsstore.Partitions)
		counts[p]++
	}
	require.Greater(t, slices.Min(counts), 100)
	require.Less(t, slices.Max(counts), 400)
}

func TestStreamName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "SKYRING", jsstore.StreamName("skyring"))
	require.Equal(t, "SKYRING_TIMERS", jsstore.StreamName("skyring.timers"))
}

package ring_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/ring"
)

// memberSets returns the two kinds of member names the placement tests use:
// node-1…node-n and n random UUIDs (fixed seed).
func memberSets(n int) map[string][]string {
	return map[string][]string{
		"node-N": nodeNames(n),
		"uuid":   uuidKeys(n, uint64(n)),
	}
}

// checkPlacement asserts the invariants every placement has: each partition
// has exactly one owner among the members, Owner and Partitions agree, and no
// member owns more than the capacity, ceil(load × P / n).
func checkPlacement(t *testing.T, p *ring.Placement, members []string, partitions int, load float64) {
	t.Helper()
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	ms = slices.DeleteFunc(ms, func(m string) bool { return m == "" })
	require.Equal(t, ms, p.Members())
	if len(ms) == 0 {
		require.Equal(t, 0, p.Capacity())
		require.Equal(t, "", p.Owner(0))
		return
	}
	require.Equal(t, partitions, p.NumPartitions())

	// ceil(load × P / n) with load in thousandths, in integers: float64
	// gives ceil(1.1 × 100 / 1) = 111.
	num, den := int(math.Round(load*1000))*partitions, 1000*len(ms)
	want := (num + den - 1) / den
	require.Equal(t, want, p.Capacity())

	seen := make([]bool, partitions)
	total := 0
	for _, m := range ms {
		parts := p.Partitions(m)
		require.LessOrEqual(t, len(parts), want, "member %s owns too many", m)
		require.True(t, slices.IsSorted(parts))
		for _, part := range parts {
			require.False(t, seen[part], "partition %d owned twice", part)
			seen[part] = true
			require.Equal(t, m, p.Owner(part))
		}
		total += len(parts)
	}
	require.Equal(t, partitions, total, "every partition is owned")
}

func TestPlacementShareBounds(t *testing.T) {
	for _, partitions := range []int{1024, 64, 4096} {
		for _, load := range []float64{1.0, 1.1, 1.25} {
			var figures []string
			for n := 1; n <= 20; n++ {
				for kind, members := range memberSets(n) {
					p := ring.NewPlacement(members, partitions, load)
					checkPlacement(t, p, members, partitions, load)
					if kind == "node-N" {
						most := 0
						for _, m := range members {
							most = max(most, len(p.Partitions(m)))
						}
						figures = append(figures, fmt.Sprintf("%d:%.3f", n, float64(most)*float64(n)/float64(partitions)))
					}
				}
			}
			t.Logf("P=%d load=%.2f largest share / even, by members: %s", partitions, load, strings.Join(figures, " "))
		}
	}
}

// TestPlacementMovement measures how many partitions change owner when one
// member joins or leaves, against the least possible: the partitions the
// newcomer ends up owning, or those the leaver owned. Consistent hashing
// alone would move exactly that many; the load bound moves a few more, since
// partitions that overflowed to a second choice may settle elsewhere.
func TestPlacementMovement(t *testing.T) {
	const partitions = 1024
	var totalMoved, totalIdeal int
	for kind, members := range memberSets(21) {
		for n := 1; n <= 20; n++ {
			before := ring.NewPlacement(members[:n], partitions, ring.DefaultLoad)

			// Join: members[n] comes in.
			after := ring.NewPlacement(members[:n+1], partitions, ring.DefaultLoad)
			moved := before.Moved(after)
			ideal := after.Partitions(members[n])
			// Every partition the newcomer owns has moved to it.
			for _, part := range ideal {
				require.Contains(t, moved, part)
			}
			require.LessOrEqual(t, len(moved), maxMoved(len(ideal)),
				"join %s n=%d: moved %d, ideal %d", kind, n, len(moved), len(ideal))
			t.Logf("%-6s join  %2d→%2d: moved %4d, ideal %4d (×%.2f)", kind, n, n+1, len(moved), len(ideal), ratio(len(moved), len(ideal)))
			totalMoved += len(moved)
			totalIdeal += len(ideal)

			if n == 1 {
				continue
			}
			// Leave: members[0] goes.
			after = ring.NewPlacement(members[1:n], partitions, ring.DefaultLoad)
			moved = before.Moved(after)
			ideal = before.Partitions(members[0])
			// Every partition the leaver owned has moved away from it.
			for _, part := range ideal {
				require.Contains(t, moved, part)
			}
			require.LessOrEqual(t, len(moved), maxMoved(len(ideal)),
				"leave %s n=%d: moved %d, ideal %d", kind, n, len(moved), len(ideal))
			t.Logf("%-6s leave %2d→%2d: moved %4d, ideal %4d (×%.2f)", kind, n, n-1, len(moved), len(ideal), ratio(len(moved), len(ideal)))
			totalMoved += len(moved)
			totalIdeal += len(ideal)
		}
	}
	t.Logf("all changes: moved %d, ideal %d (×%.2f)", totalMoved, totalIdeal, ratio(totalMoved, totalIdeal))
	require.LessOrEqual(t, totalMoved, totalIdeal*5/4, "on average a change moves at most 1.25× the ideal")
}

// maxMoved is the bound TestPlacementMovement holds one change to.
func maxMoved(ideal int) int { return ideal*3/2 + 8 }

func ratio(a, b int) float64 { return float64(a) / float64(b) }

func TestPlacementDeterministic(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for n := 1; n <= 20; n++ {
		for kind, members := range memberSets(n) {
			want := ring.NewPlacement(members, 0, 0)
			for range 5 {
				shuffled := slices.Clone(members)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				// A duplicate changes nothing either.
				shuffled = append(shuffled, shuffled[rng.IntN(len(shuffled))])
				got := ring.NewPlacement(shuffled, 0, 0)
				require.Equal(t, want.Checksum(), got.Checksum(), "%s n=%d", kind, n)
				require.Empty(t, want.Moved(got), "%s n=%d", kind, n)
			}
		}
	}
}

// TestPlacementIsStable pins a placement: every Skyring node of a cluster,
// whatever its version, must place partitions the same way, so a change here
// is a change of the protocol.
func TestPlacementIsStable(t *testing.T) {
	p := ring.NewPlacement([]string{"node-a", "node-b", "node-c"}, 1024, 1.1)
	require.Equal(t, uint64(0xd16d549d3caeb7d1), p.Checksum())
	var first []string
	for part := range 8 {
		first = append(first, p.Owner(part))
	}
	require.Equal(t, []string{"node-a", "node-b", "node-c", "node-c", "node-a", "node-c", "node-c", "node-a"}, first)
	require.Equal(t, []int{328, 351, 345}, []int{len(p.Partitions("node-a")), len(p.Partitions("node-b")), len(p.Partitions("node-c"))})
}

func TestPlacementChecksum(t *testing.T) {
	a := ring.NewPlacement(nodeNames(3), 0, 0)
	require.Equal(t, a.Checksum(), ring.NewPlacement(nodeNames(3), 0, 0).Checksum())
	require.NotEqual(t, a.Checksum(), ring.NewPlacement(nodeNames(4), 0, 0).Checksum())
	require.NotEqual(t, a.Checksum(), ring.NewPlacement(nodeNames(3), 512, 0).Checksum())
	require.NotEqual(t, a.Checksum(), ring.NewPlacement([]string{"node-1", "node-2", "node-4"}, 0, 0).Checksum())
	// The checksum is of the placement, not of the names' concatenation.
	require.NotEqual(t,
		ring.NewPlacement([]string{"a", "bc"}, 0, 0).Checksum(),
		ring.NewPlacement([]string{"ab", "c"}, 0, 0).Checksum())
}

func TestPlacementEdgeCases(t *testing.T) {
	t.Run("no members", func(t *testing.T) {
		for _, p := range []*ring.Placement{ring.NewPlacement(nil, 0, 0), ring.NewPlacement([]string{}, 16, 1.5), nil, {}} {
			require.Empty(t, p.Members())
			require.NotNil(t, p.Members())
			require.Equal(t, 0, p.Capacity())
			require.Equal(t, "", p.Owner(0))
			require.Empty(t, p.Partitions("node-1"))
			require.NotNil(t, p.Partitions("node-1"))
		}
		// nil and the zero value are the empty placement of DefaultPartitions.
		empty := ring.NewPlacement(nil, 0, 0)
		require.Equal(t, empty.Checksum(), (*ring.Placement)(nil).Checksum())
		require.Equal(t, empty.Checksum(), (&ring.Placement{}).Checksum())
		require.Equal(t, ring.DefaultPartitions, (*ring.Placement)(nil).NumPartitions())
		require.Equal(t, ring.DefaultPartitions, (&ring.Placement{}).NumPartitions())
		require.NotEqual(t, empty.Checksum(), ring.NewPlacement(nil, 16, 0).Checksum())
		// An empty id is no member: "" always means no owner.
		require.Empty(t, ring.NewPlacement([]string{"", ""}, 0, 0).Members())
		require.Equal(t, ring.NewPlacement([]string{"a"}, 0, 0).Checksum(), ring.NewPlacement([]string{"", "a", ""}, 0, 0).Checksum())
		// Losing every member moves every partition.
		require.Len(t, ring.NewPlacement(nodeNames(3), 0, 0).Moved(empty), ring.DefaultPartitions)
	})

	t.Run("one member owns everything", func(t *testing.T) {
		p := ring.NewPlacement([]string{"solo"}, 100, 1.1)
		checkPlacement(t, p, []string{"solo"}, 100, 1.1)
		require.Len(t, p.Partitions("solo"), 100)
		require.Equal(t, 110, p.Capacity())
		require.Empty(t, p.Partitions("other"))
	})

	t.Run("more members than partitions", func(t *testing.T) {
		members := nodeNames(20)
		p := ring.NewPlacement(members, 8, 1.1)
		checkPlacement(t, p, members, 8, 1.1)
		require.Equal(t, 1, p.Capacity())
		owners := map[string]bool{}
		for part := range 8 {
			owners[p.Owner(part)] = true
		}
		require.Len(t, owners, 8, "eight members own one partition each")
	})

	t.Run("out of range", func(t *testing.T) {
		p := ring.NewPlacement(nodeNames(3), 16, 0)
		require.Equal(t, "", p.Owner(-1))
		require.Equal(t, "", p.Owner(16))
		require.NotEqual(t, "", p.Owner(15))
		require.Nil(t, p.Moved(ring.NewPlacement(nodeNames(3), 32, 0)), "different partition counts do not compare")
	})

	t.Run("defaults", func(t *testing.T) {
		for _, load := range []float64{0, -1, 0.5, math.NaN(), math.Inf(1)} {
			p := ring.NewPlacement(nodeNames(3), -5, load)
			require.Equal(t, ring.DefaultPartitions, p.NumPartitions())
			require.Equal(t, ring.DefaultLoad, p.Load())
			require.Equal(t, ring.NewPlacement(nodeNames(3), 0, ring.DefaultLoad).Checksum(), p.Checksum())
		}
		require.Equal(t, 1.0, ring.NewPlacement(nodeNames(3), 0, 1).Load())
		require.Equal(t, 1.25, ring.NewPlacement(nodeNames(3), 0, 1.25).Load())
		// A huge load is no bound: placement by consistent hashing alone.
		huge := ring.NewPlacement(nodeNames(3), 0, math.MaxFloat64)
		require.Equal(t, 1e6, huge.Load())
		checkPlacement(t, huge, nodeNames(3), ring.DefaultPartitions, 1e6)
	})
}

func TestPartitionOf(t *testing.T) {
	keys := uuidKeys(100_000, 3)
	counts := make([]int, ring.DefaultPartitions)
	for _, k := range keys {
		part := ring.PartitionOf(k, ring.DefaultPartitions)
		require.GreaterOrEqual(t, part, 0)
		require.Less(t, part, ring.DefaultPartitions)
		counts[part]++
	}
	// 100,000 keys in 1,024 partitions: about 98 each, standard deviation
	// about 10. Six deviations either side is far outside what a sound hash
	// gives and well inside what a broken one gives.
	lo, hi := slices.Min(counts), slices.Max(counts)
	t.Logf("keys per partition: min %d, max %d, even %.1f", lo, hi, float64(len(keys))/ring.DefaultPartitions)
	require.Greater(t, lo, 37)
	require.Less(t, hi, 158)

	p := ring.NewPlacement(nodeNames(3), 64, 0)
	for _, k := range keys[:100] {
		require.Equal(t, ring.PartitionOf(k, 64), p.PartitionOf(k))
	}
	require.Equal(t, ring.PartitionOf("x", ring.DefaultPartitions), ring.PartitionOf("x", 0))
	require.Equal(t, ring.PartitionOf("x", ring.DefaultPartitions), (*ring.Placement)(nil).PartitionOf("x"))
}

// TestPartitionOfIsStable pins PartitionOf: stored keys are grouped by it, so
// a change would strand every stored timer in the wrong partition.
func TestPartitionOfIsStable(t *testing.T) {
	// Computed independently from the formula in the PartitionOf doc.
	for id, want := range map[string]int{
		"":                                     294,
		"a":                                    603,
		"timer-1":                              450,
		"3f2504e0-4f89-41d3-9a0c-0305e82c3301": 678,
		"01JD5X3Q9ZK8M2V7R4T6W0Y1BC":           330,
	} {
		require.Equal(t, want, ring.PartitionOf(id, ring.DefaultPartitions), "PartitionOf(%q)", id)
	}
	require.Equal(t, 5, ring.PartitionOf("3f2504e0-4f89-41d3-9a0c-0305e82c3301", 7))
}

func BenchmarkNewPlacement(b *testing.B) {
	for _, n := range []int{3, 10, 50} {
		b.Run(fmt.Sprintf("partitions=1024/members=%d", n), func(b *testing.B) {
			members := nodeNames(n)
			b.ReportAllocs()
			for b.Loop() {
				_ = ring.NewPlacement(members, ring.DefaultPartitions, ring.DefaultLoad)
			}
		})
	}
}

func BenchmarkPartitionOf(b *testing.B) {
	keys := uuidKeys(1024, 5)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		_ = ring.PartitionOf(keys[i&1023], ring.DefaultPartitions)
		i++
	}
}

// FuzzPlacement checks the invariants of any member set: every partition
// owned once, no member over capacity, and the order of members irrelevant.
func FuzzPlacement(f *testing.F) {
	f.Add("node-1,node-2,node-3", 64)
	f.Add("a", 1)
	f.Add("a,b,c,d,e,f,g,h,i,j", 3)
	f.Add(",,x,", 1024)
	f.Fuzz(func(t *testing.T, list string, partitions int) {
		partitions = 1 + abs(partitions)%2048
		members := strings.Split(list, ",")
		p := ring.NewPlacement(members, partitions, ring.DefaultLoad)
		checkPlacement(t, p, members, partitions, ring.DefaultLoad)
		slices.Reverse(members)
		require.Equal(t, p.Checksum(), ring.NewPlacement(members, partitions, ring.DefaultLoad).Checksum())
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

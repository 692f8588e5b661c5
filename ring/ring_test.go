package ring_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/serialx/hashring"
	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring/ring"
)

// uuidKeys returns n random version-4 UUID strings from a fixed seed, so every
// run of a test sees the same keys.
func uuidKeys(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	out := make([]string, n)
	for i := range out {
		a, b := rng.Uint64(), rng.Uint64()
		out[i] = fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
			uint32(a>>32), uint16(a>>16), uint16(a)&0xfff,
			uint16(b>>48)&0x3fff|0x8000, b&0xffffffffffff)
	}
	return out
}

func nodeNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("node-%d", i+1)
	}
	return out
}

func owners(t testing.TB, r *ring.Ring, keys []string) []string {
	t.Helper()
	out := make([]string, len(keys))
	for i, k := range keys {
		o, ok := r.Owner(k)
		require.True(t, ok)
		out[i] = o
	}
	return out
}

func TestNew(t *testing.T) {
	r := ring.New([]string{"c", "a", "b", "a"}, 0)
	require.Equal(t, []string{"a", "b", "c"}, r.Members())
	require.Equal(t, 3, r.Len())
	require.Equal(t, ring.DefaultVNodes, r.VNodes())
	require.True(t, r.Has("a"))
	require.True(t, r.Has("c"))
	require.False(t, r.Has("d"))
	require.False(t, r.Has(""))

	require.Equal(t, 7, ring.New([]string{"a"}, 7).VNodes())
	require.Equal(t, ring.DefaultVNodes, ring.New([]string{"a"}, -3).VNodes())

	// The caller's slice is neither kept nor reordered, and Members is a copy.
	in := []string{"z", "y"}
	r = ring.New(in, 0)
	in[0] = "x"
	require.Equal(t, []string{"y", "z"}, r.Members())
	ms := r.Members()
	ms[0] = "changed"
	require.Equal(t, []string{"y", "z"}, r.Members())
}

func TestEmptyRing(t *testing.T) {
	var nilRing *ring.Ring
	for name, r := range map[string]*ring.Ring{
		"nil":   nilRing,
		"zero":  {},
		"empty": ring.New(nil, 0),
	} {
		t.Run(name, func(t *testing.T) {
			o, ok := r.Owner("any")
			require.False(t, ok)
			require.Empty(t, o)
			require.Equal(t, 0, r.Len())
			require.Empty(t, r.Members())
			require.NotNil(t, r.Members())
			require.False(t, r.Has("any"))
		})
	}
	require.Equal(t, nilRing.Checksum(), ring.New(nil, 0).Checksum())
}

func TestSingleMemberOwnsEverything(t *testing.T) {
	r := ring.New([]string{"only"}, 0)
	for _, k := range uuidKeys(1000, 7) {
		o, ok := r.Owner(k)
		require.True(t, ok)
		require.Equal(t, "only", o)
	}
}

// TestPlacementIsHashring pins placement to serialx/hashring with each member
// weighted vnodes times: the package adds no placement of its own.
func TestPlacementIsHashring(t *testing.T) {
	members := nodeNames(5)
	r := ring.New(members, 64)
	weights := map[string]int{}
	for _, m := range members {
		weights[m] = 64
	}
	hr := hashring.NewWithWeights(weights)
	for _, k := range uuidKeys(10_000, 11) {
		want, ok := hr.GetNode(k)
		require.True(t, ok)
		got, ok := r.Owner(k)
		require.True(t, ok)
		require.Equal(t, want, got, "key %s", k)
	}
}

func TestOrderDoesNotMatter(t *testing.T) {
	members := nodeNames(7)
	keys := uuidKeys(10_000, 2)
	base := ring.New(members, 0)
	want := owners(t, base, keys)

	rng := rand.New(rand.NewPCG(3, 4))
	for range 3 {
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		shuffled = append(shuffled, shuffled[0]) // a duplicate changes nothing either
		r := ring.New(shuffled, 0)
		require.Equal(t, base.Checksum(), r.Checksum())
		require.Equal(t, want, owners(t, r, keys), "order %v", shuffled)
	}
}

func TestChecksum(t *testing.T) {
	a := ring.New([]string{"a", "bc"}, 0)
	require.Equal(t, a.Checksum(), ring.New([]string{"bc", "a"}, 0).Checksum())
	require.NotEqual(t, a.Checksum(), ring.New([]string{"ab", "c"}, 0).Checksum())
	require.NotEqual(t, a.Checksum(), ring.New([]string{"a", "bc"}, 64).Checksum())
	require.NotEqual(t, a.Checksum(), ring.New([]string{"a"}, 0).Checksum())
}

// TestBalance checks that virtual names spread random UUID keys evenly: no
// member is more than 25% away from its fair share. The measured maximum
// deviation is logged (go test -run TestBalance -v).
func TestBalance(t *testing.T) {
	keys := uuidKeys(100_000, 1)
	schemes := map[string]func(n int) []string{
		"node-i": nodeNames,
		"uuid":   func(n int) []string { return uuidKeys(n, 42) },
	}
	for _, scheme := range []string{"node-i", "uuid"} {
		for _, n := range []int{3, 4, 5, 10} {
			t.Run(fmt.Sprintf("%s/members=%d", scheme, n), func(t *testing.T) {
				members := schemes[scheme](n)
				r := ring.New(members, 0)
				count := map[string]int{}
				for _, k := range keys {
					o, _ := r.Owner(k)
					count[o]++
				}
				fair := float64(len(keys)) / float64(n)
				worst := 0.0
				for _, m := range members {
					dev := (float64(count[m]) - fair) / fair
					worst = max(worst, dev, -dev)
					require.InDelta(t, fair, float64(count[m]), 0.25*fair, "member %s", m)
				}
				t.Logf("vnodes=%d members=%d keys=%d max deviation %.1f%%",
					r.VNodes(), n, len(keys), worst*100)
			})
		}
	}
}

// TestAddMovesKeysOnlyToNewMember: a join moves keys only onto the new member,
// and about its fair share of them.
func TestAddMovesKeysOnlyToNewMember(t *testing.T) {
	keys := uuidKeys(20_000, 5)
	for _, n := range []int{1, 2, 4, 9} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			members := nodeNames(n)
			before := owners(t, ring.New(members, 0), keys)
			after := owners(t, ring.New(append(slices.Clone(members), "newcomer"), 0), keys)
			moved := 0
			for i := range keys {
				if before[i] != after[i] {
					moved++
					require.Equal(t, "newcomer", after[i], "key %s moved from %s", keys[i], before[i])
				}
			}
			fair := float64(len(keys)) / float64(n+1)
			require.InDelta(t, fair, float64(moved), 0.25*fair)
		})
	}
}

// TestRemoveMovesOnlyTheLeaversKeys: a leave moves only the keys the leaver
// owned, and spreads them over the others.
func TestRemoveMovesOnlyTheLeaversKeys(t *testing.T) {
	keys := uuidKeys(20_000, 6)
	for _, n := range []int{2, 3, 5, 10} {
		t.Run(fmt.Sprintf("members=%d", n), func(t *testing.T) {
			members := nodeNames(n)
			gone := members[n/2]
			rest := slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == gone })
			before := owners(t, ring.New(members, 0), keys)
			after := owners(t, ring.New(rest, 0), keys)
			receivers := map[string]bool{}
			for i := range keys {
				if before[i] == gone {
					require.NotEqual(t, gone, after[i])
					receivers[after[i]] = true
				} else {
					require.Equal(t, before[i], after[i], "key %s", keys[i])
				}
			}
			require.Len(t, receivers, len(rest), "the leaver's keys go to every remaining member")
		})
	}
}

func FuzzRingStable(f *testing.F) {
	f.Add("a,b,c", "3f2504e0-4f89-41d3-9a0c-0305e82c3301", uint8(0))
	f.Add("node-1,node-2,node-3,node-4,node-5", "timer-1", uint8(16))
	f.Add("127.0.0.1:3000,127.0.0.1:3001", "", uint8(1))
	f.Add("", "key", uint8(8))
	f.Add("x", "key", uint8(3))
	f.Add("a,a,b,,b", "\x00\xff", uint8(255))
	f.Add("ä,日本,🙂", "ключ", uint8(2))
	f.Fuzz(func(t *testing.T, list, key string, vn uint8) {
		members := strings.Split(list, ",")
		if list == "" {
			members = nil
		}
		if len(members) > 16 {
			members = members[:16]
		}
		vnodes := int(vn) % 64 // 0 means DefaultVNodes
		r := ring.New(members, vnodes)

		owner, ok := r.Owner(key)
		if r.Len() == 0 {
			require.False(t, ok)
			return
		}
		require.True(t, ok)
		require.True(t, r.Has(owner), "owner %q not a member of %q", owner, r.Members())
		require.Contains(t, members, owner)

		again, _ := r.Owner(key)
		require.Equal(t, owner, again, "same ring, same key")

		reversed := slices.Clone(members)
		slices.Reverse(reversed)
		other := ring.New(reversed, vnodes)
		o2, _ := other.Owner(key)
		require.Equal(t, owner, o2, "same members in another order")
		require.Equal(t, r.Checksum(), other.Checksum())

		// Removing a member other than the owner never moves the key.
		for _, m := range r.Members() {
			if m == owner {
				continue
			}
			less := slices.DeleteFunc(r.Members(), func(x string) bool { return x == m })
			o3, _ := ring.New(less, vnodes).Owner(key)
			require.Equal(t, owner, o3, "removing %q moved the key", m)
			break
		}
		// Adding a member either keeps the owner or hands the key to the newcomer.
		newcomer := "newcomer\x00" + list
		o4, _ := ring.New(append(slices.Clone(members), newcomer), vnodes).Owner(key)
		require.Contains(t, []string{owner, newcomer}, o4)
	})
}

func BenchmarkOwner(b *testing.B) {
	keys := uuidKeys(1024, 9)
	for _, n := range []int{3, 10} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			r := ring.New(nodeNames(n), 0)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, _ = r.Owner(keys[i&1023])
				i++
			}
		})
	}
}

func BenchmarkNew(b *testing.B) {
	members := nodeNames(10)
	for _, vnodes := range []int{128, ring.DefaultVNodes} {
		b.Run(fmt.Sprintf("members=10/vnodes=%d", vnodes), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = ring.New(members, vnodes)
			}
		})
	}
}

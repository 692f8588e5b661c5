package ring

import (
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/serialx/hashring"
)

// DefaultVNodes is the number of virtual names each member gets on the
// circle when New or NewView is given vnodes <= 0. See the package
// documentation for the balance it gives.
const DefaultVNodes = 256

// Ring maps keys to members with consistent hashing. It is immutable and safe
// for concurrent use. The zero value and a nil *Ring are empty rings.
type Ring struct {
	// hr is built once and only read afterwards: GetNode is safe for
	// concurrent use (it makes a new MD5 state per call), and the one mutating
	// method, UpdateWithWeights, is never called. AddNode/RemoveNode would
	// copy, but a whole rebuild costs the same, so New always builds afresh.
	hr       *hashring.HashRing // nil when there are no members
	members  []string           // sorted, no duplicates
	vnodes   int
	checksum uint64
}

// New builds a ring of the given member ids, each placed under vnodes virtual
// names (DefaultVNodes when vnodes <= 0). The order of members does not matter
// and duplicates are ignored. The slice is not retained.
func New(members []string, vnodes int) *Ring {
	if vnodes <= 0 {
		vnodes = DefaultVNodes
	}
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	r := &Ring{members: ms, vnodes: vnodes, checksum: checksum(ms, vnodes)}
	if len(ms) > 0 {
		// hashring keeps this map; it is never touched again.
		weights := make(map[string]int, len(ms))
		for _, m := range ms {
			weights[m] = vnodes
		}
		r.hr = hashring.NewWithWeights(weights)
	}
	return r
}

// Owner returns the member that owns key, or false when the ring has no
// members. The same members and vnodes always give the same owner.
func (r *Ring) Owner(key string) (string, bool) {
	if r == nil || len(r.members) == 0 {
		return "", false
	}
	if len(r.members) == 1 {
		return r.members[0], true
	}
	return r.hr.GetNode(key)
}

// Members returns the member ids, sorted. The slice is a copy and never nil.
func (r *Ring) Members() []string {
	if r == nil {
		return []string{}
	}
	return append(make([]string, 0, len(r.members)), r.members...)
}

// Len returns the number of members.
func (r *Ring) Len() int {
	if r == nil {
		return 0
	}
	return len(r.members)
}

// Has reports whether id is a member.
func (r *Ring) Has(id string) bool {
	if r == nil {
		return false
	}
	_, ok := slices.BinarySearch(r.members, id)
	return ok
}

// VNodes returns the number of virtual names per member.
func (r *Ring) VNodes() int {
	if r == nil {
		return DefaultVNodes
	}
	return r.vnodes
}

// Checksum returns a 64-bit FNV-1a digest of the sorted member ids and
// vnodes. Two rings with equal checksums place every key the same way (barring
// a hash collision), so nodes can compare checksums to tell whether their views
// have converged.
func (r *Ring) Checksum() uint64 {
	if r == nil {
		return checksum(nil, DefaultVNodes)
	}
	return r.checksum
}

func checksum(sorted []string, vnodes int) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(strconv.AppendInt(nil, int64(vnodes), 10))
	for _, m := range sorted {
		// Length-prefixed so that {"a","bc"} and {"ab","c"} differ.
		_, _ = h.Write([]byte{0})
		_, _ = h.Write(strconv.AppendInt(nil, int64(len(m)), 10))
		_, _ = h.Write([]byte{':'})
		_, _ = h.Write([]byte(m))
	}
	return h.Sum64()
}

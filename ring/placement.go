package ring

import (
	"cmp"
	"hash/fnv"
	"math"
	"slices"
	"strconv"
)

const (
	// DefaultPartitions is the number of partitions NewPlacement uses when
	// given partitions <= 0.
	DefaultPartitions = 1024

	// DefaultLoad is the load bound NewPlacement uses when given a load below
	// 1 (or NaN or infinite): no member owns more than ceil(1.1 × P / n)
	// partitions.
	DefaultLoad = 1.1

	// PlacementVNodes is the number of points each member has on the
	// placement circle. More points bring the unbounded placement closer to
	// even, so fewer partitions overflow to a second choice and a membership
	// change moves fewer of them; it costs placement time (see
	// BenchmarkNewPlacement). It is part of the placement: changing it changes
	// [Placement.Checksum].
	PlacementVNodes = 128

	maxLoad = 1e6
)

// Placement assigns a fixed number of partitions to members with consistent
// hashing with bounded loads (Mirrokni, Thorup and Zadimoghaddam, 2017). It is
// immutable and safe for concurrent use. The zero value and a nil *Placement
// have no members and DefaultPartitions partitions, none of them owned.
//
// Every member gets [PlacementVNodes] points on a 64-bit circle and every
// partition one point. Partitions are placed in ascending order, 0 first: a
// partition goes to the member of the first point at or after its own point
// (clockwise, wrapping) whose member owns fewer than [Placement.Capacity]
// partitions yet. Nothing depends on randomness, map order or the order the
// members were given in, so every node that computes the placement of the
// same member set gets the same owners.
type Placement struct {
	members    []string // sorted, no duplicates
	owner      []int32  // partition -> index in members; nil when no members
	owned      [][]int  // member index -> its partitions, ascending
	partitions int
	loadMilli  int64
	capacity   int
	checksum   uint64
}

// NewPlacement places partitions (DefaultPartitions when <= 0) on members
// with the load bound load (DefaultLoad when below 1, NaN or infinite; it is
// rounded to thousandths so every platform computes the same capacity, and
// loads above a million count as a million: no bound at all). The
// order of members does not matter, duplicates and empty ids are ignored (so
// "" always means no owner) and the slice is not retained.
//
// Every member owns at most ceil(load × partitions / len(members))
// partitions. With more members than partitions some members own none.
func NewPlacement(members []string, partitions int, load float64) *Placement {
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	if math.IsNaN(load) || math.IsInf(load, 0) || load < 1 {
		load = DefaultLoad
	}
	// Any load of n or more is plain consistent hashing; the cap keeps
	// load × 1000 × partitions within an int64.
	load = min(load, maxLoad)
	ms := slices.Clone(members)
	slices.Sort(ms)
	ms = slices.Compact(ms)
	if len(ms) > 0 && ms[0] == "" { // sorted: "" can only be first
		ms = ms[1:]
	}

	p := &Placement{
		members:    ms,
		partitions: partitions,
		loadMilli:  int64(math.Round(load * 1000)),
	}
	if len(ms) > 0 {
		p.capacity = capacity(partitions, len(ms), p.loadMilli)
		p.place()
	}
	p.checksum = p.digest()
	return p
}

// capacity is ceil(loadMilli × partitions / (1000 × members)), in integers.
func capacity(partitions, members int, loadMilli int64) int {
	num := loadMilli * int64(partitions)
	den := 1000 * int64(members)
	return int((num + den - 1) / den)
}

// point is one member's place on the circle.
type point struct {
	hash   uint64
	member int32
}

func (p *Placement) place() {
	pts := make([]point, 0, len(p.members)*PlacementVNodes)
	buf := make([]byte, 0, 64)
	for i, m := range p.members {
		for v := range PlacementVNodes {
			buf = append(buf[:0], m...)
			buf = append(buf, 0)
			buf = strconv.AppendInt(buf, int64(v), 10)
			pts = append(pts, point{hash: hashBytes(buf), member: int32(i)})
		}
	}
	// Ties (a 64-bit collision) are broken by member index, which is the
	// sorted member order: still the same on every node.
	slices.SortFunc(pts, func(a, b point) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), cmp.Compare(a.member, b.member))
	})

	load := make([]int, len(p.members))
	p.owner = make([]int32, p.partitions)
	for part := range p.partitions {
		h := partitionPoint(part)
		i, _ := slices.BinarySearchFunc(pts, h, func(pt point, h uint64) int {
			return cmp.Compare(pt.hash, h)
		})
		// The capacities add up to at least p.partitions, so some member
		// has room and the walk ends within one turn.
		for ; ; i++ {
			if i == len(pts) {
				i = 0
			}
			if m := pts[i].member; load[m] < p.capacity {
				load[m]++
				p.owner[part] = m
				break
			}
		}
	}

	p.owned = make([][]int, len(p.members))
	for i, n := range load {
		p.owned[i] = make([]int, 0, n)
	}
	for part, m := range p.owner {
		p.owned[m] = append(p.owned[m], part)
	}
}

// partitionPoint is where partition part sits on the circle.
func partitionPoint(part int) uint64 {
	return fmix64(uint64(part) ^ 0x9e3779b97f4a7c15)
}

// digest hashes the placement itself (partitions, then each partition's
// owner), not only its inputs, so two binaries that would place differently
// also report different checksums.
func (p *Placement) digest() uint64 {
	h := fnv.New64a()
	buf := strconv.AppendInt(nil, int64(p.partitions), 10)
	for part := range p.partitions {
		owner := ""
		if p.owner != nil {
			owner = p.members[p.owner[part]]
		}
		// Length-prefixed so that owner names cannot run into each other.
		buf = append(buf, 0)
		buf = strconv.AppendInt(buf, int64(len(owner)), 10)
		buf = append(buf, ':')
		buf = append(buf, owner...)
		if len(buf) > 4096 {
			_, _ = h.Write(buf)
			buf = buf[:0]
		}
	}
	_, _ = h.Write(buf)
	return h.Sum64()
}

// Owner returns the member that owns partition, or "" when the placement has
// no members or partition is out of range.
func (p *Placement) Owner(partition int) string {
	if p == nil || p.owner == nil || partition < 0 || partition >= p.partitions {
		return ""
	}
	return p.members[p.owner[partition]]
}

// Partitions returns the partitions member owns, in ascending order. The
// slice is a copy and never nil; it is empty for a non-member.
func (p *Placement) Partitions(member string) []int {
	if p == nil {
		return []int{}
	}
	i, ok := slices.BinarySearch(p.members, member)
	if !ok || p.owned == nil {
		return []int{}
	}
	return slices.Clone(p.owned[i])
}

// PartitionOf returns the partition of id in this placement: the package
// function [PartitionOf] with this placement's partition count.
func (p *Placement) PartitionOf(id string) int {
	return PartitionOf(id, p.NumPartitions())
}

// NumPartitions returns the number of partitions.
func (p *Placement) NumPartitions() int {
	if p == nil || p.partitions == 0 {
		return DefaultPartitions
	}
	return p.partitions
}

// Members returns the member ids, sorted. The slice is a copy and never nil.
func (p *Placement) Members() []string {
	if p == nil {
		return []string{}
	}
	return append(make([]string, 0, len(p.members)), p.members...)
}

// Capacity returns the most partitions one member may own,
// ceil(load × partitions / members), or 0 when there are no members.
func (p *Placement) Capacity() int {
	if p == nil {
		return 0
	}
	return p.capacity
}

// Load returns the load bound the placement was built with, rounded to
// thousandths.
func (p *Placement) Load() float64 {
	if p == nil || p.loadMilli == 0 {
		return DefaultLoad
	}
	return float64(p.loadMilli) / 1000
}

// Checksum returns a 64-bit FNV-1a digest of the partition count and the
// owner of every partition. Two placements with equal checksums have the same
// owner for every partition (barring a hash collision), so nodes can compare
// checksums to tell whether they agree on who owns what, even across
// versions of this code.
func (p *Placement) Checksum() uint64 {
	if p == nil || p.partitions == 0 { // nil or the zero value
		return NewPlacement(nil, 0, 0).checksum
	}
	return p.checksum
}

// Moved returns, in ascending order, the partitions whose owner differs
// between p and next: what changes hands when the membership goes from p's
// members to next's. It returns nil when the two have different partition
// counts, since their partitions are not comparable.
func (p *Placement) Moved(next *Placement) []int {
	if p.NumPartitions() != next.NumPartitions() {
		return nil
	}
	var out []int
	for part := range p.NumPartitions() {
		if p.Owner(part) != next.Owner(part) {
			out = append(out, part)
		}
	}
	return out
}

// PartitionOf returns the partition of the timer id id among partitions
// partitions (DefaultPartitions when <= 0). The function is part of the
// storage format, since stored keys are grouped by it, and must never change:
//
//	h := FNV-1a 64 of the bytes of id      (offset 14695981039346656037, prime 1099511628211)
//	h ^= h >> 33; h *= 0xff51afd7ed558ccd  (the MurmurHash3 fmix64 finalizer)
//	h ^= h >> 33; h *= 0xc4ceb9fe1a85ec53
//	h ^= h >> 33
//	partition = h mod partitions           (unsigned)
//
// The finalizer spreads every input bit over the low bits that the modulo
// keeps; FNV-1a alone leaves the low ten bits depending only on the low ten
// bits of each step. TestPartitionOfIsStable pins known values.
func PartitionOf(id string, partitions int) int {
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	return int(hashString(id) % uint64(partitions))
}

// hashString is FNV-1a 64 followed by fmix64, written out so that it does
// not allocate.
func hashString(s string) uint64 {
	h := uint64(fnvOffset64)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime64
	}
	return fmix64(h)
}

func hashBytes(b []byte) uint64 {
	h := uint64(fnvOffset64)
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime64
	}
	return fmix64(h)
}

const (
	fnvOffset64 = 14695981039346656037
	fnvPrime64  = 1099511628211
)

// fmix64 is the 64-bit finalizer of MurmurHash3: a bijection that mixes every
// input bit into every output bit.
func fmix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

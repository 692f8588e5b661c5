package ring_test

import (
	"fmt"
	"time"

	"github.com/skyring/skyring/ring"
)

func ExampleRing() {
	r := ring.New([]string{"node-c", "node-a", "node-b"}, 0)
	fmt.Println(r.Members(), r.Len(), r.Has("node-b"))

	owner, _ := r.Owner("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
	fmt.Println("owner:", owner)

	// The same members in another order place every key the same way.
	again, _ := ring.New([]string{"node-b", "node-c", "node-a"}, 0).Owner("3f2504e0-4f89-41d3-9a0c-0305e82c3301")
	fmt.Println("same owner:", owner == again)

	// When node-d joins, the only keys that move are those node-d takes.
	bigger := ring.New([]string{"node-a", "node-b", "node-c", "node-d"}, 0)
	moved, toNewcomer := 0, 0
	for i := range 1000 {
		key := fmt.Sprintf("timer-%d", i)
		before, _ := r.Owner(key)
		after, _ := bigger.Owner(key)
		if before != after {
			moved++
			if after == "node-d" {
				toNewcomer++
			}
		}
	}
	fmt.Println("moved:", moved, "to node-d:", toNewcomer)

	_, ok := ring.New(nil, 0).Owner("anything")
	fmt.Println("empty ring has an owner:", ok)
	// Output:
	// [node-a node-b node-c] 3 true
	// owner: node-c
	// same owner: true
	// moved: 243 to node-d: 243
	// empty ring has an owner: false
}

func ExampleView() {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	v := ring.NewView(ring.Member{ID: "node-a", HTTPAddr: "127.0.0.1:3000"}, 0)

	// Heartbeats arrive from peers; the time is passed in.
	fmt.Println(v.Seen(ring.Member{ID: "node-b", HTTPAddr: "127.0.0.1:3001", Started: 100}, start))
	fmt.Println(v.Seen(ring.Member{ID: "node-c", HTTPAddr: "127.0.0.1:3002", Started: 100}, start))
	fmt.Println(v.Seen(ring.Member{ID: "node-b", HTTPAddr: "127.0.0.1:3001", Started: 100, Timers: 7}, start.Add(time.Second)))
	fmt.Println(v.Ring().Members(), "version", v.Version())

	// node-b restarts before anyone dropped it: a new incarnation.
	fmt.Println(v.Seen(ring.Member{ID: "node-b", HTTPAddr: "127.0.0.1:3001", Started: 200}, start.Add(2*time.Second)))

	// node-c stops sending heartbeats and is dropped; node-b says goodbye.
	fmt.Println(v.Expire(start.Add(4*time.Second), 3*time.Second))
	fmt.Println(v.Leave("node-b"))

	v.SetSelf(ring.Member{HTTPAddr: "127.0.0.1:3000", Timers: 2})
	for _, m := range v.Members() {
		fmt.Println(m.ID, m.HTTPAddr, m.Timers)
	}
	fmt.Println("version", v.Version())
	// Output:
	// joined
	// joined
	// unchanged
	// [node-a node-b node-c] version 3
	// restarted
	// [node-c]
	// true
	// node-a 127.0.0.1:3000 2
	// version 6
}

func ExamplePlacement() {
	p := ring.NewPlacement([]string{"node-c", "node-a", "node-b"}, 1024, 1.1)
	fmt.Println(p.Members(), p.NumPartitions(), "partitions, at most", p.Capacity(), "per member")

	// A timer id belongs to one partition, and the partition to one member.
	id := "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	part := p.PartitionOf(id)
	fmt.Println("partition:", part, "owner:", p.Owner(part))
	for _, m := range p.Members() {
		fmt.Println(m, "owns", len(p.Partitions(m)))
	}

	// Every node computing the placement of the same members agrees.
	again := ring.NewPlacement([]string{"node-b", "node-a", "node-c"}, 1024, 1.1)
	fmt.Println("same checksum:", p.Checksum() == again.Checksum())

	// node-d joins: it takes its share, and few other partitions move.
	bigger := ring.NewPlacement([]string{"node-a", "node-b", "node-c", "node-d"}, 1024, 1.1)
	fmt.Println("moved:", len(p.Moved(bigger)), "node-d owns:", len(bigger.Partitions("node-d")))

	// node-b leaves: its partitions, and few others, move.
	smaller := ring.NewPlacement([]string{"node-a", "node-c"}, 1024, 1.1)
	fmt.Println("moved:", len(p.Moved(smaller)), "node-b owned:", len(p.Partitions("node-b")))
	// Output:
	// [node-a node-b node-c] 1024 partitions, at most 376 per member
	// partition: 678 owner: node-a
	// node-a owns 328
	// node-b owns 351
	// node-c owns 345
	// same checksum: true
	// moved: 260 node-d owns: 260
	// moved: 351 node-b owned: 351
}

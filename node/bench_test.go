package node_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/node"
	"github.com/skyring/skyring/storage/memstore"
	"github.com/skyring/skyring/transports/transportstest"
)

// BenchmarkCreate measures Node.Create on a two-node ring sharing one NATS
// server: "local" creates ids the node owns, "relayed" ids the other node
// owns, so the difference is what a relay hop adds. Storage is in memory so
// that the hop, not the disk, is measured.
//
//	go test -run '^$' -bench BenchmarkCreate -benchtime 100000x ./node/
func BenchmarkCreate(b *testing.B) {
	srv := bustest.RunServer(b)
	start := func() *node.Node {
		n, err := node.New(node.WithOptions(node.Options{
			HTTPAddr: "127.0.0.1:0", NATSHosts: []string{srv.ClientURL()}, Store: memstore.New(),
			Transports: []string{"http"}, HeartbeatInterval: 50 * time.Millisecond, Logger: testLogger(b),
		}), node.WithTransport(transportstest.NewRecorder("rec")))
		if err != nil {
			b.Fatal(err)
		}
		if err := n.Start(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, other := start(), start()
	deadline := time.Now().Add(15 * time.Second)
	for len(a.Cluster().Members) != 2 || len(other.Cluster().Members) != 2 {
		if time.Now().After(deadline) {
			b.Fatal("the two nodes never saw each other")
		}
		time.Sleep(5 * time.Millisecond) // polling, with a deadline
	}
	// Sort ids by owner beforehand; every iteration creates a fresh timer.
	const perClass = 200000
	var local, relayed []string
	for i := 0; len(local) < perClass || len(relayed) < perClass; i++ {
		id := fmt.Sprintf("bench-%d", i)
		if a.Owner(id) == a.ID() {
			if len(local) < perClass {
				local = append(local, id)
			}
		} else if len(relayed) < perClass {
			relayed = append(relayed, id)
		}
	}
	for _, c := range []struct {
		name string
		ids  []string
	}{{"local", local}, {"relayed", relayed}} {
		used := 0 // ids are used once across the runs of a sub-benchmark
		b.Run(c.name, func(b *testing.B) {
			if used+b.N > len(c.ids) {
				b.Skipf("b.N %d > %d prepared ids: use -benchtime 100000x", b.N, len(c.ids)-used)
			}
			timers := make([]*skyring.Timer, b.N)
			for i := range timers {
				timers[i] = benchTimer(b, c.ids[used+i])
			}
			used += b.N
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := a.Create(context.Background(), timers[next.Add(1)-1]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func benchTimer(b testing.TB, id string) *skyring.Timer {
	tm, err := skyring.ParseTimer([]byte(`{"timeout":3600000,"data":"x","callback":{"transport":"rec","method":"post","uri":"x"}}`),
		skyring.ParseParams{Now: time.Now(), ID: id})
	if err != nil {
		b.Fatal(err)
	}
	return tm
}

package bus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/bus/bustest"
	"github.com/skyring/skyring/ring"
)

// noopHandler answers everything at once (or after delay) and counts
// creates.
type noopHandler struct {
	creates atomic.Int64
	target  atomic.Int64
	done    chan struct{}
	delay   time.Duration // stands for a storage write or a relay
}

func (h *noopHandler) Create(context.Context, *skyring.Timer) error {
	if h.delay > 0 {
		time.Sleep(h.delay)
	}
	if n := h.creates.Add(1); n == h.target.Load() {
		close(h.done)
	}
	return nil
}
func (h *noopHandler) Update(context.Context, *skyring.Timer) error { return nil }
func (h *noopHandler) Cancel(context.Context, string) error         { return nil }
func (h *noopHandler) Get(_ context.Context, id string) (skyring.Info, error) {
	return skyring.Info{ID: id}, nil
}
func (h *noopHandler) List(context.Context, skyring.ListQuery) (skyring.ListPage, error) {
	return skyring.ListPage{}, nil
}
func (h *noopHandler) Retry(context.Context, string) error                         { return nil }
func (h *noopHandler) CancelMatching(context.Context, skyring.Filter) (int, error) { return 0, nil }
func (h *noopHandler) HandleRelay(context.Context, bus.Command) bus.Reply {
	return bus.Reply{Status: 200}
}
func (h *noopHandler) MemberSeen(ring.Member) bool { return false }
func (h *noopHandler) MemberLeft(string)           {}
func (h *noopHandler) LocalMember() ring.Member    { return ring.Member{} }

func benchBus(b *testing.B, opts bus.Options) (*bus.Bus, *noopHandler) {
	h := &noopHandler{}
	opts.HeartbeatInterval = time.Hour
	return startBus(b, opts, h), h
}

// BenchmarkRelay measures a node-to-node request-reply.
func BenchmarkRelay(b *testing.B) {
	b.Run("tcp", func(b *testing.B) {
		srv := bustest.RunServer(b)
		a, _ := benchBus(b, bus.Options{NodeID: "bench-a", Servers: []string{srv.ClientURL()}})
		benchBus(b, bus.Options{NodeID: "bench-b", Servers: []string{srv.ClientURL()}})
		benchRelay(b, a, "bench-b")
	})
	b.Run("inproc", func(b *testing.B) {
		// Both buses on the embedded server, through in-process connections:
		// a relays to itself.
		a, _ := benchBus(b, bus.Options{NodeID: "bench-a"})
		benchRelay(b, a, "bench-a")
	})
}

func benchRelay(b *testing.B, a *bus.Bus, to string) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		cmd  bus.Command
	}{
		{"get", bus.Command{Op: bus.OpGet, ID: "some-timer-id"}},
		{"create", bus.Command{Op: bus.OpCreate, Timer: newTimer("some-timer-id")}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rep, err := a.Relay(ctx, to, tc.cmd)
				if err != nil || rep.Status != 200 {
					b.Fatal(rep, err)
				}
			}
		})
		b.Run(tc.name+"-parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rep, err := a.Relay(ctx, to, tc.cmd)
					if err != nil || rep.Status != 200 {
						b.Error(rep, err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAPICreate measures the public NATS API with a no-op handler,
// from a client connected in-process to the node's embedded server.
func BenchmarkAPICreate(b *testing.B) {
	a, h := benchBus(b, bus.Options{NodeID: "bench-api"})
	nc := bustest.Connect(b, a.Server())
	subj := a.Subject("timer", "create")
	body := []byte(`{"timeout":60000,"data":{"a":1},"callback":{"transport":"http","method":"post","uri":"http://127.0.0.1:9/x"}}`)

	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := nc.Request(subj, body, 5*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("request-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := nc.Request(subj, body, 5*time.Second); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("request-parallel-1ms-handler", func(b *testing.B) {
		// What the pool is for: a handler that waits (here 1ms) does not
		// hold up the others.
		h.delay = time.Millisecond
		defer func() { h.delay = 0 }()
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := nc.Request(subj, body, 5*time.Second); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("fire-and-forget", func(b *testing.B) {
		b.ReportAllocs()
		h.creates.Store(0)
		h.target.Store(int64(b.N))
		h.done = make(chan struct{})
		for i := range b.N {
			require.NoError(b, nc.Publish(subj, body))
			// Keep the backlog bounded so no message is dropped.
			for int64(i)-h.creates.Load() > 20000 {
				time.Sleep(100 * time.Microsecond)
			}
		}
		select {
		case <-h.done:
		case <-time.After(time.Minute):
			b.Fatalf("handled %d of %d", h.creates.Load(), b.N)
		}
	})
}

func BenchmarkCommandEncoding(b *testing.B) {
	for _, n := range []int{1, 1000} {
		batch := make([]*skyring.Timer, n)
		for i := range batch {
			batch[i] = newTimer(fmt.Sprintf("timer-%d", i))
		}
		b.Run(fmt.Sprintf("handoff-%d", n), func(b *testing.B) {
			// Through a relay to self, to include the decode on the far side.
			a, _ := benchBus(b, bus.Options{NodeID: "bench-enc"})
			b.ReportAllocs()
			for b.Loop() {
				rep, err := a.Relay(context.Background(), "bench-enc", bus.Command{Op: bus.OpHandoff, Timers: batch})
				if err != nil || rep.Status != 200 {
					b.Fatal(rep, err)
				}
			}
		})
	}
}

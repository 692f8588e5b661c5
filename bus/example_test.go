package bus_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/bus"
	"github.com/skyring/skyring/ring"
)

// echoNode is the smallest Handler: it accepts every create and knows no
// timer.
type echoNode struct{}

func (echoNode) Create(context.Context, *skyring.Timer) error { return nil }
func (echoNode) Update(context.Context, *skyring.Timer) error { return skyring.ErrTimerNotFound }
func (echoNode) Cancel(context.Context, string) error         { return skyring.ErrTimerNotFound }
func (echoNode) Get(context.Context, string) (skyring.Info, error) {
	return skyring.Info{}, skyring.ErrTimerNotFound
}
func (echoNode) List(context.Context, skyring.ListQuery) (skyring.ListPage, error) {
	return skyring.ListPage{}, nil
}
func (echoNode) Retry(context.Context, string) error                         { return skyring.ErrTimerNotFound }
func (echoNode) CancelMatching(context.Context, skyring.Filter) (int, error) { return 0, nil }
func (echoNode) HandleRelay(_ context.Context, cmd bus.Command) bus.Reply {
	return bus.Reply{Status: 200, Reason: "hello from " + cmd.From}
}
func (echoNode) MemberSeen(ring.Member) bool { return false }
func (echoNode) MemberLeft(string)           {}
func (echoNode) LocalMember() ring.Member    { return ring.Member{HTTPAddr: "127.0.0.1:3000"} }

// A Bus with an embedded NATS server serves the public NATS API and relays
// commands between nodes.
func Example() {
	b, err := bus.New(bus.Options{NodeID: "node-1", NATSPort: -1, ClusterPort: -1}) // -1: free ports
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Start(ctx, echoNode{}); err != nil {
		panic(err)
	}
	defer b.Close()

	// A client of the public NATS API.
	nc, err := nats.Connect(b.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()
	body := `{"id":"hello","timeout":1000,"callback":{"transport":"http","method":"post","uri":"http://example.com"}}`
	m, err := nc.Request("skyring.timer.create", []byte(body), 5*time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(m.Data))
	m, err = nc.Request("skyring.timer.get", []byte(`{"id":"nope"}`), 5*time.Second)
	if err != nil {
		panic(err)
	}
	fmt.Println(string(m.Data))

	// A node-to-node relay (here to itself).
	rep, err := b.Relay(ctx, "node-1", bus.Command{Op: bus.OpGet, ID: "hello"})
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.Status, rep.Reason)
	_, err = b.Relay(ctx, "node-2", bus.Command{Op: bus.OpGet, ID: "hello"})
	fmt.Println(err != nil && errors.Is(err, bus.ErrNodeUnreachable))
	// Output:
	// {"id":"hello","status":201}
	// {"status":404,"error":"Timer not found"}
	// 200 hello from node-1
	// true
}

package natstransport_test

import (
	"context"
	"fmt"

	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/transports/natstransport"
)

func Example() {
	opts := natstest.DefaultTestOptions
	opts.Port = -1
	s := natstest.RunServer(&opts)
	defer s.Shutdown()

	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	// A service that answers reminders.
	sub, err := nc.Subscribe("reminders", func(m *nats.Msg) {
		fmt.Printf("got %s for timer %s\n", m.Data, m.Header.Get("Skyring-Timer-Id"))
		_ = m.Respond(nil)
	})
	if err != nil {
		panic(err)
	}
	defer sub.Unsubscribe()

	tr, err := natstransport.New(natstransport.Options{Conn: natstransport.FromConn(nc)})
	if err != nil {
		panic(err)
	}
	timer := &skyring.Timer{
		ID:       "t-7",
		Data:     []byte(`"call mum"`),
		Callback: skyring.Callback{Transport: "nats", Method: "request", URI: "reminders"},
	}
	fmt.Println("delivered:", tr.Execute(context.Background(), timer))

	timer.Callback.URI = "nobody.listens"
	fmt.Println(tr.Execute(context.Background(), timer))
	// Output:
	// got call mum for timer t-7
	// delivered: <nil>
	// natstransport: timer t-7: request to "nobody.listens": nats: no responders available for request
}

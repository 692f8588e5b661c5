package jsstore_test

import (
	"context"
	"fmt"
	"os"

	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"

	"github.com/skyring/skyring"
	"github.com/skyring/skyring/storage/jsstore"
	"github.com/skyring/skyring/storage/storagetest"
)

// Open a store on a JetStream server through a connection the caller owns,
// write a timer and load its partition back, as a new owner would.
func Example() {
	dir, _ := os.MkdirTemp("", "jsstore-example")
	defer os.RemoveAll(dir)
	opts := natstest.DefaultTestOptions
	opts.Port, opts.JetStream, opts.StoreDir = server.RANDOM_PORT, true, dir
	srv := natstest.RunServer(&opts)
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		panic(err)
	}
	defer nc.Close()

	ctx := context.Background()
	s, err := jsstore.Open(ctx, jsstore.Options{Conn: nc, Prefix: "skyring", Replicas: 1})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	if err := s.Put(ctx, storagetest.Timer("order-42", 1)); err != nil {
		panic(err)
	}
	p := jsstore.Partition("order-42")
	_ = s.IteratePartition(ctx, p, func(t *skyring.Timer) error {
		fmt.Println(s.StreamName(), t.ID)
		return nil
	})
	// Output: SKYRING order-42
}
